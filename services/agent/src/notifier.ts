/** Node's timers fire at once for delays beyond 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A level-triggered wake-up: {@link notify} marks it, and {@link wait} resolves at once if it is
 * marked (clearing the mark), or as soon as it is marked, or after a time limit, or when a signal
 * aborts. Loops that sleep until "something changed or it is time anyway" use it instead of polling.
 */
export class Notifier {
  #marked = false;
  #waiter: (() => void) | undefined;

  notify(): void {
    this.#marked = true;
    this.#waiter?.();
  }

  /**
   * Resolves true when notified, false when `timeoutMs` passed or `signal` aborted first. One waiter
   * at a time: each Notifier belongs to one loop. A limit beyond Node's longest timer (about 24.8
   * days) ends the wait early, so a caller waiting for a point in time checks the clock afterwards.
   */
  wait(signal: AbortSignal, timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.#marked) {
      this.#marked = false;
      return Promise.resolve(true);
    }
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (notified: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiter = undefined;
        if (notified) this.#marked = false;
        resolve(notified);
      };
      const onAbort = () => finish(false);
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => finish(false), Math.min(timeoutMs, MAX_TIMER_MS)) : undefined;
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = () => finish(true);
    });
  }
}
