import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { HardState, type SnapshotMetadata } from '@shoal/proto';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { corruptionError } from './corruption.js';
import { listMatching, removeDurably, replaceFileAtomically, truncateDurably, writeFully } from './durable-fs.js';
import { LogReplay } from './log-replay.js';
import { hex16, newSealedFileHeader, readSealedFileHeader, type DataKeyLookup } from './sealed-file.js';
import type { RaftUpdate, RecoveredState, RecoveryNote } from './types.js';
import { findReadableRecord, frameRecord, readRecordAt, type WalRecord } from './wal-format.js';

/** `<sequence>-<index of the first entry it may hold>.wal`, both as 16 hex digits (etcd's naming). */
const SEGMENT_NAME = /^([0-9a-f]{16})-[0-9a-f]{16}\.wal$/;

/** One segment file, as far as releasing it is concerned. */
interface Segment {
  readonly seq: bigint;
  readonly path: string;
  /** Every record of a segment is sealed under the data key its header names. */
  readonly dataKeyId: number;
  /** The highest entry index written into it; 0 if none. */
  maxIndex: bigint;
}

/** The segment being appended to. */
interface ActiveSegment {
  readonly segment: Segment;
  readonly handle: FileHandle;
  readonly fileKey: Buffer;
  /** Where the next record goes: the end of the last durable record. */
  size: number;
}

/** The log as saved so far: what a new segment's head records and what a save is checked against. */
interface LogPosition {
  lastIndex: bigint;
  hardState: HardState;
  snapshot: SnapshotMetadata | undefined;
}

/** A replayed WAL, ready for appends. */
export interface OpenedWal {
  readonly wal: WriteAheadLog;
  readonly recovered: RecoveredState;
  readonly notes: RecoveryNote[];
}

/**
 * The write-ahead log: numbered segment files of sealed records, appended to and fdatasynced one
 * record per save. See the package README for the format and the crash-safety argument.
 */
export class WriteAheadLog {
  /** The error of a failed write: after it nothing is known about what reached the disk. */
  private failure: unknown;

  private constructor(
    private readonly dir: string,
    private readonly keys: DataKeyLookup,
    private readonly segmentBytes: number,
    private readonly segments: Segment[],
    private active: ActiveSegment,
    private readonly position: LogPosition,
  ) {}

  /** True if `dir` holds any segment. */
  static async hasSegments(dir: string): Promise<boolean> {
    return (await listMatching(dir, SEGMENT_NAME)).length > 0;
  }

  /**
   * Replays every segment in `dir` (creating the first one in an empty directory) and opens the last
   * for appending. A torn tail of the last segment is cut off and reported; anything else that does
   * not read back is corruption and throws.
   */
  static async open(dir: string, keys: DataKeyLookup, segmentBytes: number): Promise<OpenedWal> {
    const files = (await listMatching(dir, SEGMENT_NAME)).map(({ path, groups }) => ({ path, seq: BigInt(`0x${groups[0]}`) }));
    files.sort((a, b) => (a.seq < b.seq ? -1 : 1));
    const [first] = files;
    if (first === undefined) {
      const position: LogPosition = { lastIndex: 0n, hardState: HardState.create(), snapshot: undefined };
      const active = await createSegment(dir, 1n, keys, position);
      const wal = new WriteAheadLog(dir, keys, segmentBytes, [active.segment], active, position);
      return { wal, recovered: { hardState: position.hardState, snapshot: undefined, entries: [] }, notes: [] };
    }

    const replay = new LogReplay();
    const notes: RecoveryNote[] = [];
    const segments: Segment[] = [];
    let tail: ReplayedSegment | undefined;
    for (const [i, file] of files.entries()) {
      const previous = segments[segments.length - 1];
      if (previous !== undefined && file.seq !== previous.seq + 1n) throw corruptionError(file.path, 0, `segment ${previous.seq + 1n} is missing before it`);
      tail = await replaySegment(file.path, file.seq, keys, replay, i === files.length - 1);
      segments.push(tail.segment);
      if (tail.note !== undefined) notes.push(tail.note);
    }
    const recovered = replay.finish({ file: first.path, offset: 0 });
    const position: LogPosition = { lastIndex: replay.lastIndex, hardState: recovered.hardState, snapshot: recovered.snapshot };
    const { segment, fileKey, size } = tail as ReplayedSegment;
    const handle = await open(segment.path, 'r+');
    const wal = new WriteAheadLog(dir, keys, segmentBytes, segments, { segment, handle, fileKey, size }, position);
    // New records are always sealed under the active data key, even when a crash came between a
    // data-key rotation and the segment roll that follows it.
    if (segment.dataKeyId !== keys.activeDataKeyId) {
      try {
        await wal.roll();
      } catch (err) {
        await wal.close();
        throw err;
      }
    }
    return { wal, recovered, notes };
  }

  /** The latest snapshot the log refers to. */
  get snapshot(): SnapshotMetadata | undefined {
    return this.position.snapshot;
  }

  /** The data keys that records still on disk are sealed with. */
  dataKeysInUse(): Set<number> {
    return new Set(this.segments.map((segment) => segment.dataKeyId));
  }

  /** Appends one update as one record and returns once it is fdatasynced (unless the update says it need not be). */
  async save(update: RaftUpdate): Promise<void> {
    const entries = update.entries ?? [];
    if (update.hardState === undefined && update.snapshot === undefined && entries.length === 0) return;
    this.checkSave(update);
    const sync = update.sync !== false || update.snapshot !== undefined;
    await this.append({ kind: 'save', snapshot: update.snapshot, entries, hardState: update.hardState }, sync);
    if (update.snapshot !== undefined) {
      this.position.snapshot = update.snapshot;
      this.position.lastIndex = update.snapshot.index;
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      this.position.lastIndex = last.index;
      if (last.index > this.active.segment.maxIndex) this.active.segment.maxIndex = last.index;
    }
    if (update.hardState !== undefined) this.position.hardState = update.hardState;
    if (this.active.size >= this.segmentBytes) await this.roll();
  }

  /** Records that a snapshot taken locally covers the log up to its index. */
  async recordSnapshotTaken(snapshot: SnapshotMetadata): Promise<void> {
    if (snapshot.index > this.position.lastIndex) {
      throw errors.invalidArgument(`a snapshot at ${snapshot.index} is beyond the end of the log at ${this.position.lastIndex}`, {
        index: snapshot.index,
        lastIndex: this.position.lastIndex,
      });
    }
    await this.append({ kind: 'snapshot-taken', snapshot });
    this.position.snapshot = snapshot;
  }

  /** Starts a new segment, under the active data key, headed by the log's current state. */
  async roll(): Promise<void> {
    this.checkUsable();
    const next = await this.durably(() => createSegment(this.dir, this.active.segment.seq + 1n, this.keys, this.position));
    const previous = this.active;
    this.active = next;
    this.segments.push(next.segment);
    await previous.handle.close();
  }

  /**
   * Deletes, oldest first, the segments whose entries a snapshot at `snapshotIndex` covers with
   * `keepEntries` to spare (swarmkit's LogEntriesForSlowFollowers). Segments sealed under a retired data
   * key go as soon as the snapshot covers them: keeping that key alive is what its rotation is ending.
   * Only a prefix is ever deleted, and never the active segment, so the rest still replays in order.
   */
  async releaseCoveredSegments(snapshotIndex: bigint, keepEntries: number, activeDataKeyId: number): Promise<void> {
    // The active segment is always the last one.
    while (this.segments.length > 1) {
      const oldest = this.segments[0] as Segment;
      const releasableUpTo = oldest.dataKeyId === activeDataKeyId ? snapshotIndex - BigInt(keepEntries) : snapshotIndex;
      if (oldest.maxIndex > releasableUpTo) return;
      await removeDurably(oldest.path);
      this.segments.shift();
    }
  }

  async close(): Promise<void> {
    await this.active.handle.close();
  }

  private checkSave(update: RaftUpdate): void {
    const current = this.position.snapshot?.index ?? 0n;
    if (update.snapshot !== undefined && update.snapshot.index <= current) {
      throw errors.invalidArgument(`a restored snapshot at ${update.snapshot.index} is not newer than the stored one at ${current}`, {
        index: update.snapshot.index,
      });
    }
    const [first] = update.entries ?? [];
    if (first === undefined) return;
    const snapshotIndex = update.snapshot?.index ?? current;
    const lastIndex = update.snapshot?.index ?? this.position.lastIndex;
    if (first.index <= snapshotIndex || first.index > lastIndex + 1n) {
      throw errors.invalidArgument(`entries starting at ${first.index} do not fit a log holding ${snapshotIndex + 1n} to ${lastIndex}`, {
        index: first.index,
      });
    }
    for (const [offset, entry] of (update.entries ?? []).entries()) {
      if (entry.index !== first.index + BigInt(offset)) {
        throw errors.invalidArgument(`entry ${entry.index} breaks the sequence starting at ${first.index}`, { index: entry.index });
      }
    }
  }

  private async append(record: WalRecord, sync = true): Promise<void> {
    this.checkUsable();
    const { active } = this;
    const frame = frameRecord(record, active.fileKey, active.size);
    await this.durably(async () => {
      await writeFully(active.handle, frame, active.size);
      if (sync) await active.handle.datasync();
    });
    active.size += frame.length;
  }

  /**
   * Runs a write whose failure leaves the disk in an unknown state. After a failed fsync the kernel may
   * already have dropped the dirty pages, so retrying could acknowledge data that is gone (the
   * "fsyncgate" lesson): the log refuses every later write until it is reopened and replayed.
   */
  private async durably<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  private checkUsable(): void {
    if (this.failure !== undefined) {
      throw new ShoalError(ErrorCode.FailedPrecondition, 'the raft WAL failed a write; reopen the storage to recover', { cause: this.failure });
    }
  }
}

/** Creates segment `seq` with its head record, complete and durable before it appears under its name. */
async function createSegment(dir: string, seq: bigint, keys: DataKeyLookup, position: LogPosition): Promise<ActiveSegment> {
  const header = newSealedFileHeader('wal', keys, [seq]);
  const head = frameRecord({ kind: 'segment-head', ...position }, header.fileKey, header.bytes.length);
  const path = join(dir, `${hex16(seq)}-${hex16(position.lastIndex + 1n)}.wal`);
  await replaceFileAtomically(path, Buffer.concat([header.bytes, head]));
  const handle = await open(path, 'r+');
  const segment: Segment = { seq, path, dataKeyId: header.dataKeyId, maxIndex: 0n };
  return { segment, handle, fileKey: header.fileKey, size: header.bytes.length + head.length };
}

/** A segment as replay left it: intact, or with its torn tail cut off. */
interface ReplayedSegment {
  readonly segment: Segment;
  readonly fileKey: Buffer;
  /** The length of its intact records. */
  readonly size: number;
  readonly note?: RecoveryNote;
}

/**
 * Feeds every record of one segment to `replay`. A crash can tear only the record being appended,
 * which is the last one of the last segment (a segment is named only once its head is durable, and
 * saves are sequential), so a bad record there with nothing readable after it is cut off; a bad record
 * anywhere else is corruption.
 */
async function replaySegment(path: string, seq: bigint, keys: DataKeyLookup, replay: LogReplay, isLast: boolean): Promise<ReplayedSegment> {
  const data = await readFile(path);
  const header = readSealedFileHeader('wal', data, 1, keys, path);
  if (header.fields[0] !== seq) throw corruptionError(path, 16, `the header says segment ${header.fields[0]} but the name says ${seq}`);
  const segment: Segment = { seq, path, dataKeyId: header.dataKeyId, maxIndex: 0n };
  const start = header.bytes.length;
  if (data.length === start) throw corruptionError(path, start, 'the segment has no head record');
  for (let offset = start; offset < data.length; ) {
    const read = readRecordAt(data, offset, header.fileKey, path);
    if ('problem' in read) {
      if (!isLast || offset === start) throw corruptionError(path, offset, read.problem);
      const later = findReadableRecord(data, offset + 1, header.fileKey, path);
      if (later !== undefined) throw corruptionError(path, offset, `${read.problem}, yet a valid record follows at byte ${later}`);
      await truncateDurably(path, offset);
      const note: RecoveryNote = { kind: 'torn-tail-truncated', file: path, offset, discardedBytes: data.length - offset, problem: read.problem };
      return { segment, fileKey: header.fileKey, size: offset, note };
    }
    const { record } = read;
    if ((record.kind === 'segment-head') !== (offset === start)) {
      throw corruptionError(path, offset, offset === start ? 'the segment does not start with a segment head' : 'a segment head in the middle of a segment');
    }
    replay.apply(record, { file: path, offset });
    const lastEntry = record.kind === 'save' ? record.entries[record.entries.length - 1] : undefined;
    if (lastEntry !== undefined && lastEntry.index > segment.maxIndex) segment.maxIndex = lastEntry.index;
    offset = read.end;
  }
  return { segment, fileKey: header.fileKey, size: data.length };
}
