import { randomBytes } from 'node:crypto';
import { ErrorCode, hasCode, type ShoalError } from '@shoal/errors';
import type { ReadState } from '@shoal/raft-core';

interface ReadWaiter {
  resolve(index: bigint): void;
  reject(err: unknown): void;
}

interface ReadRequest {
  context: Buffer;
  readonly waiters: Set<ReadWaiter>;
  /** Ticks since the request was (re)sent. */
  age: number;
}

/**
 * Linearizable reads through raft's ReadIndex (thesis §6.4), batched: every read that starts while a
 * ReadIndex request is in flight joins the next one, so a burst of reads costs one heartbeat round, and
 * none is answered with an index taken before it started (which a read joining the request already
 * in flight could be). raft-core drops a pending request silently when leadership changes and a
 * message can be lost, so the request in flight is re-sent, under a new context, when a new leader
 * appears or after `retryTicks` ticks without an answer.
 */
export class LinearizableReads {
  #inFlight: ReadRequest | undefined;
  #next = new Set<ReadWaiter>();

  /**
   * @param requestReadIndex asks raft for a read index (RawNode.readIndex); throws when no leader is known,
   * in which case the request waits for {@link leaderChanged}.
   */
  constructor(
    private readonly requestReadIndex: (context: Buffer) => void,
    private readonly retryTicks: number,
  ) {}

  /** Resolves with an index the local store must reach before the read is served; rejects when `signal` aborts. */
  readIndex(signal?: AbortSignal): Promise<bigint> {
    return new Promise<bigint>((resolve, reject) => {
      const waiter: ReadWaiter = { resolve, reject };
      if (signal !== undefined) {
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener('abort', () => this.abandon(waiter, signal.reason), { once: true });
      }
      this.#next.add(waiter);
      if (this.#inFlight === undefined) this.sendNext();
    });
  }

  /** Hands a ReadState from a Ready to the request it answers. */
  answered(readState: ReadState): void {
    const request = this.#inFlight;
    if (request === undefined || !request.context.equals(readState.context)) return;
    this.#inFlight = undefined;
    for (const waiter of request.waiters) waiter.resolve(readState.index);
    if (this.#next.size > 0) this.sendNext();
  }

  /** Counts a tick: a request unanswered for `retryTicks` is sent again. */
  tick(): void {
    const request = this.#inFlight;
    if (request !== undefined && ++request.age >= this.retryTicks) this.resend(request);
  }

  /** A leader appeared or changed: raft-core dropped whatever it was waiting on, so ask again. */
  leaderChanged(): void {
    if (this.#inFlight !== undefined) this.resend(this.#inFlight);
  }

  /** Fails every read waiting or in flight. */
  failAll(err: ShoalError): void {
    const waiters = [...(this.#inFlight?.waiters ?? []), ...this.#next];
    this.#inFlight = undefined;
    this.#next = new Set();
    for (const waiter of waiters) waiter.reject(err);
  }

  private sendNext(): void {
    const request: ReadRequest = { context: Buffer.alloc(0), waiters: this.#next, age: 0 };
    this.#next = new Set();
    this.#inFlight = request;
    this.resend(request);
  }

  private resend(request: ReadRequest): void {
    request.context = randomBytes(16);
    request.age = 0;
    try {
      this.requestReadIndex(request.context);
    } catch (err) {
      // No leader known yet: leaderChanged() resends, and the replica fails reads if none appears in time.
      if (!hasCode(err, ErrorCode.Unavailable)) throw err;
    }
  }

  private abandon(waiter: ReadWaiter, reason: unknown): void {
    const request = this.#inFlight;
    const removed = this.#next.delete(waiter) || (request?.waiters.delete(waiter) ?? false);
    if (!removed) return;
    waiter.reject(reason);
    if (request !== undefined && request.waiters.size === 0 && this.#next.size === 0) this.#inFlight = undefined;
  }
}
