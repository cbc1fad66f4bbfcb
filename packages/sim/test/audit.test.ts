import { Network, Node, Service, Task, TaskState, UpdateConfig_UpdateOrder, type KindedObject } from '@shoal/proto';
import type { Change } from '@shoal/store';
import { LocalClusterState } from '@shoal/store-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterAudit } from '../src/audit.js';
import type { PartialOf } from '../src/swarm-objects.js';

const audits: ClusterAudit[] = [];

afterEach(() => {
  for (const audit of audits.splice(0)) audit.close();
});

/** A state with a 1-core node `n1` and a service `svc`, and an audit following it. */
async function audited(serviceFields: PartialOf<typeof Service> = {}): Promise<{ state: LocalClusterState; audit: ClusterAudit }> {
  const state = new LocalClusterState();
  await state.commit({
    changes: [
      { action: 'create', kind: 'node', object: Node.fromPartial({ id: 'n1', description: { resources: { nanoCpus: 1_000_000_000n, memoryBytes: 1n << 30n } } }) },
      { action: 'create', kind: 'node', object: Node.fromPartial({ id: 'n2', description: { resources: { nanoCpus: 1_000_000_000n, memoryBytes: 1n << 30n } } }) },
      { action: 'create', kind: 'service', object: Service.fromPartial({ id: 'svc', ...serviceFields }) },
    ],
  });
  const audit = new ClusterAudit(state);
  audits.push(audit);
  return { state, audit };
}

function task(id: string, fields: PartialOf<typeof Task>): Task {
  return Task.fromPartial({ id, serviceId: 'svc', slot: 1n, desiredState: TaskState.RUNNING, ...fields });
}

const create = (...objects: KindedObject[]): Change[] => objects.map((object) => ({ action: 'create', ...object }) as Change);

/** Waits until the audit has checked every commit made so far, and returns what it found. */
async function findings(state: LocalClusterState, audit: ClusterAudit): Promise<readonly string[]> {
  const commits = Number(state.version) - 1;
  await vi.waitFor(() => expect(audit.commits).toBe(commits));
  return audit.violations;
}

describe('ClusterAudit', () => {
  it('reports a slot with two tasks desired RUNNING, naming the commit that showed it', async () => {
    const { state, audit } = await audited();
    await state.commit({ changes: create({ kind: 'task', object: task('a', {}) }, { kind: 'task', object: task('b', {}) }) });
    expect(await findings(state, audit)).toEqual([`at version ${state.version}: slot 1 of service svc has 2 tasks desired RUNNING: a, b`]);
  });

  it('lets a service that updates start-first run two tasks in a slot, but not a global service two on one node', async () => {
    const { state, audit } = await audited({ spec: { update: { order: UpdateConfig_UpdateOrder.START_FIRST } } });
    await state.commit({ changes: create({ kind: 'task', object: task('a', {}) }, { kind: 'task', object: task('b', {}) }) });
    await state.commit({ changes: create({ kind: 'service', object: Service.fromPartial({ id: 'global' }) }) });
    const onNode = { serviceId: 'global', slot: 0n, nodeId: 'n1' };
    await state.commit({ changes: create({ kind: 'task', object: task('c', onNode) }, { kind: 'task', object: task('d', onNode) }) });
    expect(await findings(state, audit)).toEqual([`at version ${state.version}: node n1 of service global has 2 tasks desired RUNNING: c, d`]);
  });

  it('reports a node whose assigned tasks reserve more CPU than it has, counting only tasks that hold a place there', async () => {
    const { state, audit } = await audited();
    const halfCore = { resources: { reservations: { nanoCpus: 500_000_000n } } };
    const onN1 = (id: string, slot: bigint, state: TaskState) => task(id, { slot, nodeId: 'n1', spec: halfCore, status: { state } });
    await state.commit({ changes: create({ kind: 'task', object: onN1('a', 1n, TaskState.RUNNING) }, { kind: 'task', object: onN1('b', 2n, TaskState.FAILED) }) });
    await state.commit({ changes: create({ kind: 'task', object: onN1('c', 3n, TaskState.ASSIGNED) }) });
    await state.commit({ changes: create({ kind: 'task', object: onN1('d', 4n, TaskState.ASSIGNED) }) });
    expect(await findings(state, audit)).toEqual([`at version ${state.version}: node n1 is over-committed: 1500000000 nano CPUs reserved of 1000000000`]);
  });

  it('reports an address held by two holders, ignoring tasks that have given theirs back', async () => {
    const { state, audit } = await audited();
    const network = Network.fromPartial({ id: 'net' });
    const attached = (address: string) => [{ network, addresses: [address] }];
    await state.commit({
      changes: create(
        { kind: 'task', object: task('a', { networks: attached('10.0.1.2/24'), status: { state: TaskState.RUNNING } }) },
        { kind: 'task', object: task('b', { slot: 2n, networks: attached('10.0.1.3/24'), status: { state: TaskState.FAILED } }) },
      ),
    });
    await state.commit({ changes: create({ kind: 'task', object: task('c', { slot: 3n, networks: attached('10.0.1.3/24') }) }) });
    await state.commit({ changes: [{ action: 'update', kind: 'node', object: Node.fromPartial({ ...state.view((tx) => tx.get('node', 'n1')), attachments: attached('10.0.1.2/24') }) }] });
    expect(await findings(state, audit)).toEqual([`at version ${state.version}: address 10.0.1.2 on network net is held by both node n1 and task a`]);
  });

  it('reports a task that moves to another node, is assigned again, or whose state or desired state goes back', async () => {
    const { state, audit } = await audited();
    await state.commit({ changes: create({ kind: 'task', object: task('a', { nodeId: 'n1', status: { state: TaskState.ASSIGNED, message: 'first' } }) }) });
    const rewrite = async (fields: PartialOf<typeof Task>) => {
      const stored = state.view((tx) => tx.get('task', 'a'))!;
      await state.commit({ changes: [{ action: 'update', kind: 'task', object: Task.fromPartial({ ...stored, ...fields }) }] });
      return state.version;
    };
    const assignedAgain = await rewrite({ status: { state: TaskState.ASSIGNED, message: 'second' } });
    const moved = await rewrite({ nodeId: 'n2' });
    await rewrite({ status: { state: TaskState.RUNNING } });
    const back = await rewrite({ status: { state: TaskState.ASSIGNED }, desiredState: TaskState.READY });
    expect(await findings(state, audit)).toEqual([
      `at version ${assignedAgain}: task a was assigned again`,
      `at version ${moved}: task a moved from node n1 to node n2`,
      `at version ${back}: task a's state went back from running to assigned`,
      `at version ${back}: task a's desired state went back from running to ready`,
    ]);
  });
});
