import { ErrorCode, hasCode } from '@shoal/errors';
import type { Commit, Precondition, ReadTx } from '@shoal/store';
import type { ClusterState, CommitInput } from '@shoal/store-client';

/** Builds a write from a fresh read of the view; `undefined` when, as things now stand, there is nothing to write. */
export type WritePlan = (tx: ReadTx) => CommitInput | undefined;

/**
 * Re-planning after a stale read converges within a few attempts unless something rewrites the same
 * objects continuously; past this many the write fails rather than spin.
 */
const maxWriteAttempts = 10;

/**
 * True for a CONFLICT caused by an object the write read having changed, which re-reading cures. A
 * failed fence (a CONFLICT about the lease) means this instance no longer leads: never retried.
 */
function isStaleRead(err: unknown): err is { details: { version?: unknown } } {
  return hasCode(err, ErrorCode.Conflict) && err.details['kind'] !== 'lease';
}

/**
 * One rollout's connection to the cluster: it follows every commit from its creation until
 * {@link close}, so waits on the view miss nothing, and it writes conditionally, fenced, re-planning
 * on stale reads.
 */
export class ClusterSession {
  readonly #state: ClusterState;
  readonly #fence: readonly Precondition[];
  readonly #waiters = new Set<() => void>();
  readonly #unsubscribe: () => void;

  /** `onCommit` sees each commit, before any waiter re-reads the view; it must not throw. */
  constructor(state: ClusterState, fence: Precondition | undefined, onCommit: (commit: Commit) => void) {
    this.#state = state;
    this.#fence = fence === undefined ? [] : [fence];
    this.#unsubscribe = state.subscribe((commit) => {
      onCommit(commit);
      for (const recheck of [...this.#waiters]) recheck();
    });
  }

  /** Reads the view. */
  read<R>(read: (tx: ReadTx) => R): R {
    return this.#state.view(read);
  }

  /**
   * Resolves with the first value `probe` returns other than `undefined`, reading the view now and
   * again after every commit; with `undefined` if `signal` aborts first. Rejects if `probe` throws.
   */
  until<T>(probe: (tx: ReadTx) => T | undefined, signal: AbortSignal): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const settle = (outcome: () => void) => {
        this.#waiters.delete(recheck);
        signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const onAbort = () => settle(() => resolve(undefined));
      const recheck = () => {
        try {
          const value = this.#state.view(probe);
          if (value !== undefined) settle(() => resolve(value));
        } catch (err) {
          settle(() => reject(err));
        }
      };
      if (signal.aborted) return resolve(undefined);
      this.#waiters.add(recheck);
      signal.addEventListener('abort', onAbort, { once: true });
      recheck();
    });
  }

  /**
   * Commits what `plan` builds from the view, fenced. When an object it read has changed meanwhile
   * (CONFLICT), waits until the view shows the change and plans again. Resolves true once committed,
   * false if the plan found nothing to write or `signal` aborted: nothing is written once it has.
   */
  async write(plan: WritePlan, signal: AbortSignal): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return false;
      const write = this.#state.view(plan);
      if (write === undefined) return false;
      try {
        await this.#state.commit({ changes: write.changes, preconditions: [...(write.preconditions ?? []), ...this.#fence] });
        return true;
      } catch (err) {
        if (!isStaleRead(err) || attempt === maxWriteAttempts) throw err;
        const { version } = err.details;
        if (typeof version === 'bigint') await this.until((tx) => (tx.version >= version ? true : undefined), signal);
      }
    }
  }

  /** Stops following commits; waits still pending never resolve on their own (abort their signals). */
  close(): void {
    this.#unsubscribe();
  }
}
