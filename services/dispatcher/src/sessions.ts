import { ErrorCode, errors, ShoalError } from '@shoal/errors';
import { newId } from '@shoal/proto';

/** swarmkit's `errNodeNotRegistered`: the node has no session here (never had, expired, or was removed). */
export const nodeNotRegistered = (nodeId: string) => errors.notFound('node not registered', { nodeId });
/** swarmkit's `ErrSessionInvalid`: the call names a session the node no longer has. */
const sessionInvalid = (nodeId: string) => errors.invalidArgument('session invalid', { nodeId });

/** swarmkit's registration rate limit: more than 3 registrations of a node within 8 s are refused. */
const RATE_LIMIT_PERIOD_MS = 8_000;
const RATE_LIMIT_COUNT = 3;

/**
 * One registration of a node with this dispatcher. Its ID is opaque and new at each registration;
 * every later call of the node names it. It lasts until the node registers again, misses its
 * heartbeats, is removed, or the dispatcher stops: then {@link Session.signal} aborts with the reason,
 * which the node's streams end with.
 */
export class Session {
  readonly id = newId();
  readonly #ended = new AbortController();

  constructor(
    readonly nodeId: string,
    /** The address the node registered from. */
    readonly addr: string,
  ) {}

  /** Aborts, with the ShoalError the node's streams end with, when the session ends. */
  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  end(reason: ShoalError): void {
    this.#ended.abort(reason);
  }
}

interface LiveSession {
  readonly session: Session;
  expiry: NodeJS.Timeout;
}

/** When a node last registered and how many times in a row within the rate-limit period. */
interface Registrations {
  attempts: number;
  lastAt: number;
}

/**
 * The sessions this dispatcher holds, at most one per node, each with its heartbeat deadline
 * (swarmkit's `nodeStore`). A session whose deadline passes ends and is reported to `onExpired`.
 */
export class SessionRegistry {
  readonly #live = new Map<string, LiveSession>();
  readonly #registrations = new Map<string, Registrations>();
  readonly #onExpired: (session: Session) => void;

  constructor(onExpired: (session: Session) => void) {
    this.#onExpired = onExpired;
  }

  /**
   * Opens a new session for `nodeId` that expires unless a heartbeat comes within `deadlineMs`. The
   * node's previous session, if any, ends as invalid. UNAVAILABLE for a node registering a fourth time
   * within 8 s of its last registration.
   */
  register(nodeId: string, addr: string, deadlineMs: number, now = Date.now()): Session {
    this.#checkRateLimit(nodeId, now);
    this.#live.get(nodeId)?.session.end(sessionInvalid(nodeId));
    this.#drop(nodeId);
    const session = new Session(nodeId, addr);
    this.#live.set(nodeId, { session, expiry: this.#expireAfter(session, deadlineMs) });
    return session;
  }

  /** The node's session, if it has one here. */
  find(nodeId: string): Session | undefined {
    return this.#live.get(nodeId)?.session;
  }

  /** The node's session provided the call names it: NOT_FOUND without one, INVALID_ARGUMENT for another. */
  require(nodeId: string, sessionId: string): Session {
    const session = this.find(nodeId);
    if (session === undefined) throw nodeNotRegistered(nodeId);
    if (session.id !== sessionId) throw sessionInvalid(nodeId);
    return session;
  }

  /** Moves the session's heartbeat deadline to `deadlineMs` from now. */
  heartbeat(session: Session, deadlineMs: number): void {
    const live = this.#live.get(session.nodeId);
    if (live?.session !== session) return;
    clearTimeout(live.expiry);
    live.expiry = this.#expireAfter(session, deadlineMs);
  }

  /** Ends the node's session, if it has one. */
  end(nodeId: string, reason: ShoalError): void {
    this.#live.get(nodeId)?.session.end(reason);
    this.#drop(nodeId);
  }

  /** Ends every session, as the dispatcher stops; their nodes reconnect to another one. */
  endAll(reason: ShoalError): void {
    for (const nodeId of [...this.#live.keys()]) this.end(nodeId, reason);
  }

  /** Forgets registration counts older than the rate-limit period, so nodes that went away leave nothing behind. */
  forgetOldRegistrations(now = Date.now()): void {
    for (const [nodeId, registrations] of this.#registrations) {
      if (now - registrations.lastAt > RATE_LIMIT_PERIOD_MS) this.#registrations.delete(nodeId);
    }
  }

  /** swarmkit's `CheckRateLimit`: only accepted registrations move the window. */
  #checkRateLimit(nodeId: string, now: number): void {
    const registrations = this.#registrations.get(nodeId) ?? { attempts: 0, lastAt: now };
    if (now - registrations.lastAt > RATE_LIMIT_PERIOD_MS) registrations.attempts = 0;
    registrations.attempts += 1;
    this.#registrations.set(nodeId, registrations);
    if (registrations.attempts > RATE_LIMIT_COUNT) {
      throw new ShoalError(ErrorCode.Unavailable, `node ${nodeId} exceeded rate limit count of registrations`, { details: { nodeId } });
    }
    registrations.lastAt = now;
  }

  #expireAfter(session: Session, deadlineMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      if (this.find(session.nodeId) !== session) return;
      this.end(session.nodeId, nodeNotRegistered(session.nodeId));
      this.#onExpired(session);
    }, deadlineMs);
  }

  #drop(nodeId: string): void {
    const live = this.#live.get(nodeId);
    if (live === undefined) return;
    clearTimeout(live.expiry);
    this.#live.delete(nodeId);
  }
}
