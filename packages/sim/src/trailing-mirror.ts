import type { Logger } from '@shoal/runtime';
import type { Commit, MemoryStore, Watch } from '@shoal/store';
import { applyCommitInput, StoreMirror, type StoreApiClient } from '@shoal/store-client';

/** Resolves after `ms` of real time. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The commits of `watch`, each handed on `lagMs` after it was made: a steady delay, as a replica's
 * watch trails the leader, rather than one that grows with every commit waiting behind another.
 */
async function* trailing(watch: Watch, lagMs: number): AsyncGenerator<Commit, void, undefined> {
  const queue: { commit: Commit; dueAt: number }[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: unknown;
  const receiving = (async () => {
    try {
      for await (const commit of watch) {
        queue.push({ commit, dueAt: Date.now() + lagMs });
        wake?.();
      }
    } catch (err) {
      failure = err;
    } finally {
      ended = true;
      wake?.();
    }
  })();
  try {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        const wait = next.dueAt - Date.now();
        if (wait > 0) await sleep(wait);
        yield next.commit;
      } else if (ended) {
        if (failure !== undefined) throw failure;
        return;
      } else {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    }
  } finally {
    watch.close();
    await receiving;
  }
}

/**
 * Starts a {@link StoreMirror} of `primary`, the read model every manager service runs on, whose
 * view and commits trail the store by `lagMs` of real time; its commits go straight to the store
 * and resolve once the mirror shows them. Resolves with the mirror once its first snapshot is in,
 * and `following`, which settles after `signal` aborts.
 */
export async function startTrailingMirror(primary: MemoryStore, lagMs: number, log: Logger, signal: AbortSignal): Promise<{ mirror: StoreMirror; following: Promise<void> }> {
  const client: Pick<StoreApiClient, 'commit' | 'snapshot' | 'watch'> = {
    commit: async (write) => {
      // A round trip to the store: the caller's event loop turns before the answer comes back.
      await new Promise((resolve) => setImmediate(resolve));
      primary.update((tx) => applyCommitInput(tx, write));
      return primary.version;
    },
    snapshot: async () => primary.snapshot(),
    watch: (what = {}, options = {}) => trailing(primary.watch({ fromVersion: what.fromVersion, signal: options.signal }), lagMs),
  };
  // Following the store needs nothing more of the client than these three calls.
  const mirror = new StoreMirror(client as StoreApiClient, log);
  let following = Promise.resolve();
  await new Promise<void>((ready) => {
    following = mirror.run(signal, ready);
  });
  return { mirror, following };
}
