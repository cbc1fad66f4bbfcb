import { ErrorCode } from '@shoal/errors';
import { TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { MemoryStore, versionOf, type Commit } from '../src/index.js';
import { drain, failure, lease, network, node, secret, service, task, testOptions } from './fixtures.js';

function storeWith(...services: ReturnType<typeof service>[]): MemoryStore {
  const store = new MemoryStore(testOptions());
  store.update((tx) => services.forEach((s) => tx.create('service', s)));
  return store;
}

describe('MemoryStore transactions', () => {
  it('gives each commit the next version and stamps it, with the proposal time, on every object written', () => {
    const store = new MemoryStore(testOptions());
    expect(store.version).toBe(0n);
    store.update((tx) => {
      tx.create('service', service('s1', 'web'));
      tx.create('task', task('t1', 's1'));
    });
    expect(store.version).toBe(1n);
    const created = store.view((tx) => tx.get('task', 't1'));
    expect(created?.meta?.version?.index).toBe(1n);
    expect(created?.meta?.createdAt?.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(created?.meta?.updatedAt).toEqual(created?.meta?.createdAt);

    store.update((tx) => {
      const current = tx.get('task', 't1');
      if (current === undefined) throw new Error('task vanished');
      tx.update('task', { ...current, desiredState: TaskState.SHUTDOWN });
    });
    const updated = store.view((tx) => tx.get('task', 't1'));
    expect(store.version).toBe(2n);
    expect(updated?.meta?.version?.index).toBe(2n);
    expect(updated?.meta?.createdAt?.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(updated?.meta?.updatedAt?.toISOString()).toBe('2025-01-01T00:00:01.000Z');
    expect(store.view((tx) => tx.get('service', 's1'))?.meta?.version?.index).toBe(1n);
  });

  it('rejects a stale update with a conflict naming the object and both versions', () => {
    const store = storeWith(service('s1', 'web'));
    const readEarly = store.view((tx) => tx.get('service', 's1'));
    if (readEarly === undefined) throw new Error('missing service');
    store.update((tx) => tx.update('service', service('s1', 'web', { meta: readEarly.meta })));
    expect(failure(() => store.update((tx) => tx.update('service', service('s1', 'web2', { meta: readEarly.meta }))))).toEqual({
      code: ErrorCode.Conflict,
      message: 'update out of sequence: service s1 has version 2, write expected 1',
    });
    expect(store.view((tx) => tx.get('service', 's1'))?.spec?.annotations?.name).toBe('web');
  });

  it('rejects a stale delete with a conflict naming the object', () => {
    const store = storeWith(service('s1', 'web'));
    expect(failure(() => store.update((tx) => tx.delete('service', 's1', 7n)))).toEqual({
      code: ErrorCode.Conflict,
      message: 'delete out of sequence: service s1 has version 1, write expected 7',
    });
  });

  it('rejects creating an id that exists with ALREADY_EXISTS naming it', () => {
    const store = storeWith(service('s1', 'web'));
    expect(failure(() => store.update((tx) => tx.create('service', service('s1', 'api'))))).toEqual({
      code: ErrorCode.AlreadyExists,
      message: 'create failed: service s1 already exists',
    });
  });

  it('rejects writing a missing object with NOT_FOUND naming it', () => {
    const store = new MemoryStore(testOptions());
    expect(failure(() => store.update((tx) => tx.update('task', task('t9', 's1'))))).toEqual({
      code: ErrorCode.NotFound,
      message: 'update failed: task t9 does not exist',
    });
    expect(failure(() => store.update((tx) => tx.delete('task', 't9', 1n)))).toEqual({
      code: ErrorCode.NotFound,
      message: 'delete failed: task t9 does not exist',
    });
  });

  it('rejects a name another object of the kind has, ignoring case, with NAME_CONFLICT naming the holder', () => {
    const store = storeWith(service('s1', 'web'));
    expect(failure(() => store.update((tx) => tx.create('service', service('s2', 'WEB'))))).toEqual({
      code: ErrorCode.NameConflict,
      message: 'create failed: service name "WEB" is already taken by service s1',
    });
  });

  it('lets objects of different kinds, nodes, tasks and nameless objects share names', () => {
    const store = storeWith(service('s1', 'web'));
    store.update((tx) => {
      tx.create('network', network('n1', 'web'));
      tx.create('node', node('h1', 'host'));
      tx.create('node', node('h2', 'HOST'));
      tx.create('task', task('t1', 's1', { annotations: { name: 'same' } }));
      tx.create('task', task('t2', 's1', { annotations: { name: 'same' } }));
      tx.create('service', service('s2', ''));
      tx.create('service', service('s3', ''));
    });
    expect(store.view((tx) => tx.list('node')).length).toBe(2);
    expect(store.view((tx) => tx.list('service')).length).toBe(3);
  });

  it('frees a name within the transaction that renames or deletes its holder', () => {
    const store = storeWith(service('s1', 'web'), service('s2', 'api'));
    store.update((tx) => {
      const s1 = tx.get('service', 's1');
      if (s1 === undefined) throw new Error('missing service');
      tx.update('service', service('s1', 'web-old', { meta: s1.meta }));
      tx.create('service', service('s3', 'web'));
      tx.delete('service', 's2', 1n);
      tx.create('service', service('s4', 'API'));
    });
    expect(store.view((tx) => tx.list('service').map((s) => s.spec?.annotations?.name).sort())).toEqual(['API', 'web', 'web-old']);
  });

  it('commits nothing and tells no watcher anything when the callback throws after writing', async () => {
    const store = storeWith(service('s1', 'web'));
    const watch = store.watch();
    const failure = new Error('changed my mind');
    expect(() =>
      store.update((tx) => {
        tx.create('task', task('t1', 's1'));
        tx.delete('service', 's1', 1n);
        throw failure;
      }),
    ).toThrow(failure);
    expect(store.version).toBe(1n);
    expect(store.view((tx) => [tx.get('task', 't1'), tx.get('service', 's1')?.id])).toEqual([undefined, 's1']);
    expect(await drain(watch)).toEqual([]);
  });

  it('lets a transaction read its own writes, through indexes too', () => {
    const store = storeWith(service('s1', 'web'));
    const seen = store.update((tx) => {
      tx.create('task', task('t1', 's1'));
      const t1 = tx.get('task', 't1');
      if (t1 === undefined) throw new Error('own write invisible');
      tx.update('task', { ...t1, nodeId: 'n1' });
      return { byId: tx.get('task', 't1')?.nodeId, count: tx.list('task').length };
    });
    expect(seen).toEqual({ byId: 'n1', count: 1 });
  });

  it('commits only the net change of each object, in the order first written', async () => {
    const store = storeWith(service('s1', 'web'), service('s2', 'api'));
    const watch = store.watch();
    store.update((tx) => {
      const s2 = tx.get('service', 's2');
      if (s2 === undefined) throw new Error('missing service');
      tx.update('service', { ...s2, spec: { ...s2.spec, annotations: { name: 'api2', labels: {}, indices: [] } } } as typeof s2);
      tx.create('task', task('t1', 's1'));
      const t1 = tx.get('task', 't1');
      if (t1 === undefined) throw new Error('missing task');
      tx.update('task', { ...t1, nodeId: 'n1' });
      tx.create('task', task('t2', 's1'));
      tx.delete('task', 't2', 0n);
      tx.delete('service', 's1', 1n);
      tx.create('service', service('s1', 'web'));
    });
    const [commit] = await drain(watch);
    expect(commit?.events.map((e) => `${e.action} ${e.kind} ${e.object.id}`)).toEqual([
      'update service s2',
      'create task t1',
      'delete service s1',
      'create service s1',
    ]);
    expect(commit?.events[1]?.object).toMatchObject({ nodeId: 'n1' });
  });

  it('hands out deeply frozen objects and freezes what it is given', () => {
    const store = storeWith(service('s1', 'web'));
    const written = task('t1', 's1', { annotations: { name: 'x', labels: { a: 'b' } } });
    store.update((tx) => tx.create('task', written));
    const stored = store.view((tx) => tx.get('task', 't1'));
    expect(Object.isFrozen(written.annotations?.labels)).toBe(true);
    expect(() => {
      (stored as { nodeId: string }).nodeId = 'elsewhere';
    }).toThrow(TypeError);
    expect(Object.isFrozen(stored?.meta?.version)).toBe(true);
  });

  it('keeps a secret whose data cannot be frozen', () => {
    const store = new MemoryStore(testOptions());
    store.update((tx) => tx.create('secret', secret('x1', 'db-pass')));
    expect(store.view((tx) => tx.get('secret', 'x1'))?.spec?.data).toEqual(Buffer.from([1, 2, 3]));
  });

  it('keeps a snapshot consistent while later transactions commit', async () => {
    const store = storeWith(service('s1', 'web'));
    const later = store.view(async (tx) => {
      await new Promise((resolve) => setImmediate(resolve));
      return { version: tx.version, services: tx.list('service').map((s) => s.id) };
    });
    store.update((tx) => tx.create('service', service('s2', 'api')));
    expect(await later).toEqual({ version: 1n, services: ['s1'] });
  });

  it('holds the writer to its read-only preconditions', () => {
    const store = storeWith(service('s1', 'web'));
    store.update((tx) => {
      tx.expectVersion('service', 's1', 1n);
      tx.create('task', task('t1', 's1'));
    });
    expect(failure(() => store.update((tx) => tx.expectVersion('service', 's1', 0n)))).toEqual({
      code: ErrorCode.Conflict,
      message: 'precondition failed: service s1 has version 1, transaction expected 0',
    });
    expect(failure(() => store.update((tx) => tx.expectVersion('service', 'nope', 1n)))).toEqual({
      code: ErrorCode.NotFound,
      message: 'precondition failed: service nope does not exist',
    });
  });

  it('fences writes with a lease epoch that must be current and unexpired', () => {
    const clock = () => new Date('2025-01-01T00:00:10Z');
    const store = new MemoryStore({ clock });
    store.update((tx) => tx.create('lease', lease('l1', 'orchestrator', 3n, new Date('2025-01-01T00:00:20Z'))));
    store.update((tx) => tx.expectLeaseEpoch('l1', 3n));
    expect(failure(() => store.update((tx) => tx.expectLeaseEpoch('l1', 2n)))).toEqual({
      code: ErrorCode.Conflict,
      message: 'precondition failed: lease l1 (orchestrator) is at epoch 3, transaction expected 2',
    });

    const expiredStore = new MemoryStore({ clock: () => new Date('2025-01-01T00:00:30Z') });
    expiredStore.update((tx) => tx.create('lease', lease('l1', 'orchestrator', 3n, new Date('2025-01-01T00:00:20Z'))));
    expect(failure(() => expiredStore.update((tx) => tx.expectLeaseEpoch('l1', 3n)))).toEqual({
      code: ErrorCode.Conflict,
      message: 'precondition failed: lease l1 (orchestrator) at epoch 3 expired at 2025-01-01T00:00:20.000Z',
    });
  });

  it('does not commit a transaction that changes nothing', () => {
    const store = storeWith(service('s1', 'web'));
    store.update((tx) => {
      tx.create('task', task('t1', 's1'));
      tx.delete('task', 't1', versionOf(tx.get('task', 't1') ?? task('t1', 's1')));
    });
    expect(store.version).toBe(1n);
  });

  it('refuses an async write callback, which would hold the transaction open across an await', () => {
    const store = new MemoryStore(testOptions());
    expect(failure(() => store.update(async (tx) => tx.create('service', service('s1', 'web'))))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'a write callback must be synchronous: a transaction cannot stay open across an await',
    });
    expect(store.version).toBe(0n);
  });

  it('refuses a write through a tx kept after its transaction ended', () => {
    const store = new MemoryStore(testOptions());
    let kept: Parameters<Parameters<MemoryStore['update']>[0]>[0] | undefined;
    store.update((tx) => {
      kept = tx;
    });
    expect(failure(() => kept?.create('service', service('s1', 'web'))).code).toBe(ErrorCode.FailedPrecondition);
    expect(store.view((tx) => tx.list('service'))).toEqual([]);
  });

  it('refuses to nest a write inside another', () => {
    const store = new MemoryStore(testOptions());
    const nested = () => store.update(() => store.update((tx) => tx.create('service', service('s1', 'web'))));
    expect(failure(nested).code).toBe(ErrorCode.FailedPrecondition);
    expect(store.version).toBe(0n);
  });

  it('rejects unknown kinds and objects without an id as invalid arguments', () => {
    const store = new MemoryStore(testOptions());
    expect(failure(() => store.view((tx) => tx.get('volume' as never, 'v1')))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'unknown object kind "volume"',
    });
    expect(failure(() => store.update((tx) => tx.create('service', service('', 'web'))))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'create failed: the service has no id',
    });
  });

  it('delivers events whose objects carry their committed meta', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch();
    store.update((tx) => tx.create('service', service('s1', 'web')));
    const [commit] = (await drain(watch)) as [Commit];
    expect(commit.events[0]?.object.meta?.version?.index).toBe(1n);
    expect(commit.events[0]?.object).toBe(store.view((tx) => tx.get('service', 's1')));
  });
});
