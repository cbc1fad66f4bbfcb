import { ErrorCode, errors, hasCode, toShoalError } from '@shoal/errors';
import type { Logger } from '@shoal/runtime';
import { MemoryStore, type Commit, type ReadTx } from '@shoal/store';
import type { CommitInput, StoreApiClient } from './client.js';
import type { ClusterState } from './cluster-state.js';
import { LOCKED_MESSAGE } from '@shoal/raft-storage';

/** Where the cache stands: following the store, waiting for it, or facing a locked (autolocked) replica. */
export type CacheState = { readonly kind: 'connecting'; readonly error?: string } | { readonly kind: 'following' } | { readonly kind: 'locked' };

const RETRY_MS = 500;
// A bulk write (tens of thousands of objects) can keep the copy seconds behind; a write it made is committed meanwhile.
const CATCH_UP_TIMEOUT_MS = 30_000;

/**
 * A local copy of the whole replicated store, taken from a Store API snapshot and kept current by
 * mirroring its watch (snapshot-then-watch, no gap): the read model of every manager component.
 * Reads are answered locally, so polling costs the raft-store nothing; a commit resolves once the
 * copy shows it (read-your-writes).
 *
 * A watch that breaks (replica restart, compaction, falling behind) is resumed from the last
 * version mirrored, or resynced from a fresh snapshot when the store says it cannot resume; a
 * resync is announced to subscribers as a commit with no events (state may have changed anyhow).
 */
export class StoreMirror implements ClusterState {
  readonly #client: StoreApiClient;
  readonly #log: Logger;
  #store = new MemoryStore();
  #state: CacheState = { kind: 'connecting' };
  #hasSnapshot = false;
  #waiters: Array<{ version: bigint; resolve: () => void }> = [];
  readonly #listeners = new Set<(commit: Commit) => void>();

  constructor(client: StoreApiClient, log: Logger) {
    this.#client = client;
    this.#log = log;
  }

  get state(): CacheState {
    return this.#state;
  }

  /** The store version the copy reflects. */
  get version(): bigint {
    return this.#store.version;
  }

  /** Whether a snapshot has been taken, so {@link view} can answer. */
  get hasSnapshot(): boolean {
    return this.#hasSnapshot;
  }

  /** Reads the copy as it is now; UNAVAILABLE before the first snapshot or while the store is locked. */
  view<R>(read: (tx: ReadTx) => R): R {
    this.#requireReadable();
    return this.#store.view(read);
  }

  async commit(write: CommitInput): Promise<bigint> {
    const version = await this.#client.commit(write);
    await this.caughtUp(version);
    return version;
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #requireReadable(): void {
    if (this.#state.kind === 'locked') throw errors.unavailable(LOCKED_MESSAGE);
    if (!this.#hasSnapshot) {
      throw errors.unavailable(`the cluster store is not reachable yet${this.#state.kind === 'connecting' && this.#state.error ? `: ${this.#state.error}` : ''}`);
    }
  }

  /**
   * Reads the copy once it reflects at least `atLeast` (the version of a write this process made).
   * While the store is unreachable a copy taken earlier is still read (as a stale read would be);
   * with none yet, or locked, the read fails UNAVAILABLE.
   */
  async read<R>(read: (tx: ReadTx) => R, atLeast = 0n): Promise<R> {
    this.#requireReadable();
    await this.caughtUp(atLeast);
    return this.#store.view(read);
  }

  /**
   * Resolves once the copy shows every commit made before this call (read through a linearizable
   * read of the store's version): what a new leader waits for, so that it never plans on a view that
   * lacks its predecessor's last writes.
   */
  async catchUp(signal?: AbortSignal): Promise<void> {
    const { version } = await this.#client.list('lease', [], { signal });
    await this.caughtUp(version);
  }

  /** Resolves once the copy reflects `version`; UNAVAILABLE if that takes longer than `timeoutMs`. */
  caughtUp(version: bigint, timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<void> {
    if (this.#store.version >= version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== entry);
        reject(errors.unavailable(`the write at version ${version} is committed but this API has not seen it yet (at ${this.#store.version}); retry`));
      }, timeoutMs);
      const entry = { version, resolve: () => (clearTimeout(timer), resolve()) };
      this.#waiters.push(entry);
    });
  }

  /**
   * Starts following the store ({@link run}) and returns that run together with a promise that
   * resolves once the first snapshot is in (or `signal` aborts): what a component waits for before it
   * acts on the view.
   */
  follow(signal: AbortSignal): { following: Promise<void>; snapshotTaken: Promise<void> } {
    let taken!: () => void;
    const snapshotTaken = new Promise<void>((resolve) => {
      taken = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    return { following: this.run(signal, () => taken()), snapshotTaken };
  }

  /** Follows the store until `signal` aborts; calls `ready` once the first snapshot is in (or the store is found locked). */
  async run(signal: AbortSignal, ready: () => void): Promise<void> {
    let readyCalled = false;
    const markReady = () => {
      if (!readyCalled) ready();
      readyCalled = true;
    };
    let resumeFrom: bigint | undefined;
    while (!signal.aborted) {
      try {
        if (resumeFrom === undefined) {
          this.#restore(await this.#client.snapshot({ signal }));
          markReady();
        }
        resumeFrom = undefined;
        for await (const commit of this.#client.watch({ fromVersion: this.#store.version }, { signal })) {
          this.#state = { kind: 'following' };
          if (commit.events.length > 0) this.#store.mirror(commit);
          this.#wake();
          if (commit.events.length > 0) this.#announce(commit);
        }
      } catch (err) {
        if (signal.aborted) return;
        const error = toShoalError(err);
        const resumable = error.code === ErrorCode.Unavailable || error.code === ErrorCode.ResourceExhausted;
        resumeFrom = resumable && this.#hasSnapshot ? this.#store.version : undefined;
        if (hasCode(error, ErrorCode.FailedPrecondition) && error.message === LOCKED_MESSAGE) {
          this.#state = { kind: 'locked' };
          markReady();
        } else {
          this.#state = { kind: 'connecting', error: error.message };
          this.#log.warn({ code: error.code, err: error.message }, 'lost the store; following it again');
        }
        await sleep(RETRY_MS, signal);
      }
    }
  }

  #restore(snapshot: Parameters<typeof MemoryStore.fromSnapshot>[0]): void {
    this.#store = MemoryStore.fromSnapshot(snapshot);
    this.#hasSnapshot = true;
    this.#state = { kind: 'following' };
    this.#wake();
    this.#announce({ version: this.#store.version, events: [] });
  }

  #announce(commit: Commit): void {
    for (const listener of this.#listeners) listener(commit);
  }

  #wake(): void {
    const version = this.#store.version;
    const due = this.#waiters.filter((waiter) => waiter.version <= version);
    if (due.length === 0) return;
    this.#waiters = this.#waiters.filter((waiter) => waiter.version > version);
    for (const waiter of due) waiter.resolve();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
