import { type Entry, HardState, type SnapshotMetadata } from '@shoal/proto';
import { corruptionError } from './corruption.js';
import type { RecoveredState } from './types.js';
import type { SaveRecord, WalRecord } from './wal-format.js';

/** Where a record sits, for error messages. */
export interface RecordPosition {
  readonly file: string;
  readonly offset: number;
}

/**
 * Rebuilds the log from WAL records, in the order they were written. The rules are the ones raft
 * applies to its own log, so a reopened log is exactly the log that was last saved:
 * - a batch of entries starting at index i replaces every entry from i on (the last write wins);
 * - a restored snapshot (a `save` with a snapshot) replaces the whole log;
 * - a locally taken snapshot only drops the entries it covers.
 * Any record that could not follow the ones before it (a gap in indexes, a segment head disagreeing
 * with the segments before it) is corruption, because no crash produces it.
 */
export class LogReplay {
  private started = false;
  private hardState = HardState.create();
  private snapshot: SnapshotMetadata | undefined;
  private endIndex = 0n;
  /**
   * The entries held, contiguous and ending at `endIndex`. Entries before them are covered by the
   * snapshot or were in segments already released (the first segment head says where those ended).
   */
  private entries: Entry[] = [];

  apply(record: WalRecord, at: RecordPosition): void {
    switch (record.kind) {
      case 'segment-head':
        if (!this.started) {
          this.started = true;
          this.endIndex = record.lastIndex;
          this.hardState = record.hardState;
          this.snapshot = record.snapshot;
        } else if (record.lastIndex !== this.endIndex) {
          throw corruptionError(at.file, at.offset, `the segment head says the log ended at ${record.lastIndex}, but the segments before it end at ${this.endIndex}`);
        }
        return;
      case 'save':
        this.applySave(record, at);
        return;
      case 'snapshot-taken': {
        const { index } = record.snapshot;
        if (index <= this.snapshotIndex()) return;
        if (index > this.endIndex) throw corruptionError(at.file, at.offset, `a snapshot taken at ${index} is beyond the end of the log at ${this.endIndex}`);
        this.snapshot = record.snapshot;
        const covered = index - this.firstHeldIndex() + 1n;
        if (covered > 0n) this.entries = this.entries.slice(Number(covered));
        return;
      }
    }
  }

  /** The last index of the log: of its last entry, or of a snapshot that replaced it. */
  get lastIndex(): bigint {
    return this.endIndex;
  }

  /** The recovered state, once every record is applied; `at` names the WAL's first segment. */
  finish(at: RecordPosition): RecoveredState {
    const snapshotIndex = this.snapshotIndex();
    if (this.endIndex > snapshotIndex && this.firstHeldIndex() > snapshotIndex + 1n) {
      throw corruptionError(
        at.file,
        at.offset,
        `entries ${snapshotIndex + 1n} to ${this.firstHeldIndex() - 1n} are in no segment and no snapshot covers them (was a segment deleted?)`,
      );
    }
    return { hardState: this.hardState, snapshot: this.snapshot, entries: this.entries };
  }

  private applySave(record: SaveRecord, at: RecordPosition): void {
    if (record.snapshot !== undefined) {
      this.snapshot = record.snapshot;
      this.entries = [];
      this.endIndex = record.snapshot.index;
    }
    const [first] = record.entries;
    if (first !== undefined) {
      if (first.index <= this.snapshotIndex() || first.index > this.endIndex + 1n) {
        throw corruptionError(at.file, at.offset, `entries start at ${first.index}, but the log holds ${this.snapshotIndex() + 1n} to ${this.endIndex}`);
      }
      const held = this.firstHeldIndex();
      this.entries = first.index < held ? [] : this.entries.slice(0, Number(first.index - held));
      for (const [offset, entry] of record.entries.entries()) {
        if (entry.index !== first.index + BigInt(offset)) throw corruptionError(at.file, at.offset, `entry ${entry.index} is out of sequence in its batch`);
        this.entries.push(entry);
      }
      this.endIndex = first.index + BigInt(record.entries.length - 1);
    }
    if (record.hardState !== undefined) this.hardState = record.hardState;
  }

  private snapshotIndex(): bigint {
    return this.snapshot?.index ?? 0n;
  }

  private firstHeldIndex(): bigint {
    return this.entries[0]?.index ?? this.endIndex + 1n;
  }
}
