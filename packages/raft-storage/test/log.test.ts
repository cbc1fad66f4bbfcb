import { open as openFile } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { entries, expectedLog, hardState, logOf, namesIn, readAll, snapshotAt, useStorageHarness } from './harness.js';

const harness = useStorageHarness();

describe('write-ahead log', () => {
  it('a new storage recovers an empty log with a zero hard state', async () => {
    const { recovered, notes } = await harness.open({ dataDir: await harness.dataDir() });
    expect(recovered.entries).toEqual([]);
    expect(recovered.snapshot).toBeUndefined();
    expect(recovered.hardState).toEqual(hardState(0, 0));
    expect(notes).toEqual([]);
  });

  it('reopens to the same entries and hard state that were saved', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 3, 1), hardState: hardState(1, 2, 7) });
    await storage.save({ entries: entries(4, 10, 1) });
    await storage.save({ hardState: hardState(1, 10, 7) });
    await storage.close();

    const { recovered, notes } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 10, 1));
    expect(recovered.hardState).toEqual(hardState(1, 10, 7));
    expect(notes).toEqual([]);
  });

  it('skips the fdatasync of a save raft says need not sync, and the next synced save makes both durable', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 3, 1), hardState: hardState(1, 1, 7) });
    // Every WAL write goes through a FileHandle: count its fdatasyncs.
    const probe = await openFile(`${dataDir}/probe`, 'w');
    const datasync = vi.spyOn(Object.getPrototypeOf(probe) as { datasync(): Promise<void> }, 'datasync');
    await probe.close();
    try {
      await storage.save({ hardState: hardState(1, 3, 7), sync: false });
      expect(datasync).not.toHaveBeenCalled();
      await storage.save({ entries: entries(4, 5, 1) });
      expect(datasync).toHaveBeenCalledTimes(1);
    } finally {
      datasync.mockRestore();
    }
    await storage.close();

    const { recovered } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(1, 5, 1));
    expect(recovered.hardState).toEqual(hardState(1, 3, 7));
  });

  it('replaces the tail from the first overwritten index when a new leader rewrites it, across reopens', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 10, 1), hardState: hardState(1, 5) });
    // A new leader of term 2 never had 8..10 and overwrites from 8: 8..10 of term 1 must not come back.
    await storage.save({ entries: entries(8, 9, 2), hardState: hardState(2, 5) });
    await storage.close();

    const first = await harness.open({ dataDir });
    expect(logOf(first.recovered)).toEqual([...expectedLog(1, 7, 1), ...expectedLog(8, 9, 2)]);
    await first.storage.save({ entries: entries(6, 6, 3) });
    await first.storage.close();

    const second = await harness.open({ dataDir });
    expect(logOf(second.recovered)).toEqual([...expectedLog(1, 5, 1), ...expectedLog(6, 6, 3)]);
  });

  it('refuses entries that would leave a gap or that a snapshot covers, and compaction past the log end, writing nothing', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 5, 1) });
    await expect(storage.save({ entries: entries(7, 8, 1) })).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    await expect(storage.save({ entries: [...entries(6, 6, 1), ...entries(8, 8, 1)] })).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    await storage.writeSnapshot(snapshotAt(4, 1), [Buffer.from('state at 4')]);
    await storage.compact(snapshotAt(4, 1));
    await expect(storage.save({ entries: entries(3, 6, 2) })).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    await storage.writeSnapshot(snapshotAt(9, 1), [Buffer.from('state at 9')]);
    await expect(storage.compact(snapshotAt(9, 1))).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    await storage.close();

    const { recovered } = await harness.open({ dataDir });
    expect(logOf(recovered)).toEqual(expectedLog(5, 5, 1));
  });

  it('starts a new segment once the active one reaches segmentBytes, and replays across segments', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir, segmentBytes: 1024 });
    for (let index = 1; index <= 60; index++) await storage.save({ entries: entries(index, index, 1), hardState: hardState(1, index) });
    await storage.close();

    const segments = await namesIn(dataDir, 'wal');
    expect(segments.length).toBeGreaterThan(3);
    expect(segments[0]).toBe('0000000000000001-0000000000000001.wal');
    const { recovered } = await harness.open({ dataDir, segmentBytes: 1024 });
    expect(logOf(recovered)).toEqual(expectedLog(1, 60, 1));
    expect(recovered.hardState).toEqual(hardState(1, 60));
  });

  it('a compaction releases the segments its snapshot covers, keeping logEntriesForSlowFollowers behind it', async () => {
    const dataDir = await harness.dataDir();
    const options = { dataDir, segmentBytes: 512, logEntriesForSlowFollowers: 20 };
    const { storage } = await harness.open(options);
    for (let index = 1; index <= 100; index++) await storage.save({ entries: entries(index, index, 1) });
    const before = await namesIn(dataDir, 'wal');

    await storage.writeSnapshot(snapshotAt(90, 1), [Buffer.from('state at 90')]);
    await storage.compact(snapshotAt(90, 1));
    const after = await namesIn(dataDir, 'wal');
    expect(after.length).toBeLessThan(before.length);
    // The oldest segment left starts at or before 70 = 90 - 20: the slow-follower margin is still on disk.
    const firstIndexLeft = BigInt(`0x${after[0]?.split('-')[1]?.slice(0, 16)}`);
    expect(firstIndexLeft).toBeLessThanOrEqual(70n);
    expect(firstIndexLeft).toBeGreaterThan(1n);
    await storage.close();

    const { recovered, storage: reopened } = await harness.open(options);
    expect(recovered.snapshot).toEqual(snapshotAt(90, 1));
    expect(logOf(recovered)).toEqual(expectedLog(91, 100, 1));
    expect((await readAll(await reopened.openSnapshot())).toString()).toBe('state at 90');
  });

  it('keeps no old snapshot by default and keepOldSnapshots of them when asked', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir, keepOldSnapshots: 1 });
    await storage.save({ entries: entries(1, 30, 1) });
    for (const index of [10, 20, 30]) {
      await storage.writeSnapshot(snapshotAt(index, 1), [Buffer.from(`state at ${index}`)]);
      await storage.compact(snapshotAt(index, 1));
    }
    expect(await namesIn(dataDir, 'snap')).toEqual(['0000000000000001-0000000000000014.snap', '0000000000000001-000000000000001e.snap']);
    await storage.close();

    const { storage: reopened } = await harness.open({ dataDir });
    expect(await namesIn(dataDir, 'snap')).toEqual(['0000000000000001-000000000000001e.snap']);
    expect((await readAll(await reopened.openSnapshot())).toString()).toBe('state at 30');
  });

  it('a snapshot restored from the leader replaces the whole log, stale tail included', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 20, 1), hardState: hardState(1, 10) });
    // The leader's snapshot at 15 is of term 2: this member's 11..20 of term 1 were never committed.
    await storage.writeSnapshot(snapshotAt(15, 2), [Buffer.from('leader state at 15')]);
    await storage.save({ snapshot: snapshotAt(15, 2), entries: entries(16, 17, 2), hardState: hardState(2, 15) });
    await storage.close();

    const { recovered, storage: reopened } = await harness.open({ dataDir });
    expect(recovered.snapshot).toEqual(snapshotAt(15, 2));
    expect(logOf(recovered)).toEqual(expectedLog(16, 17, 2));
    expect(recovered.hardState).toEqual(hardState(2, 15));
    expect((await readAll(await reopened.openSnapshot())).toString()).toBe('leader state at 15');
  });

  it('refuses to save or compact to a snapshot whose data was never written', async () => {
    const { storage } = await harness.open({ dataDir: await harness.dataDir() });
    await storage.save({ entries: entries(1, 5, 1) });
    await expect(storage.save({ snapshot: snapshotAt(9, 2) })).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition });
    await expect(storage.compact(snapshotAt(3, 1))).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition });
    await expect(storage.openSnapshot()).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it('streams snapshot data back in chunks of snapshotChunkBytes, byte for byte', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir, snapshotChunkBytes: 1000 });
    const data = Buffer.from(Array.from({ length: 4567 }, (_, i) => (i * 31) % 251));
    await storage.save({ entries: entries(1, 1, 1) });
    // Pieces of uneven sizes must come back regrouped into whole chunks.
    await storage.writeSnapshot(snapshotAt(1, 1), [data.subarray(0, 3), data.subarray(3, 2500), data.subarray(2500)]);
    await storage.compact(snapshotAt(1, 1));

    const sizes: number[] = [];
    const chunks: Buffer[] = [];
    const reader = await storage.openSnapshot();
    expect(reader.metadata).toEqual(snapshotAt(1, 1));
    for await (const chunk of reader) {
      sizes.push(chunk.length);
      chunks.push(chunk);
    }
    expect(sizes).toEqual([1000, 1000, 1000, 1000, 567]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('stores an empty snapshot and reads it back as no data', async () => {
    const { storage } = await harness.open({ dataDir: await harness.dataDir() });
    await storage.save({ entries: entries(1, 1, 1) });
    await storage.writeSnapshot(snapshotAt(1, 1), []);
    await storage.compact(snapshotAt(1, 1));
    expect((await readAll(await storage.openSnapshot())).length).toBe(0);
  });

  it('leaves nothing behind when the snapshot stream fails', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('partial');
      throw new Error('the leader went away');
    }
    await expect(storage.writeSnapshot(snapshotAt(1, 1), failing())).rejects.toThrow('the leader went away');
    expect(await namesIn(dataDir, 'snap')).toEqual([]);
  });

  it('refuses every call once closed', async () => {
    const { storage } = await harness.open({ dataDir: await harness.dataDir() });
    await storage.close();
    await expect(storage.save({ entries: entries(1, 1, 1) })).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition });
    await expect(storage.writeSnapshot(snapshotAt(1, 1), [])).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition });
  });
});
