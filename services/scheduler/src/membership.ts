import { createHash } from 'node:crypto';
import { subjects, type BusConnection } from '@shoal/bus';
import { untilAborted, type Logger } from '@shoal/runtime';
import { systemClock, type Clock } from './clock.js';

const DEFAULT_HEARTBEAT_MS = 1_000;
const DEFAULT_MISSED_HEARTBEATS = 3;

/** What a scheduler instance publishes on `subjects.schedulerMembers`, as JSON. */
export interface SchedulerHeartbeat {
  readonly instanceId: string;
  /** When it was sent, in ms since the epoch by the sender's clock: informative only, as clocks differ. */
  readonly at: number;
  /** Sent once, by an instance that stops, so that the others take its services over at once. */
  readonly leaving?: true;
}

export interface MembershipOptions {
  /** The NATS connection (a `@shoal/bus` connection's `nc`). */
  readonly nc: BusConnection['nc'];
  /** This instance's ID, unique among the instances that ever run (e.g. `<hostname>/<newId()>`). */
  readonly instanceId: string;
  readonly log: Logger;
  readonly clock?: Clock;
  /** How often this instance announces itself. @default 1000 */
  readonly heartbeatMs?: number;
  /** An instance not heard from for this many heartbeats is gone. @default 3 */
  readonly missedHeartbeats?: number;
  /** Called with the new members (sorted IDs, this instance included) whenever they change. */
  readonly onChange?: (members: readonly string[]) => void;
}

/**
 * Which scheduler instances are alive, learnt over NATS, and so which services this one places
 * ({@link owns}). Each instance publishes a heartbeat every second; one not heard from for three is
 * gone, and one that stops says so.
 *
 * NATS only spreads the work: correctness never depends on it, since every placement is committed
 * with version checks on its task and node. So an instance that cannot hear even itself (NATS is
 * unreachable) keeps the membership it had rather than conclude that the others died, and an
 * instance that just started owns everything until it hears the others (which answer a newcomer at
 * once); at worst two instances then place the same service's tasks and one of them loses the race.
 */
export class Membership {
  readonly #nc: BusConnection['nc'];
  readonly #instanceId: string;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #heartbeatMs: number;
  readonly #missedHeartbeats: number;
  readonly #onChange: ((members: readonly string[]) => void) | undefined;
  /** When each other instance was last heard from, by this instance's clock. */
  readonly #lastHeard = new Map<string, number>();
  #lastHeardSelf: number | undefined;
  /** This instance stopped hearing its own heartbeats: it cannot judge whether the others are gone. */
  #cutOff = false;
  #members: readonly string[];
  /** {@link owns}' answers for the current members. */
  readonly #owned = new Map<string, boolean>();
  #timer: unknown;

  constructor(options: MembershipOptions) {
    this.#nc = options.nc;
    this.#instanceId = options.instanceId;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#missedHeartbeats = options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS;
    this.#onChange = options.onChange;
    this.#members = [this.#instanceId];
  }

  /** The live instances' IDs, sorted, this one included. */
  get members(): readonly string[] {
    return this.#members;
  }

  /** Whether this instance places the tasks of `serviceId`: {@link ownerOf} it over the live instances. */
  owns(serviceId: string): boolean {
    let owned = this.#owned.get(serviceId);
    if (owned === undefined) {
      owned = ownerOf(serviceId, this.#members) === this.#instanceId;
      this.#owned.set(serviceId, owned);
    }
    return owned;
  }

  /** Announces this instance and follows the others until `signal` aborts; then says it is leaving. */
  async run(signal: AbortSignal): Promise<void> {
    const subscription = this.#nc.subscribe(subjects.schedulerMembers, {
      callback: (err, message) => {
        if (err === null) this.#hear(message.data);
      },
    });
    this.#beat();
    try {
      await untilAborted(signal);
    } finally {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#announce(true);
      if (!this.#nc.isClosed()) subscription.unsubscribe();
    }
  }

  #beat(): void {
    this.#announce(false);
    this.#forgetSilentInstances();
    this.#timer = this.#clock.setTimeout(() => this.#beat(), this.#heartbeatMs);
  }

  #announce(leaving: boolean): void {
    // A closed connection carries nothing; the bus component reports the closing.
    if (this.#nc.isClosed()) return;
    const at = this.#clock.now();
    const heartbeat: SchedulerHeartbeat = leaving ? { instanceId: this.#instanceId, at, leaving } : { instanceId: this.#instanceId, at };
    this.#nc.publish(subjects.schedulerMembers, JSON.stringify(heartbeat));
  }

  #forgetSilentInstances(): void {
    const now = this.#clock.now();
    const silenceMs = this.#heartbeatMs * this.#missedHeartbeats;
    if (this.#lastHeardSelf !== undefined && now - this.#lastHeardSelf > silenceMs) this.#cutOff = true;
    if (this.#cutOff) return;
    let changed = false;
    for (const [instanceId, heardAt] of this.#lastHeard) {
      if (now - heardAt <= silenceMs) continue;
      this.#lastHeard.delete(instanceId);
      changed = true;
    }
    if (changed) this.#membersChanged();
  }

  #hear(data: Uint8Array): void {
    const heartbeat = parseHeartbeat(data);
    if (heartbeat === undefined) {
      this.#log.debug({ subject: subjects.schedulerMembers }, 'ignoring a malformed scheduler heartbeat');
      return;
    }
    const now = this.#clock.now();
    const { instanceId } = heartbeat;
    if (instanceId === this.#instanceId) {
      if (this.#cutOff) {
        // Back in touch: the others' silence was this instance's deafness, so they get a fresh start.
        this.#cutOff = false;
        for (const other of this.#lastHeard.keys()) this.#lastHeard.set(other, now);
      }
      this.#lastHeardSelf = now;
      return;
    }
    if (heartbeat.leaving === true) {
      if (this.#lastHeard.delete(instanceId)) this.#membersChanged();
      return;
    }
    const known = this.#lastHeard.has(instanceId);
    this.#lastHeard.set(instanceId, now);
    if (known) return;
    this.#membersChanged();
    // Answer a newcomer at once, so that it stops placing this instance's services within a round trip.
    this.#announce(false);
  }

  #membersChanged(): void {
    this.#members = [this.#instanceId, ...this.#lastHeard.keys()].sort();
    this.#owned.clear();
    this.#log.info({ members: this.#members }, 'scheduler instances changed');
    this.#onChange?.(this.#members);
  }
}

/**
 * The instance that places a service's tasks: rendezvous (highest-random-weight) hashing of the
 * service over the instances. Every instance that knows the same members picks the same owner
 * without talking, and when an instance comes or goes only the services it takes or held move.
 * Undefined only for no instances at all.
 */
export function ownerOf(serviceId: string, instanceIds: readonly string[]): string | undefined {
  let owner: string | undefined;
  let best = -1;
  for (const instanceId of instanceIds) {
    const weight = weightOf(instanceId, serviceId);
    if (weight > best || (weight === best && owner !== undefined && instanceId > owner)) {
      owner = instanceId;
      best = weight;
    }
  }
  return owner;
}

/** A well-mixed 48-bit number for the pair; the NUL keeps ("ab", "c") and ("a", "bc") apart. */
function weightOf(instanceId: string, serviceId: string): number {
  return createHash('sha256').update(instanceId).update('\0').update(serviceId).digest().readUIntBE(0, 6);
}

function parseHeartbeat(data: Uint8Array): SchedulerHeartbeat | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { instanceId, at, leaving } = value as Record<string, unknown>;
  if (typeof instanceId !== 'string' || instanceId === '' || typeof at !== 'number') return undefined;
  return leaving === true ? { instanceId, at, leaving } : { instanceId, at };
}
