import { errors } from '@shoal/errors';
import { EntryType, type Entry, type Snapshot } from '@shoal/proto';
import { entriesWithin, entrySize, snapshotIndex, snapshotTerm } from './entries.js';
import type { Storage } from './storage.js';

/**
 * The part of the log the caller has not persisted yet: at most one incoming snapshot, then entries
 * from `offset` on. It shrinks as the caller reports what it has written (`stableTo`, `stableSnapTo`).
 */
class UnstableLog {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(public offset: bigint) {}

  firstIndex(): bigint | undefined {
    return this.snapshot === undefined ? undefined : snapshotIndex(this.snapshot) + 1n;
  }

  lastIndex(): bigint | undefined {
    if (this.entries.length > 0) return this.offset + BigInt(this.entries.length - 1);
    return this.snapshot === undefined ? undefined : snapshotIndex(this.snapshot);
  }

  term(index: bigint): bigint | undefined {
    if (index < this.offset) {
      return this.snapshot !== undefined && snapshotIndex(this.snapshot) === index ? snapshotTerm(this.snapshot) : undefined;
    }
    return this.entries[Number(index - this.offset)]?.term;
  }

  /**
   * The caller persisted entries up to `index` of `term`. If a newer leader has replaced that entry
   * since the Ready was taken, the persisted one is stale and the unstable log stays as it is.
   */
  stableTo(index: bigint, term: bigint): void {
    if (index < this.offset || this.term(index) !== term) return;
    this.entries = this.entries.slice(Number(index + 1n - this.offset));
    this.offset = index + 1n;
  }

  stableSnapTo(index: bigint): void {
    if (this.snapshot !== undefined && snapshotIndex(this.snapshot) === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshotIndex(snapshot) + 1n;
    this.entries = [];
    this.snapshot = snapshot;
  }

  /** Appends `entries`, first cutting off everything from the first new index on. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const after = (entries[0] as Entry).index;
    const end = this.offset + BigInt(this.entries.length);
    if (after === end) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // Replaces the whole unstable part; the caller overwrites the stored entries from `after` on.
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, Number(after - this.offset)).concat(entries);
    }
  }

  /** Entries lo..hi−1 within `maxBytes`; see {@link entriesWithin}. */
  slice(lo: bigint, hi: bigint, maxBytes: number, atLeastOne: boolean): Entry[] {
    return entriesWithin(this.entries, Number(lo - this.offset), Number(hi - this.offset), maxBytes, atLeastOne);
  }
}

/**
 * The log as the core sees it: the caller's storage followed by the unstable part, with the commit
 * and apply indexes. Lookups outside the log answer `undefined` rather than throw, because the
 * protocol asks about indexes it cannot know to be present (a follower's probe, a compacted prefix).
 */
export class RaftLog {
  private readonly unstable: UnstableLog;
  /** The highest index known to be stored on a quorum. */
  committed: bigint;
  /** The highest index the caller has applied to its state machine. */
  applied: bigint;

  constructor(
    private readonly storage: Storage,
    private readonly maxCommittedSizePerReady: number,
  ) {
    this.unstable = new UnstableLog(storage.lastIndex() + 1n);
    // The state machine restarts from the latest snapshot, which may cover entries still in the log.
    const snapshotEnd = snapshotIndex(storage.snapshot());
    const compactedEnd = storage.firstIndex() - 1n;
    this.committed = snapshotEnd > compactedEnd ? snapshotEnd : compactedEnd;
    this.applied = this.committed;
  }

  firstIndex(): bigint {
    return this.unstable.firstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): bigint {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** The term of the entry at `index`, or undefined if it was compacted away or does not exist yet. */
  term(index: bigint): bigint | undefined {
    if (index < this.firstIndex() - 1n || index > this.lastIndex()) return undefined;
    return this.unstable.term(index) ?? this.storage.term(index);
  }

  lastTerm(): bigint {
    const term = this.term(this.lastIndex());
    if (term === undefined) throw errors.internal(`the term of the last raft log entry ${this.lastIndex()} is unknown`);
    return term;
  }

  matchTerm(index: bigint, term: bigint): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a log is at least as up to date if its last term is higher, or equal with an index at least as high. */
  isUpToDate(lastIndex: bigint, lastTerm: bigint): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * A follower's side of AppendEntries (§5.3): if our entry at `index` has `logTerm`, append what
   * `entries` adds or changes, commit up to `commit` (never past what this message proved matches),
   * and return the index of the last new entry. Returns undefined if the log does not match.
   */
  maybeAppend(index: bigint, logTerm: bigint, commit: bigint, entries: Entry[]): bigint | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + BigInt(entries.length);
    const conflict = this.findConflict(entries);
    if (conflict !== 0n) {
      if (conflict <= this.committed) {
        throw errors.internal(`raft log entry ${conflict} conflicts with a committed entry (committed ${this.committed})`, {
          index: conflict,
          committed: this.committed,
        });
      }
      this.append(entries.slice(Number(conflict - (index + 1n))));
    }
    this.commitTo(lastNew < commit ? lastNew : commit);
    return lastNew;
  }

  /** Appends entries (which must directly follow or overwrite an uncommitted suffix) and returns the new last index. */
  append(entries: readonly Entry[]): bigint {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1n < this.committed) {
      throw errors.internal(`appending after ${first.index - 1n} would overwrite committed entries up to ${this.committed}`, {
        after: first.index - 1n,
        committed: this.committed,
      });
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * The index of the first of `entries` that is missing from our log or has a different term there,
   * or 0 if all are present. Entries at the same index and term are identical (§5.3, Log Matching).
   */
  private findConflict(entries: readonly Entry[]): bigint {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0n;
  }

  /**
   * The fast backtracking hint (§5.3's optimisation, as etcd does it): the largest index at or below
   * `index` whose term is at most `term`, with that term. Every entry after it has a larger term than
   * the other log's entry at `index` can have, so none of them can match. Answers `[index, 0]` when it
   * reaches a compacted index, whose term is unknown.
   */
  findConflictByTerm(index: bigint, term: bigint): [bigint, bigint] {
    for (let candidate = index; candidate > 0n; candidate--) {
      const ours = this.term(candidate);
      if (ours === undefined) return [candidate, 0n];
      if (ours <= term) return [candidate, ours];
    }
    return [0n, 0n];
  }

  commitTo(index: bigint): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw errors.internal(`commit index ${index} is past the last raft log entry ${this.lastIndex()}: the log was lost or truncated`, {
        commit: index,
        lastIndex: this.lastIndex(),
      });
    }
    this.committed = index;
  }

  /** §5.4.2: a leader only commits by counting replicas an entry of its own term; earlier ones follow. */
  maybeCommit(index: bigint, term: bigint): boolean {
    if (index <= this.committed || this.term(index) !== term) return false;
    this.commitTo(index);
    return true;
  }

  appliedTo(index: bigint): void {
    if (index > this.committed || index < this.applied) {
      throw errors.internal(`applied index ${index} is outside [applied ${this.applied}, committed ${this.committed}]`, {
        index,
        applied: this.applied,
        committed: this.committed,
      });
    }
    this.applied = index;
  }

  stableTo(index: bigint, term: bigint): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: bigint): void {
    this.unstable.stableSnapTo(index);
  }

  hasUnstableEntries(): boolean {
    return this.unstable.entries.length > 0;
  }

  /** The entries the caller has yet to persist. */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** A received snapshot the caller has yet to persist and apply. */
  pendingSnapshot(): Snapshot | undefined {
    return this.unstable.snapshot;
  }

  hasNextCommittedEntries(): boolean {
    return this.firstUnapplied() <= this.committed;
  }

  /** Committed entries not yet applied, up to maxCommittedSizePerReady. */
  nextCommittedEntries(): Entry[] {
    const from = this.firstUnapplied();
    if (from > this.committed) return [];
    const entries = this.slice(from, this.committed + 1n, this.maxCommittedSizePerReady);
    if (entries === undefined) throw errors.internal(`committed raft log entry ${from} was compacted before it was applied`, { index: from });
    return entries;
  }

  /** Whether a committed entry not yet applied is a conf change. Scans them all: only called when campaigning. */
  hasUnappliedConfChange(): boolean {
    for (let from = this.firstUnapplied(); from <= this.committed; ) {
      const page = this.slice(from, this.committed + 1n, this.maxCommittedSizePerReady) ?? [];
      if (page.length === 0) return false;
      if (page.some((entry) => entry.type === EntryType.CONF_CHANGE)) return true;
      from += BigInt(page.length);
    }
    return false;
  }

  /** Entries from `index` to the end, up to `maxBytes`; undefined if `index` was compacted. */
  entriesFrom(index: bigint, maxBytes: number): Entry[] | undefined {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1n, maxBytes);
  }

  /** The snapshot a follower that needs compacted entries gets: the received one if not yet stored. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshotIndex(snapshot);
    this.unstable.restore(snapshot);
  }

  /**
   * The first index the caller has not applied. After a snapshot is received, entries before it are
   * covered by the snapshot rather than applied one by one.
   */
  private firstUnapplied(): bigint {
    const next = this.applied + 1n;
    const first = this.firstIndex();
    return next > first ? next : first;
  }

  private slice(lo: bigint, hi: bigint, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    const unstableFrom = this.unstable.offset;
    let entries: Entry[] = [];
    let used = 0;
    if (lo < unstableFrom) {
      const storedEnd = hi < unstableFrom ? hi : unstableFrom;
      entries = this.storage.entries(lo, storedEnd, maxBytes);
      if (BigInt(entries.length) < storedEnd - lo) return entries;
      for (const entry of entries) used += entrySize(entry);
    }
    if (hi > unstableFrom) {
      const more = this.unstable.slice(lo > unstableFrom ? lo : unstableFrom, hi, maxBytes - used, entries.length === 0);
      entries = entries.length === 0 ? more : entries.concat(more);
    }
    return entries;
  }
}
