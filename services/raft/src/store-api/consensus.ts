import type { MemoryStore, Transaction } from '@shoal/store';

/**
 * What the Store API needs from the replica it serves: a local copy of the store, a way to commit a
 * transaction through the cluster, a way to make local reads linearizable, and the leader's clock.
 * The Store API knows nothing else about Raft; the Raft replica implements this, and
 * {@link LocalConsensus} implements it for a single node without Raft.
 */
export interface Consensus {
  /** The local replica of the store; committed transactions are applied to it in log order. */
  readonly store: MemoryStore;

  /**
   * Replicates `transaction` (already checked by `store.prepare` on this node) and resolves with the
   * version it was applied at, once this replica's store has applied it. On a follower the
   * transaction is forwarded to the leader transparently.
   *
   * Rejects with the error applying it raised (CONFLICT, NOT_FOUND, NAME_CONFLICT … when it went
   * stale between being prepared and being applied; it then changed nothing), or UNAVAILABLE when
   * there is no leader: it waits for an election for a bounded time (the replica's lost-quorum
   * timeout, swarmkit's 10 ticks) and never hangs. There is no signal: a
   * proposal cannot be withdrawn once made (it may still commit), so there is nothing to cancel.
   */
  propose(transaction: Transaction): Promise<bigint>;

  /**
   * Resolves once the local store reflects every transaction committed before the call (Raft's
   * ReadIndex), so a read that follows is linearizable. Rejects with UNAVAILABLE when there is no
   * leader within the same bounded wait, and stops waiting when `signal` aborts.
   */
  readBarrier(signal?: AbortSignal): Promise<void>;

  /**
   * The current time by the leader's clock (a follower's best estimate of it). Every transaction the
   * Store API proposes carries it as `proposedAt`, so object timestamps and lease expiry on every
   * replica are judged by the leader's clock, never by the clock of whichever replica a client used.
   */
  now(): Date;
}
