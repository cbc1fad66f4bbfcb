import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isShoalError } from '@shoal/errors';
import { Config } from '@shoal/proto';
import type { StoreApiClient } from '@shoal/store-client';

/** Data in each small write (the issue's ~100 bytes); the encoded Config with its ID and name is 136 bytes. */
export const SMALL_WRITE_BYTES = 100;

/** Bound on one commit in a throughput run: a commit that takes longer is reported as an error, not waited on forever. */
const COMMIT_DEADLINE_MS = 30_000;

/**
 * Pause after a failed write before the next. A write to a closed client fails without any I/O, and a
 * loop of those would run on microtasks alone, starving everything else (timers, signals, child exits).
 */
export const FAILED_WRITE_PAUSE_MS = 10;

let written = 0;

/** A Config holding `dataBytes` random bytes, with an ID and name no other write of this process uses. */
export function uniqueConfig(dataBytes: number): Config {
  const id = `bench-${process.pid}-${++written}`;
  return Config.fromPartial({ id, spec: { annotations: { name: id }, data: randomBytes(dataBytes) } });
}

/** Creates `config` in one transaction with one change and resolves with the version it committed at. */
export function commitConfig(client: StoreApiClient, config: Config, deadlineMs = COMMIT_DEADLINE_MS): Promise<bigint> {
  return client.commit({ changes: [{ action: 'create', kind: 'config', object: config }] }, { deadlineMs });
}

/** What a closed-loop write run did in its measured window. */
export interface WriteRun {
  /** Commits that resolved within the window. */
  readonly committed: number;
  /** The window's length. */
  readonly seconds: number;
  /** Time from the commit call to the resolved promise of each commit counted, in ms, ascending. */
  readonly latenciesMs: readonly number[];
  /** Commits that failed within the window, by error code. */
  readonly failures: ReadonlyMap<string, number>;
  /** The message of the first failure, to report what went wrong. */
  readonly firstFailure: string | undefined;
}

/**
 * Keeps `concurrency` small commits in flight through `client`: each of `concurrency` loops calls
 * commit, waits for it, and calls again (a closed loop, as etcd's benchmark clients). The first
 * `warmupMs` warm up connections, JIT and the raft pipeline into a steady state; what completes in the
 * `measureMs` after that is counted. Then no commit starts, and the ones in flight are waited for
 * (uncounted).
 */
export async function runWrites(client: StoreApiClient, concurrency: number, warmupMs: number, measureMs: number): Promise<WriteRun> {
  const latenciesMs: number[] = [];
  const failures = new Map<string, number>();
  let firstFailure: string | undefined;
  const measureFrom = performance.now() + warmupMs;
  const measureUntil = measureFrom + measureMs;
  const counted = (at: number) => at >= measureFrom && at < measureUntil;
  const writer = async (): Promise<void> => {
    while (performance.now() < measureUntil) {
      const config = uniqueConfig(SMALL_WRITE_BYTES);
      const called = performance.now();
      try {
        await commitConfig(client, config);
        const resolved = performance.now();
        if (counted(resolved)) latenciesMs.push(resolved - called);
      } catch (err) {
        if (counted(performance.now())) {
          const code = isShoalError(err) ? err.code : 'non-Shoal error';
          failures.set(code, (failures.get(code) ?? 0) + 1);
          firstFailure ??= err instanceof Error ? err.message : String(err);
        }
        await sleep(FAILED_WRITE_PAUSE_MS);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, writer));
  latenciesMs.sort((a, b) => a - b);
  return { committed: latenciesMs.length, seconds: measureMs / 1000, latenciesMs, failures, firstFailure };
}

/** The value at `fraction` (0.5 for the median) of ascending `sorted`; NaN if it is empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}
