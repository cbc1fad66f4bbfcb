import { EndpointSpec_ResolutionMode, NodeSpec_Availability, NodeStatus_State, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { countPerNode, desiredRunning, expectConverged, globalSpec, oneTo, replicatedSpec, running, simulate, slotsOf, stateOf } from './support.js';

describe('the control loops together, on fake agents', () => {
  it('runs a new service of 3 replicas in slots 1 to 3 on distinct nodes, each task with an address on its network and the service with a VIP there', async () => {
    const { plane } = await simulate();
    await plane.addNodes(5);
    const backend = await plane.createNetwork('backend');
    await plane.start();

    const { id } = await plane.createService(
      replicatedSpec('web', 3, { task: { networks: [{ target: backend.id }] }, spec: { endpoint: { mode: EndpointSpec_ResolutionMode.VIP } } }),
    );
    await plane.until(() => {
      expectConverged(plane.tasks(id), 3);
      expect(slotsOf(running(plane.tasks(id)))).toEqual([1, 2, 3]);
    });

    // The ingress network took the pool's first /24; backend gets the next.
    expect(plane.network(backend.id).ipam?.configs[0]?.subnet).toBe('10.0.1.0/24');
    const tasks = running(plane.tasks(id));
    expect(new Set(tasks.map((task) => task.nodeId)).size).toBe(3);
    const { endpoint } = plane.service(id);
    expect(endpoint?.virtualIps).toEqual([{ networkId: backend.id, addr: expect.stringMatching(/^10\.0\.1\.\d+\/24$/) }]);
    for (const task of tasks) {
      expect(task.networks.map(({ network, addresses }) => ({ networkId: network?.id, addresses }))).toEqual([
        { networkId: backend.id, addresses: [expect.stringMatching(/^10\.0\.1\.\d+\/24$/)] },
      ]);
      expect(task.endpoint?.virtualIps).toEqual(endpoint?.virtualIps);
    }
    const addresses = [...tasks.map((task) => task.networks[0]?.addresses[0]), endpoint?.virtualIps[0]?.addr];
    expect(new Set(addresses).size).toBe(4);
  });

  it('scales 1 → 100 → 3 to exactly that many running tasks, spread over 10 equal nodes within one of each other at every step', async () => {
    const { plane } = await simulate();
    const nodeIds = (await plane.addNodes(10)).map((node) => node.id);
    await plane.start();
    const { id } = await plane.createService(replicatedSpec('web', 1));

    for (const replicas of [1, 100, 3]) {
      if (replicas !== 1) await plane.scaleService(id, replicas);
      await plane.until(() => expectConverged(plane.tasks(id), replicas));
      const perNode = countPerNode(running(plane.tasks(id)), nodeIds);
      expect(Math.max(...perNode) - Math.min(...perNode), `tasks per node at ${replicas} replicas: ${perNode.join(', ')}`).toBeLessThanOrEqual(1);
      // Scaling up fills the lowest free slots; scaling down keeps some of them (not renumbered, as in swarmkit).
      if (replicas === 100) expect(slotsOf(running(plane.tasks(id)))).toEqual(oneTo(100));
    }
  });

  it('replaces the tasks of a node that goes down on the other nodes, in the same slots, while the lost ones stay as the silent node last reported them', async () => {
    const { plane } = await simulate();
    await plane.addNodes(4);
    await plane.start();
    const { id } = await plane.createService(replicatedSpec('web', 6));
    await plane.until(() => expectConverged(plane.tasks(id), 6));
    const lostNodeId = running(plane.tasks(id))[0]!.nodeId;
    const lost = running(plane.tasks(id)).filter((task) => task.nodeId === lostNodeId);

    await plane.setNodeState(lostNodeId, NodeStatus_State.DOWN);
    await plane.until(() => expectConverged(plane.tasks(id).filter((task) => task.nodeId !== lostNodeId), 6));

    expect(slotsOf(desiredRunning(plane.tasks(id)))).toEqual(oneTo(6));
    expect(desiredRunning(plane.tasks(id)).filter((task) => task.nodeId === lostNodeId)).toEqual([]);
    const lostNow = plane.tasks(id).filter((task) => lost.some(({ id: lostId }) => lostId === task.id));
    expect(lostNow.map((task) => [task.desiredState, stateOf(task)])).toEqual(lost.map(() => [TaskState.SHUTDOWN, TaskState.RUNNING]));
  });

  it('runs a global service once on every node that meets its constraints, on a node that joins later too, and stops the task of a drained node', async () => {
    const { plane } = await simulate();
    const webNodes = await plane.addNodes(4, { labels: { tier: 'web' } });
    const [dbNode] = await plane.addNodes(1, { labels: { tier: 'db' } });
    await plane.start();
    const { id } = await plane.createService(globalSpec('agent', { task: { placement: { constraints: ['node.labels.tier==web'] } } }));
    const runningOn = () => running(plane.tasks(id)).map((task) => task.nodeId);
    await plane.until(() => expect(runningOn().sort()).toEqual(webNodes.map((node) => node.id).sort()));
    expect(plane.tasks(id).filter((task) => task.nodeId === dbNode!.id)).toEqual([]);

    const [joined] = await plane.addNodes(1, { labels: { tier: 'web' } });
    await plane.until(() => expect(runningOn()).toContain(joined!.id));

    const drained = webNodes[1]!;
    const before = running(plane.tasks(id));
    await plane.setNodeAvailability(drained.id, NodeSpec_Availability.DRAIN);
    await plane.until(() => {
      const onDrained = plane.tasks(id).filter((task) => task.nodeId === drained.id);
      expect(onDrained.map((task) => [task.desiredState, stateOf(task)])).toEqual([[TaskState.SHUTDOWN, TaskState.SHUTDOWN]]);
    });
    // Every other node keeps the task it had; nothing moves to replace the drained node's.
    const stillRunning = running(plane.tasks(id)).map((task) => task.id).sort();
    expect(stillRunning).toEqual(before.filter((task) => task.nodeId !== drained.id).map((task) => task.id).sort());
    expect(new Set(running(plane.tasks(id)).map((task) => task.nodeId)).size).toBe(stillRunning.length);
  });
});
