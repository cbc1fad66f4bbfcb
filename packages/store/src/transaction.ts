import type { AnyObject, ObjectKindName, ObjectTypes } from '@shoal/proto';

/** What a change does to an object. */
export type StoreAction = 'create' | 'update' | 'delete';

/**
 * One write of a {@link Transaction}. For an update, `object.meta.version` is the version the
 * writer read: the change applies only if the stored object still has it. A delete's `version`
 * works the same way; without one it deletes whatever version is stored.
 */
export type Change =
  | { [K in ObjectKindName]: { readonly action: 'create' | 'update'; readonly kind: K; readonly object: ObjectTypes[K] } }[ObjectKindName]
  | { readonly action: 'delete'; readonly kind: ObjectKindName; readonly id: string; readonly version?: bigint };

/**
 * A condition on an object the transaction relies on but does not write: that it still has
 * `version`, or, for a lease, that it is still held at `leaseEpoch` and had not expired when the
 * transaction was proposed (which is how a singleton fences its writes).
 */
export type Precondition =
  | { readonly kind: ObjectKindName; readonly id: string; readonly version: bigint }
  | { readonly kind: 'lease'; readonly id: string; readonly leaseEpoch: bigint };

/**
 * An atomic set of changes, as plain data: what `MemoryStore.prepare` builds and
 * `MemoryStore.apply` commits, and what a raft log entry carries (see `toStoreTransaction`).
 * Applying it depends only on it and on the store's state, so every replica that applies the same
 * transactions in the same order ends in the same state.
 *
 * `changes` holds at most one change per object, its net effect, except that an object deleted and
 * created again in the same transaction appears as a delete followed by a create.
 */
export interface Transaction {
  readonly changes: readonly Change[];
  readonly preconditions: readonly Precondition[];
  /** When the transaction was proposed: it becomes `meta.createdAt`/`updatedAt`, and lease expiry is judged by it. */
  readonly proposedAt: Date;
}

/** The version an object was last written at, as in its `meta`; 0 for an object never committed. */
export function versionOf(object: AnyObject): bigint {
  return object.meta?.version?.index ?? 0n;
}
