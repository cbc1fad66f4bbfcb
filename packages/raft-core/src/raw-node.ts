import { errors } from '@shoal/errors';
import { MessageType, type ConfChange, type ConfState, type Entry, type HardState, type Message, type Snapshot } from '@shoal/proto';
import { resolveConfig, type RaftConfig } from './config.js';
import { hardStatesEqual, snapshotIndex } from './entries.js';
import type { ReplicationState } from './progress.js';
import { Raft, type LogPosition, type RaftRole, type ReadState } from './raft.js';

/** Who leads, as this member sees it, and what this member is doing. Not persisted. */
export interface SoftState {
  /** The leader's raft ID, or 0 when none is known. */
  leader: bigint;
  role: RaftRole;
}

/**
 * One batch of work for the caller. Handle it IN THIS ORDER, then call {@link RawNode.advance}:
 *
 * 1. Persist, durably (fsync when `mustSync`): first `snapshot` if set (it replaces the whole log),
 *    then `entries` (they may overwrite a suffix of the stored log: drop every stored entry from the
 *    first one's index on), then `hardState` if set. In that order, a crash part-way never leaves a
 *    commit index pointing past the stored log.
 * 2. Send `messages`. Only now: every message may promise what step 1 persisted (a vote, an
 *    acknowledged entry), so NOTE: no message may be sent before the hard state and entries it depends
 *    on are stable, or a crash could make this member break a promise and lose committed data. After
 *    sending a MsgSnap, call {@link RawNode.reportSnapshot} when the transport knows how it went.
 * 3. Apply `snapshot` to the state machine if set, then `committedEntries` in order; for each
 *    CONF_CHANGE entry, decode its ConfChange and call {@link RawNode.applyConfChange}.
 * 4. Serve `readStates`: each read may be answered once the state machine has applied its index.
 * 5. Call {@link RawNode.advance} with this Ready.
 *
 * Everything in a Ready is shared with the core: read it, never modify it.
 */
export interface Ready {
  /** Set when the leader or this member's role changed. */
  readonly softState: SoftState | undefined;
  /** Set when the term, vote or commit index changed: persist it. */
  readonly hardState: HardState | undefined;
  /** Entries to append to stable storage. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist and apply. */
  readonly snapshot: Snapshot | undefined;
  /** Messages for other members, each addressed by `to`. */
  readonly messages: readonly Message[];
  /** Committed entries to apply, in log order. They may include entries from `entries` above. */
  readonly committedEntries: readonly Entry[];
  /** Answered ReadIndex requests. */
  readonly readStates: readonly ReadState[];
  /** Whether step 1 must reach the disk before step 2 (a new term or vote, or new entries); a commit index alone need not. */
  readonly mustSync: boolean;
}

/** A leader's view of one member's replication. */
export interface MemberProgress {
  /** The highest index known to match the leader's log: compare it with the commit index to decide a learner has caught up. */
  match: bigint;
  next: bigint;
  state: ReplicationState;
  isLearner: boolean;
  /** Heard from within the current check-quorum round. */
  recentActive: boolean;
}

/** A snapshot of a member's state, for deciding membership changes and for diagnostics. */
export interface RaftStatus {
  id: bigint;
  role: RaftRole;
  leader: bigint;
  term: bigint;
  vote: bigint;
  commit: bigint;
  applied: bigint;
  lastIndex: bigint;
  /** The member leadership is being transferred to, or 0. */
  leadTransferee: bigint;
  confState: ConfState;
  /** On the leader, every member's progress (itself included); empty elsewhere. */
  progress: ReadonlyMap<bigint, MemberProgress>;
}

/** How a snapshot transfer ended, as {@link RawNode.reportSnapshot} reports it. */
export type SnapshotOutcome = 'finished' | 'failed';

/** Message types a peer may send; the other types of the enum are etcd's local events and have methods here instead. */
const PEER_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.MSG_APP,
  MessageType.MSG_APP_RESP,
  MessageType.MSG_VOTE,
  MessageType.MSG_VOTE_RESP,
  MessageType.MSG_SNAP,
  MessageType.MSG_HEARTBEAT,
  MessageType.MSG_HEARTBEAT_RESP,
  MessageType.MSG_TIMEOUT_NOW,
  MessageType.MSG_READ_INDEX,
  MessageType.MSG_READ_INDEX_RESP,
  MessageType.MSG_PRE_VOTE,
  MessageType.MSG_PRE_VOTE_RESP,
]);

/**
 * One Raft member as a pure state machine, in the shape of etcd's RawNode: no timers, sockets or
 * disks. The caller drives it with {@link RawNode.tick}, {@link RawNode.step} (messages from peers)
 * and proposals, and collects the results with {@link RawNode.ready} / {@link RawNode.advance}.
 * Not safe for concurrent use; every method runs to completion synchronously.
 *
 * Proposals are only accepted on the leader. A follower does not forward them (as etcd can) because
 * a forwarded proposal can be lost without trace, and the caller, which knows the leader from the
 * soft state, can send the request there itself and learn whether it was accepted.
 */
export class RawNode {
  private readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Ready | undefined;

  /** Starts a member from `config.storage` (see {@link bootstrapState} for a new cluster's founders). */
  constructor(config: RaftConfig) {
    this.raft = new Raft(resolveConfig(config));
    this.previousSoftState = this.softState();
    this.previousHardState = this.raft.hardState();
  }

  /** Advances logical time by one tick. The caller ticks at a fixed interval (swarmkit: one second). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (after a pre-vote, if enabled) instead of waiting for the election timeout. */
  campaign(): void {
    this.raft.campaign();
  }

  /**
   * Steps a message a peer sent. Throws INVALID_ARGUMENT for a message that is not addressed to this
   * member or that no peer sends; messages that are merely stale are ignored, as the protocol expects.
   */
  step(message: Message): void {
    if (message.to !== this.raft.id) {
      throw errors.invalidArgument(`message for member ${message.to} stepped into member ${this.raft.id}`, { to: message.to });
    }
    if (!PEER_MESSAGE_TYPES.has(message.type)) {
      throw errors.invalidArgument(`message type ${MessageType[message.type] ?? message.type} is not sent between members`, {
        type: message.type,
      });
    }
    if (message.term === 0n && message.type !== MessageType.MSG_READ_INDEX) {
      throw errors.invalidArgument(`a ${MessageType[message.type]} message must carry a term`, { from: message.from });
    }
    message.entries.forEach((entry, offset) => {
      if (entry.index !== message.index + 1n + BigInt(offset)) {
        throw errors.invalidArgument(`message from ${message.from} carries entries that do not follow index ${message.index} in order`, {
          from: message.from,
        });
      }
    });
    this.raft.step(message);
  }

  /**
   * Appends `data` as a normal entry and returns where. Only the leader accepts proposals: elsewhere
   * this throws UNAVAILABLE when no leader is known and FAILED_PRECONDITION naming the leader
   * (`details.leader`) otherwise; during a leadership transfer it throws UNAVAILABLE. The entry is
   * committed once an applied entry at the returned index has the returned term. `data` is kept, not copied.
   */
  propose(data: Uint8Array): LogPosition {
    return this.raft.propose(asBuffer(data));
  }

  /**
   * Proposes one membership change (thesis §4.1). New members join with ADD_LEARNER_NODE; once the
   * caller sees a learner's progress match the commit index ({@link RawNode.status}) it promotes it
   * with ADD_NODE. Fails like {@link RawNode.propose}, and also with FAILED_PRECONDITION while an
   * earlier conf change is not yet applied, or if the change does not fit the membership (ADD_NODE
   * for a member that is not a learner, removing the last voter), ALREADY_EXISTS or NOT_FOUND for
   * members that are already there or missing, and INVALID_ARGUMENT for raft ID 0 or an unknown type.
   * The change takes effect on each member when it calls {@link RawNode.applyConfChange}.
   */
  proposeConfChange(change: ConfChange): LogPosition {
    return this.raft.proposeConfChange(change);
  }

  /**
   * Applies a committed conf change (from a CONF_CHANGE entry in `committedEntries`) and returns the
   * new membership, which the caller records with its next snapshot. A leader that removes itself
   * steps down here.
   */
  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  /**
   * Hands leadership to the voter `to` (thesis §3.10): the leader brings it up to date, then tells it
   * to campaign at once. Proposals fail with UNAVAILABLE until the transfer ends, which it does when
   * `to` wins, or after an election timeout. Only on the leader (FAILED_PRECONDITION or UNAVAILABLE
   * otherwise); INVALID_ARGUMENT if `to` is not a voter. Transferring to the leader itself does nothing.
   */
  transferLeadership(to: bigint): void {
    this.raft.transferLeadership(to);
  }

  /**
   * Requests a linearizable read (§6.4). A ReadState with the same `context` arrives in a later Ready
   * once the leader has confirmed it still leads; the read may be served when the state machine has
   * applied its index. Followers forward the request to the leader, which matches requests by context
   * alone, so `context` must be non-empty and unique among the cluster's pending reads (include the
   * member's raft ID). Throws UNAVAILABLE when no leader is known. A request is silently dropped if
   * leadership changes first: time out and retry.
   */
  readIndex(context: Uint8Array): void {
    if (context.length === 0) throw errors.invalidArgument('a read context must not be empty');
    this.raft.readIndex(asBuffer(context));
  }

  /** Tells the leader that the transport failed to reach `to`, so it stops pipelining and probes instead. */
  reportUnreachable(to: bigint): void {
    this.raft.reportUnreachable(to);
  }

  /**
   * Tells the leader how sending a snapshot to `to` ended. Until then it sends `to` nothing else; a
   * failure makes it try again after the next heartbeat answer.
   */
  reportSnapshot(to: bigint, outcome: SnapshotOutcome): void {
    this.raft.reportSnapshot(to, outcome === 'finished');
  }

  /** Whether {@link RawNode.ready} has anything to hand out. Always false while a Ready awaits {@link RawNode.advance}. */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const log = this.raft.log;
    return (
      !softStatesEqual(this.softState(), this.previousSoftState) ||
      !hardStatesEqual(this.raft.hardState(), this.previousHardState) ||
      log.pendingSnapshot() !== undefined ||
      log.hasUnstableEntries() ||
      this.raft.messages.length > 0 ||
      this.raft.readStates.length > 0 ||
      log.hasNextCommittedEntries()
    );
  }

  /**
   * Takes the next batch of work (see {@link Ready} for what to do with it). The methods above may
   * still be called until {@link RawNode.advance}; their results go into the next Ready. Throws
   * FAILED_PRECONDITION if the previous Ready has not been advanced.
   */
  ready(): Ready {
    if (this.outstanding !== undefined) throw errors.failedPrecondition('ready() called again before advance() of the previous Ready');
    const log = this.raft.log;
    const softState = this.softState();
    const hardState = this.raft.hardState();
    const entries = log.unstableEntries();
    const ready: Ready = {
      softState: softStatesEqual(softState, this.previousSoftState) ? undefined : softState,
      hardState: hardStatesEqual(hardState, this.previousHardState) ? undefined : hardState,
      entries,
      snapshot: log.pendingSnapshot(),
      messages: this.raft.messages,
      committedEntries: log.nextCommittedEntries(),
      readStates: this.raft.readStates,
      mustSync: entries.length > 0 || hardState.term !== this.previousHardState.term || hardState.vote !== this.previousHardState.vote,
    };
    this.raft.messages = [];
    this.raft.readStates = [];
    this.previousSoftState = softState;
    this.outstanding = ready;
    return ready;
  }

  /** Reports that the caller has done everything `ready` asked. Throws FAILED_PRECONDITION for any other Ready than the last one taken. */
  advance(ready: Ready): void {
    if (ready !== this.outstanding) throw errors.failedPrecondition('advance() must be given the Ready returned by the last ready()');
    this.outstanding = undefined;
    const log = this.raft.log;
    if (ready.hardState !== undefined) this.previousHardState = ready.hardState;
    if (ready.snapshot !== undefined) {
      const index = snapshotIndex(ready.snapshot);
      log.stableSnapTo(index);
      log.appliedTo(index);
    }
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
    const lastStored = ready.entries[ready.entries.length - 1];
    if (lastStored !== undefined) log.stableTo(lastStored.index, lastStored.term);
  }

  status(): RaftStatus {
    const raft = this.raft;
    const progress = new Map<bigint, MemberProgress>();
    if (raft.role === 'leader') {
      for (const [id, pr] of raft.tracker.progress) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive });
      }
    }
    return {
      id: raft.id,
      role: raft.role,
      leader: raft.leader,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      leadTransferee: raft.leadTransferee,
      confState: raft.confState(),
      progress,
    };
  }

  private softState(): SoftState {
    return { leader: this.raft.leader, role: this.raft.role };
  }
}

function softStatesEqual(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
