import { isShoalError } from '@shoal/errors';
import type { Commit, MemoryStoreOptions, Watch } from '../src/index.js';

export { lease, network, node, secret, service, take, task } from '../src/testing.js';

/** A clock that starts at 2025-01-01T00:00:00Z and moves one second per reading. */
export function steppingClock(): () => Date {
  let seconds = 0;
  return () => new Date(Date.UTC(2025, 0, 1) + 1000 * seconds++);
}

/** Options every test store uses: a deterministic clock. */
export function testOptions(options: MemoryStoreOptions = {}): MemoryStoreOptions {
  return { clock: steppingClock(), ...options };
}

/** Reads whatever `watch` has already queued, without waiting for more, by closing it after a turn. */
export async function drain(watch: Watch): Promise<Commit[]> {
  const commits: Commit[] = [];
  const pending = (async () => {
    for await (const commit of watch) commits.push(commit);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  watch.close();
  await pending;
  return commits;
}

/** What a commit says happened, compactly: `["create task t1", …]`. */
export function summary(commit: Commit): string[] {
  return commit.events.map((event) => `${event.action} ${event.kind} ${event.object.id}`);
}

/** Returns what `action` throws; fails the test if it returns. */
export function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** The code and message of an error, to compare in one assertion; anything but a ShoalError has no code. */
export function describeError(error: unknown): { code: string | undefined; message: string } {
  return { code: isShoalError(error) ? error.code : undefined, message: error instanceof Error ? error.message : String(error) };
}

/** What `action` throws, as {@link describeError} describes it; fails the test if it returns. */
export function failure(action: () => unknown): { code: string | undefined; message: string } {
  return describeError(thrown(action));
}
