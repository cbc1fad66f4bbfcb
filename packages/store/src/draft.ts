import { errors, type ShoalError } from '@shoal/errors';
import { codecByKind, type AnyObject, type Lease, type MessageCodec, type ObjectKindName, type ObjectTypes } from '@shoal/proto';
import { OrderedMap } from 'immutable';
import { deepFreeze } from './freeze.js';
import { requireKind, TablesReader, type ReadTx, type StoreState } from './reader.js';
import { nameKeys, schemaOf } from './schema.js';
import { idsWithKey, replaceObject, type Tables } from './table.js';
import { versionOf, type Change, type Precondition, type StoreAction, type Transaction } from './transaction.js';

/**
 * A write transaction: reads see the transaction's own writes. Every write checks its conditions
 * at once and throws a ShoalError naming the object if they fail; an error thrown out of the
 * transaction's callback discards all of it.
 */
export interface WriteTx extends ReadTx {
  /**
   * Adds an object. Throws ALREADY_EXISTS if its id is taken, NAME_CONFLICT if its kind has unique
   * names and the name (ignoring case) is taken. The store takes ownership of `object` and freezes
   * it; it gets its `meta` (version, timestamps) when the transaction commits.
   */
  create<K extends ObjectKindName>(kind: K, object: ObjectTypes[K]): void;
  /**
   * Replaces the object with `object.id`. `object.meta.version` must be the version it was read
   * at: the write throws CONFLICT if the object has moved on since, NOT_FOUND if it is gone, and
   * NAME_CONFLICT as for create. The store takes ownership of `object` and freezes it.
   */
  update<K extends ObjectKindName>(kind: K, object: ObjectTypes[K]): void;
  /** Deletes an object read at `version`. Throws NOT_FOUND if it is gone, CONFLICT if it has moved on. */
  delete(kind: ObjectKindName, id: string, version: bigint): void;
  /**
   * Makes the transaction depend on an object it does not write: it commits only if the object
   * still has `version`. Throws CONFLICT at once if it already has not.
   */
  expectVersion(kind: ObjectKindName, id: string, version: bigint): void;
  /**
   * Fences the transaction with a lease: it commits only if the lease is still held at `epoch` and
   * has not expired by the time the transaction is proposed. Throws CONFLICT at once otherwise.
   */
  expectLeaseEpoch(leaseId: string, epoch: bigint): void;
}

/** An object the transaction writes, as it was before the transaction. */
interface WrittenObject {
  readonly kind: ObjectKindName;
  readonly id: string;
  readonly before: AnyObject | undefined;
  /** Deleted and then created again within the transaction. */
  readonly recreated: boolean;
}

/** A written object with what it adds to the transaction's size. */
interface WrittenEntry extends WrittenObject {
  readonly changeCount: number;
  readonly byteCount: number;
}

/**
 * Everything a transaction has done so far. It is immutable, so a savepoint is just a reference
 * to one (see {@link Draft.state}).
 */
export interface DraftState {
  readonly tables: Tables;
  /** The written objects by {@link objectKey}, in the order the transaction first wrote them. */
  readonly written: OrderedMap<string, WrittenEntry>;
  readonly preconditions: OrderedMap<string, Precondition>;
  readonly changeCount: number;
  readonly byteCount: number;
}

/** A change the draft would commit, with the stored objects on either side of it. */
export interface DraftChange {
  readonly action: StoreAction;
  readonly kind: ObjectKindName;
  readonly id: string;
  /** The object before the change; absent for a create. */
  readonly before: AnyObject | undefined;
  /** The object after the change; absent for a delete. */
  readonly after: AnyObject | undefined;
}

/** The size limits of one transaction. */
export interface TransactionLimits {
  readonly maxChangesPerTransaction: number;
  readonly maxTransactionBytes: number;
}

/** How each kind of check words its failures. */
const checkWording = {
  update: { missing: 'update failed', stale: 'update out of sequence', expecter: 'write' },
  delete: { missing: 'delete failed', stale: 'delete out of sequence', expecter: 'write' },
  precondition: { missing: 'precondition failed', stale: 'precondition failed', expecter: 'transaction' },
} as const;

function objectKey(kind: ObjectKindName, id: string): string {
  return `${kind}/${id}`;
}

function encodedSize(kind: ObjectKindName, object: AnyObject): number {
  return (codecByKind[kind] as MessageCodec<AnyObject>).encode(object).finish().length;
}

/** The net changes of one written object, given what it is now. */
function netChanges(written: WrittenObject, after: AnyObject | undefined): DraftChange[] {
  const { kind, id, before } = written;
  if (before === undefined) return after === undefined ? [] : [{ action: 'create', kind, id, before, after }];
  if (after === undefined) return [{ action: 'delete', kind, id, before, after }];
  if (!written.recreated) return [{ action: 'update', kind, id, before, after }];
  return [
    { action: 'delete', kind, id, before, after: undefined },
    { action: 'create', kind, id, before: undefined, after },
  ];
}

/**
 * A transaction being built on top of one store state. It serves two callers: `prepare`, which runs
 * a writer's callback against it, and `apply`, which replays a {@link Transaction}'s preconditions
 * and changes through the same checks. The store's state is never touched; committing the result
 * is the store's job.
 */
export class Draft extends TablesReader implements WriteTx {
  #state: DraftState;
  #closed = false;

  /**
   * @param base The committed state the transaction starts from.
   * @param proposedAt When the transaction is proposed; lease expiry is judged by it.
   * @param checkNamesAtEachWrite Check name uniqueness at each write (for a writer's callback, so the
   *   failing call throws). A replayed transaction lists each object once in first-write order,
   *   which can differ from the order its names were freed and taken in (two objects swapping
   *   names), so `apply` passes false and calls {@link verifyUniqueNames} on the final state.
   */
  constructor(
    private readonly base: StoreState,
    readonly proposedAt: Date,
    private readonly checkNamesAtEachWrite: boolean,
    /** Whether to count the encoded bytes written, for {@link limitExceeded}; `apply` checks no limits, so it skips the encoding. */
    private readonly measureBytes = true,
  ) {
    super();
    this.#state = {
      tables: base.tables,
      written: OrderedMap(),
      preconditions: OrderedMap(),
      changeCount: 0,
      byteCount: 0,
    };
  }

  get version(): bigint {
    return this.base.version;
  }

  protected tables(): Tables {
    return this.#state.tables;
  }

  /** The draft as it is now. Keep it as a savepoint: {@link rollback} to it undoes everything done since. */
  get state(): DraftState {
    return this.#state;
  }

  rollback(savepoint: DraftState): void {
    this.#state = savepoint;
  }

  /**
   * Ends the draft: any later write through it throws. A callback that kept its `tx` past the
   * transaction would otherwise write into a draft nobody will commit, and lose the write silently.
   */
  close(): void {
    this.#closed = true;
  }

  /** True if committing would change anything. */
  hasChanges(): boolean {
    return this.#state.changeCount > 0;
  }

  create<K extends ObjectKindName>(kind: K, object: ObjectTypes[K]): void {
    this.requireOpen();
    requireKind(kind);
    this.requireId('create', kind, object);
    if (this.get(kind, object.id) !== undefined) {
      throw errors.alreadyExists(`create failed: ${kind} ${object.id} already exists`, { kind, id: object.id });
    }
    deepFreeze(object);
    if (this.checkNamesAtEachWrite) this.requireNameFree('create', kind, object);
    this.write(kind, object.id, undefined, object);
  }

  update<K extends ObjectKindName>(kind: K, object: ObjectTypes[K]): void {
    this.requireOpen();
    requireKind(kind);
    this.requireId('update', kind, object);
    const current = this.requireVersion('update', kind, object.id, versionOf(object));
    deepFreeze(object);
    if (this.checkNamesAtEachWrite) this.requireNameFree('update', kind, object);
    this.write(kind, object.id, current, object);
  }

  /** As {@link WriteTx.delete}; a replayed transaction may leave out the version (delete whatever is stored). */
  delete(kind: ObjectKindName, id: string, version?: bigint): void {
    this.requireOpen();
    requireKind(kind);
    const current = this.requireVersion('delete', kind, id, version);
    this.write(kind, id, current, undefined);
  }

  expectVersion(kind: ObjectKindName, id: string, version: bigint): void {
    this.requireOpen();
    requireKind(kind);
    this.requireVersion('precondition', kind, id, version);
    this.recordPrecondition({ kind, id, version });
  }

  expectLeaseEpoch(leaseId: string, epoch: bigint): void {
    this.requireOpen();
    const lease: Lease = this.requireVersion('precondition', 'lease', leaseId, undefined) as Lease;
    const details = { kind: 'lease', id: leaseId, name: lease.name, epoch: lease.epoch, expectedEpoch: epoch };
    if (lease.epoch !== epoch) {
      throw errors.conflict(
        `precondition failed: lease ${leaseId} (${lease.name}) is at epoch ${lease.epoch}, transaction expected ${epoch}`,
        details,
      );
    }
    // A lease without an expiry is treated as expired: fencing must fail closed.
    if (lease.expiry === undefined || lease.expiry <= this.proposedAt) {
      const expiredAt = lease.expiry?.toISOString() ?? 'an unknown time';
      throw errors.conflict(
        `precondition failed: lease ${leaseId} (${lease.name}) at epoch ${epoch} expired at ${expiredAt}`,
        details,
      );
    }
    this.recordPrecondition({ kind: 'lease', id: leaseId, leaseEpoch: epoch });
  }

  /** Throws the NAME_CONFLICT the first write to break name uniqueness would have thrown. */
  verifyUniqueNames(): void {
    for (const change of this.changes()) {
      if (change.after !== undefined) this.requireNameFree(change.action, change.kind, change.after);
    }
  }

  /**
   * Returns a RESOURCE_EXHAUSTED error if the draft is over a limit, naming the limit, or undefined
   * if it is within them. The byte count is the encoded size of the objects the changes carry.
   */
  limitExceeded(limits: TransactionLimits): ShoalError | undefined {
    const { changeCount, byteCount } = this.#state;
    const advice = 'split the write with MemoryStore.batch';
    if (changeCount > limits.maxChangesPerTransaction) {
      return errors.resourceExhausted(
        `transaction has ${changeCount} changes, more than maxChangesPerTransaction (${limits.maxChangesPerTransaction}); ${advice}`,
        { changes: changeCount, limit: limits.maxChangesPerTransaction },
      );
    }
    if (byteCount > limits.maxTransactionBytes) {
      return errors.resourceExhausted(
        `transaction writes ${byteCount} bytes of objects, more than maxTransactionBytes (${limits.maxTransactionBytes}); ${advice}`,
        { bytes: byteCount, limit: limits.maxTransactionBytes },
      );
    }
    return undefined;
  }

  /** The net changes so far, in the order the objects were first written. */
  changes(): DraftChange[] {
    const { tables, written } = this.#state;
    return [...written.values()].flatMap((object) => netChanges(object, tables[object.kind].objects.get(object.id)));
  }

  /** The draft as a {@link Transaction}. */
  toTransaction(): Transaction {
    const changes = this.changes().map((change): Change => {
      if (change.action === 'delete') {
        return { action: 'delete', kind: change.kind, id: change.id, version: versionOf(change.before as AnyObject) };
      }
      return { action: change.action, kind: change.kind, object: change.after } as Change;
    });
    return { changes, preconditions: [...this.#state.preconditions.values()], proposedAt: this.proposedAt };
  }

  private requireOpen(): void {
    if (this.#closed) {
      throw errors.failedPrecondition('the transaction has ended: a write callback must not keep its tx after it returns');
    }
  }

  private requireId(action: StoreAction, kind: ObjectKindName, object: AnyObject): void {
    if (typeof object?.id !== 'string' || object.id === '') {
      throw errors.invalidArgument(`${action} failed: the ${kind} has no id`, { kind });
    }
  }

  /**
   * Returns the current object, after checking it exists and, when `version` is given, that it has
   * that version. `check` says what is checking, for the message.
   */
  private requireVersion(check: keyof typeof checkWording, kind: ObjectKindName, id: string, version: bigint | undefined): AnyObject {
    const current = this.get(kind, id);
    const wording = checkWording[check];
    if (current === undefined) throw errors.notFound(`${wording.missing}: ${kind} ${id} does not exist`, { kind, id });
    const actual = versionOf(current);
    if (version !== undefined && actual !== version) {
      throw errors.conflict(`${wording.stale}: ${kind} ${id} has version ${actual}, ${wording.expecter} expected ${version}`, {
        kind,
        id,
        version: actual,
        expectedVersion: version,
      });
    }
    return current;
  }

  private requireNameFree(action: StoreAction, kind: ObjectKindName, object: AnyObject): void {
    const schema = schemaOf(kind);
    if (!schema.uniqueNames) return;
    const name = schema.name(object);
    for (const key of nameKeys(name)) {
      for (const holder of idsWithKey(this.#state.tables[kind], 'name', key)) {
        if (holder === object.id) continue;
        throw errors.nameConflict(`${action} failed: ${kind} name ${JSON.stringify(name)} is already taken by ${kind} ${holder}`, {
          kind,
          id: object.id,
          name,
          holder,
        });
      }
    }
  }

  /**
   * Records a precondition on the object as it was before the transaction. One on an object the
   * transaction has already written is implied by that write's own check and is not recorded:
   * the object's version in the draft is not one the committed state can be asked about.
   */
  private recordPrecondition(precondition: Precondition): void {
    const state = this.#state;
    if (state.written.has(objectKey(precondition.kind, precondition.id))) return;
    const key = JSON.stringify([precondition.kind, precondition.id, 'version' in precondition ? 'version' : 'leaseEpoch']);
    this.#state = { ...state, preconditions: state.preconditions.set(key, precondition) };
  }

  private write(kind: ObjectKindName, id: string, current: AnyObject | undefined, next: AnyObject | undefined): void {
    const state = this.#state;
    const key = objectKey(kind, id);
    const previous = state.written.get(key);
    const before = previous === undefined ? current : previous.before;
    const recreated = (previous?.recreated ?? false) || (before !== undefined && current === undefined);
    const entry: WrittenObject = { kind, id, before, recreated };
    const changeCount = netChanges(entry, next).length;
    const byteCount = next === undefined || !this.measureBytes ? 0 : encodedSize(kind, next);
    this.#state = {
      tables: { ...state.tables, [kind]: replaceObject(kind, state.tables[kind], current, next) },
      written: state.written.set(key, { ...entry, changeCount, byteCount }),
      preconditions: state.preconditions,
      changeCount: state.changeCount - (previous?.changeCount ?? 0) + changeCount,
      byteCount: state.byteCount - (previous?.byteCount ?? 0) + byteCount,
    };
  }
}
