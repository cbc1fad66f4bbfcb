import { ConfState, EntryType, Message, MessageType, type Entry } from '@shoal/proto';
import { MemoryStorage, RawNode, type RaftConfig, type RandomSource, type ReadState } from '../../src/index.js';
import { applyMembership, persist } from './ready.js';

/** Options for test members: anything of RaftConfig but the ID and storage. */
export type MemberOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

/**
 * A random source that always draws `min + offset` (capped at max), so a member's election timeout
 * is exactly electionTick + offset ticks.
 */
export function fixedRandom(offset = 0): RandomSource {
  return { int: (min, max) => Math.min(min + offset, max) };
}

/** The encoded state machine of a new cluster: nothing applied. */
const EMPTY_STATE = Buffer.from('[]');

/** Test defaults: deterministic timeouts, and the plain Raft of the paper unless a test opts in. */
const PAPER_DEFAULTS: MemberOptions = { electionTick: 10, heartbeatTick: 1, preVote: false, checkQuorum: false, random: fixedRandom() };

/** One member and the state its caller keeps: storage, applied entries, read states. */
export class TestMember {
  readonly node: RawNode;
  /** The state machine: data of the applied NORMAL entries with data (the leaders' empty entries are left out). */
  applied: string[] = [];
  readonly readStates: ReadState[] = [];
  confState: ConfState;

  constructor(
    readonly id: bigint,
    readonly storage: MemoryStorage,
    options: MemberOptions = {},
  ) {
    this.node = new RawNode({ ...PAPER_DEFAULTS, ...options, id, storage });
    this.confState = storage.initialState().confState;
  }

  /** Handles every Ready as a correct caller would (persist, apply, advance) and returns the messages to send. */
  drain(): Message[] {
    const outgoing: Message[] = [];
    while (this.node.hasReady()) {
      const ready = this.node.ready();
      persist(this.storage, ready);
      outgoing.push(...ready.messages);
      if (ready.snapshot !== undefined) {
        this.confState = ready.snapshot.metadata?.confState ?? ConfState.create();
        this.applied = JSON.parse(ready.snapshot.data.toString()) as string[];
      }
      for (const entry of ready.committedEntries) this.apply(entry);
      this.readStates.push(...ready.readStates);
      this.node.advance(ready);
    }
    return outgoing;
  }

  /** Records a snapshot at the applied index and drops the log before it, keeping `keep` entries. */
  compact(keep = 0n): void {
    const applied = this.node.status().applied;
    this.storage.createSnapshot(applied, this.confState, Buffer.from(JSON.stringify(this.applied)));
    const to = applied - keep;
    if (to >= this.storage.firstIndex()) this.storage.compact(to);
  }

  get role() {
    return this.node.status().role;
  }

  get term() {
    return this.node.status().term;
  }

  private apply(entry: Entry): void {
    const membership = applyMembership(this.node, entry);
    if (membership !== undefined) this.confState = membership;
    else if (entry.type === EntryType.NORMAL && entry.data.length > 0) this.applied.push(entry.data.toString());
  }
}

/**
 * Members connected by a synchronous, in-order network the test controls, like etcd's test `network`:
 * messages queue up until {@link TestCluster.deliver}; links can be cut, members isolated, and
 * messages filtered. With `wire: true`, every message goes through its protobuf encoding.
 */
export class TestCluster {
  readonly members = new Map<bigint, TestMember>();
  /** Every message delivered or dropped, in order, for assertions about traffic. */
  readonly sent: Message[] = [];
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly isolated = new Set<bigint>();
  private dropWhen: ((message: Message) => boolean) | undefined;

  constructor(private readonly wire = false) {}

  /** A new cluster whose founding voters are `ids`, each with `options`. */
  static of(ids: bigint[], options: MemberOptions = {}, wire = false): TestCluster {
    const cluster = new TestCluster(wire);
    for (const id of ids) cluster.add(id, MemoryStorage.bootstrapped({ voters: ids, learners: [] }, EMPTY_STATE), options);
    return cluster;
  }

  /** Adds a member with the given storage (empty storage for a member that joins later). */
  add(id: bigint, storage = new MemoryStorage(), options: MemberOptions = {}): TestMember {
    const member = new TestMember(id, storage, options);
    this.members.set(id, member);
    return member;
  }

  member(id: bigint): TestMember {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  node(id: bigint): RawNode {
    return this.member(id).node;
  }

  /** Replaces a member by one restarted from its storage: everything it had not persisted is gone. */
  restart(id: bigint, options: MemberOptions = {}): TestMember {
    return this.add(id, this.member(id).storage, options);
  }

  isolate(id: bigint): void {
    this.isolated.add(id);
  }

  /** Cuts the link between `a` and `b`, both ways. */
  cutLink(a: bigint, b: bigint): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  /** Drops every message for which `predicate` is true (until replaced or cleared with undefined). */
  dropIf(predicate: ((message: Message) => boolean) | undefined): void {
    this.dropWhen = predicate;
  }

  heal(): void {
    this.cut.clear();
    this.isolated.clear();
    this.dropWhen = undefined;
  }

  /** Collects the messages every member has ready to send. */
  collect(): void {
    for (const member of this.members.values()) this.enqueue(member.drain());
  }

  /** Ticks `id` `times` times, collecting its output after each tick. */
  tick(id: bigint, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).tick();
      this.enqueue(this.member(id).drain());
    }
  }

  /** Ticks every member once and delivers everything that follows, `times` times over. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.members.keys()) this.tick(id);
      this.stabilize();
    }
  }

  /**
   * Delivers the messages the members have sent so far (not those they provoke) and returns them. With
   * `which`, only the messages it accepts; the others stay queued.
   */
  deliver(which: (message: Message) => boolean = () => true): Message[] {
    this.collect();
    const batch = this.queue.filter(which);
    this.queue = this.queue.filter((message) => !which(message));
    const delivered: Message[] = [];
    for (const message of batch) {
      this.sent.push(message);
      const target = this.members.get(message.to);
      if (target === undefined || this.blocked(message)) continue;
      const received = this.wire ? Message.decode(Message.encode(message).finish()) : message;
      target.node.step(received);
      delivered.push(message);
      this.enqueue(target.drain());
    }
    return delivered;
  }

  /** Delivers until no message is left in flight. */
  stabilize(): void {
    this.collect();
    for (let rounds = 0; this.queue.length > 0; rounds++) {
      if (rounds === 10_000) throw new Error('the cluster did not stabilize');
      this.deliver();
    }
  }

  /** Makes `id` campaign and delivers everything that follows. */
  elect(id: bigint): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Proposes `text` on `id` and delivers everything that follows. */
  propose(id: bigint, text: string): void {
    this.node(id).propose(Buffer.from(text));
    this.stabilize();
  }

  /** Messages queued and not yet delivered, optionally only those of one type. */
  pending(type?: MessageType): Message[] {
    this.collect();
    return type === undefined ? [...this.queue] : this.queue.filter((m) => m.type === type);
  }

  private blocked(message: Message): boolean {
    return (
      this.isolated.has(message.from) ||
      this.isolated.has(message.to) ||
      this.cut.has(`${message.from}-${message.to}`) ||
      this.dropWhen?.(message) === true
    );
  }

  private enqueue(messages: Message[]): void {
    for (const message of messages) this.queue.push(message);
  }
}

/** A message with every field not given at its zero value. */
export function msg(fields: Parameters<typeof Message.fromPartial>[0]): Message {
  return Message.fromPartial(fields);
}

/**
 * Storage for a founding member of a cluster of `voters`, holding a log whose entry i has term
 * `terms[i - 1]` (entry 1 is the bootstrap snapshot, so terms[0] must be 1), at hard-state term `term`.
 */
export function storageWithLog(voters: bigint[], terms: number[], term = Math.max(...terms)): MemoryStorage {
  const storage = MemoryStorage.bootstrapped({ voters, learners: [] }, EMPTY_STATE);
  storage.append(terms.slice(1).map((t, i) => ({ type: EntryType.NORMAL, term: BigInt(t), index: BigInt(i + 2), data: Buffer.from(`${i + 2}@${t}`) })));
  storage.setHardState({ term: BigInt(term), vote: 0n, commit: 1n });
  return storage;
}

/** The term of every entry in `storage`, from the snapshot's on: [term of entry firstIndex-1, ...]. */
export function logTerms(storage: MemoryStorage): number[] {
  const terms: number[] = [];
  for (let index = storage.firstIndex() - 1n; index <= storage.lastIndex(); index++) terms.push(Number(storage.term(index)));
  return terms;
}

/** Shorthand for the list of member IDs 1..n. */
export function ids(n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => BigInt(i + 1));
}
