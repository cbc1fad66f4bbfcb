import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError, hasCode } from '@shoal/errors';
import { NodeRole, type SessionMessage } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Executor } from './executor.js';
import type { NodeIdentity } from './identity.js';
import { ManagerSet } from './managers.js';
import { CertificateRenewer, renewCertificate } from './renewal.js';
import { DEFAULT_SESSION_TIMING, runSession, type SessionTiming } from './session.js';
import { StatusReporter } from './status-reporter.js';
import { Worker } from './worker.js';

/** The agent's timings; swarmkit's values by default. Tests shorten them. */
export interface AgentTiming extends SessionTiming {
  /**
   * Longest pause between two session attempts (swarmkit's `maxSessionFailureBackoff`).
   * @default 8000
   */
  readonly maxBackoffMs: number;
  /**
   * Pause before a task step that hit a temporary error is retried.
   * @default 1000
   */
  readonly taskRetryDelayMs: number;
}

export const DEFAULT_AGENT_TIMING: AgentTiming = { ...DEFAULT_SESSION_TIMING, maxBackoffMs: 8_000, taskRetryDelayMs: 1_000 };

/** swarmkit's session backoff: 100 ms more than twice the last one, at most `max`. */
const INITIAL_BACKOFF_MS = 100;

export interface AgentOptions {
  readonly identity: NodeIdentity;
  readonly executor: Executor;
  readonly log: Logger;
  /** Keeps identity changes (a renewed certificate, a new manager list); without it they live in memory only. */
  readonly saveIdentity?: (identity: NodeIdentity) => Promise<void>;
  readonly timing?: Partial<AgentTiming>;
  /** Source of the random choices (backoff delays, manager picks, renewal points). */
  readonly random?: () => number;
}

/**
 * One node's agent (swarmkit's `agent.Agent`): a session with a manager's dispatcher at a time, the
 * worker running the node's tasks, the status reporter, and certificate renewal. A failed session is
 * followed, after a randomized backoff (`min(100 ms + 2 × backoff, 8 s)`, then a random delay below
 * it), by one with another manager. A dispatcher that says the node is not registered means the node
 * was removed from the swarm: the agent then stops, with that error, instead of retrying forever.
 *
 * {@link start} it, then {@link stop} it (its containers keep running, for the next start to adopt)
 * or make it {@link leave} (every task's container and secrets are removed).
 */
export class Agent {
  #identity: NodeIdentity;
  readonly #options: AgentOptions;
  readonly #timing: AgentTiming;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #managers: ManagerSet;
  readonly #reporter: StatusReporter;
  readonly #worker: Worker;
  readonly #renewer: CertificateRenewer;
  readonly #stopping = new AbortController();
  #leaving = false;
  #currentSession: AbortController | undefined;
  #currentAddress: string | undefined;
  #connected = false;
  #lastError: string | undefined;
  #done: Promise<void> | undefined;
  readonly #registered: Promise<void>;
  #resolveRegistered: () => void = () => undefined;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#identity = options.identity;
    this.#timing = { ...DEFAULT_AGENT_TIMING, ...options.timing };
    this.#random = options.random ?? Math.random;
    this.#log = options.log.child({ nodeId: options.identity.nodeId });
    this.#managers = new ManagerSet(options.identity.managers, this.#random);
    this.#reporter = new StatusReporter(this.#log.child({ module: 'agent/status-reporter' }));
    this.#worker = new Worker({
      executor: options.executor,
      reporter: this.#reporter,
      log: this.#log.child({ module: 'agent/worker' }),
      retryDelayMs: this.#timing.taskRetryDelayMs,
    });
    this.#renewer = new CertificateRenewer({
      identity: () => this.#identity,
      renew: (identity, signal) => renewCertificate(identity, this.#currentAddress ?? this.#managers.select(), signal),
      renewed: async (identity) => {
        // The manager list may have changed while the renewal was under way.
        await this.#useIdentity({ ...identity, managers: this.#managers.addresses });
        // The session authenticates with the certificate: a new one takes a new session.
        this.#currentSession?.abort();
      },
      log: this.#log.child({ module: 'agent/renewal' }),
      random: this.#random,
    });
    this.#registered = new Promise((resolve) => (this.#resolveRegistered = resolve));
  }

  /** The identity in use (it changes when the certificate is renewed). */
  get identity(): NodeIdentity {
    return this.#identity;
  }

  /** Whether a session with a dispatcher is up. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Why the last session failed, until the next one registers. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Resolves once a dispatcher has registered the node for the first time. */
  get registered(): Promise<void> {
    return this.#registered;
  }

  /**
   * Starts the agent. The returned promise (also {@link done}) settles when it has stopped: it
   * resolves after {@link stop} or {@link leave}, and rejects with NOT_FOUND when the swarm no longer
   * knows the node.
   */
  start(): Promise<void> {
    this.#done ??= this.#run();
    return this.#done;
  }

  /** Settles when the agent has stopped (see {@link start}); resolved for an agent never started. */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  /** Stops the agent and leaves its tasks' containers running, for the next start to adopt. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#done?.catch(() => undefined);
  }

  /** Stops the agent and removes every task's container and secrets: the node leaves the swarm. */
  async leave(): Promise<void> {
    // An agent that never ran, or that the swarm already dropped, kept its tasks' containers when it stopped.
    const keptTasks = this.#done === undefined || this.#stopping.signal.aborted;
    this.#leaving = true;
    await this.stop();
    if (keptTasks) await this.#worker.removeAll(new AbortController().signal);
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    const background = [this.#reporter.run(signal), this.#renewer.run(signal)];
    try {
      await this.#sessions(signal);
    } finally {
      this.#stopping.abort();
      await Promise.all(background);
      if (this.#leaving) await this.#worker.removeAll(new AbortController().signal);
      else await this.#worker.close();
    }
  }

  async #sessions(signal: AbortSignal): Promise<void> {
    let backoffMs = 0;
    let sessionId = '';
    let failedAddress: string | undefined;
    while (!signal.aborted) {
      const address = this.#managers.select(failedAddress);
      const session = new AbortController();
      const stopSession = () => session.abort();
      signal.addEventListener('abort', stopSession, { once: true });
      this.#currentSession = session;
      let registered = false;
      try {
        await runSession(
          {
            address,
            identity: this.#identity,
            description: await this.#options.executor.describe(session.signal),
            previousSessionId: sessionId,
            worker: this.#worker,
            reporter: this.#reporter,
            log: this.#log.child({ module: 'agent/session', server: address }),
            timing: this.#timing,
            registered: (id) => {
              registered = true;
              sessionId = id;
              this.#sessionRegistered(address);
            },
            message: (message) => this.#sessionMessage(message, address),
          },
          session.signal,
        );
        failedAddress = undefined;
        backoffMs = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (!registered && hasCode(err, ErrorCode.NotFound)) {
          this.#lastError = `this node is no longer part of the swarm: ${err.message}`;
          throw new ShoalError(ErrorCode.NotFound, this.#lastError, { details: { nodeId: this.#identity.nodeId }, cause: err });
        }
        this.#lastError = err instanceof Error ? err.message : String(err);
        this.#log.warn({ err, server: address }, 'session failed; reconnecting');
        failedAddress = address;
        backoffMs = Math.min(INITIAL_BACKOFF_MS + 2 * backoffMs, this.#timing.maxBackoffMs);
        await sleep(this.#random() * backoffMs, undefined, { signal }).catch(() => undefined);
      } finally {
        signal.removeEventListener('abort', stopSession);
        this.#connected = false;
        this.#currentSession = undefined;
        this.#currentAddress = undefined;
      }
    }
  }

  #sessionRegistered(address: string): void {
    this.#managers.prefer(address);
    this.#connected = true;
    this.#currentAddress = address;
    this.#lastError = undefined;
    this.#log.info({ server: address, state: 'registered' }, 'session registered');
    this.#resolveRegistered();
  }

  #sessionMessage(message: SessionMessage, address: string): void {
    if (this.#managers.replace(message.managers, address)) {
      void this.#useIdentity({ ...this.#identity, managers: this.#managers.addresses });
    }
    if (message.node !== undefined) this.#renewer.roleObserved(message.node.role === NodeRole.MANAGER ? 'manager' : 'worker');
  }

  /** Takes `identity` into use and keeps it. */
  async #useIdentity(identity: NodeIdentity): Promise<void> {
    this.#identity = identity;
    try {
      await this.#options.saveIdentity?.(identity);
    } catch (err) {
      this.#log.error({ err }, 'could not save the node identity');
    }
  }
}

/** What {@link runAgent} needs: an {@link Agent}'s options and the signal that stops it. */
export interface RunAgentOptions extends AgentOptions {
  readonly signal: AbortSignal;
}

/**
 * Runs one node's agent until `signal` aborts (its containers are left running) or the swarm drops
 * the node (rejects with NOT_FOUND). The benchmark runs a thousand of these, with fake executors, in
 * one process.
 */
export async function runAgent(options: RunAgentOptions): Promise<void> {
  const agent = new Agent(options);
  const stop = () => void agent.stop();
  options.signal.addEventListener('abort', stop, { once: true });
  if (options.signal.aborted) stop();
  try {
    await agent.start();
  } finally {
    options.signal.removeEventListener('abort', stop);
  }
}
