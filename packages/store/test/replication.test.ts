import { ErrorCode } from '@shoal/errors';
import { ChangeAction, StoreSnapshot, StoreTransaction, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { byServiceId, fromStoreTransaction, MemoryStore, toStoreTransaction, type Transaction } from '../src/index.js';
import { drain, failure, lease, service, summary, take, task, testOptions } from './fixtures.js';

function rename(store: MemoryStore, id: string, name: string): Transaction {
  return store.prepare((tx) => {
    const current = tx.get('service', id);
    if (current === undefined) throw new Error(`missing service ${id}`);
    tx.update('service', service(id, name, { meta: current.meta }));
  });
}

/** A leader and a follower holding the same two services, applied at raft index 10. */
function leaderAndFollower(): { leader: MemoryStore; follower: MemoryStore } {
  const leader = new MemoryStore(testOptions());
  const follower = new MemoryStore(testOptions());
  const seed = leader.prepare((tx) => {
    tx.create('service', service('s1', 'web'));
    tx.create('service', service('s2', 'api'));
  });
  leader.apply(seed, 10n);
  follower.apply(seed, 10n);
  return { leader, follower };
}

describe('prepare and apply', () => {
  it('builds a transaction without committing it or telling watchers', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch();
    const transaction = store.prepare((tx) => tx.create('task', task('t1', 's1')));
    expect(transaction.changes).toEqual([{ action: 'create', kind: 'task', object: expect.objectContaining({ id: 't1' }) }]);
    expect(transaction.proposedAt.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(store.version).toBe(0n);
    expect(await drain(watch)).toEqual([]);
  });

  it('records the version read for updates and deletes, and read-only preconditions', () => {
    const { leader } = leaderAndFollower();
    const transaction = leader.prepare((tx) => {
      tx.expectVersion('service', 's1', 10n);
      const s2 = tx.get('service', 's2');
      if (s2 === undefined) throw new Error('missing service');
      tx.update('service', { ...s2 });
      tx.delete('service', 's1', 10n);
    });
    expect(transaction.preconditions).toEqual([{ kind: 'service', id: 's1', version: 10n }]);
    const versionsRead = transaction.changes.map((change) =>
      change.action === 'delete' ? change : [change.action, change.object.meta?.version?.index],
    );
    expect(versionsRead).toEqual([
      ['update', 10n],
      { action: 'delete', kind: 'service', id: 's1', version: 10n },
    ]);
  });

  it('commits at the version given, stamping the proposal time, the same on every replica', async () => {
    const { leader, follower } = leaderAndFollower();
    const watch = follower.watch();
    const transaction = leader.prepare((tx) => tx.create('task', task('t1', 's1')));
    leader.apply(transaction, 12n);
    follower.apply(transaction, 12n);
    expect(follower.version).toBe(12n);
    expect(follower.snapshot()).toEqual(leader.snapshot());
    const t1 = follower.view((tx) => tx.get('task', 't1'));
    expect(t1?.meta?.version?.index).toBe(12n);
    expect(t1?.meta?.createdAt).toEqual(transaction.proposedAt);
    expect((await drain(watch)).map((commit) => [commit.version, ...summary(commit)])).toEqual([[12n, 'create task t1']]);
  });

  it('rejects a transaction that went stale after it was prepared with the update conflict, changing nothing', () => {
    const { leader, follower } = leaderAndFollower();
    const first = rename(leader, 's1', 'www');
    const second = rename(leader, 's1', 'site');
    follower.apply(first, 11n);
    expect(failure(() => follower.apply(second, 12n))).toEqual({
      code: ErrorCode.Conflict,
      message: 'update out of sequence: service s1 has version 11, write expected 10',
    });
    expect(follower.version).toBe(11n);
    expect(follower.view((tx) => tx.get('service', 's1')?.spec?.annotations?.name)).toBe('www');
  });

  it('rejects a create whose name was taken after it was prepared', () => {
    const { leader, follower } = leaderAndFollower();
    const first = leader.prepare((tx) => tx.create('service', service('s3', 'db')));
    const second = leader.prepare((tx) => tx.create('service', service('s4', 'DB')));
    follower.apply(first, 11n);
    expect(failure(() => follower.apply(second, 12n))).toEqual({
      code: ErrorCode.NameConflict,
      message: 'create failed: service name "DB" is already taken by service s3',
    });
  });

  it('applies two objects swapping names, which the transaction lists in first-write order', () => {
    const { leader, follower } = leaderAndFollower();
    const swap = leader.prepare((tx) => {
      const [s1, s2] = [tx.get('service', 's1'), tx.get('service', 's2')];
      if (s1 === undefined || s2 === undefined) throw new Error('missing service');
      tx.update('service', service('s1', 'temporary', { meta: s1.meta }));
      tx.update('service', service('s2', 'web', { meta: s2.meta }));
      tx.update('service', service('s1', 'api', { meta: s1.meta }));
    });
    follower.apply(swap, 11n);
    expect(follower.view((tx) => tx.list('service').map((s) => `${s.id}=${s.spec?.annotations?.name}`).sort())).toEqual([
      's1=api',
      's2=web',
    ]);
  });

  it('refuses a version that is not above the store version', () => {
    const { leader, follower } = leaderAndFollower();
    const transaction = leader.prepare((tx) => tx.create('task', task('t1', 's1')));
    expect(failure(() => follower.apply(transaction, 10n))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'cannot apply a transaction at version 10: the store is already at version 10',
    });
  });

  it('judges lease expiry by the proposal time, not the replica clock', () => {
    const follower = new MemoryStore({ clock: () => new Date('2099-01-01T00:00:00Z') });
    const expiry = new Date('2025-01-01T00:01:00Z');
    const proposedAt = new Date('2025-01-01T00:00:30Z');
    const grant: Transaction = {
      changes: [{ action: 'create', kind: 'lease', object: lease('l1', 'scheduler', 1n, expiry) }],
      preconditions: [],
      proposedAt,
    };
    const fenced: Transaction = {
      changes: [{ action: 'create', kind: 'task', object: task('t1', 's1') }],
      preconditions: [{ kind: 'lease', id: 'l1', leaseEpoch: 1n }],
      proposedAt,
    };
    follower.apply(grant, 1n);
    follower.apply(fenced, 2n);
    expect(follower.view((tx) => tx.get('task', 't1'))?.meta?.version?.index).toBe(2n);
  });

  it('deletes whatever version is stored when a delete names no version', () => {
    const { follower } = leaderAndFollower();
    follower.apply({ changes: [{ action: 'delete', kind: 'service', id: 's1' }], preconditions: [], proposedAt: new Date() }, 11n);
    expect(follower.view((tx) => tx.get('service', 's1'))).toBeUndefined();
  });

  it('moves to the version of a transaction that changes nothing, without a commit to watch', async () => {
    const { follower } = leaderAndFollower();
    const watch = follower.watch();
    follower.apply({ changes: [], preconditions: [{ kind: 'service', id: 's1', version: 10n }], proposedAt: new Date() }, 15n);
    expect(follower.version).toBe(15n);
    expect(await drain(watch)).toEqual([]);
  });
});

describe('snapshots', () => {
  it('restores every object, version and index from an encoded snapshot', () => {
    const store = new MemoryStore(testOptions());
    store.update((tx) => {
      tx.create('service', service('s1', 'web'));
      tx.create('task', task('t1', 's1', { desiredState: TaskState.RUNNING }));
      tx.create('task', task('t2', 's1', { slot: 2n }));
      tx.create('lease', lease('l1', 'orchestrator', 4n, new Date('2025-01-01T00:00:00Z')));
    });
    const wire = StoreSnapshot.encode(store.snapshot()).finish();
    const restored = MemoryStore.fromSnapshot(StoreSnapshot.decode(wire));
    expect(restored.version).toBe(1n);
    expect(restored.snapshot()).toEqual(store.snapshot());
    expect(restored.view((tx) => tx.find('task', byServiceId('s1')).map((t) => t.id).sort())).toEqual(['t1', 't2']);
    expect(failure(() => restored.update((tx) => tx.create('service', service('s9', 'WEB')))).code).toBe(ErrorCode.NameConflict);
  });

  it('continues versions after a restored snapshot', () => {
    const restored = MemoryStore.fromSnapshot(StoreSnapshot.fromPartial({ version: { index: 41n } }), testOptions());
    restored.update((tx) => tx.create('task', task('t1', 's1')));
    expect(restored.view((tx) => tx.get('task', 't1'))?.meta?.version?.index).toBe(42n);
  });

  it('rejects a snapshot holding an id twice or a unique name twice, keeping its state', () => {
    const store = new MemoryStore(testOptions());
    store.update((tx) => tx.create('task', task('t1', 's1')));
    const twice = StoreSnapshot.fromPartial({ version: { index: 5n }, tasks: [task('t2', 's1'), task('t2', 's1')] });
    const sameName = StoreSnapshot.fromPartial({ version: { index: 5n }, services: [service('s1', 'web'), service('s2', 'Web')] });
    expect(failure(() => store.restore(twice))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'snapshot holds task t2 twice',
    });
    expect(failure(() => store.restore(sameName))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'snapshot holds 2 service objects named "web"',
    });
    expect([store.version, store.view((tx) => tx.list('task').map((t) => t.id))]).toEqual([1n, ['t1']]);
  });
});

describe('the raft entry format', () => {
  it('carries a transaction through protobuf and applies it the same', () => {
    const { leader, follower } = leaderAndFollower();
    const grant = leader.prepare((tx) => tx.create('lease', lease('l1', 'orchestrator', 2n, new Date('2030-01-01T00:00:00Z'))));
    leader.apply(grant, 11n);
    follower.apply(grant, 11n);
    const transaction = leader.prepare((tx) => {
      tx.expectLeaseEpoch('l1', 2n);
      tx.expectVersion('service', 's2', 10n);
      tx.create('task', task('t1', 's1'));
      const s1 = tx.get('service', 's1');
      if (s1 === undefined) throw new Error('missing service');
      tx.update('service', { ...s1 });
      tx.delete('service', 's1', 10n);
      tx.create('service', service('s1', 'web2'));
    });
    const entry = StoreTransaction.decode(StoreTransaction.encode(toStoreTransaction(transaction, 77n)).finish());
    expect(entry.requestId).toBe(77n);
    expect(fromStoreTransaction(entry)).toEqual(transaction);
    leader.apply(transaction, 12n);
    follower.apply(fromStoreTransaction(entry), 12n);
    expect(follower.snapshot()).toEqual(leader.snapshot());
  });

  it('rejects malformed entries as invalid arguments', () => {
    const base = { requestId: 1n, preconditions: [], proposedAt: new Date() };
    const malformed: StoreTransaction[] = [
      { ...base, changes: [{ action: ChangeAction.CREATE, object: undefined, target: undefined }] },
      { ...base, changes: [{ action: ChangeAction.DELETE, object: undefined, target: undefined }] },
      { ...base, changes: [{ action: ChangeAction.UNSPECIFIED, object: undefined, target: undefined }] },
      { ...base, changes: [], preconditions: [{ kind: 3, id: 't1' }] },
      { ...base, changes: [], preconditions: [{ kind: 3, id: 't1', leaseEpoch: 1n }] },
      { ...base, changes: [], proposedAt: undefined },
    ];
    const codes = malformed.map((entry) => failure(() => fromStoreTransaction(entry)).code);
    expect(codes).toEqual(malformed.map(() => ErrorCode.InvalidArgument));
  });
});

describe('mirror', () => {
  it('keeps a cache restored from a snapshot identical to its source, versions and timestamps included', async () => {
    const source = new MemoryStore(testOptions());
    source.update((tx) => tx.create('service', service('s1', 'web')));
    const cache = MemoryStore.fromSnapshot(source.snapshot());
    const watch = source.watch({ fromVersion: source.version });
    source.update((tx) => {
      tx.create('task', task('t1', 's1'));
      tx.create('task', task('t2', 's1'));
    });
    source.update((tx) => tx.update('service', service('s1', 'web-renamed', { meta: tx.get('service', 's1')?.meta })));
    source.update((tx) => tx.delete('task', 't2', tx.get('task', 't2')?.meta?.version?.index ?? 0n));
    for (const commit of await take(watch, 3)) cache.mirror(commit);
    expect(cache.version).toBe(source.version);
    expect(StoreSnapshot.toJSON(cache.snapshot())).toEqual(StoreSnapshot.toJSON(source.snapshot()));
  });

  it('refuses a commit that does not follow on from the cache, changing nothing', () => {
    const source = new MemoryStore(testOptions());
    const cache = MemoryStore.fromSnapshot(source.snapshot());
    source.update((tx) => tx.create('service', service('s1', 'web')));
    const updated = source.update((tx) => {
      tx.update('service', service('s1', 'api', { meta: tx.get('service', 's1')?.meta }));
      return tx.get('service', 's1');
    });
    expect(() => cache.mirror({ version: source.version, events: [{ kind: 'service', action: 'update', object: updated! }] })).toThrow();
    expect(cache.version).toBe(0n);
  });
});
