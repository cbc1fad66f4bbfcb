import { crc32 } from 'node:zlib';
import { Entry, HardState, SnapshotMetadata } from '@shoal/proto';
import { errors } from '@shoal/errors';
import { ByteReader, ByteWriter } from './binary.js';
import { corruptionError } from './corruption.js';
import { SEAL_OVERHEAD, seal, unseal } from './sealing.js';

/**
 * The first record of every WAL segment: the log's state when the segment was started. It makes each
 * segment replayable on its own, so segments before it can be released once a snapshot covers them.
 */
export interface SegmentHeadRecord {
  readonly kind: 'segment-head';
  /** The index of the last entry written before this segment. */
  readonly lastIndex: bigint;
  readonly hardState: HardState;
  readonly snapshot: SnapshotMetadata | undefined;
}

/** One `save`: a single record, so a save is durable entirely or not at all. */
export interface SaveRecord {
  readonly kind: 'save';
  /** A snapshot raft restored from its leader: the log is replaced by it (every earlier entry is gone). */
  readonly snapshot: SnapshotMetadata | undefined;
  /** Entries replacing the log from `entries[0].index` on (a new leader may overwrite an uncommitted tail). */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
}

/** A snapshot taken locally: it covers the log up to its index, and the entries after it stay. */
export interface SnapshotTakenRecord {
  readonly kind: 'snapshot-taken';
  readonly snapshot: SnapshotMetadata;
}

/** Every record a WAL segment holds. */
export type WalRecord = SegmentHeadRecord | SaveRecord | SnapshotTakenRecord;

const KIND_CODES = { 'segment-head': 1, save: 2, 'snapshot-taken': 3 } as const satisfies Record<WalRecord['kind'], number>;

/**
 * Record layout:
 *   magic "SREC" | kind u8 | 3 zero bytes | body length u32 | CRC-32 of the previous 12 bytes
 *   body: nonce (12) | AES-256-GCM ciphertext of the payload | tag (16)
 * The GCM tag authenticates the payload together with the first 12 header bytes and the record's byte
 * offset (the AAD), and the per-file key binds it to its segment. The CRC guards only the length, so a
 * torn or garbage header is recognised before its length is trusted; it also lets the torn-tail scan
 * skip almost every offset after one cheap check.
 */
export const RECORD_HEADER_BYTES = 16;
const RECORD_MAGIC = Buffer.from('SREC');
const CHECKED_HEADER_BYTES = 12;

/** Frames `record` for byte `offset` of the segment whose file key is `fileKey`. */
export function frameRecord(record: WalRecord, fileKey: Buffer, offset: number): Buffer {
  const payload = encodePayload(record);
  const header = new ByteWriter().raw(RECORD_MAGIC).u8(KIND_CODES[record.kind]).raw(Buffer.alloc(3)).u32(payload.length + SEAL_OVERHEAD).finish();
  const frame = seal(fileKey, payload, recordAad(header, offset), RECORD_HEADER_BYTES);
  header.copy(frame, 0);
  frame.writeUInt32LE(crc32(header), CHECKED_HEADER_BYTES);
  return frame;
}

/** The outcome of reading one record: the record and where the next starts, or why there is none. */
export type RecordRead = { readonly record: WalRecord; readonly end: number } | { readonly problem: string };

/**
 * Reads the record at `offset` of `segment` (the whole file at `path`). A record that is cut short,
 * fails its header CRC or does not authenticate comes back as a `problem`, for the caller to judge as a
 * torn tail or as corruption; a record that authenticates but does not parse throws, since no crash
 * produces one.
 */
export function readRecordAt(segment: Buffer, offset: number, fileKey: Buffer, path: string): RecordRead {
  if (offset + RECORD_HEADER_BYTES > segment.length) return { problem: 'a record header is cut short by the end of the file' };
  const header = segment.subarray(offset, offset + CHECKED_HEADER_BYTES);
  if (!header.subarray(0, RECORD_MAGIC.length).equals(RECORD_MAGIC) || crc32(header) !== segment.readUInt32LE(offset + CHECKED_HEADER_BYTES)) {
    return { problem: 'a record header fails its checksum' };
  }
  const bodyLength = header.readUInt32LE(8);
  const end = offset + RECORD_HEADER_BYTES + bodyLength;
  if (end > segment.length) return { problem: `a ${bodyLength}-byte record body is cut short by the end of the file` };
  const payload = unseal(fileKey, segment.subarray(offset + RECORD_HEADER_BYTES, end), recordAad(header, offset));
  if (payload === undefined) return { problem: 'a record fails authentication' };
  try {
    return { record: decodePayload(header.readUInt8(4), payload), end };
  } catch (err) {
    throw corruptionError(path, offset, `an authenticated record does not parse: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The offset of the first record at or after `from` that reads cleanly, if any. */
export function findReadableRecord(segment: Buffer, from: number, fileKey: Buffer, path: string): number | undefined {
  for (let at = segment.indexOf(RECORD_MAGIC, from); at !== -1; at = segment.indexOf(RECORD_MAGIC, at + 1)) {
    if ('record' in readRecordAt(segment, at, fileKey, path)) return at;
  }
  return undefined;
}

function recordAad(header: Buffer, offset: number): Buffer {
  return new ByteWriter().raw(header).u64(BigInt(offset)).finish();
}

function encodePayload(record: WalRecord): Buffer {
  const writer = new ByteWriter();
  switch (record.kind) {
    case 'segment-head':
      return writer.u64(record.lastIndex).message(HardState, record.hardState).optionalMessage(SnapshotMetadata, record.snapshot).finish();
    case 'save':
      writer.optionalMessage(SnapshotMetadata, record.snapshot).optionalMessage(HardState, record.hardState).u32(record.entries.length);
      for (const entry of record.entries) writer.message(Entry, entry);
      return writer.finish();
    case 'snapshot-taken':
      return writer.message(SnapshotMetadata, record.snapshot).finish();
  }
}

function decodePayload(kindCode: number, payload: Buffer): WalRecord {
  const reader = new ByteReader(payload);
  let record: WalRecord;
  switch (kindCode) {
    case KIND_CODES['segment-head']:
      record = { kind: 'segment-head', lastIndex: reader.u64(), hardState: reader.message(HardState), snapshot: reader.optionalMessage(SnapshotMetadata) };
      break;
    case KIND_CODES.save: {
      const snapshot = reader.optionalMessage(SnapshotMetadata);
      const hardState = reader.optionalMessage(HardState);
      const entries = Array.from({ length: reader.u32() }, () => reader.message(Entry));
      record = { kind: 'save', snapshot, entries, hardState };
      break;
    }
    case KIND_CODES['snapshot-taken']:
      record = { kind: 'snapshot-taken', snapshot: reader.message(SnapshotMetadata) };
      break;
    default:
      throw errors.internal(`unknown record kind ${kindCode}`);
  }
  reader.end();
  return record;
}
