import { MemoryStore, type Commit, type ReadTx, type WriteTx } from '@shoal/store';
import type { CommitInput } from './client.js';

/**
 * What a manager component needs from the store: a consistent view of all of it, conditional
 * commits, and every commit as it lands. A control loop written against this runs unchanged on an
 * in-process `MemoryStore` (component tests, simulations: {@link LocalClusterState}) and on the
 * replicated store through the Store API (a {@link StoreMirror}).
 */
export interface ClusterState {
  /** The store version the view reflects. */
  readonly version: bigint;
  /** Reads the view; consistent for the duration of `read`. */
  view<R>(read: (tx: ReadTx) => R): R;
  /**
   * Commits the changes atomically if every precondition holds (CONFLICT naming the object
   * otherwise) and resolves with the version, once the view shows it.
   */
  commit(write: CommitInput): Promise<bigint>;
  /** Calls `listener` with each commit after the view shows it, until the returned function is called. */
  subscribe(listener: (commit: Commit) => void): () => void;
}

/** Applies a {@link CommitInput} inside a write transaction: the same checks the Store API makes. */
export function applyCommitInput(tx: WriteTx, write: CommitInput): void {
  for (const precondition of write.preconditions ?? []) {
    if ('leaseEpoch' in precondition) tx.expectLeaseEpoch(precondition.id, precondition.leaseEpoch);
    else tx.expectVersion(precondition.kind, precondition.id, precondition.version);
  }
  for (const change of write.changes) {
    // A delete without a version deletes whatever is stored (NOT_FOUND if nothing is).
    if (change.action === 'delete') tx.delete(change.kind, change.id, change.version ?? tx.get(change.kind, change.id)?.meta?.version?.index ?? 0n);
    else if (change.action === 'create') tx.create(change.kind, change.object);
    else tx.update(change.kind, change.object);
  }
}

/** {@link ClusterState} over an in-process `MemoryStore`: for component tests and simulations. */
export class LocalClusterState implements ClusterState {
  constructor(readonly store: MemoryStore = new MemoryStore()) {}

  get version(): bigint {
    return this.store.version;
  }

  view<R>(read: (tx: ReadTx) => R): R {
    return this.store.view(read);
  }

  async commit(write: CommitInput): Promise<bigint> {
    this.store.update((tx) => applyCommitInput(tx, write));
    return this.store.version;
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    const watch = this.store.watch({ fromVersion: this.store.version });
    void (async () => {
      for await (const commit of watch) listener(commit);
    })();
    return () => watch.close();
  }
}
