import { ErrorCode, errors, toShoalError, type ShoalError } from '@shoal/errors';
import type { ObjectTypes } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { splitIntoTransactions, type Change, type Precondition } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';

/** The kinds the dispatcher writes from what nodes report. */
export type ReportedKind = 'node' | 'task';

/**
 * A change to one stored object, computed from the object as it is stored when the batch is written:
 * the object to write, or undefined when there is nothing to change (already so, or no longer
 * applicable). It may run more than once, on a fresher object each time, when a write is retried.
 */
export type Mutation<T> = (current: T) => T | undefined;

/** Where a {@link StatusBatcher} writes, and how it batches. */
export interface StatusBatcherOptions {
  readonly state: ClusterState;
  /** Carried by every transaction: the lease of the dispatcher instance the writes speak for. */
  readonly fence?: Precondition;
  readonly log: Logger;
  /** How long the first queued change waits for others; swarmkit's `maxBatchInterval`. @default 100 */
  readonly intervalMs?: number;
  /** A batch is written at once when this many changes are queued; swarmkit's `maxBatchItems`. @default 10000 */
  readonly maxItems?: number;
}

interface Waiter {
  resolve(): void;
  reject(err: ShoalError): void;
}

/** Every queued change to one object, in the order queued. */
interface PendingWrite {
  readonly kind: ReportedKind;
  readonly id: string;
  /** Each of them is only ever given an object of `kind`. */
  mutations: Mutation<ObjectTypes[ReportedKind]>[];
  waiters: Waiter[];
  attempts: number;
}

/**
 * Outcomes after which the same write, recomputed on a fresher copy of the object, may succeed: another
 * writer changed it first (or the view was behind), it was deleted, the store was briefly unreachable.
 */
const RETRYABLE = new Set<ErrorCode>([ErrorCode.Conflict, ErrorCode.NotFound, ErrorCode.Unavailable, ErrorCode.DeadlineExceeded]);
/** A write still failing after this many batches (about a second) is given up and reported. */
const MAX_ATTEMPTS = 10;

const keyOf = (kind: ReportedKind, id: string) => `${kind}/${id}`;

/**
 * The dispatcher's one writer of node and task status (swarmkit's `processUpdates`): changes queue up
 * and are written together 100 ms after the first one, or as soon as 10,000 are queued, in
 * transactions of at most 200 changes. Each change is computed at write time from the object as
 * stored, so a write that loses a race (CONFLICT) is recomputed on the newer object and written with
 * the next batch instead of overwriting what the other writer did.
 */
export class StatusBatcher {
  readonly #state: ClusterState;
  readonly #fence: Precondition | undefined;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #maxItems: number;
  #pending = new Map<string, PendingWrite>();
  #queuedItems = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(options: StatusBatcherOptions) {
    this.#state = options.state;
    this.#fence = options.fence;
    this.#log = options.log;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#maxItems = options.maxItems ?? 10_000;
  }

  /**
   * Queues `mutation` of the object `kind`/`id` (after any queued before it) and resolves once the
   * batch holding it is in the store, or once it turned out to change nothing or the object is gone.
   * Rejects when the write keeps failing or the batcher closes first.
   */
  update<K extends ReportedKind>(kind: K, id: string, mutation: Mutation<ObjectTypes[K]>): Promise<void> {
    if (this.#closed) return Promise.reject(errors.unavailable('the dispatcher is stopping; the status was not written'));
    return new Promise((resolve, reject) => {
      const key = keyOf(kind, id);
      const write = this.#pending.get(key) ?? { kind, id, mutations: [], waiters: [], attempts: 0 };
      write.mutations.push(mutation as unknown as Mutation<ObjectTypes[ReportedKind]>);
      write.waiters.push({ resolve, reject });
      this.#pending.set(key, write);
      this.#queuedItems += 1;
      this.#schedule();
    });
  }

  /** Writes what is queued, then refuses new changes; a write still failing after that is rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#flushing !== undefined) await this.#flushing;
    // Failures of this last batch are given up rather than queued again (see #retry).
    if (this.#pending.size > 0) await this.#flush();
  }

  #schedule(): void {
    // A running flush schedules the next one when it ends; a closed batcher writes nothing more.
    if (this.#flushing !== undefined || this.#closed) return;
    if (this.#queuedItems >= this.#maxItems) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#flush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#flush();
      }, this.#intervalMs);
    }
  }

  #flush(): Promise<void> {
    const batch = [...this.#pending.values()];
    this.#pending = new Map();
    this.#queuedItems = 0;
    this.#flushing = this.#write(batch).finally(() => {
      this.#flushing = undefined;
      if (this.#pending.size > 0) this.#schedule();
    });
    return this.#flushing;
  }

  async #write(batch: readonly PendingWrite[]): Promise<void> {
    const writeOf = new Map<Change, PendingWrite>();
    this.#state.view((tx) => {
      for (const write of batch) {
        const stored = tx.get(write.kind, write.id);
        const object = stored === undefined ? undefined : applyAll(stored, write.mutations);
        if (object === undefined) this.#settle(write);
        else writeOf.set({ action: 'update', kind: write.kind, object } as Change, write);
      }
    });
    const preconditions = this.#fence === undefined ? [] : [this.#fence];
    await Promise.all(
      splitIntoTransactions([...writeOf.keys()]).map(async (changes) => {
        const writes = changes.map((change) => writeOf.get(change)!);
        try {
          await this.#state.commit({ changes, preconditions });
          for (const write of writes) this.#settle(write);
        } catch (err) {
          this.#retry(writes, toShoalError(err));
        }
      }),
    );
  }

  /** Queues the writes again, before anything queued for the same objects since, or gives them up. */
  #retry(writes: readonly PendingWrite[], error: ShoalError): void {
    const giveUp = !RETRYABLE.has(error.code) || this.#closed;
    this.#log.debug({ code: error.code, err: error.message, writes: writes.length, giveUp }, 'status batch not written');
    for (const write of writes) {
      if (giveUp || write.attempts + 1 >= MAX_ATTEMPTS) {
        this.#log.warn({ kind: write.kind, id: write.id, code: error.code, err: error.message }, 'giving up a status write');
        this.#settle(write, error);
        continue;
      }
      const key = keyOf(write.kind, write.id);
      const newer = this.#pending.get(key);
      this.#pending.set(key, {
        ...write,
        mutations: [...write.mutations, ...(newer?.mutations ?? [])],
        waiters: [...write.waiters, ...(newer?.waiters ?? [])],
        attempts: write.attempts + 1,
      });
      this.#queuedItems += write.mutations.length;
    }
  }

  #settle(write: PendingWrite, error?: ShoalError): void {
    for (const waiter of write.waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }
}

/** The object after every mutation that changes it, or undefined when none does. */
function applyAll<T>(stored: T, mutations: readonly Mutation<T>[]): T | undefined {
  let object = stored;
  let changed = false;
  for (const mutation of mutations) {
    const next = mutation(object);
    if (next !== undefined) {
      object = next;
      changed = true;
    }
  }
  return changed ? object : undefined;
}
