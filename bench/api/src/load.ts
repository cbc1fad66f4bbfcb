import { performance } from 'node:perf_hooks';
import type { DockerClient } from './docker-client.js';

/** What a closed-loop run of GET requests did in its measured window. */
export interface LoadRun {
  /** Requests answered 200 within the window. */
  readonly answered: number;
  /** The window's length. */
  readonly seconds: number;
  /** From sending each request counted to reading the last byte of its response, in ms, ascending. */
  readonly latenciesMs: readonly number[];
  /** Mean size of the bodies counted, in bytes. */
  readonly meanBytes: number;
  /** Responses other than 200 within the window, by status (0: the request failed). */
  readonly failures: ReadonlyMap<number, number>;
  /** What went wrong first: the error of a failed request, or the body of a response other than 200. */
  readonly firstFailure: string | undefined;
}

/**
 * Keeps `concurrency` GET requests in flight through `client` (which holds that many keep-alive
 * connections): each of `concurrency` loops sends the request `pathOf(n)` for the next `n`, reads the
 * whole response, and sends the next (a closed loop, as a CLI polling in a loop does). The first
 * `warmupMs` warm up connections and the JIT; what completes in the `measureMs` after that is
 * counted. Then no request starts, and the ones in flight are waited for (uncounted).
 */
export async function runLoad(client: DockerClient, pathOf: (n: number) => string, concurrency: number, warmupMs: number, measureMs: number): Promise<LoadRun> {
  const latenciesMs: number[] = [];
  const failures = new Map<number, number>();
  let firstFailure: string | undefined;
  let bytes = 0;
  let sent = 0;
  const measureFrom = performance.now() + warmupMs;
  const measureUntil = measureFrom + measureMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < measureUntil) {
      const path = pathOf(sent++);
      const started = performance.now();
      const response = await client.send('GET', path).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      const finished = performance.now();
      if (finished < measureFrom || finished >= measureUntil) continue;
      if (!(response instanceof Error) && response.status === 200) {
        latenciesMs.push(finished - started);
        bytes += response.bytes;
      } else {
        const status = response instanceof Error ? 0 : response.status;
        failures.set(status, (failures.get(status) ?? 0) + 1);
        firstFailure ??= response instanceof Error ? `${response.message} (${(response as NodeJS.ErrnoException).code ?? 'no code'})` : response.text().trim();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  latenciesMs.sort((a, b) => a - b);
  return { answered: latenciesMs.length, seconds: measureMs / 1000, latenciesMs, meanBytes: bytes / Math.max(1, latenciesMs.length), failures, firstFailure };
}

/** The value at `fraction` (0.5 for the median) of ascending `sorted`; NaN if it is empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}
