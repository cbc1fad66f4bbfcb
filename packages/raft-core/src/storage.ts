import { errors } from '@shoal/errors';
import { ConfState, EntryType, HardState, Snapshot, type Entry } from '@shoal/proto';
import { entriesWithin, snapshotConfState, snapshotIndex, snapshotTerm } from './entries.js';

/** What a member starts from: its persisted hard state and the membership of its latest snapshot. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/**
 * The caller's stable storage, as the core reads it. The caller writes it (from each Ready, and when
 * it takes snapshots and compacts); the core never does. The log it holds is the snapshot followed by
 * the entries firstIndex()..lastIndex().
 *
 * The core only asks for what exists: `term(i)` for firstIndex() − 1 ≤ i ≤ lastIndex() (the term of
 * firstIndex() − 1 is the snapshot's), and `entries(lo, hi)` for firstIndex() ≤ lo < hi ≤ lastIndex() + 1.
 * An implementation may throw COMPACTED for an index below that range; anything else it throws is
 * passed through to the caller of the RawNode method that needed it.
 */
export interface Storage {
  /** The hard state and the membership as of the latest snapshot. Read once, when a RawNode starts. */
  initialState(): InitialState;
  /**
   * Entries lo..hi−1, in order. If they add up to more than `maxBytes` (as the core counts entry
   * sizes), the longest prefix within the limit, but at least one entry.
   */
  entries(lo: bigint, hi: bigint, maxBytes: number): Entry[];
  /** The term of the entry at `index`. */
  term(index: bigint): bigint;
  /** The index of the first entry still in the log (the snapshot's index + 1). */
  firstIndex(): bigint;
  /** The index of the last entry (the snapshot's index when the log holds no entries after it). */
  lastIndex(): bigint;
  /** The latest snapshot, sent to followers that need entries the log no longer holds. */
  snapshot(): Snapshot;
}

/**
 * The first snapshot and hard state of a new cluster's founding members. Every founding member must
 * start from the same ones: the snapshot is entry 1 of term 1, records the founding membership, and
 * carries the state machine's initial `data`. Members that join later start from empty storage, so the
 * leader always sends them a snapshot first and they learn the membership from it.
 */
export function bootstrapState(confState: ConfState, data: Uint8Array = new Uint8Array()): { snapshot: Snapshot; hardState: HardState } {
  if (confState.voters.length === 0) throw errors.invalidArgument('a new cluster needs at least one voter');
  return {
    snapshot: { data: Buffer.from(data), metadata: { index: 1n, term: 1n, confState: ConfState.fromPartial(confState) } },
    hardState: { term: 1n, vote: 0n, commit: 1n },
  };
}

/**
 * A {@link Storage} held in memory, like etcd's MemoryStorage: the caller appends each Ready's entries,
 * sets its hard state, applies its snapshot, and takes snapshots and compacts as it applies. Tests and
 * simulations keep one per member as the state that survives a crash.
 */
export class MemoryStorage implements Storage {
  private currentHardState: HardState = HardState.create();
  private currentSnapshot: Snapshot = Snapshot.fromPartial({ metadata: { index: 0n, term: 0n, confState: ConfState.create() } });
  /** `log[0]` stands for the snapshot (its index and term) and holds no data; real entries follow. */
  private log: Entry[] = [placeholderEntry(0n, 0n)];

  /** Storage for a founding member of a new cluster; see {@link bootstrapState}. */
  static bootstrapped(confState: ConfState, data?: Uint8Array): MemoryStorage {
    const storage = new MemoryStorage();
    const { snapshot, hardState } = bootstrapState(confState, data);
    storage.applySnapshot(snapshot);
    storage.setHardState(hardState);
    return storage;
  }

  initialState(): InitialState {
    return { hardState: { ...this.currentHardState }, confState: snapshotConfState(this.currentSnapshot) };
  }

  /** The hard state as last set. */
  get hardState(): HardState {
    return { ...this.currentHardState };
  }

  setHardState(hardState: HardState): void {
    this.currentHardState = { ...hardState };
  }

  entries(lo: bigint, hi: bigint, maxBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw errors.compacted(`raft log entry ${lo} has been compacted`, { index: lo, firstIndex: offset + 1n });
    if (hi > this.lastIndex() + 1n || lo > hi) {
      throw errors.invalidArgument(`raft log range [${lo}, ${hi}) is outside the log`, { lo, hi, lastIndex: this.lastIndex() });
    }
    return entriesWithin(this.log, Number(lo - offset), Number(hi - offset), maxBytes);
  }

  term(index: bigint): bigint {
    const offset = this.offset();
    if (index < offset) throw errors.compacted(`raft log entry ${index} has been compacted`, { index, firstIndex: offset + 1n });
    const entry = this.log[Number(index - offset)];
    if (entry === undefined) throw errors.invalidArgument(`raft log entry ${index} does not exist yet`, { index, lastIndex: this.lastIndex() });
    return entry.term;
  }

  firstIndex(): bigint {
    return this.offset() + 1n;
  }

  lastIndex(): bigint {
    return this.offset() + BigInt(this.log.length - 1);
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /**
   * Replaces the whole log with `snapshot` (a snapshot received from the leader, from a Ready). Throws
   * FAILED_PRECONDITION if it is not newer than the one held.
   */
  applySnapshot(snapshot: Snapshot): void {
    const index = snapshotIndex(snapshot);
    if (index <= snapshotIndex(this.currentSnapshot)) {
      throw errors.failedPrecondition(`snapshot at ${index} is not newer than the one held`, {
        index,
        heldIndex: snapshotIndex(this.currentSnapshot),
      });
    }
    this.currentSnapshot = snapshot;
    this.log = [placeholderEntry(index, snapshotTerm(snapshot))];
  }

  /**
   * Records a snapshot of the state machine as of `index` (which must be applied, so committed) with
   * the membership as of that index, and returns it. The log is kept; {@link MemoryStorage.compact}
   * drops entries afterwards, usually leaving some so slow followers can catch up without a snapshot.
   */
  createSnapshot(index: bigint, confState: ConfState, data: Uint8Array): Snapshot {
    const held = snapshotIndex(this.currentSnapshot);
    if (index <= held) throw errors.failedPrecondition(`snapshot at ${index} is not newer than the one held`, { index, heldIndex: held });
    if (index > this.currentHardState.commit) {
      throw errors.invalidArgument(`cannot snapshot at ${index}: only entries up to ${this.currentHardState.commit} are committed`, {
        index,
        commit: this.currentHardState.commit,
      });
    }
    this.currentSnapshot = {
      data: Buffer.from(data),
      metadata: { index, term: this.term(index), confState: ConfState.fromPartial(confState) },
    };
    return this.currentSnapshot;
  }

  /**
   * Drops the entries up to and including `index`. Only entries the latest snapshot covers may go: a
   * follower that needs them gets that snapshot instead, and an older snapshot would leave a gap.
   */
  compact(index: bigint): void {
    const offset = this.offset();
    if (index <= offset) throw errors.compacted(`raft log entry ${index} has already been compacted`, { index, firstIndex: offset + 1n });
    const held = snapshotIndex(this.currentSnapshot);
    if (index > held) {
      throw errors.failedPrecondition(`cannot compact to ${index}: the latest snapshot only covers entries up to ${held}`, {
        index,
        snapshotIndex: held,
      });
    }
    const position = Number(index - offset);
    this.log = [placeholderEntry(index, this.term(index)), ...this.log.slice(position + 1)];
  }

  /**
   * Appends entries from a Ready. Entries that overlap the log replace the ones at the same indexes
   * and everything after them (a new leader overwrote an uncommitted suffix); entries the log has
   * compacted are skipped. Throws INTERNAL if the entries would leave a gap.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const firstIndex = this.firstIndex();
    const lastNew = first.index + BigInt(entries.length - 1);
    if (lastNew < firstIndex) return;
    const kept = first.index < firstIndex ? entries.slice(Number(firstIndex - first.index)) : entries;
    const position = Number((kept[0] as Entry).index - this.offset());
    if (position > this.log.length) {
      throw errors.internal(`appending entry ${(kept[0] as Entry).index} would leave a gap after ${this.lastIndex()}`, {
        index: (kept[0] as Entry).index,
        lastIndex: this.lastIndex(),
      });
    }
    this.log.length = position;
    for (const entry of kept) this.log.push(entry);
  }

  private offset(): bigint {
    return (this.log[0] as Entry).index;
  }
}

function placeholderEntry(index: bigint, term: bigint): Entry {
  return { type: EntryType.NORMAL, term, index, data: Buffer.alloc(0) };
}
