import { ErrorCode } from '@shoal/errors';
import { EntryType, type Entry } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, bootstrapState } from '../src/index.js';

const voters = { voters: [1n, 2n, 3n], learners: [] };
const entry = (index: number, term: number, data = ''): Entry => ({
  type: EntryType.NORMAL,
  index: BigInt(index),
  term: BigInt(term),
  data: Buffer.from(data),
});

/** Bootstrapped storage holding entries 2..last, all of term 1, with everything committed. */
function storageUpTo(last: number): MemoryStorage {
  const storage = MemoryStorage.bootstrapped(voters);
  storage.append(Array.from({ length: last - 1 }, (_, i) => entry(i + 2, 1, `e${i + 2}`)));
  storage.setHardState({ term: 1n, vote: 0n, commit: BigInt(last) });
  return storage;
}

const terms = (storage: MemoryStorage) => storage.entries(storage.firstIndex(), storage.lastIndex() + 1n, Infinity).map((e) => Number(e.term));

describe('MemoryStorage', () => {
  it('starts a founding member from the bootstrap snapshot: entry 1 of term 1 with the founding membership', () => {
    const storage = MemoryStorage.bootstrapped(voters, Buffer.from('initial'));
    expect(storage.initialState()).toEqual({ hardState: { term: 1n, vote: 0n, commit: 1n }, confState: voters });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(1n)]).toEqual([2n, 1n, 1n]);
    expect(storage.snapshot().data.toString()).toBe('initial');
  });

  it('refuses to bootstrap a cluster with no voter', () => {
    expect(() => bootstrapState({ voters: [], learners: [1n] })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });

  it('replaces the entries from the first overlapping index on, as a new leader requires', () => {
    const storage = storageUpTo(5);
    storage.append([entry(4, 2), entry(5, 2), entry(6, 2)]);
    expect(terms(storage)).toEqual([1, 1, 2, 2, 2]);
    storage.append([entry(3, 3)]);
    expect(terms(storage)).toEqual([1, 3]);
  });

  it('skips appended entries it has compacted, and refuses entries that would leave a gap', () => {
    const storage = storageUpTo(5);
    storage.createSnapshot(4n, voters, Buffer.from('s'));
    storage.compact(4n);
    storage.append([entry(3, 1), entry(4, 1), entry(5, 1), entry(6, 1)]);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([5n, 6n]);
    expect(() => storage.append([entry(9, 1)])).toThrow(expect.objectContaining({ code: ErrorCode.Internal }));
  });

  it('returns at least one entry however small maxBytes is, and no more than fits otherwise', () => {
    const storage = storageUpTo(5);
    expect(storage.entries(2n, 6n, 0)).toHaveLength(1);
    expect(storage.entries(2n, 6n, Infinity)).toHaveLength(4);
  });

  it('answers COMPACTED for entries and terms before the snapshot', () => {
    const storage = storageUpTo(5);
    storage.createSnapshot(3n, voters, Buffer.from('s'));
    storage.compact(3n);
    expect(storage.term(3n)).toBe(1n);
    expect(() => storage.term(2n)).toThrow(expect.objectContaining({ code: ErrorCode.Compacted }));
    expect(() => storage.entries(3n, 5n, Infinity)).toThrow(expect.objectContaining({ code: ErrorCode.Compacted }));
  });

  it('compacts only what the latest snapshot covers', () => {
    const storage = storageUpTo(5);
    storage.createSnapshot(3n, voters, Buffer.from('s'));
    expect(() => storage.compact(4n)).toThrow(expect.objectContaining({ code: ErrorCode.FailedPrecondition }));
    storage.compact(2n);
    expect(() => storage.compact(2n)).toThrow(expect.objectContaining({ code: ErrorCode.Compacted }));
    expect(storage.firstIndex()).toBe(3n);
  });

  it('snapshots only committed entries, and only forward', () => {
    const storage = storageUpTo(5);
    storage.setHardState({ term: 1n, vote: 0n, commit: 4n });
    expect(() => storage.createSnapshot(5n, voters, Buffer.alloc(0))).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    const snapshot = storage.createSnapshot(4n, voters, Buffer.from('s'));
    expect(snapshot.metadata).toEqual({ index: 4n, term: 1n, confState: voters });
    expect(() => storage.createSnapshot(3n, voters, Buffer.alloc(0))).toThrow(expect.objectContaining({ code: ErrorCode.FailedPrecondition }));
  });

  it('replaces its whole log with a newer snapshot from the leader, and refuses an older one', () => {
    const storage = storageUpTo(5);
    const fromLeader = { data: Buffer.from('l'), metadata: { index: 9n, term: 3n, confState: voters } };
    storage.applySnapshot(fromLeader);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(9n)]).toEqual([10n, 9n, 3n]);
    expect(() => storage.applySnapshot({ ...fromLeader, metadata: { ...fromLeader.metadata, index: 8n } })).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition }),
    );
  });
});
