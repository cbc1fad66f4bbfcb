import { ErrorCode } from '@shoal/errors';
import { Node, NodeRole, NodeSpec_Availability, NodeStatus_State, type NodeDescription } from '@shoal/proto';
import { versionOf } from '@shoal/store';
import { describe, expect, it } from 'vitest';
import { HEARTBEAT_FAILURE, type RunningDispatcher } from '../src/index.js';
import { createSwarm, eventually, serve, type TestSwarm } from './support/swarm.js';
import { joinedWorker, rejection, type TestNode } from './support/test-node.js';

/** Long enough that a test's nodes need not heartbeat; the tests of heartbeats pass a short one. */
const HEARTBEAT_PERIOD_MS = 5_000;
const SHORT_HEARTBEAT_PERIOD_MS = 200;
const description: NodeDescription = {
  hostname: 'worker-1',
  platform: { architecture: 'x86_64', os: 'linux' },
  resources: { nanoCpus: 2_000_000_000n, memoryBytes: 4n << 30n, generic: [] },
  engine: { engineVersion: '24.0.7', labels: { zone: 'a' }, plugins: [] },
  tlsInfo: undefined,
  fips: false,
};

let swarm: TestSwarm;
let dispatcher: RunningDispatcher;

async function start(heartbeatPeriodMs = HEARTBEAT_PERIOD_MS): Promise<void> {
  swarm = await createSwarm({ heartbeatPeriodMs });
  dispatcher = await serve(swarm);
}

function joinedNode(): Promise<TestNode> {
  return joinedWorker(swarm, dispatcher.address);
}

async function updateNode(id: string, change: (node: Node) => Node): Promise<void> {
  await swarm.state.commit({ changes: [{ action: 'update', kind: 'node', object: change(swarm.node(id)!) }] });
}

describe('a session', () => {
  it('makes the node READY with its description, address and dispatcher before the first session message', async () => {
    await start();
    const manager = Node.fromPartial({ id: 'manager-1', role: NodeRole.MANAGER, spec: { desiredRole: NodeRole.MANAGER }, managerStatus: { addr: '10.0.0.1:2377' } });
    await swarm.state.commit({ changes: [{ action: 'create', kind: 'node', object: manager }] });
    const node = await joinedNode();

    const { sessionId, first } = await node.register(description);

    const stored = swarm.node(node.id);
    expect(stored?.status).toEqual({ state: NodeStatus_State.READY, message: '', addr: '127.0.0.1', dispatcher: dispatcher.instance });
    expect(stored?.description).toEqual(description);
    expect(sessionId).not.toBe('');
    expect(first.node).toEqual(stored);
    expect(first.managers).toEqual([{ peer: { nodeId: 'manager-1', addr: '10.0.0.1:2377' }, weight: 10n }]);
    expect(first.rootCa.toString()).toBe(swarm.ca.caCertPem);
  });

  it('sends a new session message when the node changes, and to every session when the managers change', async () => {
    await start();
    const [first, second] = await Promise.all([joinedNode(), joinedNode()]);
    const a = await first.register(description);
    const b = await second.register(description);

    await updateNode(first.id, (node) => ({ ...node, spec: { ...node.spec!, availability: NodeSpec_Availability.DRAIN } }));
    const drained = await a.messages.next();
    await updateNode(second.id, (node) => ({
      ...node,
      spec: { ...node.spec!, desiredRole: NodeRole.MANAGER },
      role: NodeRole.MANAGER,
      managerStatus: { raftId: 2n, addr: '10.0.0.2:2377', leader: false, reachability: 0 },
    }));
    const [toFirst, toSecond] = await Promise.all([a.messages.next(), b.messages.next()]);

    expect(drained.sessionId).toBe(a.sessionId);
    expect(drained.node?.spec?.availability).toBe(NodeSpec_Availability.DRAIN);
    expect(toFirst.managers).toEqual([{ peer: { nodeId: second.id, addr: '10.0.0.2:2377' }, weight: 10n }]);
    expect(toSecond.managers).toEqual(toFirst.managers);
    expect(toSecond.node?.role).toBe(NodeRole.MANAGER);
  });

  it("answers a heartbeat with the cluster's period, varied by at most half a second", async () => {
    await start();
    const node = await joinedNode();
    const { sessionId } = await node.register(description);

    const period = await node.heartbeat(sessionId);

    // swarmkit's ±0.5 s, a tenth of the default 5 s.
    expect(period).toBeGreaterThanOrEqual(HEARTBEAT_PERIOD_MS - 500);
    expect(period).toBeLessThanOrEqual(HEARTBEAT_PERIOD_MS + 500);
  });

  it('marks a node that misses three heartbeats DOWN ("heartbeat failure") and ends its session', async () => {
    await start(SHORT_HEARTBEAT_PERIOD_MS);
    const node = await joinedNode();
    const { sessionId, messages } = await node.register(description);

    const ended = await messages.end();
    await eventually('the node to be DOWN', () => swarm.node(node.id)?.status?.state === NodeStatus_State.DOWN);

    expect(ended).toMatchObject({ code: ErrorCode.NotFound, message: 'node not registered' });
    expect(swarm.node(node.id)?.status).toMatchObject({ state: NodeStatus_State.DOWN, message: HEARTBEAT_FAILURE, addr: '127.0.0.1', dispatcher: '' });
    expect(await rejection(node.heartbeat(sessionId))).toMatchObject({ code: ErrorCode.NotFound, message: 'node not registered' });
  });

  it('ends the previous session when the node registers again, and refuses its ID as invalid', async () => {
    await start();
    const node = await joinedNode();
    const old = await node.register(description);
    const version = versionOf(swarm.node(node.id)!);

    const current = await node.register(description);

    expect(await old.messages.end()).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'session invalid' });
    expect(await rejection(node.heartbeat(old.sessionId))).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'session invalid' });
    expect(current.sessionId).not.toBe(old.sessionId);
    // Same address and description: nothing to write.
    expect(versionOf(swarm.node(node.id)!)).toBe(version);
  });

  it('refuses a fourth registration within 8 seconds (UNAVAILABLE)', async () => {
    await start();
    const node = await joinedNode();
    for (let registration = 0; registration < 3; registration++) await node.register(description);

    const error = await node.session(description).end();

    expect(error).toMatchObject({ code: ErrorCode.Unavailable, message: `node ${node.id} exceeded rate limit count of registrations` });
  });

  it('ends the session of a node removed from the store, and refuses it as not registered', async () => {
    await start();
    const node = await joinedNode();
    const { messages } = await node.register(description);

    await swarm.state.commit({ changes: [{ action: 'delete', kind: 'node', id: node.id }] });

    expect(await messages.end()).toMatchObject({ code: ErrorCode.NotFound, message: 'node not registered' });
    expect(await node.session(description).end()).toMatchObject({ code: ErrorCode.NotFound, message: 'node not registered' });
  });

  it('ends every session when the dispatcher stops, so that the nodes go to another one', async () => {
    await start();
    const node = await joinedNode();
    const { messages } = await node.register(description);

    await dispatcher.stop();

    expect((await messages.end())?.code).toBe(ErrorCode.Unavailable);
  });

  it('keeps a node READY while it heartbeats', async () => {
    // Long enough that a loaded machine still gets each heartbeat in well before the deadline.
    await start(2 * SHORT_HEARTBEAT_PERIOD_MS);
    const node = await joinedNode();
    const { sessionId, messages } = await node.register(description);

    // Twice a period, for longer than the three periods that make a silent node DOWN.
    for (let beat = 0; beat < 8; beat++) {
      const period = await node.heartbeat(sessionId);
      await new Promise((resolve) => setTimeout(resolve, period / 2));
    }

    expect(swarm.node(node.id)?.status?.state).toBe(NodeStatus_State.READY);
    expect(await node.heartbeat(sessionId)).toBeGreaterThan(0);
    expect(messages.pending).toEqual([]);
  });
});
