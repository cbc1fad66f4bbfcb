import { randomBytes } from 'node:crypto';
import { ByteReader, ByteWriter } from './binary.js';
import { corruptionError } from './corruption.js';
import { deriveKey } from './sealing.js';

/** What a sealed file needs from the key ring: the data keys by id, and which one seals new files. */
export interface DataKeyLookup {
  readonly activeDataKeyId: number;
  dataKey(id: number): Buffer | undefined;
}

/** The two kinds of sealed file; the magic also names the purpose their per-file keys are derived for. */
export type SealedFileKind = 'wal' | 'snapshot';

const MAGIC: Record<SealedFileKind, Buffer> = { wal: Buffer.from('SHOALWAL'), snapshot: Buffer.from('SHOALSNP') };
const FORMAT_VERSION = 1;
const SALT_BYTES = 16;

/** The plaintext header of a sealed file, and the key its contents are sealed with. */
export interface SealedFileHeader {
  /** The header as stored. */
  readonly bytes: Buffer;
  readonly dataKeyId: number;
  /** The kind's identifying numbers: a WAL segment's sequence number, a snapshot's term and index. */
  readonly fields: bigint[];
  /** HKDF(data key, salt = the whole header): each file gets its own key. */
  readonly fileKey: Buffer;
}

/**
 * The size of a sealed-file header with `fieldCount` fields. Layout: magic (8) | format version u32 | data key id u32 | fields u64… | random salt (16).
 *
 * Nothing in it is secret. Deriving each file's key from the data key with the whole header as salt
 * binds the contents to the header (a record copied into another file, or a header edited to claim
 * another sequence number, no longer authenticates) and gives every file a fresh key, so the random
 * 96-bit GCM nonces never approach their per-key limit however long a data key lives.
 */
export function sealedFileHeaderBytes(fieldCount: number): number {
  return MAGIC.wal.length + 4 + 4 + 8 * fieldCount + SALT_BYTES;
}

/** A new header for a file of `kind`, sealed under the active data key. */
export function newSealedFileHeader(kind: SealedFileKind, keys: DataKeyLookup, fields: bigint[]): SealedFileHeader {
  const writer = new ByteWriter().raw(MAGIC[kind]).u32(FORMAT_VERSION).u32(keys.activeDataKeyId);
  for (const field of fields) writer.u64(field);
  const bytes = writer.raw(randomBytes(SALT_BYTES)).finish();
  return withFileKey(kind, bytes, keys.activeDataKeyId, fields, keys, 'a new file');
}

/**
 * Parses the header at the start of `bytes` (which may hold more) for the file at `path`. Sealed files
 * appear only by rename after an fsync, so a bad header is corruption, never a torn write.
 */
export function readSealedFileHeader(kind: SealedFileKind, bytes: Buffer, fieldCount: number, keys: DataKeyLookup, path: string): SealedFileHeader {
  const length = sealedFileHeaderBytes(fieldCount);
  if (bytes.length < length) throw corruptionError(path, 0, `the ${length}-byte file header is cut short at ${bytes.length} bytes`);
  const reader = new ByteReader(bytes.subarray(0, length));
  if (!reader.raw(MAGIC[kind].length).equals(MAGIC[kind])) throw corruptionError(path, 0, `not a ${kind} file (bad magic)`);
  const version = reader.u32();
  if (version !== FORMAT_VERSION) throw corruptionError(path, 8, `unknown format version ${version}`);
  const dataKeyId = reader.u32();
  const fields = Array.from({ length: fieldCount }, () => reader.u64());
  return withFileKey(kind, Buffer.from(bytes.subarray(0, length)), dataKeyId, fields, keys, path);
}

function withFileKey(kind: SealedFileKind, bytes: Buffer, dataKeyId: number, fields: bigint[], keys: DataKeyLookup, path: string): SealedFileHeader {
  const dataKey = keys.dataKey(dataKeyId);
  if (dataKey === undefined) throw corruptionError(path, 12, `sealed with data key ${dataKeyId}, which the key file does not hold`);
  return { bytes, dataKeyId, fields, fileKey: deriveKey(dataKey, bytes, `${kind} file`) };
}

/** A number as the 16 hex digits sealed files are named with, so names sort numerically. */
export function hex16(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}
