import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError, errors, hasCode, isShoalError, toShoalError } from '@shoal/errors';
import {
  ConfChange,
  ConfChangeType,
  ConfState,
  EntryType,
  MessageType,
  RaftMembershipService,
  RaftService,
  StoreTransaction,
  type Cluster,
  type Entry,
  type HardState,
  type JoinRequest,
  type JoinResponse,
  type ListMembersResponse,
  type Message,
  type RaftMember,
  type SnapshotMetadata,
  RaftMemberStatus_Reachability,
} from '@shoal/proto';
import { MemoryStorage, RawNode, bootstrapState, type RaftRole, type Ready, type SoftState } from '@shoal/raft-core';
import { clusterUnlockKey, RaftStorage, type OpenedRaftStorage, type RaftStorageOptions } from '@shoal/raft-storage';
import type { ClientTls } from '@shoal/rpc';
import { untilAborted, type Component, type ComponentContext, type Logger } from '@shoal/runtime';
import { MemoryStore, fromStoreTransaction, toStoreTransaction, type Transaction } from '@shoal/store';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import type { Consensus } from '../store-api/index.js';
import { Membership, findOwnRaftId, memberChange, removalChange } from './membership.js';
import { LinearizableReads } from './reads.js';
import { isRemovedRefusal, refusals } from './refusals.js';
import { encodeRaftSnapshot, readRaftSnapshot } from './snapshots.js';
import { PeerTransport } from './transport.js';
import { Conditions, PendingEntries } from './waiters.js';

/** What a replica is doing; anything but `running` refuses service (see {@link RaftReplica.refusal}). */
export type ReplicaState = 'starting' | 'locked' | 'running' | 'removed' | 'stopped';

/** Everything a {@link RaftReplica} needs. Timings are in ticks of `tickMs`, as in swarmkit. */
export interface RaftReplicaOptions {
  /** The state directory; the raft data lives in `<dataDir>/raft` (see `@shoal/raft-storage`). */
  dataDir: string;
  /** This manager's node ID: the common name of its certificate, which its peers check. */
  nodeId: string;
  /** `host:port` where the other managers reach this manager's gRPC server. */
  advertiseAddress: string;
  /**
   * `host:port` of any manager of an existing cluster, to join it when `dataDir` holds no raft data.
   * Without it, an empty `dataDir` bootstraps a new single-member cluster. Ignored when `dataDir`
   * holds data: the replica restarts as the member it was.
   */
  join?: string;
  /** This manager's certificate and key and the cluster CA, presented to and checked against peers. */
  tls: ClientTls;
  /** @default 1000 (swarmkit's TickInterval: 1 s) */
  tickMs?: number;
  /** @default 10 (swarmkit's ElectionTick) */
  electionTicks?: number;
  /** @default 1 (swarmkit's HeartbeatTick) */
  heartbeatTicks?: number;
  /** Applied entries between snapshots. @default 10000 (swarmkit's SnapshotInterval) */
  snapshotInterval?: number;
  /** Entries kept behind a snapshot so slow followers catch up without one. @default 500 (swarmkit's LogEntriesForSlowFollowers) */
  logEntriesForSlowFollowers?: number;
  /** Snapshot bytes per StreamRaftMessage chunk. @default 1 MiB */
  snapshotChunkBytes?: number;
}

/** Status of a replica, for logs, tests and diagnostics. */
export interface ReplicaStatus {
  state: ReplicaState;
  raftId: bigint;
  role: RaftRole;
  /** The leader as this replica knows it; 0 when none. */
  leader: bigint;
  term: bigint;
  /** The last log index applied to the store. */
  applied: bigint;
  /** The index of the latest snapshot taken or received. */
  snapshotIndex: bigint;
  voters: bigint[];
  learners: bigint[];
}

/** How long the leader waits for a joiner's advertised address to answer (swarmkit: 5 s). */
const JOIN_HEALTH_CHECK_MS = 5_000;
const MAX_QUEUED_MESSAGES_PER_PEER = 4_096;
const EMPTY = Buffer.alloc(0);
const UINT64_MASK = (1n << 64n) - 1n;

/** A promise with its settle functions (Promise.withResolvers arrived after Node 20). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What exists only once the replica has started; until then, the refusal a starting replica gives. */
function started<T>(value: T | undefined): T {
  if (value === undefined) throw refusals.starting();
  return value;
}

function randomUint64(): bigint {
  return randomBytes(8).readBigUInt64BE();
}

interface ResolvedOptions extends Required<Omit<RaftReplicaOptions, 'join'>> {
  join: string | undefined;
}

function resolveOptions(options: RaftReplicaOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    tickMs: 1_000,
    electionTicks: 10,
    heartbeatTicks: 1,
    snapshotInterval: 10_000,
    logEntriesForSlowFollowers: 500,
    snapshotChunkBytes: 1024 * 1024,
    ...options,
    join: options.join,
  };
  for (const name of ['tickMs', 'electionTicks', 'heartbeatTicks', 'snapshotInterval'] as const) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] < 1) {
      throw errors.invalidArgument(`${name} must be a positive integer`, { [name]: resolved[name] });
    }
  }
  if (!Number.isSafeInteger(resolved.logEntriesForSlowFollowers) || resolved.logEntriesForSlowFollowers < 0) {
    throw errors.invalidArgument('logEntriesForSlowFollowers must be a whole number', {
      logEntriesForSlowFollowers: resolved.logEntriesForSlowFollowers,
    });
  }
  if (resolved.nodeId === '') throw errors.invalidArgument('a raft replica needs its node ID');
  return resolved;
}

/** What a replica starts raft from: its hard state, the latest snapshot and the entries after it. */
interface StartingPoint {
  hardState: HardState;
  snapshot: SnapshotMetadata | undefined;
  entries: Entry[];
  /** This member's raft ID when it is already known (just bootstrapped or joined). */
  raftId: bigint | undefined;
  /** Set for a joiner: the members it was told about, to reach them before its log tells it who they are. */
  joinedWith: RaftMember[] | undefined;
}

/**
 * One replica of Shoal's manager database: it drives a raft-core `RawNode` with real time, keeps the
 * log and snapshots in an encrypted `RaftStorage` (fsynced before anything is sent or acknowledged),
 * applies committed transactions to its `MemoryStore`, and talks to the other replicas over gRPC
 * with mutual TLS. It is the Store API's {@link Consensus}: a follower forwards writes to the leader
 * and waits until its own store has applied them; reads are made linearizable with ReadIndex.
 *
 * It is also a supervisor {@link Component}: `run` opens the storage (staying LOCKED until
 * {@link RaftReplica.unlock} when it is autolocked), bootstraps, joins or restarts, replays the log,
 * reports ready, and serves until stopped. Membership (join, leave, list) runs on the leader; other
 * replicas forward those calls to it.
 *
 * Every Ready is handled in raft's order: persist (one fsynced WAL record), send, apply the snapshot
 * and the committed entries, answer reads, advance. Ready handling is one asynchronous loop; ticks,
 * peer messages and proposals arriving meanwhile go into the node and come out in the next Ready.
 */
export class RaftReplica implements Consensus, Component {
  readonly name = 'raft-replica';
  /** The local replica of the store; the Store API reads and watches it. */
  readonly store = new MemoryStore();

  readonly #options: ResolvedOptions;
  /** Ticks without a leader after which writes and reads fail fast (swarmkit's lostQuorumTimeout, 10 ticks). */
  readonly #lostQuorumTicks: number;
  /** How long a forwarded request may take: swarmkit's 5 s + 2 × ElectionTick × TickInterval. */
  readonly #requestTimeoutMs: number;
  readonly #fatal = deferred<never>();
  readonly #conditions = new Conditions();
  readonly #proposals = new PendingEntries<bigint>();
  readonly #confChanges = new PendingEntries<void>();
  /** When each member was last heard from (ms since epoch): reachability for ListMembers and removals. */
  readonly #lastHeard = new Map<bigint, number>();
  readonly #requestIdBase = randomUint64();

  #state: ReplicaState = 'starting';
  #log: Logger | undefined;
  #storage: RaftStorage | undefined;
  #memoryStorage = new MemoryStorage();
  #node: RawNode | undefined;
  #transport: PeerTransport | undefined;
  #reads: LinearizableReads | undefined;
  #membership = new Membership();
  #confState: ConfState = ConfState.create();
  #raftId = 0n;
  #leader = 0n;
  #role: RaftRole = 'follower';
  #term = 0n;
  #applied = 0n;
  #snapshotIndex = 0n;
  #ticks = 0;
  #ticksWithoutLeader = 0;
  #requestCounter = 0n;
  #ticker: NodeJS.Timeout | undefined;
  #processing = false;
  #loop: Promise<void> = Promise.resolve();
  #snapshotting: Promise<void> | undefined;
  #membershipChanges: Promise<unknown> = Promise.resolve();
  #promoting = false;
  /** While LOCKED: hands storage opened by {@link unlock} to the waiting `run`. */
  #resumeUnlocked: ((opened: OpenedRaftStorage | undefined) => void) | undefined;
  #unlocking = false;
  /** The unlock key the storage is locked with now (undefined: not autolocked). Never written anywhere. */
  #unlockKey: string | undefined;
  #observedCluster: Cluster | undefined;

  constructor(options: RaftReplicaOptions) {
    this.#options = resolveOptions(options);
    this.#lostQuorumTicks = this.#options.electionTicks;
    this.#requestTimeoutMs = 5_000 + 2 * this.#options.electionTicks * this.#options.tickMs;
    // run() observes it, but a failure may come while nothing awaits it: that is no unhandled rejection.
    this.#fatal.promise.catch(() => undefined);
  }

  // --- Component ---------------------------------------------------------------------------------

  async run(ctx: ComponentContext): Promise<void> {
    this.#log = ctx.log;
    try {
      const opened = await this.openStorage(ctx);
      if (opened === undefined) return;
      await this.start(opened, ctx.signal);
      ctx.ready();
      await Promise.race([untilAborted(ctx.signal), this.#fatal.promise]);
    } catch (err) {
      // Stopping while joining or replaying cancels them; that is a clean stop, not a failure.
      if (!ctx.signal.aborted) throw err;
    } finally {
      await this.stop();
    }
  }

  // --- Consensus (the Store API's view) ------------------------------------------------------------

  async propose(transaction: Transaction): Promise<bigint> {
    this.requireRunning();
    const leader = await this.awaitLeader();
    if (leader === this.#raftId) return this.proposeAsLeader(transaction);
    const response = await this.transport.callMember(
      leader,
      RaftService.forwardProposal,
      { transaction: toStoreTransaction(transaction, 0n) },
      { deadlineMs: this.#requestTimeoutMs },
    );
    const version = response.version?.index;
    if (version === undefined) throw errors.internal('the leader answered a forwarded proposal without its version');
    // Read-your-writes: the caller may read this replica next, so answer once it has applied the write.
    await this.appliedAtLeast(version);
    return version;
  }

  async readBarrier(signal?: AbortSignal): Promise<void> {
    this.requireRunning();
    await this.awaitLeader(signal);
    const index = await this.reads.readIndex(signal);
    await this.appliedAtLeast(index, signal);
  }

  /** This machine's clock. Only the leader's counts: it stamps every transaction it proposes, forwarded ones included. */
  now(): Date {
    return new Date();
  }

  // --- Serving state -----------------------------------------------------------------------------

  /** Why this replica cannot serve right now (LOCKED, starting, removed, stopping), or undefined when it can. */
  refusal(): ShoalError | undefined {
    switch (this.#state) {
      case 'running':
        return undefined;
      case 'starting':
        return refusals.starting();
      case 'locked':
        return refusals.locked();
      case 'removed':
        return refusals.removed();
      case 'stopped':
        return refusals.stopped();
    }
  }

  status(): ReplicaStatus {
    return {
      state: this.#state,
      raftId: this.#raftId,
      role: this.#role,
      leader: this.#leader,
      term: this.#term,
      applied: this.#applied,
      snapshotIndex: this.#snapshotIndex,
      voters: [...this.#confState.voters],
      learners: [...this.#confState.learners],
    };
  }

  /**
   * Unlocks a LOCKED replica with the cluster's unlock key (`docker swarm unlock`) and lets it start.
   * Resolves once the storage is open. UNAUTHENTICATED with Docker's "swarm could not be unlocked:
   * invalid key provided" for a wrong key; FAILED_PRECONDITION "swarm is not locked" when it is not.
   */
  async unlock(unlockKey: string): Promise<void> {
    const resume = this.#resumeUnlocked;
    if (this.#state !== 'locked' || resume === undefined) throw refusals.notLocked();
    if (this.#unlocking) throw errors.unavailable('another unlock attempt is in progress');
    this.#unlocking = true;
    try {
      const opened = await RaftStorage.open(this.storageOptions(unlockKey));
      if (this.#resumeUnlocked !== resume) {
        // The replica was stopped while the key was being checked: nobody will use this storage.
        await opened.storage.close();
        throw refusals.stopped();
      }
      this.#unlockKey = unlockKey;
      this.#resumeUnlocked = undefined;
      resume(opened);
    } finally {
      this.#unlocking = false;
    }
  }

  // --- The Raft service (peers) ------------------------------------------------------------------

  /** Steps a message a peer sent. The caller's certificate must belong to the member the message is from. */
  step(message: Message, callerNodeId: string): void {
    this.requireRunning();
    this.checkSender(message.from, callerNodeId);
    if (message.type === MessageType.MSG_SNAP) throw errors.invalidArgument('snapshots are sent over StreamRaftMessage, in chunks');
    this.#lastHeard.set(message.from, Date.now());
    this.stepNode(message);
    this.kick();
  }

  /**
   * Steps a message into raft-core. INTERNAL from there means this replica's own state broke an
   * invariant (its durable log lost entries it had acknowledged, say): it stops, and the process exits
   * non-zero, rather than answer every heartbeat with the same error forever (etcd panics here).
   */
  private stepNode(message: Message): void {
    try {
      this.node.step(message);
    } catch (err) {
      if (hasCode(err, ErrorCode.Internal)) this.fail(err);
      throw err;
    }
  }

  /**
   * Stores a snapshot a leader streams (`data`, chunk by chunk, written to disk as it arrives), then
   * steps its MsgSnap. A snapshot no newer than this replica's commit index is read and discarded:
   * raft answers it with what the replica already has.
   */
  async receiveSnapshot(message: Message, callerNodeId: string, data: AsyncIterable<Buffer>): Promise<void> {
    this.requireRunning();
    this.checkSender(message.from, callerNodeId);
    const metadata = message.snapshot?.metadata;
    if (message.type !== MessageType.MSG_SNAP || metadata === undefined) {
      throw errors.invalidArgument('a snapshot stream must carry a MsgSnap with its metadata');
    }
    this.#lastHeard.set(message.from, Date.now());
    if (metadata.index <= this.node.status().commit) {
      // Nothing new: read the stream to its end so the sender sees it delivered, and keep none of it.
      for await (const chunk of data) void chunk;
    } else {
      await this.storage.writeSnapshot(metadata, data);
      this.log.info({ from: message.from, index: metadata.index }, 'snapshot received');
    }
    this.requireRunning();
    this.stepNode({ ...message, snapshot: { metadata, data: EMPTY } });
    this.kick();
  }

  /** A follower's write, proposed here if this replica leads; resolves with the version once applied here. */
  forwardedProposal(transaction: StoreTransaction): Promise<bigint> {
    this.requireRunning();
    if (this.#role !== 'leader') throw refusals.notLeader();
    return this.proposeAsLeader(fromStoreTransaction({ ...transaction, proposedAt: this.now() }));
  }

  /** Where member `raftId` listens, as this replica knows it (ResolveAddress). */
  addressOf(raftId: bigint): string {
    const member = this.#membership.get(raftId);
    if (member === undefined) throw errors.notFound(`raft member ${raftId.toString(16)} is not in the cluster`, { raftId });
    return member.addr;
  }

  // --- The RaftMembership service (run on the leader) ----------------------------------------------

  /**
   * Adds a manager (swarmkit's Join): health-checks its advertised address, adds it as a learner, and
   * answers with its new raft ID and the members. The leader promotes it to voter once it has caught
   * up with the log. A node that is still a learner (it crashed while joining) is replaced; a voter with
   * the same node ID is ALREADY_EXISTS. `callerNodeId` must be the joiner's, or a member forwarding it.
   */
  async join(request: JoinRequest, callerNodeId: string): Promise<JoinResponse> {
    this.requireRunning();
    if (callerNodeId !== request.nodeId && this.#membership.byNodeId(callerNodeId) === undefined) {
      throw new ShoalError(ErrorCode.PermissionDenied, `node ${callerNodeId} may not join the raft cluster as node ${request.nodeId}`, {
        details: { nodeId: callerNodeId },
      });
    }
    if (request.nodeId === '' || request.addr === '') throw errors.invalidArgument('a join request needs the node ID and the advertised address');
    const leader = await this.awaitLeader();
    if (leader !== this.#raftId) {
      return this.transport.callMember(leader, RaftMembershipService.join, request, { deadlineMs: this.#requestTimeoutMs });
    }
    return this.serializeMembershipChange(async () => {
      const existing = this.#membership.byNodeId(request.nodeId);
      if (existing !== undefined) {
        if (!this.#confState.learners.includes(existing.raftId)) {
          const raftId = existing.raftId.toString(16);
          throw errors.alreadyExists(`node ${request.nodeId} is already a manager of this raft cluster (raft ID ${raftId}); remove it first`, {
            nodeId: request.nodeId,
            raftId: existing.raftId,
          });
        }
        await this.changeMembership(removalChange(this.nextRequestId(), existing.raftId));
      }
      await this.transport.checkReachable(request.addr, JOIN_HEALTH_CHECK_MS);
      const raftId = this.newRaftId();
      const member: RaftMember = { raftId, nodeId: request.nodeId, addr: request.addr, status: undefined };
      await this.changeMembership(memberChange(this.nextRequestId(), ConfChangeType.ADD_LEARNER_NODE, member));
      this.log.info({ raftId, nodeId: request.nodeId, addr: request.addr }, 'raft member joined as a learner');
      return { raftId, members: this.#membership.list(), removedMembers: this.#membership.removedIds() };
    });
  }

  /**
   * Removes a member for good (its raft ID is never reused). Removing the leader hands leadership to
   * another voter first. FAILED_PRECONDITION if the voters still reachable after the removal would not
   * make a quorum, NOT_FOUND if `raftId` is not a member.
   */
  async leave(raftId: bigint): Promise<void> {
    this.requireRunning();
    if (this.#membership.get(raftId) === undefined) {
      const what = this.#membership.isRemoved(raftId) ? 'was already removed' : 'is not in the cluster';
      throw errors.notFound(`raft member ${raftId.toString(16)} ${what}`, { raftId });
    }
    let leader = await this.awaitLeader();
    if (leader === this.#raftId && raftId === this.#raftId) leader = await this.transferLeadershipAway();
    if (leader !== this.#raftId) {
      await this.transport.callMember(leader, RaftMembershipService.leave, { raftId }, { deadlineMs: this.#requestTimeoutMs });
      return;
    }
    await this.serializeMembershipChange(async () => {
      await this.requireQuorumWithout(raftId);
      await this.changeMembership(removalChange(this.nextRequestId(), raftId));
      this.log.info({ raftId }, 'raft member removed');
    });
  }

  /** The members, the leader, and each member's reachability as the leader sees it (docker node ls's MANAGER STATUS). */
  async listMembers(): Promise<ListMembersResponse> {
    this.requireRunning();
    const leader = await this.awaitLeader();
    if (leader !== this.#raftId) return this.transport.callMember(leader, RaftMembershipService.listMembers, {}, { deadlineMs: this.#requestTimeoutMs });
    const learners = new Set(this.#confState.learners);
    const members = this.#membership.list().map((member) => ({
      ...member,
      status: {
        leader: member.raftId === leader,
        reachability: this.isReachable(member.raftId) ? RaftMemberStatus_Reachability.REACHABLE : RaftMemberStatus_Reachability.UNREACHABLE,
        message: learners.has(member.raftId) ? 'learner: catching up with the log before it becomes a voter' : '',
      },
    }));
    return { members, leader };
  }

  // --- Starting and stopping ---------------------------------------------------------------------

  /** Opens the storage; if it is autolocked, reports LOCKED (ready, answering only Unlock) and waits for the key. */
  private async openStorage(ctx: ComponentContext): Promise<OpenedRaftStorage | undefined> {
    try {
      return await RaftStorage.open(this.storageOptions(undefined));
    } catch (err) {
      // At open, FAILED_PRECONDITION means one thing: autolocked, and no key was given.
      if (!hasCode(err, ErrorCode.FailedPrecondition)) throw err;
    }
    this.#state = 'locked';
    this.log.warn({ state: 'locked' }, refusals.locked().message);
    // Ready in the supervisor's sense: the process is up and serving what a locked manager serves.
    ctx.ready();
    const opened = await new Promise<OpenedRaftStorage | undefined>((resolve) => {
      this.#resumeUnlocked = resolve;
      ctx.signal.addEventListener(
        'abort',
        () => {
          this.#resumeUnlocked = undefined;
          resolve(undefined);
        },
        { once: true },
      );
    });
    if (opened !== undefined) {
      this.#state = 'starting';
      this.log.info({ state: 'unlocked' }, 'raft data unlocked');
    }
    return opened;
  }

  private storageOptions(unlockKey: string | undefined): RaftStorageOptions {
    return { dataDir: this.#options.dataDir, unlockKey, logEntriesForSlowFollowers: this.#options.logEntriesForSlowFollowers };
  }

  private async start(opened: OpenedRaftStorage, signal: AbortSignal): Promise<void> {
    const { storage, recovered, notes } = opened;
    this.#storage = storage;
    for (const note of notes) this.log.warn({ note }, 'raft storage repaired what a crash left behind');
    this.#transport = new PeerTransport({
      tls: this.#options.tls,
      serverName: MANAGER_SERVER_NAME,
      log: this.log.child({ module: 'raft/transport' }),
      sendTimeoutMs: 2_000,
      snapshotChunkBytes: this.#options.snapshotChunkBytes,
      maxQueuedMessages: MAX_QUEUED_MESSAGES_PER_PEER,
      redialIntervalMs: this.#options.tickMs,
      openSnapshot: (metadata) => storage.openSnapshot(metadata),
      events: {
        unreachable: (to) => this.#node?.reportUnreachable(to),
        snapshotSent: (to, outcome) => {
          this.#node?.reportSnapshot(to, outcome);
          this.kick();
        },
        refused: (err) => {
          if (isRemovedRefusal(err, this.#raftId)) this.becomeRemoved();
        },
      },
    });
    const isNew = recovered.snapshot === undefined && recovered.entries.length === 0 && recovered.hardState.term === 0n;
    if (!isNew && this.#options.join !== undefined) {
      this.log.info({ join: this.#options.join }, 'raft data found: restarting as the member it records, not joining');
    }
    let startingPoint: StartingPoint;
    if (!isNew) startingPoint = { ...recovered, raftId: undefined, joinedWith: undefined };
    else if (this.#options.join !== undefined) startingPoint = await this.joinCluster(this.#options.join, signal);
    else startingPoint = await this.bootstrap(storage);

    if (startingPoint.snapshot !== undefined) await this.loadSnapshot(startingPoint.snapshot);
    const raftId = startingPoint.raftId ?? findOwnRaftId(this.#membership, startingPoint.entries, this.#options.nodeId);
    if (raftId === undefined) {
      this.becomeRemoved();
      return;
    }
    this.#raftId = raftId;
    this.startNode(startingPoint, raftId);
    for (const member of startingPoint.joinedWith ?? []) {
      if (member.raftId !== raftId) this.transport.setAddress(member.raftId, member.addr);
    }
    this.log.info({ raftId, nodeId: this.#options.nodeId, term: this.#term, applied: this.#applied }, 'raft replica started');

    // Ready once the log is replayed (a restart) or the replica has learned it is a member (a joiner).
    const replayedTo = startingPoint.hardState.commit;
    const caughtUp =
      startingPoint.joinedWith !== undefined ? () => this.#membership.get(raftId) !== undefined : () => this.#applied >= replayedTo;
    await this.#conditions.until(caughtUp, { signal, failsWithoutLeader: false });
  }

  private startNode(startingPoint: StartingPoint, raftId: bigint): void {
    const { hardState, snapshot, entries } = startingPoint;
    if (snapshot !== undefined) this.#memoryStorage.applySnapshot({ data: EMPTY, metadata: snapshot });
    this.#memoryStorage.append(entries);
    this.#memoryStorage.setHardState(hardState);
    const node = new RawNode({
      id: raftId,
      storage: this.#memoryStorage,
      electionTick: this.#options.electionTicks,
      heartbeatTick: this.#options.heartbeatTicks,
    });
    this.#node = node;
    this.#term = hardState.term;
    // The first election cannot end before a randomized election timeout, up to twice electionTicks:
    // a replica that just started gets that long before it reports the cluster leaderless.
    this.#ticksWithoutLeader = -this.#options.electionTicks;
    this.#reads = new LinearizableReads((context) => node.readIndex(context), this.#options.electionTicks);
    this.syncPeers();
    this.#state = 'running';
    // A lone voter need not wait an election timeout to find out nobody else will campaign.
    const { voters } = node.status().confState;
    if (voters.length === 1 && voters[0] === raftId) node.campaign();
    this.#ticker = setInterval(() => this.onTick(), this.#options.tickMs);
    this.kick();
  }

  /** Founds a new cluster of one: a random raft ID, the bootstrap snapshot (membership and empty store) and hard state, durable. */
  private async bootstrap(storage: RaftStorage): Promise<StartingPoint> {
    let raftId = randomUint64();
    while (raftId === 0n) raftId = randomUint64();
    const self: RaftMember = { raftId, nodeId: this.#options.nodeId, addr: this.#options.advertiseAddress, status: undefined };
    const { snapshot, hardState } = bootstrapState({ voters: [raftId], learners: [] });
    const metadata = snapshot.metadata as SnapshotMetadata;
    const founders = Membership.fromSnapshot({ members: [self], removedMembers: [] });
    await storage.writeSnapshot(metadata, [encodeRaftSnapshot(founders, this.store.snapshot())]);
    await storage.save({ snapshot: metadata, hardState });
    this.log.info({ raftId, nodeId: self.nodeId }, 'bootstrapped a new raft cluster');
    return { hardState, snapshot: metadata, entries: [], raftId, joinedWith: undefined };
  }

  /** Asks the cluster at `address` to add this manager, retrying while it has no leader. Starts from empty storage: the leader sends a snapshot. */
  private async joinCluster(address: string, signal: AbortSignal): Promise<StartingPoint> {
    const request = { addr: this.#options.advertiseAddress, nodeId: this.#options.nodeId };
    for (;;) {
      try {
        const options = { deadlineMs: this.#requestTimeoutMs, signal };
        const joined = await this.transport.callAddress(address, RaftMembershipService.join, request, options);
        this.log.info({ raftId: joined.raftId, via: address }, 'joined the raft cluster');
        const empty = { hardState: { term: 0n, vote: 0n, commit: 0n }, snapshot: undefined, entries: [] };
        return { ...empty, raftId: joined.raftId, joinedWith: joined.members };
      } catch (err) {
        if (!hasCode(err, ErrorCode.Unavailable) && !hasCode(err, ErrorCode.DeadlineExceeded)) throw err;
        this.log.warn({ err, via: address }, 'cannot join the raft cluster yet; retrying');
        await sleep(this.#options.electionTicks * this.#options.tickMs, undefined, { signal });
      }
    }
  }

  private async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    clearInterval(this.#ticker);
    this.failWaiters(refusals.stopped());
    await this.#loop;
    await this.#snapshotting;
    this.#transport?.close();
    await this.#storage?.close();
  }

  /** This replica learned that the cluster removed it: it stops taking part, and refuses service from now on. */
  private becomeRemoved(): void {
    if (this.#state === 'removed') return;
    this.#state = 'removed';
    clearInterval(this.#ticker);
    this.failWaiters(refusals.removed());
    this.log.error({ raftId: this.#raftId, state: 'removed' }, refusals.removed().message);
  }

  /** A failure raft cannot continue after (a storage write failed): the component fails and the process exits. */
  private fail(err: unknown): void {
    this.#fatal.reject(err);
    this.failWaiters(toShoalError(err));
  }

  private failWaiters(error: ShoalError): void {
    this.#proposals.failOutside(undefined, error);
    this.#confChanges.failOutside(undefined, error);
    this.#reads?.failAll(error);
    this.#conditions.fail(error, 'all');
  }

  // --- The loop ----------------------------------------------------------------------------------

  private onTick(): void {
    if (this.#state !== 'running') return;
    this.#ticks++;
    this.node.tick();
    if (this.#leader !== 0n) this.#ticksWithoutLeader = 0;
    else if (++this.#ticksWithoutLeader === this.#lostQuorumTicks) this.onLeaderlessTooLong();
    this.reads.tick();
    if (this.#role === 'leader') this.promoteCaughtUpLearner();
    this.#conditions.recheck();
    this.kick();
  }

  /** Processes Readies until there are none; runs at most once at a time. */
  private kick(): void {
    if (this.#processing || this.#state !== 'running') return;
    this.#processing = true;
    this.#loop = this.processReadies().catch((err: unknown) => this.fail(err));
  }

  private async processReadies(): Promise<void> {
    try {
      while (this.#state === 'running' && this.node.hasReady()) {
        const ready = this.node.ready();
        await this.handleReady(ready);
        this.node.advance(ready);
      }
    } finally {
      // Cleared in the same turn as the last hasReady(), so no event can slip in between unnoticed.
      this.#processing = false;
    }
  }

  private async handleReady(ready: Ready): Promise<void> {
    // 1. Persist: on disk first (one record, fsynced unless raft says nothing waits on it, as for a
    // new commit index alone), then in the storage raft-core reads.
    const snapshot = ready.snapshot?.metadata;
    if (snapshot !== undefined || ready.entries.length > 0 || ready.hardState !== undefined) {
      await this.storage.save({ hardState: ready.hardState, entries: ready.entries, snapshot, sync: ready.mustSync });
    }
    if (ready.snapshot !== undefined) this.#memoryStorage.applySnapshot(ready.snapshot);
    this.#memoryStorage.append(ready.entries);
    if (ready.hardState !== undefined) {
      this.#memoryStorage.setHardState(ready.hardState);
      this.#term = ready.hardState.term;
    }
    // 2. Send: only now may messages promise what was just persisted.
    this.transport.send(ready.messages);
    // 3. Apply the snapshot, then the committed entries, in log order.
    if (snapshot !== undefined) {
      await this.loadSnapshot(snapshot);
      this.syncPeers();
      if (this.#membership.isRemoved(this.#raftId)) this.becomeRemoved();
    }
    for (const entry of ready.committedEntries) this.applyEntry(entry);
    // Leadership is judged after applying, so proposals that did commit are answered as such.
    if (ready.softState !== undefined) this.observeLeadership(ready.softState);
    if (ready.softState !== undefined || ready.hardState !== undefined) this.failProposalsOfOtherTerms();
    // 4. Reads whose index is applied can be served (the conditions resolve them).
    for (const readState of ready.readStates) this.reads.answered(readState);
    this.#conditions.recheck();
    this.maybeSnapshot();
    this.followClusterAutolock();
  }

  private applyEntry(entry: Entry): void {
    if (entry.type === EntryType.CONF_CHANGE) this.applyConfChange(ConfChange.decode(entry.data));
    else if (entry.data.length > 0) this.applyTransaction(entry);
    this.#applied = entry.index;
  }

  /**
   * Applies a committed transaction at its index. A transaction that fails to apply (it went stale
   * after it was checked) changes nothing, identically on every replica: its proposer's caller gets the error.
   */
  private applyTransaction(entry: Entry): void {
    let requestId: bigint | undefined;
    let failure: ShoalError | undefined;
    try {
      const transaction = StoreTransaction.decode(entry.data);
      requestId = transaction.requestId;
      this.store.apply(fromStoreTransaction(transaction), entry.index);
    } catch (err) {
      failure = toShoalError(err);
      this.log.debug({ index: entry.index, err: failure }, 'committed transaction rejected when applied');
    }
    if (requestId !== undefined) this.#proposals.settle(requestId, failure, entry.index);
  }

  private applyConfChange(change: ConfChange): void {
    this.#confState = this.node.applyConfChange(change);
    this.#membership.apply(change);
    this.syncPeers();
    this.#confChanges.settle(change.id, undefined, undefined);
    if (change.type === ConfChangeType.REMOVE_NODE && change.nodeId === this.#raftId) this.becomeRemoved();
  }

  /** Installs a snapshot (received or, at start, the latest stored): the store, the membership, the applied index. */
  private async loadSnapshot(metadata: SnapshotMetadata): Promise<void> {
    const snapshot = await readRaftSnapshot(this.storage, metadata);
    this.store.restore(snapshot.store);
    this.#membership = Membership.fromSnapshot(snapshot);
    this.#confState = metadata.confState ?? ConfState.create();
    this.#applied = metadata.index;
    this.#snapshotIndex = metadata.index;
  }

  /** Points the transport at every member's address and forgets removed members. */
  private syncPeers(): void {
    for (const member of this.#membership.list()) {
      if (member.raftId !== this.#raftId) this.transport.setAddress(member.raftId, member.addr);
    }
    for (const raftId of this.#membership.removedIds()) this.transport.removePeer(raftId);
  }

  private observeLeadership({ leader, role }: SoftState): void {
    const previousLeader = this.#leader;
    this.#leader = leader;
    this.#role = role;
    if (leader === previousLeader) return;
    if (leader !== 0n) {
      this.#ticksWithoutLeader = 0;
      this.reads.leaderChanged();
    }
    const change = leader === 0n ? 'raft leader lost' : leader === this.#raftId ? 'became the raft leader' : 'following a new raft leader';
    this.log.info({ leader, term: this.#term, role }, change);
  }

  /** swarmkit's ErrLostLeadership: an entry proposed in an earlier term, or by a member that no longer leads, may never commit. */
  private failProposalsOfOtherTerms(): void {
    const currentTerm = this.#role === 'leader' ? this.#term : undefined;
    this.#proposals.failOutside(currentTerm, refusals.lostLeadership());
    this.#confChanges.failOutside(currentTerm, refusals.lostLeadership());
  }

  private onLeaderlessTooLong(): void {
    const error = refusals.noLeader();
    this.log.warn({ ticks: this.#ticksWithoutLeader }, error.message);
    this.reads.failAll(error);
    this.#conditions.fail(error, 'without-leader');
  }

  // --- Proposals and reads -------------------------------------------------------------------------

  private proposeAsLeader(transaction: Transaction): Promise<bigint> {
    const requestId = this.nextRequestId();
    const data = Buffer.from(StoreTransaction.encode(toStoreTransaction(transaction, requestId)).finish());
    let term: bigint;
    try {
      term = this.node.propose(data).term;
    } catch (err) {
      // Not the leader any more (a leadership transfer refuses with UNAVAILABLE itself): nothing was proposed.
      throw hasCode(err, ErrorCode.FailedPrecondition) ? refusals.notLeader() : err;
    }
    const applied = this.#proposals.wait(requestId, term);
    this.kick();
    return applied;
  }

  /**
   * The leader's raft ID, waiting for an election if need be; fails fast with Docker's message once
   * the cluster has been leaderless too long.
   */
  private async awaitLeader(signal?: AbortSignal): Promise<bigint> {
    if (this.#leader === 0n) {
      if (this.#ticksWithoutLeader >= this.#lostQuorumTicks) throw refusals.noLeader();
      await this.#conditions.until(() => this.#leader !== 0n, { signal });
    }
    return this.#leader;
  }

  private appliedAtLeast(index: bigint, signal?: AbortSignal): Promise<void> {
    return this.#conditions.until(() => this.#applied >= index, { signal });
  }

  /** IDs for proposals and conf changes: unique per proposer (a random base per run, then a counter). */
  private nextRequestId(): bigint {
    this.#requestCounter++;
    const id = (this.#requestIdBase + this.#requestCounter) & UINT64_MASK;
    return id === 0n ? this.nextRequestId() : id;
  }

  // --- Membership changes (leader) -------------------------------------------------------------------

  /** Runs membership changes one after another: raft allows one conf change in flight. */
  private serializeMembershipChange<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#membershipChanges.then(work);
    this.#membershipChanges = run.catch(() => undefined);
    return run;
  }

  /** Proposes a conf change, waiting for an earlier one to be applied first, and resolves once it is applied here. */
  private async changeMembership(change: ConfChange): Promise<void> {
    const giveUpAt = Date.now() + this.#requestTimeoutMs;
    for (;;) {
      try {
        const { term } = this.node.proposeConfChange(change);
        const applied = this.#confChanges.wait(change.id, term);
        this.kick();
        return await applied;
      } catch (err) {
        if (hasCode(err, ErrorCode.FailedPrecondition) && err.details.leader !== undefined) throw refusals.notLeader();
        const pending = hasCode(err, ErrorCode.FailedPrecondition) && err.details.pendingIndex !== undefined;
        if (!pending || Date.now() > giveUpAt) throw err;
        const tick = this.#ticks;
        await this.#conditions.until(() => this.#ticks > tick);
      }
    }
  }

  /** Promotes one learner whose log has caught up with the commit index to voter (thesis §4.2.1). */
  private promoteCaughtUpLearner(): void {
    if (this.#promoting || this.#confState.learners.length === 0) return;
    const status = this.node.status();
    const caughtUp = status.confState.learners.find((id) => (status.progress.get(id)?.match ?? 0n) >= status.commit);
    const member = caughtUp === undefined ? undefined : this.#membership.get(caughtUp);
    if (member === undefined) return;
    this.#promoting = true;
    this.serializeMembershipChange(() => this.changeMembership(memberChange(this.nextRequestId(), ConfChangeType.ADD_NODE, member)))
      .then(
        () => this.log.info({ raftId: member.raftId, nodeId: member.nodeId }, 'raft learner caught up: promoted to voter'),
        (err: unknown) => this.log.warn({ raftId: member.raftId, err }, 'raft learner not promoted yet; will retry'),
      )
      .finally(() => (this.#promoting = false));
  }

  /** Hands leadership to the most up-to-date reachable voter and resolves with the new leader once it has taken over. */
  private async transferLeadershipAway(): Promise<bigint> {
    const status = this.node.status();
    const [target] = status.confState.voters
      .filter((id) => id !== this.#raftId && this.isReachable(id))
      .sort((a, b) => Number((status.progress.get(b)?.match ?? 0n) - (status.progress.get(a)?.match ?? 0n)));
    if (target === undefined) {
      throw errors.failedPrecondition('raft: no other reachable voter to hand leadership to; the leader cannot be removed now');
    }
    this.log.info({ to: target }, 'transferring raft leadership before removing this member');
    this.node.transferLeadership(target);
    this.kick();
    const electionMs = 2 * this.#options.electionTicks * this.#options.tickMs;
    try {
      await this.#conditions.until(() => this.#leader !== 0n && this.#leader !== this.#raftId, { signal: AbortSignal.timeout(electionMs) });
    } catch (err) {
      if (isShoalError(err)) throw err;
      throw errors.unavailable('raft: leadership transfer did not complete in time; retry the removal');
    }
    return this.#leader;
  }

  /**
   * swarmkit's CanRemoveMember: the voters left must include a reachable quorum. A leader only hears
   * from every member once it leads (followers talk to the leader alone), so the quorum is given an
   * election timeout to show up before the removal is refused.
   */
  private async requireQuorumWithout(raftId: bigint): Promise<void> {
    const remaining = () => this.#confState.voters.filter((id) => id !== raftId);
    const quorumReachable = () => {
      const voters = remaining();
      return voters.filter((id) => this.isReachable(id)).length >= Math.floor(voters.length / 2) + 1;
    };
    if (!this.#confState.voters.includes(raftId)) return;
    try {
      await this.#conditions.until(quorumReachable, { signal: AbortSignal.timeout(this.#options.electionTicks * this.#options.tickMs) });
    } catch (err) {
      if (isShoalError(err)) throw err;
      throw errors.failedPrecondition('raft: member cannot be removed, because removing it may result in loss of quorum', { raftId });
    }
  }

  /** Heard from within an election timeout (the check-quorum window); this member always is. */
  private isReachable(raftId: bigint): boolean {
    if (raftId === this.#raftId) return true;
    const heard = this.#lastHeard.get(raftId);
    return heard !== undefined && Date.now() - heard <= this.#options.electionTicks * this.#options.tickMs;
  }

  private newRaftId(): bigint {
    for (;;) {
      const raftId = randomUint64();
      if (raftId !== 0n && !this.#membership.isTaken(raftId)) return raftId;
    }
  }

  /** Sends a peer's message on if it comes from a member that was removed, or from a certificate that is not the member's. */
  private checkSender(from: bigint, callerNodeId: string): void {
    if (this.#membership.isRemoved(from)) throw refusals.memberRemoved(from);
    const member = this.#membership.get(from);
    if (member !== undefined && member.nodeId !== callerNodeId) {
      throw new ShoalError(ErrorCode.PermissionDenied, `raft member ${from.toString(16)} is node ${member.nodeId}, not ${callerNodeId}`, {
        details: { nodeId: callerNodeId },
      });
    }
  }

  // --- Snapshots and keys ----------------------------------------------------------------------------

  /**
   * Every `snapshotInterval` applied entries, or while a data-key rotation waits for one, stores a
   * snapshot (in the background: the loop goes on) and compacts the log behind it, keeping
   * `logEntriesForSlowFollowers` entries in memory so a follower a little behind needs no snapshot.
   */
  private maybeSnapshot(): void {
    if (this.#snapshotting !== undefined) return;
    const behind = this.#applied - this.#snapshotIndex;
    const due = behind >= BigInt(this.#options.snapshotInterval) || (this.storage.dataKeyRotationPending && behind > 0n);
    if (!due) return;
    const metadata: SnapshotMetadata = {
      index: this.#applied,
      term: this.#memoryStorage.term(this.#applied),
      confState: ConfState.fromPartial(this.#confState),
    };
    const data = encodeRaftSnapshot(this.#membership, this.store.snapshot());
    this.#snapshotting = this.storeSnapshot(metadata, data)
      .catch((err: unknown) => this.fail(err))
      .finally(() => (this.#snapshotting = undefined));
  }

  private async storeSnapshot(metadata: SnapshotMetadata, data: Buffer): Promise<void> {
    const storage = this.storage;
    await storage.writeSnapshot(metadata, [data]);
    try {
      await storage.compact(metadata);
    } catch (err) {
      // A newer snapshot from the leader landed meanwhile and superseded (and released) this one.
      if ((storage.snapshot?.index ?? 0n) < metadata.index) throw err;
      return;
    }
    const memory = this.#memoryStorage;
    // raft-core keeps only the metadata: a follower that needs the snapshot gets the data streamed from disk.
    if (metadata.index > (memory.snapshot().metadata?.index ?? 0n)) {
      memory.createSnapshot(metadata.index, metadata.confState ?? ConfState.create(), EMPTY);
      const compactTo = metadata.index - BigInt(this.#options.logEntriesForSlowFollowers);
      if (compactTo >= memory.firstIndex()) memory.compact(compactTo);
    }
    if (metadata.index > this.#snapshotIndex) this.#snapshotIndex = metadata.index;
    this.log.info({ index: metadata.index, bytes: data.length }, 'raft snapshot taken');
  }

  /**
   * Locks, re-keys or unlocks this replica's raft data when the cluster object's autolock setting or
   * unlock key changes (`docker swarm update --autolock`), as every swarmkit manager does.
   */
  private followClusterAutolock(): void {
    const [cluster] = this.store.view((tx) => tx.list('cluster'));
    if (cluster === this.#observedCluster) return;
    this.#observedCluster = cluster;
    const unlockKey = clusterUnlockKey(cluster);
    if (unlockKey === this.#unlockKey) return;
    this.#unlockKey = unlockKey;
    this.storage.setUnlockKey(unlockKey).then(
      () => this.log.info({ autolock: unlockKey !== undefined }, 'raft data key-encryption key follows the cluster autolock setting'),
      (err: unknown) => this.fail(err),
    );
  }

  // --- Accessors for what exists once running --------------------------------------------------------

  private requireRunning(): void {
    const refusal = this.refusal();
    if (refusal !== undefined) throw refusal;
  }

  private get log(): Logger {
    if (this.#log === undefined) throw errors.failedPrecondition('the raft replica has not been started');
    return this.#log;
  }

  private get node(): RawNode {
    return started(this.#node);
  }

  private get storage(): RaftStorage {
    return started(this.#storage);
  }

  private get transport(): PeerTransport {
    return started(this.#transport);
  }

  private get reads(): LinearizableReads {
    return started(this.#reads);
  }
}
