import { ErrorCode, ShoalError, errors, hasCode } from '@shoal/errors';
import { LOCKED_MESSAGE } from '@shoal/raft-storage';

/** Docker's words for a manager that cannot reach a leader (swarmkit's `lostQuorumTimeout` fast failure). */
export const NO_LEADER_MESSAGE =
  "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/** What the replica answers, and why, when it cannot do what was asked. Each is a ShoalError with a code clients act on. */
export const refusals = {
  /** No leader for too long: proposals and reads fail fast instead of hanging. */
  noLeader: () => errors.unavailable(NO_LEADER_MESSAGE),
  /**
   * swarmkit's ErrLostLeadership: this member proposed the entry as leader, then lost leadership before
   * it committed. The entry may still commit under the new leader, so the caller must re-read before
   * retrying a write that is not idempotent.
   */
  lostLeadership: () => errors.unavailable('raft: lost leadership before the write committed; it may still commit, re-read before retrying'),
  /** A forwarded write reached a member that no longer leads; nothing was proposed. */
  notLeader: () => errors.unavailable('raft: this member is not the leader any more; nothing was proposed, retry'),
  locked: () => errors.failedPrecondition(LOCKED_MESSAGE),
  notLocked: () => errors.failedPrecondition('swarm is not locked'),
  starting: () => errors.unavailable('this raft replica is still starting; retry shortly'),
  stopped: () => errors.unavailable('this raft replica is shutting down; use another manager'),
  removed: () =>
    errors.failedPrecondition(
      'this manager was removed from the raft cluster; to rejoin, clear its raft data directory and join again',
    ),
  /** A message or snapshot from a member the cluster removed: it must not disturb the cluster again. */
  memberRemoved: (raftId: bigint) =>
    new ShoalError(ErrorCode.PermissionDenied, `raft member ${raftId.toString(16)} was removed from the cluster`, {
      details: { raftId, removed: true },
    }),
};

/** True if a peer refused this member's message because the cluster removed it (see {@link refusals.memberRemoved}). */
export function isRemovedRefusal(err: unknown, ownRaftId: bigint): boolean {
  return hasCode(err, ErrorCode.PermissionDenied) && err.details.removed === true && err.details.raftId === ownRaftId;
}
