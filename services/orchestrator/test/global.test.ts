import { NodeSpec_Availability, NodeStatus_State, TaskState, type Task } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { node, service, START_MS, TestCluster } from './support/harness.js';

const inZoneA = { placement: { constraints: ['node.labels.zone==a'] } };

/** For each node with tasks of the service: its tasks' desired states, oldest first. */
function desiredByNode(cluster: TestCluster, serviceId = 'agent'): Record<string, string[]> {
  const byNode = cluster.tasksByNode(serviceId);
  return Object.fromEntries(Object.entries(byNode).map(([nodeId, tasks]) => [nodeId, tasks.map((task: Task) => TaskState[task.desiredState] ?? '')]));
}

/** A cluster with `nodes` (labelled zone=a) and the global service `agent` constrained to zone a, running. */
async function globalAgent(...nodes: string[]): Promise<TestCluster> {
  const cluster = new TestCluster();
  cluster.create('node', ...nodes.map((id) => node(id, { spec: { annotations: { labels: { zone: 'a' } } } })));
  cluster.create('service', service('agent', { global: {} }, inZoneA));
  await cluster.start();
  return cluster;
}

describe('global services', () => {
  it('runs one task, preset to its node, on each node that is up, not drained, not paused and meets the constraints', async () => {
    await using cluster = new TestCluster();
    const zone = (value: string, availability = NodeSpec_Availability.ACTIVE) => ({ annotations: { labels: { zone: value } }, availability });
    cluster.create(
      'node',
      node('ready', { spec: zone('a') }),
      node('down', { spec: zone('a'), status: { state: NodeStatus_State.DOWN } }),
      node('drained', { spec: zone('a', NodeSpec_Availability.DRAIN) }),
      node('paused', { spec: zone('a', NodeSpec_Availability.PAUSE) }),
      node('elsewhere', { spec: zone('b') }),
    );
    const agent = service('agent', { global: {} }, inZoneA);
    cluster.create('service', agent);
    await cluster.start();

    const tasks = cluster.tasks('agent');
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      nodeId: 'ready',
      slot: 0n,
      desiredState: TaskState.RUNNING,
      spec: agent.spec?.task,
      status: { state: TaskState.NEW, message: 'created', timestamp: new Date(START_MS) },
    });
  });

  it('creates a task on a node that joins', async () => {
    await using cluster = await globalAgent('n1');
    cluster.create('node', node('n2', { spec: { annotations: { labels: { zone: 'a' } } } }));
    await cluster.settle();

    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'], n2: ['RUNNING'] });
  });

  it('shuts down the task of a drained node without moving it, and runs one there again once the node is active', async () => {
    await using cluster = await globalAgent('n1', 'n2');
    cluster.setAvailability('n2', NodeSpec_Availability.DRAIN);
    await cluster.settle();
    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'], n2: ['SHUTDOWN'] });

    await cluster.advance(1_000);
    cluster.setAvailability('n2', NodeSpec_Availability.ACTIVE);
    await cluster.settle();
    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'], n2: ['SHUTDOWN', 'RUNNING'] });
  });

  it('shuts down the task of a node that goes down', async () => {
    await using cluster = await globalAgent('n1', 'n2');
    cluster.setNodeState('n1', NodeStatus_State.DOWN);
    await cluster.settle();

    expect(desiredByNode(cluster)).toEqual({ n1: ['SHUTDOWN'], n2: ['RUNNING'] });
  });

  it('follows label changes: a node that stops matching loses its task, one that starts matching gets one', async () => {
    await using cluster = await globalAgent('n1');
    cluster.create('node', node('n2', { spec: { annotations: { labels: { zone: 'b' } } } }));
    await cluster.settle();
    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'] });

    cluster.setLabels('n1', { zone: 'b' });
    cluster.setLabels('n2', { zone: 'a' });
    await cluster.settle();

    expect(desiredByNode(cluster)).toEqual({ n1: ['SHUTDOWN'], n2: ['RUNNING'] });
  });

  it('adds no task to a paused node but leaves the one it has', async () => {
    await using cluster = await globalAgent('n1');
    cluster.setAvailability('n1', NodeSpec_Availability.PAUSE);
    cluster.create('service', service('second', { global: {} }));
    await cluster.settle();

    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'] });
    expect(cluster.tasks('second')).toEqual([]);
  });

  it('deletes the tasks of a node that is removed from the cluster', async () => {
    await using cluster = await globalAgent('n1', 'n2');
    cluster.delete('node', 'n2');
    await cluster.settle();

    expect(desiredByNode(cluster)).toEqual({ n1: ['RUNNING'] });
  });

  it('restarts a failed task on its own node', async () => {
    await using cluster = await globalAgent('n1', 'n2');
    const [failed] = cluster.tasksByNode('agent')['n1'] ?? [];
    cluster.report(failed!.id, TaskState.RUNNING);
    await cluster.advance(1_000);
    cluster.report(failed!.id, TaskState.FAILED);
    await cluster.settle();
    expect(desiredByNode(cluster)).toEqual({ n1: ['SHUTDOWN', 'READY'], n2: ['RUNNING'] });

    await cluster.advance(5_000);
    expect(desiredByNode(cluster)).toEqual({ n1: ['SHUTDOWN', 'RUNNING'], n2: ['RUNNING'] });
  });
});
