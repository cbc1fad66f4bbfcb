import { ErrorCode } from '@shoal/errors';
import { TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { byNodeId, byServiceId, MemoryStore } from '../src/index.js';
import { describeError, drain, failure, service, summary, take, task, testOptions } from './fixtures.js';

function moveTask(store: MemoryStore, id: string, nodeId: string): void {
  store.update((tx) => {
    const current = tx.get('task', id);
    if (current === undefined) throw new Error(`missing task ${id}`);
    tx.update('task', { ...current, nodeId });
  });
}

describe('watching the store', () => {
  it('delivers one commit per transaction with its version, new and old objects', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch();
    store.update((tx) => tx.create('task', task('t1', 's1', { nodeId: 'n1' })));
    moveTask(store, 't1', 'n2');
    store.update((tx) => tx.delete('task', 't1', 2n));
    const [created, updated, deleted] = await take(watch, 3);
    watch.close();
    expect([created?.version, updated?.version, deleted?.version]).toEqual([1n, 2n, 3n]);
    expect(created?.events).toEqual([{ kind: 'task', action: 'create', object: expect.objectContaining({ nodeId: 'n1' }) }]);
    expect(updated?.events[0]?.object).toMatchObject({ nodeId: 'n2' });
    expect(updated?.events[0]?.old).toMatchObject({ nodeId: 'n1' });
    expect(deleted?.events).toEqual([{ kind: 'task', action: 'delete', object: expect.objectContaining({ id: 't1', nodeId: 'n2' }) }]);
  });

  it('filters by kind, action and selectors, matching an update by its new or its old object', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch({ filters: [{ kind: 'task', actions: ['update'], selectors: [byNodeId('n1')] }] });
    store.update((tx) => {
      tx.create('service', service('s1', 'web'));
      tx.create('task', task('t1', 's1', { nodeId: 'n1' }));
      tx.create('task', task('t2', 's1', { nodeId: 'n3' }));
    });
    moveTask(store, 't2', 'n2');
    moveTask(store, 't1', 'n2');
    moveTask(store, 't2', 'n1');
    const commits = await drain(watch);
    expect(commits.map((c) => [c.version, ...summary(c)])).toEqual([
      [3n, 'update task t1'],
      [4n, 'update task t2'],
    ]);
  });

  it('passes an event that any one of several filters passes, and only the matching events of a commit', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch({
      filters: [
        { kind: 'service', actions: ['create'] },
        { kind: 'task', selectors: [byServiceId('s2')] },
      ],
    });
    store.update((tx) => {
      tx.create('service', service('s1', 'web'));
      tx.create('task', task('t1', 's1'));
      tx.create('task', task('t2', 's2'));
    });
    const [commit] = await drain(watch);
    expect(commit === undefined ? [] : summary(commit)).toEqual(['create service s1', 'create task t2']);
  });

  it('rejects filters that name an unknown kind or action or a selector the kind lacks', () => {
    const store = new MemoryStore(testOptions());
    const malformed = [
      [{ kind: 'volume' }],
      [{ kind: 'task', actions: ['remove'] }],
      [{ kind: 'node', selectors: [byServiceId('s1')] }],
    ];
    const codes = malformed.map((filters) => failure(() => store.watch({ filters } as never)).code);
    expect(codes).toEqual(malformed.map(() => ErrorCode.InvalidArgument));
  });

  it('takes a snapshot and subscribes atomically, so the watch holds exactly the later commits', async () => {
    const store = new MemoryStore(testOptions());
    store.update((tx) => tx.create('task', task('t1', 's1')));
    const { result, version, watch } = store.viewAndWatch((tx) => tx.list('task').map((t) => t.id));
    store.update((tx) => tx.create('task', task('t2', 's1')));
    const commits = await drain(watch);
    expect([result, version]).toEqual([['t1'], 1n]);
    expect(commits.map(summary)).toEqual([['create task t2']]);
  });

  it('closes the watch of a viewAndWatch whose read throws', () => {
    const store = new MemoryStore(testOptions());
    const failure = new Error('bad read');
    expect(() =>
      store.viewAndWatch(() => {
        throw failure;
      }),
    ).toThrow(failure);
    store.update((tx) => tx.create('task', task('t1', 's1')));
    expect(store.viewAndWatch(() => 0).version).toBe(1n);
  });

  it('replays the retained commits after a version, then continues live', async () => {
    const store = new MemoryStore(testOptions());
    for (const id of ['t1', 't2', 't3']) store.update((tx) => tx.create('task', task(id, 's1')));
    const watch = store.watch({ fromVersion: 1n });
    store.update((tx) => tx.create('task', task('t4', 's1')));
    const commits = await drain(watch);
    expect(commits.map((c) => c.version)).toEqual([2n, 3n, 4n]);
  });

  it('refuses to watch from a version whose changes were compacted, saying how far', () => {
    const store = new MemoryStore(testOptions({ retainedCommits: 2 }));
    for (const id of ['t1', 't2', 't3', 't4', 't5']) store.update((tx) => tx.create('task', task(id, 's1')));
    expect(failure(() => store.watch({ fromVersion: 2n }))).toEqual({
      code: ErrorCode.Compacted,
      message: 'cannot watch from version 2: changes up to version 3 were compacted; resync from a snapshot',
    });
    store.watch({ fromVersion: 3n }).close();
  });

  it('watches from a version the store has not reached yet by waiting for it', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch({ fromVersion: 1n });
    store.update((tx) => tx.create('task', task('t1', 's1')));
    store.update((tx) => tx.create('task', task('t2', 's1')));
    expect((await drain(watch)).map((c) => c.version)).toEqual([2n]);
  });

  it('ends a watch that falls too far behind with RESOURCE_EXHAUSTED, after what it had queued', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch({ maxQueuedCommits: 2 });
    for (const id of ['t1', 't2', 't3', 't4']) store.update((tx) => tx.create('task', task(id, 's1')));
    const received: bigint[] = [];
    const error = await (async () => {
      for await (const commit of watch) received.push(commit.version);
    })().catch((caught: unknown) => caught);
    expect(received).toEqual([1n, 2n]);
    expect(describeError(error)).toEqual({
      code: ErrorCode.ResourceExhausted,
      message: 'watch ended: 2 commits were waiting to be read (maxQueuedCommits); watch again from the last version read',
    });
  });

  it('ends the iteration quietly when the signal aborts, including a read already waiting', async () => {
    const store = new MemoryStore(testOptions());
    const controller = new AbortController();
    const watch = store.watch({ signal: controller.signal });
    const waiting = watch.next();
    controller.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    store.update((tx) => tx.create('task', task('t1', 's1')));
    expect(await watch.next()).toEqual({ done: true, value: undefined });
  });

  it('starts a watch whose signal has already aborted as ended', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch({ signal: AbortSignal.abort() });
    store.update((tx) => tx.create('task', task('t1', 's1')));
    expect(await watch.next()).toEqual({ done: true, value: undefined });
  });

  it('ends a watch when its for-await loop breaks', async () => {
    const store = new MemoryStore(testOptions());
    const watch = store.watch();
    store.update((tx) => tx.create('task', task('t1', 's1')));
    store.update((tx) => tx.create('task', task('t2', 's1')));
    for await (const commit of watch) {
      expect(commit.version).toBe(1n);
      break;
    }
    expect(await watch.next()).toEqual({ done: true, value: undefined });
  });

  it('fails every open watch with COMPACTED when the store is restored from a snapshot', async () => {
    const store = new MemoryStore(testOptions());
    store.update((tx) => tx.create('task', task('t1', 's1')));
    const snapshot = store.snapshot();
    const watch = store.watch();
    store.update((tx) => tx.create('task', task('t2', 's1', { desiredState: TaskState.SHUTDOWN })));
    store.restore(snapshot);
    await expect(take(watch, 1)).resolves.toHaveLength(1);
    const error = await watch.next().catch((caught: unknown) => caught);
    expect(describeError(error)).toEqual({
      code: ErrorCode.Compacted,
      message: 'the store was restored from a snapshot at version 1; resync from a snapshot',
    });
  });
});
