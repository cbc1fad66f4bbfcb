import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { entries, expectedLog, logOf, namesIn, readAll, snapshotAt, useStorageHarness } from './harness.js';

const harness = useStorageHarness();

/** Sealed-file header of a WAL segment, then records of a 16-byte header (body length at +8) and a body. */
const SEGMENT_HEADER_BYTES = 40;
const RECORD_HEADER_BYTES = 16;

/** The byte ranges of the records in a segment file, read from their headers. */
async function recordsIn(path: string): Promise<Array<{ offset: number; end: number }>> {
  const data = await readFile(path);
  const records = [];
  for (let offset = SEGMENT_HEADER_BYTES; offset < data.length; ) {
    const end = offset + RECORD_HEADER_BYTES + data.readUInt32LE(offset + 8);
    records.push({ offset, end });
    offset = end;
  }
  return records;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const data = await readFile(path);
  data[offset] = (data[offset] ?? 0) ^ 0x40;
  await writeFile(path, data);
}

/** A storage holding entries 1..count, one save each; returns its segments' paths, oldest first. */
async function logWithOneSavePerEntry(dataDir: string, count: number, segmentBytes?: number): Promise<string[]> {
  const { storage } = await harness.open({ dataDir, segmentBytes });
  for (let index = 1; index <= count; index++) await storage.save({ entries: entries(index, index, 1) });
  await storage.close();
  return (await namesIn(dataDir, 'wal')).map((name) => join(dataDir, 'raft', 'wal', name));
}

describe('a torn tail', () => {
  it('is cut off and reported when the last record is cut short, and the log then grows from there', async () => {
    const dataDir = await harness.dataDir();
    const [segment = ''] = await logWithOneSavePerEntry(dataDir, 5);
    const last = (await recordsIn(segment)).at(-1);
    await truncate(segment, (last?.end ?? 0) - 10);

    const { storage, recovered, notes } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 4, 1));
    expect(notes).toEqual([expect.objectContaining({ kind: 'torn-tail-truncated', file: segment, offset: last?.offset })]);
    expect((await stat(segment)).size).toBe(last?.offset);

    await storage.save({ entries: entries(5, 6, 2) });
    await storage.close();
    const reopened = await harness.open({ dataDir });
    expect(logOf(reopened.recovered)).toEqual([...expectedLog(1, 4, 1), ...expectedLog(5, 6, 2)]);
    expect(reopened.notes).toEqual([]);
  });

  it('is cut off when the file ends in zeros a crash left after the last record', async () => {
    const dataDir = await harness.dataDir();
    const [segment = ''] = await logWithOneSavePerEntry(dataDir, 3);
    const size = (await stat(segment)).size;
    await writeFile(segment, Buffer.alloc(4096), { flag: 'a' });

    const { recovered, notes } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 3, 1));
    expect(notes).toEqual([expect.objectContaining({ kind: 'torn-tail-truncated', offset: size, discardedBytes: 4096 })]);
  });

  it('includes a last record with a flipped byte, which fails authentication', async () => {
    const dataDir = await harness.dataDir();
    const [segment = ''] = await logWithOneSavePerEntry(dataDir, 5);
    const last = (await recordsIn(segment)).at(-1);
    await flipByte(segment, (last?.end ?? 0) - 20);

    const { recovered, notes } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 4, 1));
    expect(notes).toEqual([expect.objectContaining({ kind: 'torn-tail-truncated', problem: 'a record fails authentication' })]);
  });
});

describe('corruption', () => {
  it('in a record followed by valid ones is a hard error naming the file and offset', async () => {
    const dataDir = await harness.dataDir();
    const [segment = ''] = await logWithOneSavePerEntry(dataDir, 5);
    const middle = (await recordsIn(segment))[2];
    await flipByte(segment, (middle?.offset ?? 0) + RECORD_HEADER_BYTES + 14);

    const opening = harness.open({ dataDir });
    await expect(opening).rejects.toMatchObject({ code: ErrorCode.Internal, details: { file: segment, offset: middle?.offset } });
    await expect(opening).rejects.toThrow(`${segment} at byte ${middle?.offset}: a record fails authentication, yet a valid record follows`);
    // Nothing was repaired away.
    expect((await stat(segment)).size).toBe((await recordsIn(segment)).at(-1)?.end);
  });

  it('in a record header (its length) followed by valid records is a hard error too', async () => {
    const dataDir = await harness.dataDir();
    const [segment = ''] = await logWithOneSavePerEntry(dataDir, 5);
    const middle = (await recordsIn(segment))[2];
    await flipByte(segment, (middle?.offset ?? 0) + 9);
    await expect(harness.open({ dataDir })).rejects.toThrow(`${segment} at byte ${middle?.offset}: a record header fails its checksum`);
  });

  it('in the last record of a segment that is not the last is a hard error, not a torn tail', async () => {
    const dataDir = await harness.dataDir();
    const [path = ''] = await logWithOneSavePerEntry(dataDir, 30, 600);
    const last = (await recordsIn(path)).at(-1);
    await truncate(path, (last?.end ?? 0) - 1);

    await expect(harness.open({ dataDir, segmentBytes: 600 })).rejects.toThrow(`${path} at byte ${last?.offset}`);
  });

  it('a segment missing between others is a hard error naming the gap', async () => {
    const dataDir = await harness.dataDir();
    const [, second = ''] = await logWithOneSavePerEntry(dataDir, 30, 600);
    await rm(second);

    await expect(harness.open({ dataDir })).rejects.toThrow('segment 2 is missing before it');
  });

  it('a first segment deleted while no snapshot covers it is a hard error', async () => {
    const dataDir = await harness.dataDir();
    const [first = ''] = await logWithOneSavePerEntry(dataDir, 30, 600);
    await rm(first);

    await expect(harness.open({ dataDir })).rejects.toThrow(/entries 1 to \d+ are in no segment and no snapshot covers them/);
  });

  it('of the key file refuses to open', async () => {
    const dataDir = await harness.dataDir();
    await logWithOneSavePerEntry(dataDir, 1);
    await writeFile(join(dataDir, 'raft', 'keys.json'), '{"version":1');
    await expect(harness.open({ dataDir })).rejects.toMatchObject({ code: ErrorCode.Internal, message: expect.stringContaining('keys.json') });
  });

  it('a deleted WAL directory refuses to open rather than starting a new log', async () => {
    const dataDir = await harness.dataDir();
    await logWithOneSavePerEntry(dataDir, 1);
    await rm(join(dataDir, 'raft', 'wal'), { recursive: true });
    await expect(harness.open({ dataDir })).rejects.toThrow('the WAL directory is missing');
  });

  it('a deleted key file refuses to open rather than starting a new log', async () => {
    const dataDir = await harness.dataDir();
    await logWithOneSavePerEntry(dataDir, 1);
    await rm(join(dataDir, 'raft', 'keys.json'));
    await expect(harness.open({ dataDir })).rejects.toThrow('the key file is missing');
  });
});

describe('snapshot corruption', () => {
  /** A storage compacted to a 5-chunk snapshot at index 3; returns the snapshot file and its data. */
  async function storedSnapshot(dataDir: string): Promise<{ path: string; data: Buffer }> {
    const { storage } = await harness.open({ dataDir, snapshotChunkBytes: 100 });
    const data = Buffer.alloc(500, 'snapshot data ');
    await storage.save({ entries: entries(1, 3, 1) });
    await storage.writeSnapshot(snapshotAt(3, 1), [data]);
    await storage.compact(snapshotAt(3, 1));
    await storage.close();
    return { path: join(dataDir, 'raft', 'snap', '0000000000000001-0000000000000003.snap'), data };
  }

  /** Byte ranges of a snapshot file's frames (5-byte prefix with the sealed length first) after its 48-byte header. */
  async function framesIn(path: string): Promise<Array<{ offset: number; end: number }>> {
    const data = await readFile(path);
    const frames = [];
    for (let offset = 48; offset < data.length; ) {
      const end = offset + 5 + data.readUInt32LE(offset);
      frames.push({ offset, end });
      offset = end;
    }
    return frames;
  }

  it('reads an intact snapshot back whole', async () => {
    const dataDir = await harness.dataDir();
    const { data } = await storedSnapshot(dataDir);
    const { storage } = await harness.open({ dataDir });
    expect((await readAll(await storage.openSnapshot())).equals(data)).toBe(true);
  });

  it('a flipped byte in a chunk is detected when the stream reaches it, naming the file and frame', async () => {
    const dataDir = await harness.dataDir();
    const { path } = await storedSnapshot(dataDir);
    const third = (await framesIn(path))[3];
    await flipByte(path, (third?.offset ?? 0) + 30);

    const { storage } = await harness.open({ dataDir });
    const received: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of await storage.openSnapshot()) received.push(chunk);
    })();
    await expect(reading).rejects.toThrow(`${path} at byte ${third?.offset}: frame 3 fails authentication`);
    expect(received.length).toBe(2);
  });

  it('a snapshot cut short at a chunk boundary is detected instead of ending early', async () => {
    const dataDir = await harness.dataDir();
    const { path } = await storedSnapshot(dataDir);
    const frames = await framesIn(path);
    await truncate(path, frames.at(-2)?.end ?? 0);

    const { storage } = await harness.open({ dataDir });
    await expect(readAll(await storage.openSnapshot())).rejects.toThrow('the snapshot ends before its final chunk');
  });

  it('two chunks swapped are detected', async () => {
    const dataDir = await harness.dataDir();
    const { path } = await storedSnapshot(dataDir);
    const [, first, second] = await framesIn(path);
    const data = await readFile(path);
    const swapped = Buffer.concat([
      data.subarray(0, first?.offset),
      data.subarray(second?.offset, second?.end),
      data.subarray(first?.offset, first?.end),
      data.subarray(second?.end),
    ]);
    await writeFile(path, swapped);

    const { storage } = await harness.open({ dataDir });
    await expect(readAll(await storage.openSnapshot())).rejects.toThrow('frame 1 fails authentication');
  });

  it('a missing snapshot the log refers to refuses to open', async () => {
    const dataDir = await harness.dataDir();
    const { path } = await storedSnapshot(dataDir);
    await rm(path);
    await expect(harness.open({ dataDir })).rejects.toThrow(`${path} at byte 0: the snapshot the WAL refers to is missing`);
  });

  it('a corrupt metadata frame of the snapshot the log refers to refuses to open', async () => {
    const dataDir = await harness.dataDir();
    const { path } = await storedSnapshot(dataDir);
    await flipByte(path, 48 + 10);
    await expect(harness.open({ dataDir })).rejects.toThrow(`${path} at byte 48: frame 0 fails authentication`);
  });
});

describe('crash leftovers', () => {
  it('a snapshot written but never saved or compacted to is removed when opening, and reported', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 3, 1) });
    await storage.writeSnapshot(snapshotAt(3, 1), [Buffer.from('never saved')]);
    await storage.close();

    const { recovered, notes } = await harness.open({ dataDir });
    expect(recovered.snapshot).toBeUndefined();
    expect(notes).toEqual([{ kind: 'unreferenced-snapshot-removed', file: join(dataDir, 'raft', 'snap', '0000000000000001-0000000000000003.snap') }]);
    expect(await namesIn(dataDir, 'snap')).toEqual([]);
  });

  it('half-written temporary files are removed when opening, and reported', async () => {
    const dataDir = await harness.dataDir();
    await logWithOneSavePerEntry(dataDir, 2);
    const leftovers = [join(dataDir, 'raft', 'wal', '0000000000000002-0000000000000003.wal.0a1b2c.tmp'), join(dataDir, 'raft', 'snap', 'x.snap.3d4e5f.tmp')];
    for (const path of leftovers) await writeFile(path, 'half written');

    const { recovered, notes } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 2, 1));
    expect(notes).toEqual(leftovers.map((file) => ({ kind: 'temp-file-removed', file })));
    expect(await namesIn(dataDir, 'wal')).toEqual(['0000000000000001-0000000000000001.wal']);
  });
});
