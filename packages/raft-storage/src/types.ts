import type { Entry, HardState, SnapshotMetadata } from '@shoal/proto';

/**
 * What raft hands to storage from one `Ready`, to be made durable before any of its messages are
 * sent. Every field is optional; an update with none of them writes nothing.
 */
export interface RaftUpdate {
  /** The new hard state; omit it when it did not change. */
  readonly hardState?: HardState;
  /**
   * New entries, contiguous and in index order. The first may be at or below the last stored index:
   * a new leader overwrote an uncommitted tail, and every stored entry from that index on is replaced.
   */
  readonly entries?: readonly Entry[];
  /**
   * A snapshot raft restored from its leader. Its data must already be stored
   * (`RaftStorage.writeSnapshot`); saving it replaces the whole log, and `entries` follow it.
   */
  readonly snapshot?: SnapshotMetadata;
  /**
   * Whether the record must be on disk before `save` resolves: raft's `Ready.mustSync`. Pass false only
   * when nothing waits on it (a new commit index alone); the record is then written but becomes durable
   * with the next synced save, which flushes every earlier write to the file, so a crash can lose only
   * a suffix of unsynced records, and recovery repairs a torn one as any torn tail. A restored snapshot
   * is always synced.
   * @default true
   */
  readonly sync?: boolean;
}

/** What a reopened storage recovered: everything raft needs to restart where it stopped. */
export interface RecoveredState {
  /** The last saved hard state (all zeros for a new storage). */
  readonly hardState: HardState;
  /** The latest snapshot; read its data with `RaftStorage.openSnapshot()`. */
  readonly snapshot: SnapshotMetadata | undefined;
  /** Every entry after the snapshot, contiguous and in index order, as last written. */
  readonly entries: Entry[];
}

/**
 * Something opening the storage repaired, for the caller to log. None of them loses an acknowledged
 * write: each is the leftover of an operation a crash interrupted before it returned.
 */
export type RecoveryNote =
  | {
      /** The end of the last WAL segment held a record that never became durable; it was cut off. */
      readonly kind: 'torn-tail-truncated';
      readonly file: string;
      /** Where the file now ends. */
      readonly offset: number;
      readonly discardedBytes: number;
      /** What was wrong with the first discarded record. */
      readonly problem: string;
    }
  | {
      /** A half-written file (a segment, snapshot or key file being created) was removed. */
      readonly kind: 'temp-file-removed';
      readonly file: string;
    }
  | {
      /** A snapshot written but never saved or compacted to (the crash came first) was removed. */
      readonly kind: 'unreferenced-snapshot-removed';
      readonly file: string;
    };
