import { errors } from '@shoal/errors';
import { ConfChangeType, type ConfChange, type ConfState } from '@shoal/proto';
import { compareBigints } from './entries.js';

/**
 * How a leader replicates to one follower:
 * - `probe`: it does not know where the follower's log matches, so it sends one append at a time and
 *   waits for the answer (or a heartbeat response) before the next;
 * - `replicate`: the logs match up to `match`; appends are pipelined, up to maxInflightMsgs at once;
 * - `snapshot`: the follower needs entries the log no longer has; a snapshot is on its way and appends
 *   wait until the transport reports how it went or the follower acknowledges it.
 */
export type ReplicationState = 'probe' | 'replicate' | 'snapshot';

/** The last indexes of the appends in flight to one follower, oldest first: the flow-control window. */
class Inflights {
  private readonly buffer: bigint[];
  private start = 0;
  private count = 0;

  constructor(private readonly capacity: number) {
    this.buffer = new Array<bigint>(capacity).fill(0n);
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  add(lastIndex: bigint): void {
    if (this.full()) throw errors.internal('cannot send another append: the inflight window is full');
    this.buffer[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees the appends the follower has acknowledged: every one whose last index is at most `index`. */
  freeUpTo(index: bigint): void {
    while (this.count > 0 && (this.buffer[this.start] as bigint) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Makes room for one more append when acknowledgements may have been lost. */
  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

/** What a leader knows about one member's log, and how it is sending to it. */
export class Progress {
  /** The highest index known to match the leader's log. */
  match = 0n;
  /** The index of the next entry to send. */
  next: bigint;
  state: ReplicationState = 'probe';
  /** In `snapshot` state, the index of the snapshot being sent. */
  pendingSnapshot = 0n;
  /** Heard from since the last check-quorum round (always true for the leader itself). */
  recentActive = false;
  /** In `probe` state, an append is out and the next waits for an answer. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    next: bigint,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    // Leaving snapshot state: the follower has the snapshot (or will be sent it again from the probe).
    const after = this.state === 'snapshot' && this.pendingSnapshot > this.match ? this.pendingSnapshot : this.match;
    this.resetState('probe');
    this.next = after + 1n;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1n;
  }

  becomeSnapshot(snapshotIndex: bigint): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledgement up to `index`; returns false if it told us nothing new (a stale or duplicate answer). */
  maybeUpdate(index: bigint): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1n) this.next = index + 1n;
    return updated;
  }

  /**
   * The follower rejected the append after `rejected`; `hint` is the highest index that may still
   * match. Returns false for a stale rejection (an answer to an append that is no longer the latest).
   */
  maybeDecrTo(rejected: bigint, hint: bigint): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1n;
      return true;
    }
    if (this.next - 1n !== rejected) return false;
    const candidate = rejected < hint + 1n ? rejected : hint + 1n;
    this.next = candidate > this.match + 1n ? candidate : this.match + 1n;
    this.probeSent = false;
    return true;
  }

  /** Records an append sent with entries up to `lastIndex` (or none, when lastIndex is undefined). */
  sentAppend(lastIndex: bigint | undefined): void {
    if (this.state === 'replicate') {
      if (lastIndex === undefined) return;
      this.next = lastIndex + 1n;
      this.inflights.add(lastIndex);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      throw errors.internal('an append was sent to a follower that is being sent a snapshot');
    }
  }

  /** True when no more appends may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  private resetState(state: ReplicationState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0n;
    this.inflights.reset();
  }
}

/** The result of counting votes (or acknowledgements) against a quorum of voters. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The membership and, on a leader, each member's {@link Progress}. Membership changes one server at a
 * time (thesis §4.1): any majority of the old voters overlaps any majority of the new ones, so there is
 * no joint consensus; a learner receives the log but never votes or counts toward a quorum.
 */
export class ProgressTracker {
  readonly progress = new Map<bigint, Progress>();
  private voterIds: bigint[] = [];
  private readonly votes = new Map<bigint, boolean>();

  constructor(private readonly maxInflight: number) {}

  /** Replaces the membership with `confState`, every member starting from `next`. */
  reset(confState: ConfState, next: bigint): void {
    this.progress.clear();
    for (const id of confState.voters) this.progress.set(id, new Progress(next, this.maxInflight, false));
    for (const id of confState.learners) this.progress.set(id, new Progress(next, this.maxInflight, true));
    this.updateVoterIds();
  }

  confState(): ConfState {
    const learners = [...this.progress].filter(([, pr]) => pr.isLearner).map(([id]) => id);
    return { voters: [...this.voterIds], learners: learners.sort(compareBigints) };
  }

  isVoter(id: bigint): boolean {
    return this.progress.get(id)?.isLearner === false;
  }

  voters(): readonly bigint[] {
    return this.voterIds;
  }

  isSingleton(): boolean {
    return this.voterIds.length === 1;
  }

  /**
   * The highest index stored on a majority of voters: the median of their match indexes. The leader
   * still has to check that the entry there is from its term before committing it (§5.4.2).
   */
  committedIndex(): bigint {
    const matches = this.voterIds.map((id) => (this.progress.get(id) as Progress).match).sort(compareBigints);
    return matches[Math.floor((matches.length - 1) / 2)] ?? 0n;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voterIds) {
      const vote = this.votes.get(id);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    return this.result(granted, rejected);
  }

  /** Whether the members in `acks` make up a quorum of voters. */
  hasQuorum(acks: ReadonlySet<bigint>): boolean {
    let granted = 0;
    for (const id of this.voterIds) if (acks.has(id)) granted++;
    return this.result(granted, 0) === 'won';
  }

  /**
   * Check-quorum (thesis §6.2): whether a quorum of voters was heard from since the last round. Starts
   * the next round by marking everyone but `self` inactive.
   */
  quorumActiveSinceLastCheck(self: bigint): boolean {
    let active = 0;
    for (const id of this.voterIds) {
      if (id === self || (this.progress.get(id) as Progress).recentActive) active++;
    }
    for (const [id, pr] of this.progress) pr.recentActive = id === self;
    return this.result(active, 0) === 'won';
  }

  /**
   * Checks that `change` is a valid single-server change of the current membership, and throws the
   * ShoalError a proposer should see if not. New members must join as learners: a voter that starts
   * with an empty log would weaken the quorum until it caught up.
   */
  validate(change: ConfChange): void {
    const { nodeId, type } = change;
    const existing = this.progress.get(nodeId);
    if (nodeId === 0n) throw errors.invalidArgument('a conf change must name a raft ID other than 0');
    switch (type) {
      case ConfChangeType.ADD_LEARNER_NODE:
        if (existing !== undefined) {
          throw errors.alreadyExists(`member ${nodeId} is already a ${existing.isLearner ? 'learner' : 'voter'}`, { nodeId });
        }
        return;
      case ConfChangeType.ADD_NODE:
        if (existing === undefined) {
          throw errors.failedPrecondition(`member ${nodeId} must join as a learner and catch up before it becomes a voter`, { nodeId });
        }
        if (!existing.isLearner) throw errors.alreadyExists(`member ${nodeId} is already a voter`, { nodeId });
        return;
      case ConfChangeType.REMOVE_NODE:
        if (existing === undefined) throw errors.notFound(`member ${nodeId} is not in the cluster`, { nodeId });
        if (!existing.isLearner && this.voterIds.length === 1) {
          throw errors.failedPrecondition(`cannot remove ${nodeId}: it is the last voter`, { nodeId });
        }
        return;
      case ConfChangeType.UPDATE_NODE:
        if (existing === undefined) throw errors.notFound(`member ${nodeId} is not in the cluster`, { nodeId });
        return;
      default:
        throw errors.invalidArgument(`unknown conf change type ${type}`, { type });
    }
  }

  /**
   * Applies a committed change; a new member starts from `next`. Total and idempotent (adding a
   * member twice or removing an absent one changes nothing), so every member that applies the same
   * log reaches the same membership even if a snapshot that includes the change arrived first.
   */
  apply(change: ConfChange, next: bigint): void {
    const { nodeId, type } = change;
    const existing = this.progress.get(nodeId);
    switch (type) {
      case ConfChangeType.ADD_LEARNER_NODE:
      case ConfChangeType.ADD_NODE:
        if (existing === undefined) {
          const added = new Progress(next, this.maxInflight, type === ConfChangeType.ADD_LEARNER_NODE);
          // Counted as heard from, so that a check-quorum round right after the change cannot depose the leader.
          added.recentActive = true;
          this.progress.set(nodeId, added);
        } else if (type === ConfChangeType.ADD_NODE) {
          existing.isLearner = false;
        }
        break;
      case ConfChangeType.REMOVE_NODE:
        this.progress.delete(nodeId);
        break;
      case ConfChangeType.UPDATE_NODE:
        return;
      default:
        throw errors.internal(`a committed conf change has unknown type ${type}`, { type });
    }
    this.updateVoterIds();
  }

  /** Puts every member back into probe state from `next` (a new term: nothing is known yet). */
  resetProgress(next: bigint): void {
    for (const [id, pr] of this.progress) this.progress.set(id, new Progress(next, this.maxInflight, pr.isLearner));
  }

  private result(granted: number, rejected: number): VoteResult {
    const quorum = Math.floor(this.voterIds.length / 2) + 1;
    if (granted >= quorum) return 'won';
    if (this.voterIds.length - rejected < quorum) return 'lost';
    return 'pending';
  }

  private updateVoterIds(): void {
    this.voterIds = [...this.progress]
      .filter(([, pr]) => !pr.isLearner)
      .map(([id]) => id)
      .sort(compareBigints);
  }
}
