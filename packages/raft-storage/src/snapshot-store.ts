import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapshotMetadata } from '@shoal/proto';
import { errors } from '@shoal/errors';
import { ByteWriter } from './binary.js';
import { corruptionError } from './corruption.js';
import { fsyncDirectory, listMatching, PRIVATE_FILE_MODE, readUpTo, removeDurably, tempPathFor, writeFully } from './durable-fs.js';
import { hex16, newSealedFileHeader, readSealedFileHeader, sealedFileHeaderBytes, type DataKeyLookup, type SealedFileHeader } from './sealed-file.js';
import { SEAL_OVERHEAD, seal, unseal } from './sealing.js';

/** `<term>-<index>.snap`, both as 16 hex digits (etcd's naming), so names sort by term then index. */
const SNAPSHOT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** The largest plaintext chunk, which caps what a reader allocates for a frame whatever its length says. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 16 * 1024 * 1024;

/** A frame: sealed length u32 | flags u8 | sealed chunk. */
const FRAME_PREFIX_BYTES = 5;
const FINAL_CHUNK = 1;

/** One snapshot file on disk. */
interface SnapshotFile {
  readonly term: bigint;
  readonly index: bigint;
  readonly path: string;
  readonly dataKeyId: number;
}

/**
 * A stored snapshot being read: its metadata (checked when it was opened) and its data as a stream
 * of chunks. Each chunk is authenticated before it is yielded, and a stream that is cut short,
 * reordered or extended throws instead of ending, so a consumer must not act on the data until the
 * iteration completes. Iterate it once; breaking out of the loop, or {@link SnapshotReader.close},
 * releases the file.
 */
export interface SnapshotReader extends AsyncIterable<Buffer> {
  readonly metadata: SnapshotMetadata;
  close(): Promise<void>;
}

/**
 * The snapshot files in one directory. Layout of a file: a sealed-file header (with the snapshot's term
 * and index), then frames. Frame 0 holds the encoded {@link SnapshotMetadata}; frames 1… hold the data
 * in chunks of a fixed size, the last flagged final (an empty snapshot has one empty final chunk). Each
 * frame is sealed on its own with the frame number and flags as AAD, so chunks cannot be dropped,
 * repeated, reordered or moved between files undetected, and neither side ever holds more than one.
 */
export class SnapshotStore {
  /** Data keys that snapshots being written are sealed with: a key must outlive every file using it. */
  private readonly writesInFlight: number[] = [];

  private constructor(
    private readonly dir: string,
    private readonly keys: DataKeyLookup,
    private readonly chunkBytes: number,
    private readonly files: Map<string, SnapshotFile>,
  ) {}

  /** True if `dir` holds any snapshot file. */
  static async hasSnapshots(dir: string): Promise<boolean> {
    return (await listMatching(dir, SNAPSHOT_NAME)).length > 0;
  }

  /** Indexes the snapshot files in `dir`, reading each header (a bad header is corruption). */
  static async open(dir: string, keys: DataKeyLookup, chunkBytes: number): Promise<SnapshotStore> {
    const files = new Map<string, SnapshotFile>();
    for (const { path, groups } of await listMatching(dir, SNAPSHOT_NAME)) {
      const [term, index] = groups.map((digits) => BigInt(`0x${digits}`));
      const handle = await open(path, 'r');
      try {
        const header = readSealedFileHeader('snapshot', await readUpTo(handle, HEADER_BYTES, 0), 2, keys, path);
        checkHeaderNames(header, term, index, path);
        files.set(path, { term: term as bigint, index: index as bigint, path, dataKeyId: header.dataKeyId });
      } finally {
        await handle.close();
      }
    }
    return new SnapshotStore(dir, keys, chunkBytes, files);
  }

  /** True if the snapshot `metadata` names is stored. */
  has(metadata: SnapshotMetadata): boolean {
    return this.files.has(this.pathFor(metadata));
  }

  /** The file a snapshot is stored in. */
  pathFor(metadata: SnapshotMetadata): string {
    return join(this.dir, `${hex16(metadata.term)}-${hex16(metadata.index)}.snap`);
  }

  /** The data keys stored or in-progress snapshots are sealed with. */
  dataKeysInUse(): Set<number> {
    return new Set([...this.writesInFlight, ...[...this.files.values()].map((file) => file.dataKeyId)]);
  }

  /**
   * Stores a snapshot from a stream of data, holding one chunk at a time. The file appears under its
   * name only once complete and fsynced (written to a temporary file, fsynced, renamed, directory
   * fsynced); if `data` throws, nothing is stored.
   */
  async write(metadata: SnapshotMetadata, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    if (metadata.index === 0n) throw errors.invalidArgument('a snapshot must cover at least one entry (index 0 given)');
    const header = newSealedFileHeader('snapshot', this.keys, [metadata.term, metadata.index]);
    const path = this.pathFor(metadata);
    const temp = tempPathFor(path);
    this.writesInFlight.push(header.dataKeyId);
    try {
      const handle = await open(temp, 'wx', PRIVATE_FILE_MODE);
      try {
        await writeFully(handle, header.bytes, 0);
        let position = header.bytes.length;
        let frameNumber = 0n;
        const writeFrame = async (plaintext: Uint8Array, flags: number): Promise<void> => {
          const frame = sealFrame(header, frameNumber++, flags, plaintext);
          await writeFully(handle, frame, position);
          position += frame.length;
        };
        await writeFrame(SnapshotMetadata.encode(metadata).finish(), 0);
        for await (const chunk of fixedSizeChunks(data, this.chunkBytes)) await writeFrame(chunk.bytes, chunk.final ? FINAL_CHUNK : 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
      await fsyncDirectory(this.dir);
      this.files.set(path, { term: metadata.term, index: metadata.index, path, dataKeyId: header.dataKeyId });
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    } finally {
      this.writesInFlight.splice(this.writesInFlight.indexOf(header.dataKeyId), 1);
    }
  }

  /** Opens a stored snapshot, checking its header and metadata; NOT_FOUND if it is not stored. */
  async openReader(metadata: SnapshotMetadata): Promise<SnapshotReader> {
    const file = this.files.get(this.pathFor(metadata));
    if (file === undefined) {
      throw errors.notFound(`no snapshot is stored at index ${metadata.index}, term ${metadata.term}`, { index: metadata.index, term: metadata.term });
    }
    return SnapshotFileReader.open(file, this.keys);
  }

  /**
   * Removes older snapshots once `current` is the one the log refers to: all but the `keepOld` newest
   * sealed under the active data key (older snapshots under a retired key go, so the key can).
   * Newer files are left alone: one may be a snapshot received from the leader and not yet saved.
   */
  async prune(current: SnapshotMetadata, keepOld: number, activeDataKeyId: number): Promise<void> {
    const older = [...this.files.values()].filter((file) => file.index < current.index).sort((a, b) => (a.index > b.index ? -1 : 1));
    let kept = 0;
    for (const file of older) {
      if (file.dataKeyId === activeDataKeyId && kept < keepOld) {
        kept++;
        continue;
      }
      await removeDurably(file.path);
      this.files.delete(file.path);
    }
  }

  /**
   * Removes, when opening, the snapshots newer than the one the log refers to (all of them if it
   * refers to none): written, but the crash came before they were saved or compacted to. Returns
   * their paths.
   */
  async removeNewerThan(current: SnapshotMetadata | undefined): Promise<string[]> {
    const newer = [...this.files.values()].filter((file) => file.index > (current?.index ?? 0n));
    for (const file of newer) {
      await removeDurably(file.path);
      this.files.delete(file.path);
    }
    return newer.map((file) => file.path);
  }
}

const HEADER_BYTES = sealedFileHeaderBytes(2);

function checkHeaderNames(header: SealedFileHeader, term: bigint | undefined, index: bigint | undefined, path: string): void {
  const [headerTerm, headerIndex] = header.fields;
  if (headerTerm !== term || headerIndex !== index) {
    throw corruptionError(path, 16, `the header says term ${headerTerm}, index ${headerIndex}, but the name says term ${term}, index ${index}`);
  }
}

function frameAad(frameNumber: bigint, flags: number): Buffer {
  return new ByteWriter().u64(frameNumber).u8(flags).finish();
}

function sealFrame(header: SealedFileHeader, frameNumber: bigint, flags: number, plaintext: Uint8Array): Buffer {
  const frame = seal(header.fileKey, plaintext, frameAad(frameNumber, flags), FRAME_PREFIX_BYTES);
  frame.writeUInt32LE(frame.length - FRAME_PREFIX_BYTES, 0);
  frame.writeUInt8(flags, 4);
  return frame;
}

/**
 * Regroups a stream into chunks of exactly `size` bytes, flagging the last (which may be shorter, or
 * empty when the stream is). Holding one chunk back until more data arrives is what lets the last be
 * flagged, and a reader tell a complete snapshot from a truncated one.
 */
async function* fixedSizeChunks(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<{ bytes: Buffer; final: boolean }> {
  let chunk = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const piece of data) {
    for (let used = 0; used < piece.length; ) {
      if (filled === size) {
        yield { bytes: chunk, final: false };
        chunk = Buffer.allocUnsafe(size);
        filled = 0;
      }
      const take = Math.min(size - filled, piece.length - used);
      chunk.set(piece.subarray(used, used + take), filled);
      filled += take;
      used += take;
    }
  }
  yield { bytes: chunk.subarray(0, filled), final: true };
}

/** One frame as read back. */
interface ReadFrame {
  readonly plaintext: Buffer;
  readonly final: boolean;
  readonly end: number;
}

class SnapshotFileReader implements SnapshotReader {
  private iterated = false;
  private closed = false;

  private constructor(
    readonly metadata: SnapshotMetadata,
    private readonly file: SnapshotFile,
    private readonly handle: FileHandle,
    private readonly header: SealedFileHeader,
    private readonly size: number,
    private readonly dataStart: number,
  ) {}

  static async open(file: SnapshotFile, keys: DataKeyLookup): Promise<SnapshotFileReader> {
    const handle = await open(file.path, 'r');
    try {
      const { size } = await handle.stat();
      const header = readSealedFileHeader('snapshot', await readUpTo(handle, HEADER_BYTES, 0), 2, keys, file.path);
      checkHeaderNames(header, file.term, file.index, file.path);
      const first = await readFrame(handle, header, 0n, header.bytes.length, size, file.path);
      if (first.final) throw corruptionError(file.path, header.bytes.length, 'the metadata frame is flagged final');
      const metadata = decodeMetadata(first.plaintext, file.path, header.bytes.length);
      if (metadata.term !== file.term || metadata.index !== file.index) {
        throw corruptionError(file.path, header.bytes.length, `the metadata says term ${metadata.term}, index ${metadata.index}, unlike the file name`);
      }
      return new SnapshotFileReader(metadata, file, handle, header, size, first.end);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.iterated) throw errors.failedPrecondition('a snapshot reader can be iterated only once');
    this.iterated = true;
    return this.chunks();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    try {
      for (let frameNumber = 1n, position = this.dataStart; ; frameNumber++) {
        const frame = await readFrame(this.handle, this.header, frameNumber, position, this.size, this.file.path);
        if (frame.final && frame.end !== this.size) throw corruptionError(this.file.path, frame.end, `${this.size - frame.end} bytes follow the final chunk`);
        yield frame.plaintext;
        if (frame.final) return;
        position = frame.end;
      }
    } finally {
      await this.close();
    }
  }
}

function decodeMetadata(plaintext: Buffer, path: string, offset: number): SnapshotMetadata {
  try {
    return SnapshotMetadata.decode(plaintext);
  } catch (err) {
    throw corruptionError(path, offset, `the authenticated metadata frame does not parse: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function readFrame(handle: FileHandle, header: SealedFileHeader, frameNumber: bigint, position: number, size: number, path: string): Promise<ReadFrame> {
  if (position + FRAME_PREFIX_BYTES > size) throw corruptionError(path, position, `the snapshot ends before its final chunk (frame ${frameNumber} is missing)`);
  const prefix = await readUpTo(handle, FRAME_PREFIX_BYTES, position);
  const sealedLength = prefix.readUInt32LE(0);
  const flags = prefix.readUInt8(4);
  const end = position + FRAME_PREFIX_BYTES + sealedLength;
  if ((flags & ~FINAL_CHUNK) !== 0 || sealedLength > MAX_SNAPSHOT_CHUNK_BYTES + SEAL_OVERHEAD || end > size) {
    throw corruptionError(path, position, `frame ${frameNumber} has an impossible header (length ${sealedLength}, flags ${flags})`);
  }
  const plaintext = unseal(header.fileKey, await readUpTo(handle, sealedLength, position + FRAME_PREFIX_BYTES), frameAad(frameNumber, flags));
  if (plaintext === undefined) throw corruptionError(path, position, `frame ${frameNumber} fails authentication`);
  return { plaintext, final: (flags & FINAL_CHUNK) !== 0, end };
}
