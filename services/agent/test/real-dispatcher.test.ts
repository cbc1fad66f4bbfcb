import { startDispatcher, type RunningDispatcher } from '@shoal/dispatcher/control';
import { caCertificateDigest, createCertificateAuthority, generateJoinToken } from '@shoal/pki';
import { Cluster, NodeRole, NodeStatus_State, Secret, Task, TaskState, newId } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { MemoryStore } from '@shoal/store';
import { ClusterStateLeases, LocalClusterState } from '@shoal/store-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../src/agent.js';
import type { NodeIdentity } from '../src/identity.js';
import { FakeExecutor } from '../src/fake-executor.js';
import { joinCluster } from '../src/join.js';
import { assignedTask } from './support/tasks.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });

let state: LocalClusterState;
let workerToken: string;
let dispatcher: RunningDispatcher;
let agents: Agent[];

beforeEach(async () => {
  // The swarm as `docker swarm init` leaves it in the store: the cluster object with its root CA and join tokens.
  state = new LocalClusterState(new MemoryStore());
  const ca = createCertificateAuthority('swarm-ca');
  workerToken = generateJoinToken(ca.caCertPem);
  const cluster = Cluster.fromPartial({
    id: newId(),
    spec: { annotations: { name: 'default' } },
    rootCa: {
      caCert: Buffer.from(ca.caCertPem),
      caKey: Buffer.from(ca.caKeyPem),
      caCertHash: caCertificateDigest(ca.caCertPem),
      joinTokens: { worker: workerToken, manager: generateJoinToken(ca.caCertPem) },
    },
  });
  await state.commit({ changes: [{ action: 'create', kind: 'cluster', object: cluster }] });
  dispatcher = await startDispatcher({ state, leases: new ClusterStateLeases(state), listen: '127.0.0.1:0', log });
  agents = [];
});

afterEach(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await dispatcher.stop();
});

const storedTask = (id: string) => state.view((tx) => tx.get('task', id));

/** Joins a node with the worker token and starts its agent on `executor`. */
async function joinedAgent(executor: FakeExecutor, saved: NodeIdentity[] = []): Promise<Agent> {
  const identity = await joinCluster({ token: workerToken, remoteAddrs: [dispatcher.address] });
  const agent = new Agent({ identity, executor, log, timing: { maxBackoffMs: 200 }, saveIdentity: async (changed) => void saved.push(changed) });
  agents.push(agent);
  void agent.start().catch(() => undefined);
  await agent.registered;
  return agent;
}

describe('an agent with the real dispatcher', () => {
  it('joins, registers as READY with its description, and runs a task the store assigns it through to its exit', async () => {
    const executor = new FakeExecutor({ hostname: 'real-dispatcher-node' });
    const { nodeId } = (await joinedAgent(executor)).identity;
    await expect.poll(() => state.view((tx) => tx.get('node', nodeId))).toMatchObject({
      status: { state: NodeStatus_State.READY },
      description: { hostname: 'real-dispatcher-node' },
    });

    const task: Task = assignedTask(nodeId);
    await state.commit({ changes: [{ action: 'create', kind: 'task', object: task }] });
    await expect.poll(() => storedTask(task.id)?.status?.state, { timeout: 10_000 }).toBe(TaskState.RUNNING);

    executor.exit(task.id, 137);
    await expect.poll(() => storedTask(task.id)?.status, { timeout: 10_000 }).toMatchObject({ state: TaskState.FAILED, err: 'task: non-zero exit (137)' });
  });

  it('hands a task the secret it references, as the dispatcher sent it', async () => {
    const executor = new FakeExecutor();
    const { nodeId } = (await joinedAgent(executor)).identity;
    const secret = Secret.fromPartial({ id: newId(), spec: { annotations: { name: 'db-password' }, data: Buffer.from('hunter2') } });
    const task = assignedTask(nodeId, { secretIds: [secret.id] });
    await state.commit({
      changes: [
        { action: 'create', kind: 'secret', object: secret },
        { action: 'create', kind: 'task', object: task },
      ],
    });

    await expect.poll(() => storedTask(task.id)?.status?.state, { timeout: 10_000 }).toBe(TaskState.RUNNING);
    expect(executor.dependenciesOf(task.id)?.secrets.get(secret.id)?.spec?.data.toString()).toBe('hunter2');
  });

  it('gets a manager certificate from the CA once the node is promoted', async () => {
    const saved: NodeIdentity[] = [];
    const agent = await joinedAgent(new FakeExecutor(), saved);
    const { nodeId } = agent.identity;
    const node = state.view((tx) => tx.get('node', nodeId))!;
    await state.commit({ changes: [{ action: 'update', kind: 'node', object: { ...node, spec: { ...node.spec!, desiredRole: NodeRole.MANAGER } } }] });

    await expect.poll(() => agent.identity.role, { timeout: 15_000 }).toBe('manager');
    expect(saved.at(-1)?.role).toBe('manager');
    await expect.poll(() => agent.connected, { timeout: 10_000 }).toBe(true);
  });
});
