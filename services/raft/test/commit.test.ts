import { ErrorCode, hasCode } from '@shoal/errors';
import { ChangeAction, Consistency, NodeRole, ObjectKind, StoreService, TaskState, type Selector } from '@shoal/proto';
import { unaryCall } from '@shoal/rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedConsensus, Gate, startStoreApi, type StoreApiHarness } from './support/harness.js';
import { network, node, secret, service, task } from './support/objects.js';
import type { StoreApiClient } from '@shoal/store-client';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);

describe('commit, get and list', () => {
  let api: StoreApiHarness;
  let client: StoreApiClient;
  beforeAll(async () => {
    api = await startStoreApi();
    client = api.client();
  });
  afterAll(() => api.stop());

  it('commits a transaction, answers its version, and reads back what it wrote at that version', async () => {
    const written = service('roundtrip-svc', 'roundtrip', { spec: { annotations: { labels: { team: 'a' } } } });
    const version = await client.commit({
      changes: [
        { action: 'create', kind: 'service', object: written },
        { action: 'create', kind: 'task', object: task('roundtrip-task', 'roundtrip-svc') },
      ],
    });
    const stored = await client.get('service', 'roundtrip-svc');
    expect(stored.meta?.version?.index).toBe(version);
    expect({ ...stored, meta: undefined }).toEqual(written);
    expect((await client.get('task', 'roundtrip-task')).meta?.version?.index).toBe(version);
  });

  it('refuses a stale update with a conflict naming the object, and changes nothing of the transaction', async () => {
    await client.commit({ changes: [{ action: 'create', kind: 'service', object: service('stale-svc', 'stale') }] });
    const read = await client.get('service', 'stale-svc');
    const scaled = { ...read, spec: { ...read.spec!, replicated: { replicas: 2n } } };
    await client.commit({ changes: [{ action: 'update', kind: 'service', object: scaled }] });
    const current = await client.get('service', 'stale-svc');

    const stale = client.commit({
      changes: [
        { action: 'create', kind: 'task', object: task('stale-task', 'stale-svc') },
        { action: 'update', kind: 'service', object: { ...read, spec: { ...read.spec!, replicated: { replicas: 9n } } } },
      ],
    });

    await expect(stale).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    await expect(stale).rejects.toThrow(`service stale-svc has version ${current.meta?.version?.index}, write expected ${read.meta?.version?.index}`);
    expect(await client.get('service', 'stale-svc')).toEqual(current);
    await expect(client.get('task', 'stale-task')).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });

  it('refuses a write whose version precondition is stale, naming the object', async () => {
    const version = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('pre-net', 'pre') }] });
    await client.commit({ changes: [{ action: 'delete', kind: 'network', id: 'pre-net' }] });
    const guarded = client.commit({
      changes: [{ action: 'create', kind: 'task', object: task('pre-task', 'pre-svc') }],
      preconditions: [{ kind: 'network', id: 'pre-net', version }],
    });
    await expect(guarded).rejects.toSatisfy(withCode(ErrorCode.NotFound));
    await expect(guarded).rejects.toThrow('network pre-net does not exist');
    await expect(client.get('task', 'pre-task')).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });

  it('refuses a second object of the same kind with the same name, naming the holder', async () => {
    await client.commit({ changes: [{ action: 'create', kind: 'service', object: service('name-1', 'Shared-Name') }] });
    const second = client.commit({ changes: [{ action: 'create', kind: 'service', object: service('name-2', 'shared-name') }] });
    await expect(second).rejects.toSatisfy(withCode(ErrorCode.NameConflict));
    await expect(second).rejects.toThrow('already taken by service name-1');
    await expect(client.get('service', 'name-2')).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });

  it('refuses a transaction over the byte limit with RESOURCE_EXHAUSTED and changes nothing', async () => {
    const before = (await client.list('secret')).version;
    const oversize = client.commit({
      changes: [
        { action: 'create', kind: 'secret', object: secret('big-secret', 'big', Buffer.alloc(1_600_000)) },
        { action: 'create', kind: 'network', object: network('beside-big', 'beside-big') },
      ],
    });
    await expect(oversize).rejects.toSatisfy(withCode(ErrorCode.ResourceExhausted));
    await expect(oversize).rejects.toThrow('maxTransactionBytes');
    expect((await client.list('secret')).version).toBe(before);
    await expect(client.get('network', 'beside-big')).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });

  it('refuses a transaction with more changes than the limit with RESOURCE_EXHAUSTED and changes nothing', async () => {
    const changes = Array.from({ length: 201 }, (_, n) => ({
      action: 'create' as const,
      kind: 'network' as const,
      object: network(`many-${n}`, `many-${n}`),
    }));
    await expect(client.commit({ changes })).rejects.toSatisfy(withCode(ErrorCode.ResourceExhausted));
    expect((await client.list('network', [{ idPrefix: 'many-' }])).objects).toEqual([]);
  });

  it('answers NOT_FOUND for an object that does not exist', async () => {
    await expect(client.get('task', 'no-such-task')).rejects.toThrow('task no-such-task does not exist');
  });
});

describe('selectors', () => {
  let client: StoreApiClient;
  let api: StoreApiHarness;
  beforeAll(async () => {
    api = await startStoreApi();
    client = api.client();
    const container = { secrets: [{ secretId: 'sec1' }], configs: [{ configId: 'cfg1' }] };
    await client.commit({
      changes: [
        { action: 'create', kind: 'network', object: network('net1', 'front') },
        { action: 'create', kind: 'secret', object: secret('sec1', 'db_pass') },
        { action: 'create', kind: 'node', object: node('n1', 'alpha', { role: NodeRole.MANAGER }) },
        { action: 'create', kind: 'node', object: node('n2', 'beta') },
        {
          action: 'create',
          kind: 'service',
          object: service('svc1', 'web', {
            spec: { annotations: { labels: { tier: 'front' } }, task: { networks: [{ target: 'net1' }], container } },
          }),
        },
        { action: 'create', kind: 'service', object: service('svc2', 'db') },
        {
          action: 'create',
          kind: 'task',
          object: task('t1', 'svc1', {
            nodeId: 'n1',
            status: { state: TaskState.RUNNING },
            annotations: { labels: { tier: 'front' } },
            spec: { networks: [{ target: 'net1' }], container },
          }),
        },
        { action: 'create', kind: 'task', object: task('t2', 'svc1', { slot: 2n, nodeId: 'n2', desiredState: TaskState.SHUTDOWN }) },
        { action: 'create', kind: 'task', object: task('t3', 'svc2') },
      ],
    });
  });
  afterAll(() => api.stop());

  it.each<[string, 'task' | 'service' | 'node', Selector[], string[]]>([
    ['id', 'task', [{ id: 't2' }], ['t2']],
    ['id prefix', 'task', [{ idPrefix: 't' }], ['t1', 't2', 't3']],
    ['name, ignoring case', 'service', [{ name: 'WEB' }], ['svc1']],
    ['name prefix', 'service', [{ namePrefix: 'd' }], ['svc2']],
    ['service', 'task', [{ serviceId: 'svc1' }], ['t1', 't2']],
    ['node', 'task', [{ nodeId: 'n2' }], ['t2']],
    ['no node (unassigned)', 'task', [{ nodeId: '' }], ['t3']],
    ['slot', 'task', [{ slot: { serviceId: 'svc1', slot: 2n } }], ['t2']],
    ['desired state', 'task', [{ desiredState: TaskState.SHUTDOWN }], ['t2']],
    ['observed task state', 'task', [{ taskState: TaskState.RUNNING }], ['t1']],
    ['node role', 'node', [{ role: NodeRole.MANAGER }], ['n1']],
    ['label key', 'service', [{ label: { key: 'tier' } }], ['svc1']],
    ['label key and value', 'task', [{ label: { key: 'tier', value: 'front' } }], ['t1']],
    ['label with another value', 'service', [{ label: { key: 'tier', value: 'back' } }], []],
    ['referenced network', 'service', [{ referencedNetworkId: 'net1' }], ['svc1']],
    ['referenced secret', 'task', [{ referencedSecretId: 'sec1' }], ['t1']],
    ['referenced config', 'service', [{ referencedConfigId: 'cfg1' }], ['svc1']],
    ['several selectors, all of which must match', 'task', [{ serviceId: 'svc1' }, { desiredState: TaskState.RUNNING }], ['t1']],
    ['no selector: every object of the kind', 'node', [], ['n1', 'n2']],
  ])('lists by %s', async (_what, kind, selectors, expectedIds) => {
    const { objects } = await client.list(kind, selectors);
    expect(objects.map((object) => object.id).sort()).toEqual(expectedIds);
  });

  it('answers the version the listing reflects', async () => {
    const { version } = await client.list('task');
    const next = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-later', 'later') }] });
    expect(next).toBe(version + 1n);
  });
});

describe('bad requests', () => {
  let api: StoreApiHarness;
  beforeAll(async () => {
    api = await startStoreApi();
  });
  afterAll(() => api.stop());

  it.each<[string, 'task' | 'network', Selector, string]>([
    ['a selector that sets no field', 'task', {}, 'sets none'],
    ['a selector that sets two fields', 'task', { id: 'a', name: 'b' }, 'sets id, name'],
    ['a slot selector without its service', 'task', { slot: { serviceId: '', slot: 1n } }, 'needs a service id'],
    ['a label selector without its key', 'task', { label: { key: '' } }, 'needs a label key'],
    ['a task state this version does not know', 'task', { desiredState: 7 as TaskState }, 'unknown task state 7'],
    ['a selector of an index the kind lacks', 'network', { serviceId: 'svc1' }, 'does not apply to network objects'],
  ])('refuses %s with INVALID_ARGUMENT', async (_what, kind, selector, message) => {
    const listing = api.client().list(kind, [selector]);
    await expect(listing).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
    await expect(listing).rejects.toThrow(message);
  });

  it('refuses an unknown kind with INVALID_ARGUMENT', async () => {
    const raw = api.rawClient();
    const get = unaryCall(raw, StoreService.get, { kind: 42 as ObjectKind, id: 'x', consistency: Consistency.LINEARIZABLE });
    await expect(get).rejects.toThrow('unknown object kind 42');
    const commit = unaryCall(raw, StoreService.commit, {
      changes: [{ action: ChangeAction.DELETE, object: undefined, target: { kind: ObjectKind.UNSPECIFIED, id: 'x', version: undefined } }],
      preconditions: [],
    });
    await expect(commit).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
  });

  it.each([
    ['a change with no object', { action: ChangeAction.CREATE, object: undefined, target: undefined }, 'carries no object'],
    ['an object holding nothing', { action: ChangeAction.CREATE, object: {}, target: undefined }, 'holds no object'],
    [
      'an object without an id',
      { action: ChangeAction.CREATE, object: { service: service('', 'nameless') }, target: undefined },
      'the service has no id',
    ],
    ['an unknown action', { action: ChangeAction.UNSPECIFIED, object: { service: service('s', 's') }, target: undefined }, 'unknown change action'],
  ])('refuses a commit with %s with INVALID_ARGUMENT and changes nothing', async (_what, change, message) => {
    const before = api.consensus.store.version;
    const commit = unaryCall(api.rawClient(), StoreService.commit, { changes: [change], preconditions: [] });
    await expect(commit).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
    await expect(commit).rejects.toThrow(message);
    expect(api.consensus.store.version).toBe(before);
  });

  it('refuses a commit with no changes', async () => {
    await expect(api.client().commit({ changes: [] })).rejects.toThrow('at least one change');
  });
});

describe('replication through consensus', () => {
  it('fails a transaction that went stale while it was being replicated with CONFLICT, and applies nothing of it', async () => {
    const consensus = new GatedConsensus();
    await using api = await startStoreApi({ consensus });
    const client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'service', object: service('race-svc', 'race') }] });
    const read = await client.get('service', 'race-svc');

    consensus.proposalGate = new Gate();
    const labelledBy = (by: string) => ({ ...read, spec: { ...read.spec!, annotations: { ...read.spec!.annotations!, labels: { by } } } });
    const first = client.commit({ changes: [{ action: 'update', kind: 'service', object: labelledBy('first') }] });
    const second = client.commit({
      changes: [
        { action: 'create', kind: 'task', object: task('race-task', 'race-svc') },
        { action: 'update', kind: 'service', object: labelledBy('second') },
      ],
    });
    // Both were checked against the same state and proposed before either was applied.
    await expect.poll(() => consensus.proposals.length).toBe(3);
    const secondOutcome = second.catch((err: unknown) => err);
    consensus.proposalGate.open();

    const committed = await first;
    const refusal = await secondOutcome;
    expect(refusal).toSatisfy(withCode(ErrorCode.Conflict));
    const expected = `update out of sequence: service race-svc has version ${committed}, write expected ${read.meta?.version?.index}`;
    expect(refusal).toHaveProperty('message', expected);
    expect((await client.get('service', 'race-svc')).spec?.annotations?.labels).toEqual({ by: 'first' });
    await expect(client.get('task', 'race-task')).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });

  it("stamps every transaction with the leader's time from consensus, not the serving replica's clock", async () => {
    const leaderTime = new Date('2030-05-01T12:00:00Z');
    const consensus = new GatedConsensus({ clock: () => new Date('2020-01-01T00:00:00Z') });
    consensus.now = () => leaderTime;
    await using api = await startStoreApi({ consensus });
    await api.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('clock-net', 'clock') }] });
    expect(consensus.proposals.map((proposal) => proposal.proposedAt)).toEqual([leaderTime]);
    expect((await api.client().get('network', 'clock-net')).meta?.createdAt).toEqual(leaderTime);
  });
});
