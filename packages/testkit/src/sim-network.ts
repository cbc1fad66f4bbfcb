import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import type { FakeClock } from './fake-clock.js';
import type { SeededRandom } from './seeded-random.js';

/** A node's address on a {@link SimNetwork}. */
export type NodeId = string;

/** How a link mistreats the messages sent over it. */
export interface LinkConditions {
  /** Probability in [0, 1] that a message is lost. */
  dropRate: number;
  /** Probability in [0, 1] that a delivered message arrives a second time (with its own delay). */
  duplicateRate: number;
  /** Smallest delay in whole milliseconds. */
  minDelayMs: number;
  /** Largest delay in whole milliseconds. Different delays are what reorder messages. */
  maxDelayMs: number;
}

/** A perfect network: nothing lost or duplicated, everything delivered in order one millisecond later. */
export const RELIABLE_LINK: Readonly<LinkConditions> = { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 1 };

/** One copy of a message in flight or delivered. */
export interface Envelope<M> {
  /** Unique per copy: a duplicate gets its own id. */
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly message: M;
  readonly sentAt: number;
  readonly deliverAt: number;
  /** True for the extra copy made by duplication. */
  readonly duplicate: boolean;
}

/** Receives the messages addressed to one node. Called synchronously from the clock. */
export type MessageHandler<M> = (message: M, envelope: Envelope<M>) => void;

/** Counters since the network was created. */
export interface NetworkStats {
  /** Calls to `send`. */
  sent: number;
  /** Copies handed to a handler. */
  delivered: number;
  /** Copies lost: by chance, across a partition (at sending or arrival), or to a node with no handler. */
  dropped: number;
  /** Extra copies created by duplication. */
  duplicated: number;
}

/** Options for {@link SimNetwork}. */
export interface SimNetworkOptions {
  /** Drives delivery: each copy in flight is a timer on this clock. */
  clock: FakeClock;
  /** Decides drops, delays and duplicates; draws happen in send order, so a seed replays a run exactly. */
  random: SeededRandom;
  /**
   * Conditions for every link without its own.
   * @default RELIABLE_LINK
   */
  conditions?: Partial<LinkConditions>;
}

/**
 * A deterministic message network for simulations. Nodes register a handler; `send` decides, with the
 * seeded random source, whether each message is lost, how long it takes and whether it arrives twice,
 * and schedules each copy on the fake clock. Advancing the clock (or calling {@link SimNetwork.step} /
 * {@link SimNetwork.deliverAll}) delivers copies in order of arrival time, interleaved with the nodes'
 * own timers on the same clock, so one clock orders everything that happens in a simulation.
 *
 * Partitions and isolation cut links in both directions; a cut also loses the copies already in flight
 * across it, as a broken connection would. {@link SimNetwork.heal} restores every link.
 */
export class SimNetwork<M> {
  private readonly clock: FakeClock;
  private readonly random: SeededRandom;
  private defaults: LinkConditions;
  private readonly linkOverrides = new Map<string, Partial<LinkConditions>>();
  private readonly handlers = new Map<NodeId, MessageHandler<M>>();
  private readonly cutLinks = new Set<string>();
  private readonly isolated = new Set<NodeId>();
  private readonly counters: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private nextEnvelopeId = 1;
  private inFlightCount = 0;
  private lastDelivered: Envelope<M> | undefined;

  constructor(options: SimNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random;
    this.defaults = validConditions({ ...RELIABLE_LINK, ...options.conditions });
  }

  /** Attaches a node. Its messages go to `handler` until {@link SimNetwork.removeNode}. */
  addNode(id: NodeId, handler: MessageHandler<M>): void {
    if (this.handlers.has(id)) throw errors.alreadyExists(`node ${id} is already on the network`, { nodeId: id });
    this.handlers.set(id, handler);
  }

  /** Detaches a node, as a crash would: copies that arrive while it is detached are dropped. */
  removeNode(id: NodeId): void {
    if (!this.handlers.delete(id)) throw errors.notFound(`node ${id} is not on the network`, { nodeId: id });
  }

  /** The attached nodes, in the order they were added. */
  get nodes(): NodeId[] {
    return [...this.handlers.keys()];
  }

  /** A snapshot of the counters. */
  get stats(): NetworkStats {
    return { ...this.counters };
  }

  /** Copies scheduled but not yet delivered or dropped. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Changes the conditions of every link that has no override of its own for that field. */
  setConditions(conditions: Partial<LinkConditions>): void {
    this.defaults = validConditions({ ...this.defaults, ...conditions });
  }

  /** Overrides conditions for the one direction `from` → `to`; call it twice for both directions. */
  setLinkConditions(from: NodeId, to: NodeId, conditions: Partial<LinkConditions>): void {
    const key = linkKey(from, to);
    const merged = { ...this.linkOverrides.get(key), ...conditions };
    validConditions({ ...this.defaults, ...merged });
    this.linkOverrides.set(key, merged);
  }

  /** Cuts every link between a node of `groupA` and a node of `groupB`, both ways. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.cutLinks.add(linkKey(a, b));
        this.cutLinks.add(linkKey(b, a));
      }
    }
  }

  /** Cuts `node` off from every other node, including nodes added later. */
  isolate(node: NodeId): void {
    this.isolated.add(node);
  }

  /** Removes every partition and isolation. Link conditions stay as they are. */
  heal(): void {
    this.cutLinks.clear();
    this.isolated.clear();
  }

  /** Whether a message sent now from `from` to `to` could get through (ignoring chance). */
  canReach(from: NodeId, to: NodeId): boolean {
    return !this.isolated.has(from) && !this.isolated.has(to) && !this.cutLinks.has(linkKey(from, to));
  }

  /**
   * Sends `message`. Draws, in this order: drop?, delay, duplicate?, and the duplicate's delay. A message
   * across a cut link is dropped before any draw.
   */
  send(from: NodeId, to: NodeId, message: M): void {
    this.counters.sent++;
    const link = this.conditionsFor(from, to);
    if (!this.canReach(from, to) || this.random.chance(link.dropRate)) {
      this.counters.dropped++;
      return;
    }
    this.schedule(from, to, message, link, false);
    if (this.random.chance(link.duplicateRate)) {
      this.counters.duplicated++;
      this.schedule(from, to, message, link, true);
    }
  }

  /**
   * Advances the clock until the next copy is delivered, firing any earlier timers on the way, and
   * returns it. Copies dropped on arrival are passed over. Returns `undefined` once nothing is in
   * flight; if nothing was in flight to begin with, time does not move.
   */
  step(): Envelope<M> | undefined {
    this.lastDelivered = undefined;
    while (this.lastDelivered === undefined && this.inFlightCount > 0) this.clock.runNext();
    return this.lastDelivered;
  }

  /**
   * Runs the clock until no message is in flight, and returns how many copies were delivered. Only for
   * exchanges that settle: with periodic traffic (heartbeats) there is always something in flight, so
   * after `maxEvents` clock events this throws RESOURCE_EXHAUSTED instead of spinning forever.
   */
  deliverAll(maxEvents = 100_000): number {
    const deliveredBefore = this.counters.delivered;
    for (let events = 0; this.inFlightCount > 0; events++) {
      if (events === maxEvents) {
        throw new ShoalError(ErrorCode.ResourceExhausted, `network did not settle within ${maxEvents} clock events`, {
          details: { maxEvents, inFlight: this.inFlightCount },
        });
      }
      this.clock.runNext();
    }
    return this.counters.delivered - deliveredBefore;
  }

  private conditionsFor(from: NodeId, to: NodeId): LinkConditions {
    const override = this.linkOverrides.get(linkKey(from, to));
    return override === undefined ? this.defaults : { ...this.defaults, ...override };
  }

  private schedule(from: NodeId, to: NodeId, message: M, link: LinkConditions, duplicate: boolean): void {
    const delay = this.random.int(link.minDelayMs, link.maxDelayMs);
    const sentAt = this.clock.now();
    const envelope: Envelope<M> = { id: this.nextEnvelopeId++, from, to, message, sentAt, deliverAt: sentAt + delay, duplicate };
    this.inFlightCount++;
    this.clock.setTimeout(() => this.arrive(envelope), delay);
  }

  private arrive(envelope: Envelope<M>): void {
    this.inFlightCount--;
    const handler = this.handlers.get(envelope.to);
    if (handler === undefined || !this.canReach(envelope.from, envelope.to)) {
      this.counters.dropped++;
      return;
    }
    this.counters.delivered++;
    this.lastDelivered = envelope;
    handler(envelope.message, envelope);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

function validConditions(conditions: LinkConditions): LinkConditions {
  const { dropRate, duplicateRate, minDelayMs, maxDelayMs } = conditions;
  const isRate = (rate: number) => rate >= 0 && rate <= 1;
  if (!isRate(dropRate) || !isRate(duplicateRate)) {
    throw errors.invalidArgument('drop and duplicate rates must be between 0 and 1', { dropRate, duplicateRate });
  }
  if (!Number.isSafeInteger(minDelayMs) || !Number.isSafeInteger(maxDelayMs) || minDelayMs < 0 || minDelayMs > maxDelayMs) {
    throw errors.invalidArgument('delays must be whole milliseconds with 0 <= minDelayMs <= maxDelayMs', { minDelayMs, maxDelayMs });
  }
  return conditions;
}
