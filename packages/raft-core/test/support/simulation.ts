/**
 * A deterministic simulation of a Raft cluster serving a key-value store: replicas with persisted state
 * that survives crashes, clients with timeouts, and a nemesis that partitions, degrades links, crashes
 * and restarts replicas, transfers leadership and (in some runs) changes the membership. Everything is
 * a timer on one FakeClock and every choice comes from one SeededRandom, so a seed replays a run.
 */
import { hasCode, isShoalError } from '@shoal/errors';
import { ConfChange, ConfChangeType, ConfState, EntryType, type Entry, type Message, MessageType, type Snapshot } from '@shoal/proto';
import { FakeClock, SeededRandom, SimNetwork } from '@shoal/testkit';
import { MemoryStorage, RawNode, type RaftRole, type Ready } from '../../src/index.js';
import { checkLinearizable, kvModel, type KvInput, type KvOperation, type KvOutput } from './linearizability.js';
import { applyMembership, persist } from './ready.js';

/** Everything about a run that its seed decides. */
export interface Scenario {
  readonly seed: string;
  readonly replicas: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  /** Applied entries between snapshots, and entries kept behind each compaction. */
  readonly snapshotEvery: number;
  readonly keepAfterCompaction: number;
  readonly membershipChanges: boolean;
  readonly clients: number;
  readonly keys: readonly string[];
  /** How long clients and the nemesis run before the cluster is healed and left to settle. */
  readonly faultyMs: number;
}

const TICK_MS = 10;
const CLIENT_TIMEOUT_MS = 400;
const SETTLE_LIMIT_MS = 30_000;

/**
 * The scenario a seed stands for. A seed that starts with `3r-` or `5r-` fixes the replica count, so
 * test batches can choose it; any other seed draws it.
 */
export function scenarioFor(seed: string): Scenario {
  const random = new SeededRandom(seed).fork('scenario');
  const fixed = /^(\d+)r-/.exec(seed)?.[1];
  return {
    seed,
    replicas: fixed === undefined ? random.pick([3, 5]) : Number(fixed),
    electionTick: random.pick([5, 10]),
    heartbeatTick: random.pick([1, 2]),
    maxSizePerMsg: random.pick([0, 200, 65_535]),
    maxInflightMsgs: random.pick([1, 4, 256]),
    checkQuorum: random.chance(0.8),
    preVote: random.chance(0.8),
    snapshotEvery: random.int(5, 40),
    keepAfterCompaction: random.int(0, 10),
    membershipChanges: random.chance(0.3),
    clients: random.int(2, 5),
    keys: ['a', 'b', 'c'].slice(0, random.int(1, 3)),
    faultyMs: random.int(800, 1600),
  };
}

/** Counts of what a run went through, to check that the runs exercise what they claim to. */
export interface SimulationStats {
  acknowledgedWrites: number;
  completedReads: number;
  crashes: number;
  elections: number;
  snapshotsSent: number;
  /** Membership changes applied by the leader of the time. */
  membershipChanges: number;
}

/** How many recent events a failure report shows. */
const EVENTS_SHOWN = 60;

/** A safety property broke; the message says which and where. */
export class SimulationFailure extends Error {}

/** A put's command, as the entry data carries it. Every value is written once, so it also names the write. */
interface PutCommand {
  readonly key: string;
  readonly value: string;
}

type Outcome = { readonly kind: 'ok'; readonly output: KvOutput } | { readonly kind: 'failed'; readonly leader?: bigint };
type Reply = (outcome: Outcome) => void;

/** Runs one seeded simulation to the end and checks it; throws SimulationFailure on any violation. */
export function runSimulation(scenario: Scenario): SimulationStats {
  return new Simulation(scenario).run();
}

/** The replicated state machine: a key-value map plus the values ever written, for the durability check. */
class KvState {
  values = new Map<string, string>();
  writes = new Set<string>();

  encode(): Buffer {
    return Buffer.from(JSON.stringify({ values: [...this.values], writes: [...this.writes] }));
  }

  static decode(data: Buffer): KvState {
    const state = new KvState();
    if (data.length === 0) return state;
    const parsed = JSON.parse(data.toString()) as { values: [string, string][]; writes: string[] };
    state.values = new Map(parsed.values);
    state.writes = new Set(parsed.writes);
    return state;
  }

  digest(): string {
    return JSON.stringify([[...this.values].sort(), [...this.writes].sort()]);
  }
}

class Simulation {
  readonly clock = new FakeClock();
  readonly random: SeededRandom;
  readonly network: SimNetwork<Message>;
  readonly replicas = new Map<bigint, Replica>();
  readonly history: KvOperation[] = [];
  /** What every replica applied at each index, to check they all apply the same entries (State Machine Safety). */
  private readonly appliedAt = new Map<bigint, Entry>();
  /** The leader of each term seen, to check there is at most one (Election Safety). */
  private readonly leaderOfTerm = new Map<bigint, bigint>();
  private readonly acknowledged: string[] = [];
  private readonly events: string[] = [];
  private sequence = 0;
  private faulty = true;
  private readonly stats: SimulationStats = {
    acknowledgedWrites: 0,
    completedReads: 0,
    crashes: 0,
    elections: 0,
    snapshotsSent: 0,
    membershipChanges: 0,
  };

  constructor(readonly scenario: Scenario) {
    this.random = new SeededRandom(scenario.seed);
    this.network = new SimNetwork<Message>({
      clock: this.clock,
      random: this.random.fork('network'),
      conditions: { minDelayMs: 1, maxDelayMs: 10 },
    });
  }

  run(): SimulationStats {
    const ids = Array.from({ length: this.scenario.replicas }, () => this.newRaftId());
    const founders = ConfState.fromPartial({ voters: ids });
    for (const id of ids) this.startReplica(id, MemoryStorage.bootstrapped(founders, new KvState().encode()));
    const chaos = this.random.fork('nemesis');
    this.every(chaos, 20, 200, () => this.nemesis(chaos));
    if (this.scenario.membershipChanges) {
      const operator = this.random.fork('operator');
      this.every(operator, 150, 400, () => this.changeMembership(operator));
    }
    for (let client = 0; client < this.scenario.clients; client++) new Client(this, client, this.random.fork(`client-${client}`)).start();

    this.clock.advance(this.scenario.faultyMs);
    this.faulty = false;
    this.heal();
    this.settle();
    this.checkDurability();
    this.checkHistory();
    this.stats.acknowledgedWrites = this.acknowledged.length;
    return this.stats;
  }

  get isFaulty(): boolean {
    return this.faulty;
  }

  /** Remembers an event for the failure report. */
  note(event: string): void {
    this.events.push(`${this.clock.now()} ms: ${event}`);
    if (this.events.length > EVENTS_SHOWN) this.events.shift();
  }

  fail(message: string): never {
    throw new SimulationFailure(`${message} (at ${this.clock.now()} ms)\nlast events:\n  ${this.events.join('\n  ')}`);
  }

  // --- History ---------------------------------------------------------------------------------------

  /** Records an invocation; the returned function records its completion (or, with no outcome, a timeout). */
  invoke(clientId: number, input: KvInput): (outcome: Outcome | undefined) => void {
    const calledAt = this.sequence++;
    return (outcome) => {
      if (outcome === undefined) {
        // Unknown: a put may still take effect; a get has no effect, so it constrains nothing.
        if (input.kind === 'put') {
          this.history.push({ clientId, input, output: undefined, calledAt, returnedAt: Infinity });
        }
        return;
      }
      if (outcome.kind === 'failed') return; // definitely not executed
      this.history.push({ clientId, input, output: outcome.output, calledAt, returnedAt: this.sequence++ });
      if (input.kind === 'put') this.acknowledged.push(input.value);
      else this.stats.completedReads++;
    };
  }

  // --- Safety monitors ---------------------------------------------------------------------------------

  recordApplied(replica: Replica, entry: Entry): void {
    const earlier = this.appliedAt.get(entry.index);
    if (earlier === undefined) this.appliedAt.set(entry.index, entry);
    else if (earlier.term !== entry.term || !earlier.data.equals(entry.data)) {
      this.fail(`replica ${replica.id} applied entry ${entry.index} of term ${entry.term}, another replica one of term ${earlier.term}`);
    }
  }

  recordRole(replica: Replica, role: RaftRole, term: bigint): void {
    this.note(`${replica.id} is ${role} in term ${term}`);
    if (role !== 'leader') return;
    this.stats.elections++;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== replica.id) this.fail(`two leaders in term ${term}: ${other} and ${replica.id}`);
    this.leaderOfTerm.set(term, replica.id);
  }

  countSnapshotSent(): void {
    this.stats.snapshotsSent++;
  }

  countMembershipChange(replica: Replica, confState: ConfState): void {
    this.note(`${replica.id} applied membership voters ${confState.voters.join(',')} learners ${confState.learners.join(',')}`);
    if (replica === this.leader()) this.stats.membershipChanges++;
  }

  // --- Replicas ------------------------------------------------------------------------------------------

  private newRaftId(): bigint {
    // Random uint64 IDs, as swarmkit assigns them: most do not fit in a double.
    return (BigInt(this.random.nextUint32()) << 32n) | BigInt((this.random.nextUint32() | 1) >>> 0);
  }

  private startReplica(id: bigint, storage: MemoryStorage): Replica {
    const replica = new Replica(this, id, storage, this.random.fork(`replica-${id}`));
    this.replicas.set(id, replica);
    replica.start();
    return replica;
  }

  /** The live replica that leads in the highest term, if any. */
  leader(): Replica | undefined {
    let best: Replica | undefined;
    for (const replica of this.replicas.values()) {
      const status = replica.node?.status();
      if (status?.role === 'leader' && (best === undefined || status.term > (best.node?.status().term ?? 0n))) best = replica;
    }
    return best;
  }

  /** Any replica ever started: a crashed or removed one simply fails requests. */
  anyReplica(random: SeededRandom): Replica {
    return random.pick([...this.replicas.values()]);
  }

  // --- Nemesis ---------------------------------------------------------------------------------------------

  private every(random: SeededRandom, minMs: number, maxMs: number, action: () => void): void {
    this.clock.setTimeout(() => {
      if (!this.faulty) return;
      action();
      this.every(random, minMs, maxMs, action);
    }, random.int(minMs, maxMs));
  }

  /** The leader's name half the time (if there is one), otherwise any of `names`. */
  private leaderOrAny(random: SeededRandom, names: string[]): string {
    const leader = this.leader();
    return leader !== undefined && random.chance(0.5) ? leader.name : random.pick(names);
  }

  private nemesis(random: SeededRandom): void {
    const names = [...this.replicas.values()].filter((r) => !r.retired).map((r) => r.name);
    switch (random.int(0, 7)) {
      case 0: {
        this.network.heal();
        const shuffled = random.shuffle(names);
        const cut = random.int(1, shuffled.length - 1);
        this.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        this.note(`partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`);
        return;
      }
      case 1: {
        const isolated = this.leaderOrAny(random, names);
        this.network.isolate(isolated);
        this.note(`isolate ${isolated}`);
        return;
      }
      case 2:
        this.network.heal();
        this.note('heal');
        return;
      case 3:
      case 4: {
        const running = [...this.replicas.values()].filter((r) => r.node !== undefined && !r.retired);
        if (running.length === 0) return;
        const leader = this.leader();
        // Half the time the leader: its uncommitted entries are what divergent logs are made of.
        const victim = leader !== undefined && random.chance(0.5) ? leader : random.pick(running);
        victim.crash();
        this.stats.crashes++;
        this.note(`crash ${victim.id}`);
        this.clock.setTimeout(() => victim.restartIfDown(), random.int(20, 400));
        return;
      }
      case 5: {
        const conditions = {
          dropRate: random.pick([0, 0, 0.05, 0.2]),
          duplicateRate: random.pick([0, 0.02, 0.1]),
          maxDelayMs: random.pick([3, 10, 40]),
        };
        this.network.setConditions(conditions);
        this.note(`links ${JSON.stringify(conditions)}`);
        return;
      }
      case 6: {
        const leader = this.leader();
        const voters = leader?.node?.status().confState.voters ?? [];
        if (leader === undefined || voters.length === 0) return;
        const target = random.pick(voters);
        leader.node?.transferLeadership(target);
        this.note(`transfer leadership from ${leader.id} to ${target}`);
        leader.scheduleReady();
        return;
      }
      default:
        // Leave the cluster alone for a while.
        return;
    }
  }

  /**
   * The operator of the cluster: adds a learner, promotes it once it has caught up, or removes a member
   * (possibly the leader), keeping the voters within one of the starting size.
   */
  private changeMembership(random: SeededRandom): void {
    const leader = this.leader();
    const node = leader?.node;
    if (leader === undefined || node === undefined) return;
    const status = node.status();
    const { voters, learners } = status.confState;
    let change: ConfChange;
    const caughtUp = learners.find((id) => (status.progress.get(id)?.match ?? 0n) >= status.commit);
    if (caughtUp !== undefined) {
      change = ConfChange.fromPartial({ type: ConfChangeType.ADD_NODE, nodeId: caughtUp });
    } else if (learners.length === 0 && voters.length <= this.scenario.replicas && random.chance(0.5)) {
      const id = this.newRaftId();
      change = ConfChange.fromPartial({ type: ConfChangeType.ADD_LEARNER_NODE, nodeId: id });
      this.startReplica(id, new MemoryStorage());
    } else if (voters.length >= this.scenario.replicas) {
      change = ConfChange.fromPartial({ type: ConfChangeType.REMOVE_NODE, nodeId: random.pick(voters) });
    } else {
      return;
    }
    try {
      node.proposeConfChange(change);
      this.note(`${leader.id} proposes ${ConfChangeType[change.type]} ${change.nodeId}`);
    } catch (err) {
      // A conf change still pending, or a leadership transfer under way: the operator tries again later.
      if (!hasCode(err, 'FAILED_PRECONDITION') && !hasCode(err, 'UNAVAILABLE')) throw err;
    }
    leader.scheduleReady();
  }

  private heal(): void {
    this.network.heal();
    this.network.setConditions({ dropRate: 0, duplicateRate: 0, maxDelayMs: 10 });
    for (const replica of this.replicas.values()) replica.restartIfDown();
  }

  /**
   * Lets the healed cluster run until every member has applied everything, or fails after
   * SETTLE_LIMIT_MS. Clients stopped issuing requests when the faults stopped; after a client timeout
   * every request has an outcome.
   */
  private settle(): void {
    this.clock.advance(CLIENT_TIMEOUT_MS);
    const deadline = this.clock.now() + SETTLE_LIMIT_MS;
    while (!this.converged()) {
      if (this.clock.now() >= deadline) this.fail(`the cluster did not converge within ${SETTLE_LIMIT_MS} ms of healing`);
      this.clock.advance(50);
    }
  }

  private converged(): boolean {
    const leader = this.leader();
    const status = leader?.node?.status();
    if (leader === undefined || status === undefined || status.commit !== status.lastIndex) return false;
    const members = [...status.confState.voters, ...status.confState.learners];
    return members.every((id) => {
      const member = this.replicas.get(id);
      return member?.node !== undefined && member.applied === status.commit;
    });
  }

  // --- Final checks -----------------------------------------------------------------------------------

  /** Every acknowledged write is in the state of every member, and all members hold the same state. */
  private checkDurability(): void {
    const leader = this.leader() as Replica;
    for (const value of this.acknowledged) {
      if (!leader.kv.writes.has(value)) this.fail(`acknowledged write ${value} is missing from the final state`);
    }
    const { voters, learners } = leader.node?.status().confState ?? ConfState.create();
    for (const id of [...voters, ...learners]) {
      const member = this.replicas.get(id) as Replica;
      if (member.kv.digest() !== leader.kv.digest()) this.fail(`member ${id} ended with a different state than leader ${leader.id}`);
    }
  }

  private checkHistory(): void {
    const finalWrites = (this.leader() as Replica).kv.writes;
    // A write with an unknown outcome that never committed never took effect: leave it out.
    const history = this.history.filter(
      ({ input, output }) => output !== undefined || (input.kind === 'put' && finalWrites.has(input.value)),
    );
    const result = checkLinearizable(history, kvModel);
    if (!result.linearizable) {
      const lines = result.part.map((o) => `  client ${o.clientId} ${JSON.stringify(o.input)} -> ${JSON.stringify(o.output)} [${o.calledAt}, ${o.returnedAt}]`);
      const key = result.part[0]?.input.key;
      this.fail(`the history of key ${key} is not linearizable; its ${lines.length} operations [call, return]:\n${lines.join('\n')}`);
    }
  }
}

/** One replica: its persisted storage survives crashes; its RawNode and everything else do not. */
class Replica {
  readonly name: string;
  node: RawNode | undefined;
  kv = new KvState();
  applied = 0n;
  /** Removed from the cluster and known to be: it is stopped for good. */
  retired = false;
  private confState = ConfState.create();
  private incarnation = 0;
  private timers: number[] = [];
  private readyTimer: number | undefined;
  private readonly pendingWrites = new Map<bigint, { term: bigint; reply: Reply }>();
  private readonly pendingReads = new Map<string, { key: string; reply: Reply }>();
  private readsAwaitingApply: { index: bigint; serve: () => void }[] = [];
  private nextReadId = 0;

  constructor(
    private readonly sim: Simulation,
    readonly id: bigint,
    private readonly storage: MemoryStorage,
    private readonly random: SeededRandom,
  ) {
    this.name = String(id);
  }

  start(): void {
    this.incarnation++;
    const { scenario } = this.sim;
    this.node = new RawNode({
      id: this.id,
      storage: this.storage,
      electionTick: scenario.electionTick,
      heartbeatTick: scenario.heartbeatTick,
      maxSizePerMsg: scenario.maxSizePerMsg,
      maxInflightMsgs: scenario.maxInflightMsgs,
      checkQuorum: scenario.checkQuorum,
      preVote: scenario.preVote,
      random: this.random.fork(`election-${this.incarnation}`),
    });
    const snapshot = this.storage.snapshot();
    this.restore(snapshot);
    this.sim.network.addNode(this.name, (message) => {
      this.node?.step(message);
      this.scheduleReady();
    });
    // Ticks start at a random phase, so replicas do not tick in lockstep.
    this.timers.push(
      this.sim.clock.setTimeout(() => {
        this.timers.push(this.sim.clock.setInterval(() => this.tick(), TICK_MS));
      }, this.random.int(1, TICK_MS)),
    );
  }

  /** Loses everything not persisted: the RawNode, the state machine, pending requests (their clients time out). */
  crash(): void {
    if (this.node === undefined) return;
    for (const timer of this.timers) this.sim.clock.clearTimeout(timer);
    this.sim.clock.clearTimeout(this.readyTimer);
    this.timers = [];
    this.readyTimer = undefined;
    this.sim.network.removeNode(this.name);
    this.node = undefined;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.readsAwaitingApply = [];
  }

  restartIfDown(): void {
    if (this.node !== undefined || this.retired) return;
    this.sim.note(`restart ${this.id}`);
    this.start();
  }

  /** A client request. Replies at most once; a crash drops the reply and the client times out. */
  handle(input: KvInput, reply: Reply): void {
    const node = this.node;
    if (node === undefined) return reply({ kind: 'failed' });
    try {
      if (input.kind === 'put') {
        const command: PutCommand = { key: input.key, value: input.value };
        const position = node.propose(Buffer.from(JSON.stringify(command)));
        this.pendingWrites.set(position.index, { term: position.term, reply });
      } else {
        // Unique across the cluster: the leader matches forwarded reads by context alone.
        const context = `${this.id}/${this.incarnation}/${this.nextReadId++}`;
        node.readIndex(Buffer.from(context));
        this.pendingReads.set(context, { key: input.key, reply });
      }
    } catch (err) {
      if (!isShoalError(err) || !(hasCode(err, 'UNAVAILABLE') || hasCode(err, 'FAILED_PRECONDITION'))) throw err;
      const leader = err.details.leader;
      return reply(typeof leader === 'bigint' ? { kind: 'failed', leader } : { kind: 'failed' });
    }
    this.scheduleReady();
  }

  /**
   * Takes the next Ready and handles it after a short "disk" delay, as a caller with asynchronous
   * writes would: messages and steps that arrive meanwhile go into the next Ready, and a crash before
   * the write completes loses the whole Ready.
   */
  scheduleReady(): void {
    const node = this.node;
    if (this.readyTimer !== undefined || node === undefined || !node.hasReady()) return;
    const ready = node.ready();
    if (ready.softState !== undefined) this.sim.recordRole(this, ready.softState.role, node.status().term);
    this.readyTimer = this.sim.clock.setTimeout(() => {
      this.readyTimer = undefined;
      this.handleReady(node, ready);
      this.scheduleReady();
    }, this.random.int(0, 2));
  }

  private tick(): void {
    this.node?.tick();
    this.scheduleReady();
  }

  /** The caller's obligations, in order (see Ready). */
  private handleReady(node: RawNode, ready: Ready): void {
    persist(this.storage, ready);
    for (const message of ready.messages) {
      this.sim.network.send(this.name, String(message.to), message);
      if (message.type === MessageType.MSG_SNAP) {
        this.sim.countSnapshotSent();
        node.reportSnapshot(message.to, 'finished');
      }
    }
    if (ready.snapshot !== undefined) this.restore(ready.snapshot);
    for (const entry of ready.committedEntries) this.apply(node, entry);
    for (const readState of ready.readStates) this.answerRead(readState.context.toString(), readState.index);
    node.advance(ready);
    this.maybeSnapshot();
    this.serveReadsUpTo(this.applied);
  }

  private apply(node: RawNode, entry: Entry): void {
    if (entry.index !== this.applied + 1n) this.sim.fail(`replica ${this.id} was handed entry ${entry.index} after applying ${this.applied}`);
    this.sim.recordApplied(this, entry);
    this.applied = entry.index;
    const membership = applyMembership(node, entry);
    if (membership !== undefined) {
      const wasMember = this.isMember(this.confState);
      this.confState = membership;
      this.sim.countMembershipChange(this, membership);
      if (wasMember && !this.isMember(membership)) this.retire();
    } else if (entry.type === EntryType.NORMAL && entry.data.length > 0) {
      const command = JSON.parse(entry.data.toString()) as PutCommand;
      this.kv.values.set(command.key, command.value);
      this.kv.writes.add(command.value);
    }
    const waiting = this.pendingWrites.get(entry.index);
    if (waiting !== undefined) {
      this.pendingWrites.delete(entry.index);
      // Another term's entry at this index means ours was overwritten: it can never commit.
      waiting.reply(waiting.term === entry.term ? { kind: 'ok', output: 'ok' } : { kind: 'failed' });
    }
  }

  private answerRead(context: string, index: bigint): void {
    const read = this.pendingReads.get(context);
    if (read === undefined) return;
    this.pendingReads.delete(context);
    this.readsAwaitingApply.push({ index, serve: () => read.reply({ kind: 'ok', output: this.kv.values.get(read.key) ?? null }) });
  }

  private serveReadsUpTo(applied: bigint): void {
    const ready = this.readsAwaitingApply.filter((read) => read.index <= applied);
    this.readsAwaitingApply = this.readsAwaitingApply.filter((read) => read.index > applied);
    for (const read of ready) read.serve();
  }

  private restore(snapshot: Snapshot): void {
    this.kv = KvState.decode(snapshot.data);
    this.applied = snapshot.metadata?.index ?? 0n;
    this.confState = snapshot.metadata?.confState ?? ConfState.create();
    // Writes the snapshot skipped past can no longer be matched to their entries: their clients time out.
    for (const index of this.pendingWrites.keys()) if (index <= this.applied) this.pendingWrites.delete(index);
  }

  private maybeSnapshot(): void {
    const held = this.storage.snapshot().metadata?.index ?? 0n;
    if (this.applied - held < BigInt(this.sim.scenario.snapshotEvery)) return;
    this.storage.createSnapshot(this.applied, this.confState, this.kv.encode());
    const compactTo = this.applied - BigInt(this.sim.scenario.keepAfterCompaction);
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
  }

  private isMember(confState: ConfState): boolean {
    return confState.voters.includes(this.id) || confState.learners.includes(this.id);
  }

  /** Removed from the cluster: stop after a moment, so that what it sends on applying its removal (a leader's last commit index) goes out. */
  private retire(): void {
    this.retired = true;
    this.sim.clock.setTimeout(() => this.crash(), TICK_MS);
  }
}

/** A client: one request at a time to the replica it believes leads, with a timeout. */
class Client {
  private leaderHint: bigint | undefined;
  private counter = 0;

  constructor(
    private readonly sim: Simulation,
    private readonly clientId: number,
    private readonly random: SeededRandom,
  ) {}

  start(): void {
    this.sim.clock.setTimeout(() => this.issue(), this.random.int(0, 20));
  }

  private issue(): void {
    if (!this.sim.isFaulty) return;
    const key = this.random.pick(this.sim.scenario.keys);
    const input: KvInput = this.random.chance(0.5)
      ? { kind: 'put', key, value: `${this.clientId}.${this.counter++}` }
      : { kind: 'get', key };
    const hinted = this.leaderHint === undefined ? undefined : this.sim.replicas.get(this.leaderHint);
    const target = hinted !== undefined && this.random.chance(0.8) ? hinted : this.sim.anyReplica(this.random);
    const complete = this.sim.invoke(this.clientId, input);
    let done = false;
    const finish = (outcome: Outcome | undefined) => {
      if (done) return;
      done = true;
      this.sim.clock.clearTimeout(timeout);
      complete(outcome);
      if (outcome === undefined) this.leaderHint = undefined;
      else this.leaderHint = outcome.kind === 'failed' ? outcome.leader : target.id;
      this.sim.clock.setTimeout(() => this.issue(), this.random.int(0, 15));
    };
    const timeout = this.sim.clock.setTimeout(() => finish(undefined), CLIENT_TIMEOUT_MS);
    target.handle(input, finish);
  }
}
