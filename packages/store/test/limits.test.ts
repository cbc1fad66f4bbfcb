import { ErrorCode } from '@shoal/errors';
import { Task } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { MemoryStore, type WriteTx } from '../src/index.js';
import { describeError, drain, failure, service, summary, task, testOptions } from './fixtures.js';

const createTask = (id: string) => (tx: WriteTx) => tx.create('task', task(id, 's1'));

describe('transaction limits', () => {
  it('rejects a transaction with more changes than maxChangesPerTransaction, naming the limit', () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 3 }));
    store.update((tx) => ['t1', 't2', 't3'].forEach((id) => createTask(id)(tx)));
    expect(failure(() => store.update((tx) => ['t4', 't5', 't6', 't7'].forEach((id) => createTask(id)(tx))))).toEqual({
      code: ErrorCode.ResourceExhausted,
      message: 'transaction has 4 changes, more than maxChangesPerTransaction (3); split the write with MemoryStore.batch',
    });
    expect(store.view((tx) => tx.list('task').length)).toBe(3);
  });

  it('counts the net changes, so rewriting one object many times is one change', () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 1 }));
    store.update((tx) => {
      createTask('t1')(tx);
      for (const nodeId of ['n1', 'n2', 'n3']) {
        const current = tx.get('task', 't1');
        if (current === undefined) throw new Error('missing task');
        tx.update('task', { ...current, nodeId });
      }
    });
    expect(store.view((tx) => tx.get('task', 't1')?.nodeId)).toBe('n3');
  });

  it('rejects a transaction whose encoded objects exceed maxTransactionBytes, naming the limit', () => {
    const big = task('t1', 's1', { spec: { container: { image: 'x'.repeat(300) } } });
    const size = Task.encode(big).finish().length;
    const store = new MemoryStore(testOptions({ maxTransactionBytes: size }));
    store.update((tx) => tx.create('task', big));
    const bigger = task('t2', 's1', { spec: { container: { image: 'x'.repeat(301) } } });
    expect(failure(() => store.update((tx) => tx.create('task', bigger)))).toEqual({
      code: ErrorCode.ResourceExhausted,
      message:
        `transaction writes ${size + 1} bytes of objects, more than maxTransactionBytes (${size}); ` +
        'split the write with MemoryStore.batch',
    });
  });

  it('checks the limits in prepare too', () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 1 }));
    expect(failure(() => store.prepare((tx) => ['t1', 't2'].forEach((id) => createTask(id)(tx)))).code).toBe(ErrorCode.ResourceExhausted);
  });
});

describe('MemoryStore.batch', () => {
  it('splits a large write into transactions of at most maxChangesPerTransaction changes', async () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 3 }));
    const watch = store.watch();
    const versions = store.batch((batch) => {
      for (let i = 1; i <= 7; i++) batch.update(createTask(`t${i}`));
    });
    expect(versions).toEqual([1n, 2n, 3n]);
    expect((await drain(watch)).map((commit) => commit.events.length)).toEqual([3, 3, 1]);
    expect(store.view((tx) => tx.list('task').length)).toBe(7);
  });

  it('splits by size, moving an item that does not fit to a fresh transaction whole', async () => {
    const size = Task.encode(task('t1', 's1')).finish().length;
    const store = new MemoryStore(testOptions({ maxTransactionBytes: 3 * size }));
    const watch = store.watch();
    store.batch((batch) => {
      batch.update(createTask('t1'));
      batch.update(createTask('t2'));
      batch.update((tx) => {
        createTask('t3')(tx);
        createTask('t4')(tx);
      });
    });
    expect((await drain(watch)).map(summary)).toEqual([
      ['create task t1', 'create task t2'],
      ['create task t3', 'create task t4'],
    ]);
  });

  it('reruns a moved item against the committed state, so it sees the new versions', () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 2 }));
    store.update((tx) => tx.create('service', service('s1', 'web')));
    store.batch((batch) => {
      batch.update(createTask('t1'));
      batch.update(createTask('t2'));
      batch.update((tx) => {
        const t1 = tx.get('task', 't1');
        if (t1 === undefined) throw new Error('missing task');
        tx.update('task', { ...t1, nodeId: 'n1' });
        createTask('t3')(tx);
      });
    });
    const t1 = store.view((tx) => tx.get('task', 't1'));
    expect([t1?.nodeId, t1?.meta?.version?.index, store.version]).toEqual(['n1', 3n, 3n]);
  });

  it('undoes a failing item alone, rethrows its error, and goes on if the caller catches it', () => {
    const store = new MemoryStore(testOptions());
    const errors: unknown[] = [];
    store.batch((batch) => {
      batch.update(createTask('t1'));
      try {
        batch.update((tx) => {
          createTask('t2')(tx);
          createTask('t1')(tx);
        });
      } catch (error) {
        errors.push(error);
      }
      batch.update(createTask('t3'));
    });
    expect(errors.map((error) => describeError(error).code)).toEqual([ErrorCode.AlreadyExists]);
    expect(store.view((tx) => tx.list('task').map((t) => t.id).sort())).toEqual(['t1', 't3']);
  });

  it('rejects an item too large for a transaction of its own, keeping the others', () => {
    const store = new MemoryStore(testOptions({ maxChangesPerTransaction: 2 }));
    const tooLarge = () =>
      store.batch((batch) => {
        batch.update(createTask('t1'));
        batch.update((tx) => ['t2', 't3', 't4'].forEach((id) => createTask(id)(tx)));
      });
    expect(failure(tooLarge).code).toBe(ErrorCode.ResourceExhausted);
    expect(store.view((tx) => tx.list('task').map((t) => t.id))).toEqual(['t1']);
  });

  it('commits the items that succeeded when the work throws', () => {
    const store = new MemoryStore(testOptions());
    const failure = new Error('stopped halfway');
    expect(() =>
      store.batch((batch) => {
        batch.update(createTask('t1'));
        throw failure;
      }),
    ).toThrow(failure);
    expect(store.view((tx) => tx.list('task').map((t) => t.id))).toEqual(['t1']);
  });

  it('refuses an item offered after its batch ended', () => {
    const store = new MemoryStore(testOptions());
    let kept: Parameters<Parameters<MemoryStore['batch']>[0]>[0] | undefined;
    store.batch((batch) => {
      kept = batch;
    });
    expect(failure(() => kept?.update(createTask('t1')))).toEqual({
      code: ErrorCode.FailedPrecondition,
      message: 'batch.update was called after its batch ended',
    });
    expect(store.version).toBe(0n);
  });
});
