import { errors } from '@shoal/errors';
import { ConfChange, EntryType, MessageType, type ConfState, type Entry, type HardState, type Message } from '@shoal/proto';
import type { ResolvedRaftConfig } from './config.js';
import { snapshotConfState, snapshotIndex, snapshotTerm } from './entries.js';
import { type Progress, ProgressTracker, type VoteResult } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnlyQueue } from './read-only.js';

/** What a member is doing in the protocol. A pre-candidate is running a pre-vote (thesis §9.6). */
export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** The raft ID that stands for "nobody" (no leader known, no vote cast). */
export const NO_MEMBER = 0n;

/** The answer to a ReadIndex request: the read may be served once the state machine has applied `index`. */
export interface ReadState {
  index: bigint;
  /** The context the request was made with. */
  context: Buffer;
}

/** Where a proposal was appended. It is committed if the entry applied at `index` has `term`; if another term's entry is applied there, it was lost. */
export interface LogPosition {
  index: bigint;
  term: bigint;
}

/** Marks a vote request that comes from a leadership transfer, which members grant even inside a leader lease. */
const CAMPAIGN_TRANSFER = Buffer.from('CampaignTransfer');
const EMPTY = Buffer.alloc(0);

type Campaign = 'pre-election' | 'election' | 'transfer';
type Outgoing = Partial<Message> & Pick<Message, 'type' | 'to'>;

/**
 * The Raft state machine. It is only ever driven through {@link RawNode}, which turns its outputs
 * (messages, read states, log changes) into Readies. Section numbers refer to the Raft paper
 * (Ongaro & Ousterhout, 2014); "thesis" to Ongaro's dissertation (2014).
 */
export class Raft {
  readonly id: bigint;
  term = 0n;
  vote = NO_MEMBER;
  role: RaftRole = 'follower';
  leader = NO_MEMBER;
  /** The member leadership is being transferred to, while a transfer is in progress. */
  leadTransferee = NO_MEMBER;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  /** Messages to send, taken by the next Ready. */
  messages: Message[] = [];
  /** Answered ReadIndex requests, taken by the next Ready. */
  readStates: ReadState[] = [];

  /** The index of the latest conf change proposed; no other may be proposed until it is applied. */
  private pendingConfIndex = 0n;
  private readQueue = new ReadOnlyQueue();
  /** Read requests a new leader holds until it has committed an entry of its own term (§6.4). */
  private readsAwaitingCommit: { from: bigint; context: Buffer }[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  constructor(private readonly config: ResolvedRaftConfig) {
    this.id = config.id;
    this.log = new RaftLog(config.storage, config.maxCommittedSizePerReady);
    this.tracker = new ProgressTracker(config.maxInflightMsgs);
    const { hardState, confState } = config.storage.initialState();
    this.tracker.reset(confState, this.log.lastIndex() + 1n);
    this.loadHardState(hardState);
    this.becomeFollower(this.term, NO_MEMBER);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return this.tracker.confState();
  }

  /** Advances logical time by one tick: followers count toward an election, leaders toward a heartbeat. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now (with a pre-vote first if configured), if this member may campaign. */
  campaign(): void {
    this.hup(this.config.preVote ? 'pre-election' : 'election');
  }

  propose(data: Buffer): LogPosition {
    this.checkCanPropose();
    return this.appendAndBroadcast({ type: EntryType.NORMAL, data });
  }

  proposeConfChange(change: ConfChange): LogPosition {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw errors.failedPrecondition(`the conf change at ${this.pendingConfIndex} must be applied before another is proposed`, {
        pendingIndex: this.pendingConfIndex,
        applied: this.log.applied,
      });
    }
    this.tracker.validate(change);
    const position = this.appendAndBroadcast({ type: EntryType.CONF_CHANGE, data: Buffer.from(ConfChange.encode(change).finish()) });
    this.pendingConfIndex = position.index;
    return position;
  }

  /**
   * Applies a committed conf change (like etcd, the membership changes when the entry is applied, not
   * when it is appended). Idempotent per change, because a snapshot that already includes it may have
   * been received while the entry was being applied.
   */
  applyConfChange(change: ConfChange): ConfState {
    this.tracker.apply(change, this.log.lastIndex() + 1n);
    if (this.tracker.voters().length === 0) {
      throw errors.internal(`applying the conf change for member ${change.nodeId} left no voters`, { nodeId: change.nodeId });
    }
    if (this.role === 'leader') this.afterLeaderConfChange();
    return this.tracker.confState();
  }

  /** Steps one message from a peer (RawNode has already refused local-only types). */
  step(m: Message): void {
    if (m.type === MessageType.MSG_READ_INDEX) {
      // Forwarded reads carry no term: whoever leads when one arrives answers it.
    } else if (m.term > this.term) {
      if (m.type === MessageType.MSG_VOTE || m.type === MessageType.MSG_PRE_VOTE) {
        const forced = m.context.equals(CAMPAIGN_TRANSFER);
        // The leader lease (thesis §6.2): while a leader is known to be alive, a vote request can only
        // come from a member that was cut off, and granting it would depose a working leader.
        const inLease = this.config.checkQuorum && this.leader !== NO_MEMBER && this.electionElapsed < this.config.electionTick;
        if (!forced && inLease) return;
      }
      if (m.type === MessageType.MSG_PRE_VOTE) {
        // A pre-vote changes nothing: it only asks whether a real vote could succeed (thesis §9.6).
      } else if (m.type === MessageType.MSG_PRE_VOTE_RESP && !m.reject) {
        // Pre-votes are answered in the term the pre-candidate would campaign in; only a real election raises it.
      } else {
        const isFromLeader = m.type === MessageType.MSG_APP || m.type === MessageType.MSG_HEARTBEAT || m.type === MessageType.MSG_SNAP;
        this.becomeFollower(m.term, isFromLeader ? m.from : NO_MEMBER);
      }
    } else if (m.term < this.term) {
      this.answerStaleTerm(m);
      return;
    }

    switch (m.type) {
      case MessageType.MSG_VOTE:
      case MessageType.MSG_PRE_VOTE:
        this.answerVoteRequest(m);
        return;
      default:
        if (this.role === 'leader') this.stepLeader(m);
        else if (this.role === 'follower') this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  /** Asks the leader to answer a ReadIndex request (§6.4); the answer arrives as a ReadState. */
  readIndex(context: Buffer): void {
    if (this.role === 'leader') {
      this.handleReadIndex(this.id, context);
      return;
    }
    if (this.leader === NO_MEMBER) throw errors.unavailable('no leader to confirm a read: retry once a leader is elected');
    this.send({ type: MessageType.MSG_READ_INDEX, to: this.leader, context });
  }

  /** Hands leadership to `to` (thesis §3.10): catch it up, then tell it to campaign at once. */
  transferLeadership(to: bigint): void {
    if (this.role !== 'leader') throw this.notLeader('transfer leadership');
    if (to === this.id) return;
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isLearner) throw errors.invalidArgument(`cannot transfer leadership to ${to}: it is not a voter`, { to });
    if (this.leadTransferee === to) return;
    this.abortLeaderTransfer();
    // The transfer must finish within an election timeout, or it is abandoned (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.log.lastIndex()) this.send({ type: MessageType.MSG_TIMEOUT_NOW, to });
    else this.maybeSendAppend(to, true);
  }

  /** The transport could not reach `to`: stop pipelining to it until it answers again. */
  reportUnreachable(to: bigint): void {
    const pr = this.role === 'leader' ? this.tracker.progress.get(to) : undefined;
    if (pr?.state === 'replicate') pr.becomeProbe();
  }

  /** The transport finished sending a snapshot to `to`, or failed to. */
  reportSnapshot(to: bigint, succeeded: boolean): void {
    const pr = this.role === 'leader' ? this.tracker.progress.get(to) : undefined;
    if (pr?.state !== 'snapshot') return;
    if (!succeeded) pr.pendingSnapshot = 0n;
    pr.becomeProbe();
    // Wait for the follower's answer (or, after a failure, a heartbeat round) before probing again.
    pr.probeSent = true;
  }

  // --- Roles -------------------------------------------------------------------------------------

  private becomeFollower(term: bigint, leader: bigint): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // Changes neither the term nor the vote: a pre-vote that fails must leave no trace (thesis §9.6).
    this.role = 'pre-candidate';
    this.tracker.resetVotes();
    this.leader = NO_MEMBER;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1n);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.tracker.progress.get(this.id)?.becomeReplicate();
    // §5.4.2 / §8: an entry of the new term lets the leader commit everything before it, and tells it
    // (for ReadIndex) which entries are committed.
    const { index } = this.appendEntry({ type: EntryType.NORMAL, data: EMPTY });
    // No membership change until that entry is applied: entries of earlier terms may hide a conf change,
    // and a leader must commit an entry of its own term before changing the membership (Ongaro's fix
    // for single-server changes, raft-dev, 2015).
    this.pendingConfIndex = index;
    this.bcastAppend();
  }

  private reset(term: bigint): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NO_MEMBER;
    }
    this.leader = NO_MEMBER;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.random.int(this.config.electionTick, 2 * this.config.electionTick - 1);
    this.abortLeaderTransfer();
    this.tracker.resetVotes();
    this.tracker.resetProgress(this.log.lastIndex() + 1n);
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) {
      self.match = this.log.lastIndex();
      self.recentActive = true;
    }
    this.pendingConfIndex = 0n;
    this.readQueue = new ReadOnlyQueue();
    this.readsAwaitingCommit = [];
  }

  /** Only a voter may campaign, and not while it holds a snapshot it has yet to apply. */
  private promotable(): boolean {
    return this.tracker.isVoter(this.id) && this.log.pendingSnapshot() === undefined;
  }

  // --- Timers ------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign();
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.tracker.quorumActiveSinceLastCheck(this.id)) {
        // Check-quorum (thesis §6.2): a leader cut off from a quorum steps down rather than keep
        // accepting proposals and answering reads it cannot confirm.
        this.becomeFollower(this.term, NO_MEMBER);
        return;
      }
      this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // --- Elections (§5.2, thesis §9.6) ---------------------------------------------------------------

  private hup(kind: Campaign): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // Until committed conf changes are applied, the membership this member would count votes in is stale.
    if (this.log.hasUnappliedConfChange()) return;
    this.runCampaign(kind);
  }

  private runCampaign(kind: Campaign): void {
    let voteType: MessageType;
    let voteTerm: bigint;
    if (kind === 'pre-election') {
      this.becomePreCandidate();
      voteType = MessageType.MSG_PRE_VOTE;
      voteTerm = this.term + 1n;
    } else {
      this.becomeCandidate();
      voteType = MessageType.MSG_VOTE;
      voteTerm = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single voter wins at once.
      if (kind === 'pre-election') this.runCampaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const voter of this.tracker.voters()) {
      if (voter === this.id) continue;
      this.send({
        type: voteType,
        to: voter,
        term: voteTerm,
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY,
      });
    }
  }

  private poll(from: bigint, granted: boolean): VoteResult {
    this.tracker.recordVote(from, granted);
    return this.tracker.tallyVotes();
  }

  /** §5.2, §5.4.1: one vote per term, only for a candidate whose log is at least as up to date. */
  private answerVoteRequest(m: Message): void {
    const isPreVote = m.type === MessageType.MSG_PRE_VOTE;
    const responseType = isPreVote ? MessageType.MSG_PRE_VOTE_RESP : MessageType.MSG_VOTE_RESP;
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_MEMBER && this.leader === NO_MEMBER) ||
      // A pre-vote for a later term: we would be free to vote in that term.
      (isPreVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: responseType, to: m.from, term: m.term });
      if (!isPreVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, term: this.term, reject: true });
    }
  }

  /** A message from an earlier term: mostly ignored, but some senders need to learn the current term. */
  private answerStaleTerm(m: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (m.type === MessageType.MSG_HEARTBEAT || m.type === MessageType.MSG_APP)) {
      // A leader of an old term, cut off while this member's term moved on. With check-quorum or
      // pre-vote, no vote request will ever raise its term, so tell it with an answer it will read.
      this.send({ type: MessageType.MSG_APP_RESP, to: m.from });
    } else if (m.type === MessageType.MSG_PRE_VOTE) {
      // Without an answer the pre-candidate would wait out its timeout; a rejection lets it learn our term.
      this.send({ type: MessageType.MSG_PRE_VOTE_RESP, to: m.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    const ownVoteResponse = this.role === 'pre-candidate' ? MessageType.MSG_PRE_VOTE_RESP : MessageType.MSG_VOTE_RESP;
    switch (m.type) {
      case MessageType.MSG_APP:
      case MessageType.MSG_HEARTBEAT:
      case MessageType.MSG_SNAP:
        // §5.2: a leader of this term exists; go back to following it.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case ownVoteResponse: {
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.runCampaign('election');
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NO_MEMBER);
        }
        return;
      }
      default:
        return;
    }
  }

  // --- Following -----------------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MSG_APP:
        this.heardFromLeader(m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.MSG_HEARTBEAT:
        this.heardFromLeader(m.from);
        this.log.commitTo(m.commit);
        this.send({ type: MessageType.MSG_HEARTBEAT_RESP, to: m.from, context: m.context });
        return;
      case MessageType.MSG_SNAP:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.MSG_TIMEOUT_NOW:
        // Thesis §3.10: the leader handed over; campaign now, without a pre-vote (there is no
        // partition to guard against) and past the other members' leases.
        this.hup('transfer');
        return;
      case MessageType.MSG_READ_INDEX_RESP:
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        // A read forwarded to a member that is no longer leader is dropped; the requester times out.
        return;
    }
  }

  private heardFromLeader(leader: bigint): void {
    this.electionElapsed = 0;
    this.leader = leader;
  }

  /** §5.3: append if our log matches at the message's index and term, otherwise reject with a hint. */
  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: lastNew });
      return;
    }
    const probe = m.index < this.log.lastIndex() ? m.index : this.log.lastIndex();
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(probe, m.logTerm);
    this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  /** §7: install the leader's snapshot unless the log already holds what it covers. */
  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (snapshot === undefined) throw errors.invalidArgument(`a snapshot message from ${m.from} carries no snapshot`, { from: m.from });
    const index = snapshotIndex(snapshot);
    if (index <= this.log.committed) {
      this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(index, snapshotTerm(snapshot))) {
      // The log already holds the entry the snapshot ends with, so it holds everything before it too.
      this.log.commitTo(index);
      this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.log.committed });
      return;
    }
    this.log.restore(snapshot);
    this.tracker.reset(snapshotConfState(snapshot), this.log.lastIndex() + 1n);
    this.send({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.log.lastIndex() });
  }

  // --- Leading -------------------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    if (m.type === MessageType.MSG_READ_INDEX) {
      this.handleReadIndex(m.from, m.context);
      return;
    }
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.MSG_APP_RESP:
        pr.recentActive = true;
        if (m.reject) this.handleAppendRejection(m, pr);
        else this.handleAppendAck(m, pr);
        return;
      case MessageType.MSG_HEARTBEAT_RESP:
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private handleAppendRejection(m: Message, pr: Progress): void {
    // The follower's hint is the last index where its log could match; the leader narrows it further
    // to the last index of its own log whose term is not above the follower's term there.
    const hint = m.logTerm > 0n ? this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0] : m.rejectHint;
    if (!pr.maybeDecrTo(m.index, hint)) return;
    if (pr.state === 'replicate') pr.becomeProbe();
    this.maybeSendAppend(m.from, true);
  }

  private handleAppendAck(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1n >= this.log.firstIndex()) {
      // The follower has the snapshot (or caught up otherwise): ordinary appends can reach it again.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeUpTo(m.index);
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Pipelining: fill the inflight window with whatever else the follower is missing.
    while (this.maybeSendAppend(m.from, false));
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: MessageType.MSG_TIMEOUT_NOW, to: m.from });
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // Acknowledgements may have been lost; free a slot so replication cannot stall on a full window.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
    if (m.context.length === 0) return;
    const acks = this.readQueue.acknowledge(m.from, m.context);
    if (acks === undefined || !this.tracker.hasQuorum(acks)) return;
    for (const read of this.readQueue.confirmThrough(m.context)) this.answerRead(read.from, read.context, read.index);
  }

  /**
   * §6.4: the read index is the commit index when the request arrives, valid once a heartbeat round
   * confirms that no other leader has been elected since. A new leader first commits an entry of its
   * term, since until then it does not know its commit index.
   */
  private handleReadIndex(from: bigint, context: Buffer): void {
    if (this.tracker.isSingleton() && this.tracker.isVoter(this.id)) {
      this.answerRead(from, context, this.log.committed);
    } else if (!this.committedEntryInCurrentTerm()) {
      this.readsAwaitingCommit.push({ from, context });
    } else {
      this.startReadRound(from, context);
    }
  }

  private startReadRound(from: bigint, context: Buffer): void {
    this.readQueue.add(this.log.committed, from, context);
    this.readQueue.acknowledge(this.id, context);
    this.bcastHeartbeat();
  }

  private answerRead(from: bigint, context: Buffer, index: bigint): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: MessageType.MSG_READ_INDEX_RESP, to: from, index, context });
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Commits what a quorum has stored, if it is an entry of this term (§5.4.2). */
  private maybeCommit(): boolean {
    if (!this.log.maybeCommit(this.tracker.committedIndex(), this.term)) return false;
    if (this.readsAwaitingCommit.length > 0 && this.committedEntryInCurrentTerm()) {
      const reads = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const read of reads) this.startReadRound(read.from, read.context);
    }
    return true;
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw this.notLeader('propose');
    if (!this.tracker.progress.has(this.id)) throw errors.failedPrecondition('this member has been removed from the cluster');
    if (this.leadTransferee !== NO_MEMBER) {
      throw errors.unavailable(`leadership is being transferred to ${this.leadTransferee}; retry on the new leader`, {
        transferee: this.leadTransferee,
      });
    }
  }

  private notLeader(action: string): Error {
    if (this.leader === NO_MEMBER) return errors.unavailable(`cannot ${action}: there is no leader; retry once one is elected`);
    return errors.failedPrecondition(`cannot ${action}: this member is not the leader; member ${this.leader} is`, { leader: this.leader });
  }

  private appendAndBroadcast(entry: Pick<Entry, 'type' | 'data'>): LogPosition {
    const position = this.appendEntry(entry);
    this.bcastAppend();
    return position;
  }

  private appendEntry(entry: Pick<Entry, 'type' | 'data'>): LogPosition {
    const index = this.log.lastIndex() + 1n;
    this.log.append([{ type: entry.type, term: this.term, index, data: entry.data }]);
    this.tracker.progress.get(this.id)?.maybeUpdate(index);
    this.maybeCommit();
    return { index, term: this.term };
  }

  private afterLeaderConfChange(): void {
    if (!this.tracker.isVoter(this.id)) {
      // This leader removed itself. Tell the others the commit index that includes the removal, then
      // step down; they elect a new leader once their election timeout passes.
      this.bcastAppend();
      this.becomeFollower(this.term, NO_MEMBER);
      return;
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      for (const id of this.tracker.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NO_MEMBER && !this.tracker.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_MEMBER;
  }

  private bcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    const context = this.readQueue.latestContext() ?? EMPTY;
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      // Never past the follower's match: beyond it, its log may still hold entries of another leader.
      const commit = pr.match < this.log.committed ? pr.match : this.log.committed;
      this.send({ type: MessageType.MSG_HEARTBEAT, to: id, commit, context });
    }
  }

  /**
   * Sends `to` the entries it is missing, or a snapshot if they were compacted away. Returns whether
   * a message was sent; with `sendIfEmpty` false, an append with no entries is not worth sending.
   */
  private maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1n;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.entriesFrom(pr.next, this.config.maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) return this.maybeSendSnapshot(to, pr);
    const last = entries[entries.length - 1];
    if (last === undefined && !sendIfEmpty) return false;
    this.send({ type: MessageType.MSG_APP, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentAppend(last?.index);
    return true;
  }

  private maybeSendSnapshot(to: bigint, pr: Progress): boolean {
    // A member not heard from lately may be down; a snapshot can be large, so wait until it answers.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    const index = snapshotIndex(snapshot);
    if (index === 0n) throw errors.internal(`member ${to} needs compacted entries, but storage holds no snapshot`, { to });
    pr.becomeSnapshot(index);
    this.send({ type: MessageType.MSG_SNAP, to, snapshot });
    return true;
  }

  // --- Plumbing ------------------------------------------------------------------------------------

  private send(out: Outgoing): void {
    const carriesOwnTerm =
      out.type === MessageType.MSG_VOTE ||
      out.type === MessageType.MSG_VOTE_RESP ||
      out.type === MessageType.MSG_PRE_VOTE ||
      out.type === MessageType.MSG_PRE_VOTE_RESP;
    if (carriesOwnTerm !== (out.term !== undefined)) {
      throw errors.internal(`message type ${MessageType[out.type]} was built ${carriesOwnTerm ? 'without' : 'with'} an explicit term`);
    }
    this.messages.push({
      from: this.id,
      // A forwarded read is answered by whoever leads when it arrives, so it carries no term.
      term: out.type === MessageType.MSG_READ_INDEX ? 0n : this.term,
      logTerm: 0n,
      index: 0n,
      entries: [],
      commit: 0n,
      snapshot: undefined,
      reject: false,
      rejectHint: 0n,
      context: EMPTY,
      ...out,
    });
  }

  private loadHardState(hardState: HardState): void {
    const { term, vote, commit } = hardState;
    if (commit < this.log.committed || commit > this.log.lastIndex()) {
      throw errors.internal(
        `stored commit index ${commit} is outside the stored log [${this.log.committed}, ${this.log.lastIndex()}]: the log was lost or truncated`,
        { commit, firstIndex: this.log.committed, lastIndex: this.log.lastIndex() },
      );
    }
    this.term = term;
    this.vote = vote;
    this.log.committed = commit;
  }
}

