import type { ShoalError } from '@shoal/errors';

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  /** The leader term the awaited entry was proposed in. */
  readonly term: bigint;
}

/**
 * Callers waiting for entries this member proposed as leader to be applied, keyed by the ID the entry
 * carries (a StoreTransaction's request ID, a ConfChange's ID). Each is settled once: by the applied
 * entry, or by a failure when the entry may never be applied here (leadership lost, shutdown).
 */
export class PendingEntries<T> {
  readonly #waiting = new Map<bigint, Waiter<T>>();

  wait(id: bigint, term: bigint): Promise<T> {
    return new Promise<T>((resolve, reject) => this.#waiting.set(id, { resolve, reject, term }));
  }

  /** Settles the caller waiting for entry `id`, if this member has one: with `value`, or rejected with `error`. */
  settle(id: bigint, error: ShoalError | undefined, value: T): void {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    this.#waiting.delete(id);
    if (error === undefined) waiter.resolve(value);
    else waiter.reject(error);
  }

  /** Fails every caller whose entry was proposed in another term than `term` (all of them when `term` is undefined). */
  failOutside(term: bigint | undefined, error: ShoalError): void {
    for (const [id, waiter] of this.#waiting) {
      if (waiter.term === term) continue;
      this.#waiting.delete(id);
      waiter.reject(error);
    }
  }
}

interface Condition {
  readonly test: () => boolean;
  readonly failsWithoutLeader: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

/** Options of {@link Conditions.until}. */
export interface UntilOptions {
  /** Stops waiting, rejecting with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Fail when the cluster has had no leader for too long (what a caller of the Store API must hear
   * about at once), rather than wait for one indefinitely (what a replaying or joining replica does).
   * @default true
   */
  failsWithoutLeader?: boolean;
}

/**
 * Promises that resolve once a condition on the replica's state holds (a log index applied, a leader
 * known), re-checked by the replica after everything that can change its state.
 */
export class Conditions {
  readonly #waiting = new Set<Condition>();

  until(test: () => boolean, options: UntilOptions = {}): Promise<void> {
    if (test()) return Promise.resolve();
    const { signal, failsWithoutLeader = true } = options;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) return reject(signal.reason);
      const condition: Condition = { test, failsWithoutLeader, resolve, reject };
      this.#waiting.add(condition);
      signal?.addEventListener(
        'abort',
        () => {
          if (this.#waiting.delete(condition)) reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Resolves every condition that now holds. */
  recheck(): void {
    for (const condition of this.#waiting) {
      if (!condition.test()) continue;
      this.#waiting.delete(condition);
      condition.resolve();
    }
  }

  /** Rejects every waiting condition with `error`, or only those that fail without a leader. */
  fail(error: ShoalError, which: 'all' | 'without-leader'): void {
    for (const condition of this.#waiting) {
      if (which === 'without-leader' && !condition.failsWithoutLeader) continue;
      this.#waiting.delete(condition);
      condition.reject(error);
    }
  }
}
