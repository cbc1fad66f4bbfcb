import { errors, type ShoalError } from '@shoal/errors';
import { objectKindNames, snapshotFieldByKind, type AnyObject, type ObjectKindName, type StoreSnapshot } from '@shoal/proto';
import { Draft, type TransactionLimits, type WriteTx } from './draft.js';
import { deepFreeze } from './freeze.js';
import { CommitHistory } from './history.js';
import { SnapshotReader, type ReadTx, type StoreState } from './reader.js';
import { schemaOf } from './schema.js';
import { emptyTables, replaceObject, replaceUnindexed, sharedKeys, type Table } from './table.js';
import type { Change, Transaction } from './transaction.js';
import { compileFilters, Subscription, type Commit, type StoreEvent, type Watch, type WatchOptions } from './watch.js';

/** Settings of a {@link MemoryStore}; every one has a default. */
/** The most changes one transaction may carry, unless a store is configured otherwise (swarmkit's MaxChangesPerTransaction). */
export const MAX_CHANGES_PER_TRANSACTION = 200;
/** The most encoded object bytes one transaction may carry, unless configured otherwise (swarmkit's MaxTransactionBytes, 1.5 MiB). */
export const MAX_TRANSACTION_BYTES = 1_572_864;

export interface MemoryStoreOptions {
  /**
   * The most changes one transaction may make. Batches split at it.
   * @default 200, swarmkit's MaxChangesPerTransaction
   */
  readonly maxChangesPerTransaction?: number;
  /**
   * The most bytes of (protobuf-encoded) objects one transaction may write. A transaction travels
   * as one raft log entry, and this keeps every entry well inside the 4 MiB gRPC message limit.
   * @default 1572864 (1.5 MiB), swarmkit's MaxTransactionBytes
   */
  readonly maxTransactionBytes?: number;
  /**
   * How many committed transactions to keep for watches that resume from a version.
   * @default 10000, as many raft entries as swarmkit keeps between snapshots, so a watcher can
   * resume across anything a lagging raft follower could still catch up on from the log
   */
  readonly retainedCommits?: number;
  /**
   * How many commits may wait unread in one watch before it is ended (per watch, unless the watch
   * asks otherwise).
   * @default 20000, twice `retainedCommits`' default, so a watch that resumes from the oldest
   * retained version still has room for as many live commits as it replayed
   */
  readonly maxQueuedCommits?: number;
  /** Where `update`, `prepare` and `batch` get a transaction's proposal time. @default the system clock */
  readonly clock?: () => Date;
}

/** Splits a large write into several transactions; see {@link MemoryStore.batch}. */
export interface Batch {
  /**
   * Runs `write` as one atomic item of the batch. Its writes join the batch's open transaction;
   * if it throws, they are undone and the error is rethrown here (the batch goes on if the caller
   * catches it). If they would take the open transaction over a limit, the open transaction is
   * committed first and `write` runs again at the start of a fresh one, so `write` must depend
   * only on what it reads from `tx`. An item too large for a transaction of its own throws
   * RESOURCE_EXHAUSTED.
   */
  update(write: (tx: WriteTx) => void): void;
}

/** What {@link MemoryStore.viewAndWatch} returns. */
export interface ViewAndWatch<R> {
  /** What the read callback returned. */
  readonly result: R;
  /** The version the read saw; the watch delivers exactly the commits after it. */
  readonly version: bigint;
  readonly watch: Watch;
}

type MutableTables = { -readonly [K in ObjectKindName]: Table };

/** Returns `value` if it is a whole number of at least `minimum`; throws INVALID_ARGUMENT otherwise. */
function requireCount(name: string, value: number, minimum: number): number {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw errors.invalidArgument(`${name} must be a whole number of at least ${minimum}, not ${value}`, { [name]: value });
  }
  return value;
}

/** Rejects a write callback that returned a promise: a transaction cannot stay open across an await. */
function requireSync<R>(result: R): R {
  if (typeof (result as { then?: unknown } | null | undefined)?.then === 'function') {
    throw errors.invalidArgument('a write callback must be synchronous: a transaction cannot stay open across an await');
  }
  return result;
}

/** The committed copy of an object: its meta is the store's, and it is frozen. */
function stamp(object: AnyObject, version: bigint, createdAt: Date | undefined, updatedAt: Date): AnyObject {
  return Object.freeze({
    ...object,
    meta: Object.freeze({ version: Object.freeze({ index: version }), createdAt, updatedAt }),
  });
}

/**
 * Shoal's object store: typed tables with indexes, consistent read snapshots, conditional write
 * transactions, and watches of committed changes (swarmkit's `MemoryStore`). It is in memory and
 * single-threaded; every call but the delivery of watched commits is synchronous.
 *
 * Local writers call {@link update}. A replicated store splits that in two: the leader
 * {@link prepare}s a transaction (checked, not committed) and proposes it; every replica then
 * {@link apply}s the committed entry at the raft index as its version, and
 * {@link snapshot}/{@link restore} move whole states.
 *
 * Every committed transaction gets a version greater than the last, and each object it writes gets
 * `meta.version.index` = that version and `meta.updatedAt` (and `createdAt` on create) = the time it
 * was proposed. Objects handed out are deeply frozen and shared, never copied.
 */
export class MemoryStore {
  #state: StoreState = { version: 0n, tables: emptyTables() };
  readonly #limits: TransactionLimits;
  readonly #maxQueuedCommits: number;
  readonly #clock: () => Date;
  readonly #history: CommitHistory;
  readonly #subscriptions = new Set<Subscription>();
  #writing = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#limits = {
      maxChangesPerTransaction: requireCount('maxChangesPerTransaction', options.maxChangesPerTransaction ?? MAX_CHANGES_PER_TRANSACTION, 1),
      maxTransactionBytes: requireCount('maxTransactionBytes', options.maxTransactionBytes ?? MAX_TRANSACTION_BYTES, 1),
    };
    this.#maxQueuedCommits = requireCount('maxQueuedCommits', options.maxQueuedCommits ?? 20_000, 1);
    this.#history = new CommitHistory(requireCount('retainedCommits', options.retainedCommits ?? 10_000, 0), 0n);
    this.#clock = options.clock ?? (() => new Date());
  }

  /** A store holding what `snapshot` holds, at its version. */
  static fromSnapshot(snapshot: StoreSnapshot, options?: MemoryStoreOptions): MemoryStore {
    const store = new MemoryStore(options);
    store.restore(snapshot);
    return store;
  }

  /** The version of the last committed transaction (0 for a new, empty store). */
  get version(): bigint {
    return this.#state.version;
  }

  /**
   * Runs `read` on a consistent snapshot of the store and returns what it returns. Taking the
   * snapshot costs O(1), and it stays consistent however long it is held, across awaits included,
   * whatever is committed meanwhile.
   */
  view<R>(read: (tx: ReadTx) => R): R {
    return read(new SnapshotReader(this.#state));
  }

  /**
   * Runs `write` as one transaction and commits it at the next version, then returns what `write`
   * returned. If `write` throws (a failed check throws a ShoalError naming the object), nothing is
   * committed and no watcher sees anything. A transaction that changes nothing commits nothing.
   * Throws RESOURCE_EXHAUSTED if the transaction is over a limit; use {@link batch} for large writes.
   */
  update<R>(write: (tx: WriteTx) => R): R {
    return this.#exclusively(() => {
      const draft = this.#draft();
      try {
        const result = requireSync(write(draft));
        this.#requireWithinLimits(draft);
        if (draft.hasChanges()) this.#commit(draft, this.#state.version + 1n);
        return result;
      } finally {
        draft.close();
      }
    });
  }

  /**
   * Runs `write` as {@link update} does, checks the result against the limits, and returns it as a
   * {@link Transaction} without committing anything: what a raft leader proposes.
   */
  prepare(write: (tx: WriteTx) => void): Transaction {
    const draft = this.#draft();
    try {
      requireSync(write(draft));
      this.#requireWithinLimits(draft);
      return draft.toTransaction();
    } finally {
      draft.close();
    }
  }

  /**
   * Commits `transaction` at `version`, which must be greater than the store's: what a replica does
   * with each committed raft entry, `version` being its index. The preconditions and changes are
   * checked against the store as it is now, so a transaction prepared against an older state may
   * fail here (with the error `update` would have thrown), and then nothing changes; the outcome
   * depends only on the store's state and the transaction, so it is the same on every replica.
   * The store's version becomes `version` even if the transaction changes nothing. Size limits are
   * not checked: they bound what a leader proposes, and a committed entry must apply everywhere.
   */
  apply(transaction: Transaction, version: bigint): void {
    this.#exclusively(() => {
      if (version <= this.#state.version) {
        throw errors.invalidArgument(
          `cannot apply a transaction at version ${version}: the store is already at version ${this.#state.version}`,
          { version, storeVersion: this.#state.version },
        );
      }
      const draft = new Draft(this.#state, transaction.proposedAt, false, false);
      try {
        for (const precondition of transaction.preconditions) {
          if ('version' in precondition) draft.expectVersion(precondition.kind, precondition.id, precondition.version);
          else draft.expectLeaseEpoch(precondition.id, precondition.leaseEpoch);
        }
        for (const change of transaction.changes) {
          if (change.action === 'delete') draft.delete(change.kind, change.id, change.version);
          else if (change.action === 'create') draft.create(change.kind, change.object);
          else draft.update(change.kind, change.object);
        }
        draft.verifyUniqueNames();
        this.#commit(draft, version);
      } finally {
        draft.close();
      }
    });
  }

  /**
   * Commits a commit observed on another store (from its watch, or a Store API watch) exactly as it
   * happened there: a cache that restored that store's snapshot and mirrors each later commit holds
   * the same objects with the same versions and timestamps. Fails as {@link apply} does when the
   * commit does not follow on from this store's state (a gap means: restore a fresh snapshot).
   */
  mirror(commit: Commit): void {
    const written = commit.events.find((event) => event.action !== 'delete');
    const proposedAt = written?.object.meta?.updatedAt ?? new Date(0);
    const changes = commit.events.map((event): Change => {
      if (event.action === 'delete') return { action: 'delete', kind: event.kind, id: event.object.id };
      if (event.action === 'create') return { action: 'create', kind: event.kind, object: event.object } as Change;
      // An update applies to the version this store holds; the event's object already has the new one.
      const held = this.#state.tables[event.kind].objects.get(event.object.id)?.meta?.version;
      return { action: 'update', kind: event.kind, object: { ...event.object, meta: { ...event.object.meta, version: held } } } as Change;
    });
    this.apply({ changes, preconditions: [], proposedAt }, commit.version);
  }

  /**
   * Runs `work`, which feeds items to {@link Batch.update}, committing them in as few transactions
   * as the limits allow, as swarmkit's `Batch`. Each item is atomic; the batch as a whole is not:
   * watchers see each transaction as it commits. If `work` throws, the items that succeeded are
   * still committed before the error propagates. Returns the versions committed, in order.
   */
  batch(work: (batch: Batch) => void): bigint[] {
    return this.#exclusively(() => {
      const committed: bigint[] = [];
      let draft = this.#draft();
      let ended = false;
      const commitOpen = () => {
        draft.close();
        if (draft.hasChanges()) {
          const version = this.#state.version + 1n;
          this.#commit(draft, version);
          committed.push(version);
        }
        draft = this.#draft();
      };
      /** Runs one item; returns the limit it breaks (after undoing it), or undefined once it has joined the draft. */
      const runItem = (write: (tx: WriteTx) => void): ShoalError | undefined => {
        const savepoint = draft.state;
        try {
          requireSync(write(draft));
        } catch (error) {
          draft.rollback(savepoint);
          throw error;
        }
        const exceeded = draft.limitExceeded(this.#limits);
        if (exceeded !== undefined) draft.rollback(savepoint);
        return exceeded;
      };
      try {
        work({
          update: (write) => {
            if (ended) throw errors.failedPrecondition('batch.update was called after its batch ended');
            let exceeded = runItem(write);
            if (exceeded !== undefined && draft.hasChanges()) {
              commitOpen();
              exceeded = runItem(write);
            }
            if (exceeded !== undefined) throw exceeded;
          },
        });
      } finally {
        ended = true;
        commitOpen();
        draft.close();
      }
      return committed;
    });
  }

  /**
   * Subscribes to committed transactions (see {@link Watch}). With `fromVersion`, the commits after
   * it are replayed first; throws COMPACTED if the store no longer keeps all of them, and the caller
   * must resync from a snapshot. Throws INVALID_ARGUMENT for a malformed filter.
   */
  watch(options: WatchOptions = {}): Watch {
    const matches = compileFilters(options.filters);
    const maxQueuedCommits = requireCount('maxQueuedCommits', options.maxQueuedCommits ?? this.#maxQueuedCommits, 1);
    if (options.fromVersion !== undefined && options.fromVersion < 0n) {
      throw errors.invalidArgument(`cannot watch from version ${options.fromVersion}: versions start at 0`);
    }
    const replay = options.fromVersion === undefined ? [] : this.#history.since(options.fromVersion);
    const subscription = new Subscription(
      options.fromVersion ?? this.#state.version,
      matches,
      maxQueuedCommits,
      () => this.#subscriptions.delete(subscription),
      options.signal,
    );
    for (const commit of replay) subscription.offer(commit);
    if (!subscription.ended) this.#subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Runs `read` on a snapshot and subscribes to every commit after it, atomically: the watch
   * delivers exactly the changes the snapshot does not hold, with no gap and no duplicate. This is
   * how a component starts: build its state from the snapshot, then follow the watch.
   */
  viewAndWatch<R>(read: (tx: ReadTx) => R, options: Omit<WatchOptions, 'fromVersion'> = {}): ViewAndWatch<R> {
    const state = this.#state;
    const watch = this.watch({ ...options, fromVersion: state.version });
    try {
      return { result: read(new SnapshotReader(state)), version: state.version, watch };
    } catch (error) {
      watch.close();
      throw error;
    }
  }

  /** Every object and the version they are at, as a raft snapshot carries them. */
  snapshot(): StoreSnapshot {
    const { version, tables } = this.#state;
    const snapshot: Record<string, unknown> = { version: { index: version } };
    for (const kind of objectKindNames) snapshot[snapshotFieldByKind[kind]] = [...tables[kind].objects.values()];
    return snapshot as unknown as StoreSnapshot;
  }

  /**
   * Replaces everything the store holds with what `snapshot` holds, at its version: what a raft
   * follower does when it installs a snapshot. The history of commits is dropped, so every open
   * watch fails with COMPACTED and watchers resync. The store takes ownership of the objects and
   * freezes them. Throws INVALID_ARGUMENT (changing nothing) if the snapshot holds an id twice or
   * breaks a uniqueness rule.
   */
  restore(snapshot: StoreSnapshot): void {
    this.#exclusively(() => {
      const version = snapshot.version?.index ?? 0n;
      const tables = emptyTables() as MutableTables;
      for (const kind of objectKindNames) {
        for (const object of snapshot[snapshotFieldByKind[kind]] as AnyObject[]) {
          if (tables[kind].objects.has(object.id)) {
            throw errors.invalidArgument(`snapshot holds ${kind} ${object.id} twice`, { kind, id: object.id });
          }
          tables[kind] = replaceObject(kind, tables[kind], undefined, deepFreeze(object));
        }
        requireUniqueNames(kind, tables[kind]);
      }
      this.#state = { version, tables };
      this.#history.reset(version);
      const replaced = errors.compacted(
        `the store was restored from a snapshot at version ${version}; resync from a snapshot`,
        { version },
      );
      for (const subscription of [...this.#subscriptions]) subscription.fail(replaced);
    });
  }

  #draft(): Draft {
    return new Draft(this.#state, this.#clock(), true);
  }

  #exclusively<R>(write: () => R): R {
    if (this.#writing) {
      throw errors.failedPrecondition(
        'a write is already in progress: update, batch, apply and restore cannot be called from inside one another',
      );
    }
    this.#writing = true;
    try {
      return write();
    } finally {
      this.#writing = false;
    }
  }

  #requireWithinLimits(draft: Draft): void {
    const exceeded = draft.limitExceeded(this.#limits);
    if (exceeded !== undefined) throw exceeded;
  }

  /** Makes `draft` the store's state at `version`, stamping the objects it wrote, and tells the watchers. */
  #commit(draft: Draft, version: bigint): void {
    const committedAt = Object.freeze(new Date(draft.proposedAt.getTime()));
    const tables: MutableTables = { ...draft.state.tables };
    const events: StoreEvent[] = [];
    for (const { action, kind, before, after } of draft.changes()) {
      if (after === undefined) {
        events.push(Object.freeze({ kind, action, object: before }) as StoreEvent);
        continue;
      }
      const createdAt = action === 'create' ? committedAt : before?.meta?.createdAt;
      const committed = stamp(after, version, createdAt, committedAt);
      tables[kind] = replaceUnindexed(tables[kind], committed);
      const event = action === 'update' ? { kind, action, object: committed, old: before } : { kind, action, object: committed };
      events.push(Object.freeze(event) as StoreEvent);
    }
    this.#state = { version, tables };
    if (events.length === 0) return;
    const commit: Commit = Object.freeze({ version, events: Object.freeze(events) });
    this.#history.append(commit);
    for (const subscription of this.#subscriptions) subscription.offer(commit);
  }
}

function requireUniqueNames(kind: ObjectKindName, table: Table): void {
  if (!schemaOf(kind).uniqueNames) return;
  for (const [name, count] of sharedKeys(table, 'name')) {
    throw errors.invalidArgument(`snapshot holds ${count} ${kind} objects named ${JSON.stringify(name)}`, { kind, name });
  }
}

