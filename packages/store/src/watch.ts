import { errors, type ShoalError } from '@shoal/errors';
import type { AnyObject, ObjectKindName, ObjectTypes } from '@shoal/proto';
import { requireKind } from './reader.js';
import { RingQueue } from './ring-queue.js';
import { selects, targetFor, type Selector, type SelectorTarget } from './selectors.js';
import type { StoreAction } from './transaction.js';

/**
 * One change of a committed transaction. `object` is the object as committed (for a delete, as it
 * was when deleted); `old` is the object before an update.
 */
export type StoreEvent = {
  [K in ObjectKindName]: {
    readonly kind: K;
    readonly action: StoreAction;
    readonly object: ObjectTypes[K];
    readonly old?: ObjectTypes[K];
  };
}[ObjectKindName];

/**
 * The changes of one committed transaction that a watch asked for. Receiving it is the commit
 * marker: every object the transaction wrote has `meta.version` = `version`.
 */
export interface Commit {
  readonly version: bigint;
  readonly events: readonly StoreEvent[];
}

/**
 * Which changes of one kind a watch wants: optionally only some actions, and only objects every
 * selector selects. An update passes if its new or its old object passes, so a watch on
 * `byNodeId(n)` also sees a task leave node `n`.
 */
export interface WatchFilter {
  readonly kind: ObjectKindName;
  readonly actions?: readonly StoreAction[];
  readonly selectors?: readonly Selector[];
}

/** How to watch the store. */
export interface WatchOptions {
  /** A change is delivered if any filter passes it. No filters: every change of every kind. */
  readonly filters?: readonly WatchFilter[];
  /**
   * Deliver every transaction committed after this version first (from the retained history),
   * then continue live. Without it, the watch starts with the next commit.
   */
  readonly fromVersion?: bigint;
  /** Ends the watch; the iteration then finishes without an error. */
  readonly signal?: AbortSignal;
  /**
   * How many commits may wait unread before the watch is ended with RESOURCE_EXHAUSTED (the
   * store's `maxQueuedCommits` when not given).
   */
  readonly maxQueuedCommits?: number;
}

/**
 * A live subscription to committed transactions, read with `for await`. It delivers one
 * {@link Commit} per committed transaction that has changes it wants, in commit order. It ends
 * when `close()` is called, the loop breaks, or the signal aborts; it fails, after the commits
 * already queued have been read, with RESOURCE_EXHAUSTED if the reader falls more than
 * `maxQueuedCommits` behind, or COMPACTED if the store is restored from a snapshot.
 */
export interface Watch extends AsyncIterableIterator<Commit> {
  /** Ends the watch and drops whatever it had queued. */
  close(): void;
}

const actions = new Set<string>(['create', 'update', 'delete']);

interface CompiledFilter {
  readonly kind: ObjectKindName;
  readonly actions: ReadonlySet<string> | undefined;
  readonly targets: readonly SelectorTarget[];
}

/** Decides whether a watch wants an event. */
export type EventMatcher = (event: StoreEvent) => boolean;

/**
 * Checks watch filters and turns them into a matcher (undefined: every event). Throws
 * INVALID_ARGUMENT for an unknown kind or action, or a selector that does not apply to its kind.
 */
export function compileFilters(filters: readonly WatchFilter[] | undefined): EventMatcher | undefined {
  if (filters === undefined || filters.length === 0) return undefined;
  const compiled = filters.map((filter): CompiledFilter => {
    requireKind(filter.kind);
    for (const action of filter.actions ?? []) {
      if (!actions.has(action)) throw errors.invalidArgument(`unknown store action ${JSON.stringify(action)}`, { action });
    }
    return {
      kind: filter.kind,
      actions: filter.actions === undefined ? undefined : new Set(filter.actions),
      targets: (filter.selectors ?? []).map((selector) => targetFor(filter.kind, selector)),
    };
  });
  const selectedByAll = (filter: CompiledFilter, object: AnyObject) =>
    filter.targets.every((target) => selects(filter.kind, target, object));
  return (event) =>
    compiled.some(
      (filter) =>
        filter.kind === event.kind &&
        (filter.actions === undefined || filter.actions.has(event.action)) &&
        (selectedByAll(filter, event.object) || (event.old !== undefined && selectedByAll(filter, event.old))),
    );
}

interface Waiter {
  resolve(result: IteratorResult<Commit>): void;
  reject(error: unknown): void;
}

const finished: IteratorResult<Commit> = Object.freeze({ done: true, value: undefined });

/** The store's side of a {@link Watch}: it offers every commit; the subscription keeps what it wants. */
export class Subscription implements Watch {
  readonly #queue = new RingQueue<Commit>();
  #waiter: Waiter | undefined;
  #ended = false;
  /** The error to throw once the queue is drained. */
  #failure: ShoalError | undefined;
  readonly #onAbort = () => this.close();

  /**
   * @param afterVersion Commits at or below this version are ignored: the watcher has them.
   * @param onEnd Called when the subscription ends after it was set up; the store stops offering.
   */
  constructor(
    private readonly afterVersion: bigint,
    private readonly matches: EventMatcher | undefined,
    private readonly maxQueuedCommits: number,
    private readonly onEnd: () => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal?.aborted === true) this.#ended = true;
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Queues the part of `commit` this watch wants, or ends the watch if it is too far behind. */
  offer(commit: Commit): void {
    if (this.#ended || commit.version <= this.afterVersion) return;
    const wanted = this.#wantedPart(commit);
    if (wanted === undefined) return;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve({ done: false, value: wanted });
    } else if (this.#queue.length >= this.maxQueuedCommits) {
      this.fail(
        errors.resourceExhausted(
          `watch ended: ${this.#queue.length} commits were waiting to be read (maxQueuedCommits); ` +
            'watch again from the last version read',
          { limit: this.maxQueuedCommits },
        ),
      );
    } else {
      this.#queue.push(wanted);
    }
  }

  /** Ends the watch with `error`, which the reader gets after the commits already queued. */
  fail(error: ShoalError): void {
    if (this.#ended) return;
    this.#end();
    if (this.#waiter === undefined) {
      this.#failure = error;
    } else {
      this.#waiter.reject(error);
      this.#waiter = undefined;
    }
  }

  close(): void {
    this.#queue.clear();
    this.#failure = undefined;
    if (this.#ended) return;
    this.#end();
    this.#waiter?.resolve(finished);
    this.#waiter = undefined;
  }

  next(): Promise<IteratorResult<Commit>> {
    const value = this.#queue.shift();
    if (value !== undefined) return Promise.resolve({ done: false, value });
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      return Promise.reject(failure);
    }
    if (this.#ended) return Promise.resolve(finished);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<Commit>> {
    this.close();
    return Promise.resolve(finished);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #wantedPart(commit: Commit): Commit | undefined {
    if (this.matches === undefined) return commit;
    const events = commit.events.filter(this.matches);
    if (events.length === 0) return undefined;
    return events.length === commit.events.length ? commit : Object.freeze({ version: commit.version, events: Object.freeze(events) });
  }

  #end(): void {
    this.#ended = true;
    this.signal?.removeEventListener('abort', this.#onAbort);
    this.onEnd();
  }
}
