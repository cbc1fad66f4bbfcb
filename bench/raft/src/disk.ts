import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from './writes.js';

/** Appends timed: enough for a stable p99, a second or two on a virtual disk. */
const APPENDS = 300;
const APPEND_BYTES = 4_096;

/** The median and 99th percentile of one fdatasynced append, in ms. */
export interface SyncLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Times `APPENDS` appends of 4 KiB, each followed by fdatasync, in the directory the replicas' data
 * lives in: the floor under a commit's latency, since the leader and a follower each sync once per
 * commit (in parallel) before it is acknowledged.
 */
export async function measureSyncLatency(): Promise<SyncLatency> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-raft-disk-'));
  try {
    const file = await open(join(dir, 'append'), 'a');
    try {
      const block = Buffer.alloc(APPEND_BYTES, 1);
      const samplesMs: number[] = [];
      for (let i = 0; i < APPENDS; i++) {
        const started = performance.now();
        await file.write(block);
        await file.datasync();
        samplesMs.push(performance.now() - started);
      }
      samplesMs.sort((a, b) => a - b);
      return { p50Ms: percentile(samplesMs, 0.5), p99Ms: percentile(samplesMs, 0.99) };
    } finally {
      await file.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
