import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { entries, snapshotAt, useStorageHarness } from './harness.js';

const harness = useStorageHarness();
const MiB = 1024 * 1024;
const SNAPSHOT_BYTES = 200 * MiB;
const PIECE_BYTES = 64 * 1024;

// Collecting before each sample measures what is still referenced, not garbage the GC has not reached yet.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Tracks the peak of live memory (JS heap and Buffer contents) above what was live when it was created.
 * `arrayBuffers` rather than `external`: the latter also counts OpenSSL's own scratch memory, which is
 * released lazily and says nothing about what this code holds.
 */
class MemoryWatch {
  private baseline = 0;
  peakGrowth = 0;

  static async start(): Promise<MemoryWatch> {
    const watch = new MemoryWatch();
    watch.baseline = await MemoryWatch.live();
    return watch;
  }

  async sample(): Promise<void> {
    this.peakGrowth = Math.max(this.peakGrowth, (await MemoryWatch.live()) - this.baseline);
  }

  /** V8 frees dead buffers' memory on a background sweeper: give it a turn before reading the figure. */
  private static async live(): Promise<number> {
    collectGarbage();
    await new Promise(setImmediate);
    collectGarbage();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  }
}

/** 200 MB of distinct 64 KiB pieces, hashed as they go out; samples memory every 16 MiB. */
async function* generatedData(hash: ReturnType<typeof createHash>, watch: MemoryWatch): AsyncGenerator<Buffer> {
  for (let piece = 0; piece < SNAPSHOT_BYTES / PIECE_BYTES; piece++) {
    const bytes = Buffer.alloc(PIECE_BYTES, createHash('sha256').update(`piece ${piece}`).digest());
    hash.update(bytes);
    if (piece % 256 === 0) await watch.sample();
    yield bytes;
  }
}

describe('large snapshots', () => {
  it('a 200 MB snapshot is written and read back as a stream, never holding more than a few chunks', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 1, 1) });

    const written = createHash('sha256');
    const writeWatch = await MemoryWatch.start();
    await storage.writeSnapshot(snapshotAt(1, 1), generatedData(written, writeWatch));
    await storage.compact(snapshotAt(1, 1));
    expect((await stat(`${dataDir}/raft/snap/0000000000000001-0000000000000001.snap`)).size).toBeGreaterThan(SNAPSHOT_BYTES);

    const read = createHash('sha256');
    const readWatch = await MemoryWatch.start();
    let chunks = 0;
    for await (const chunk of await storage.openSnapshot()) {
      read.update(chunk);
      if (++chunks % 16 === 0) await readWatch.sample();
    }
    expect(read.digest('hex')).toBe(written.digest('hex'));
    expect(chunks).toBe(200);
    // A functional check of streaming, not a benchmark: holding the snapshot would mean 200 MB here.
    expect(writeWatch.peakGrowth).toBeLessThan(16 * MiB);
    expect(readWatch.peakGrowth).toBeLessThan(16 * MiB);
  }, 60_000);
});
