import { errors } from '@shoal/errors';
import type { CommitRequest, ObjectKindName } from '@shoal/proto';
import { fromStoreTransaction, versionOf, type Transaction, type WriteTx } from '@shoal/store';
import type { Consensus } from './consensus.js';

/**
 * Runs `write` against the local store as one transaction stamped with the leader's time (`now`,
 * which `write` also gets, e.g. to judge lease expiry) and returns it, checked but not committed.
 * Whatever `write` or the store's checks throw (CONFLICT, NOT_FOUND, NAME_CONFLICT,
 * RESOURCE_EXHAUSTED, INVALID_ARGUMENT …) propagates, and nothing has been proposed.
 */
export function prepareAtLeaderTime(consensus: Consensus, write: (tx: WriteTx, now: Date) => void): Transaction {
  const now = consensus.now();
  // The store stamps a prepared transaction with its own clock; the leader's clock must decide.
  return { ...consensus.store.prepare((tx) => write(tx, now)), proposedAt: now };
}

/** The stored version of an object, or 0 when there is none (the write then fails with NOT_FOUND). */
function storedVersion(tx: WriteTx, kind: ObjectKindName, id: string): bigint {
  const current = tx.get(kind, id);
  return current === undefined ? 0n : versionOf(current);
}

/** Makes `tx` do what `requested` asks, each step checked as it is made. */
function replay(tx: WriteTx, requested: Transaction): void {
  for (const precondition of requested.preconditions) {
    if ('version' in precondition) tx.expectVersion(precondition.kind, precondition.id, precondition.version);
    else tx.expectLeaseEpoch(precondition.id, precondition.leaseEpoch);
  }
  for (const change of requested.changes) {
    if (change.action === 'delete') tx.delete(change.kind, change.id, change.version ?? storedVersion(tx, change.kind, change.id));
    else if (change.action === 'create') tx.create(change.kind, change.object);
    else tx.update(change.kind, change.object);
  }
}

/**
 * Checks a Commit request against the local store and returns the transaction to propose. Throws,
 * having proposed nothing, INVALID_ARGUMENT for a malformed request (no changes, an unknown kind or
 * action, a change without its object or target, a precondition that expects nothing) and whatever
 * the store's checks throw.
 */
export function prepareCommit(consensus: Consensus, request: CommitRequest): Transaction {
  if (request.changes.length === 0) throw errors.invalidArgument('a commit must carry at least one change');
  return prepareAtLeaderTime(consensus, (tx, now) => {
    // A commit request holds what a raft entry holds, bar the proposer's bookkeeping (request id,
    // proposal time); decoding both the same way makes the API accept exactly what the log does.
    const requested = fromStoreTransaction({ requestId: 0n, changes: request.changes, preconditions: request.preconditions, proposedAt: now });
    replay(tx, requested);
  });
}
