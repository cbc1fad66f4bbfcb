import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import type { Component, ComponentContext } from './component.js';
import type { Logger } from './logger.js';

/** How a supervised run ended. */
export interface SupervisorResult {
  /** True when no component failed and every component stopped within the grace period. */
  ok: boolean;
  /** Components that rejected, or resolved before they were asked to stop, in the order they failed. */
  failures: { component: string; error: unknown }[];
  /** Components still running when the shutdown grace period ran out, in the order they were abandoned. */
  timedOut: string[];
}

export interface SupervisorOptions {
  log: Logger;
  /** Started in this order, stopped in the reverse order. Names must be unique. */
  components: Component[];
  /** Bound on the whole shutdown, for all components together, in milliseconds. */
  shutdownGraceMs: number;
}

/** One started component and what the supervisor knows about it. */
interface Running {
  readonly component: Component;
  readonly controller: AbortController;
  readonly log: Logger;
  /** Resolves (never rejects) once `run` has settled and the outcome is recorded. */
  settled: Promise<void>;
  finished: boolean;
}

/**
 * Runs a process's components: starts them one after another (each after the previous one reported
 * ready), and stops them in reverse order, when asked or as soon as any of them fails. The whole
 * shutdown is bounded by `shutdownGraceMs`; components still running then are abandoned and reported.
 * This closes the gap swarmkit leaves open (manager.go only logs a component that exits with an error):
 * here one failure stops everything and the result is not ok, so the process exits non-zero.
 *
 * A supervisor runs once: `start()` may be called a single time, and `stop()` any number of times.
 */
export class Supervisor {
  /** Resolves with the outcome once the supervisor has stopped, whoever stopped it. */
  readonly done: Promise<SupervisorResult>;

  readonly #log: Logger;
  readonly #components: readonly Component[];
  readonly #shutdownGraceMs: number;
  readonly #running: Running[] = [];
  readonly #failures: SupervisorResult['failures'] = [];
  /** Resolves when the shutdown begins, so a start that is waiting on a component stops waiting. */
  readonly #stopRequested: Promise<void>;
  #resolveStopRequested!: () => void;
  #stopReason: string | undefined;
  #resolveDone!: (result: SupervisorResult) => void;
  #started = false;
  #ready = false;
  #finished = false;
  #shutdown: Promise<SupervisorResult> | undefined;

  constructor(opts: SupervisorOptions) {
    const names = new Set<string>();
    for (const { name } of opts.components) {
      if (names.has(name)) throw errors.invalidArgument(`two components are named ${name}`, { component: name });
      names.add(name);
    }
    this.#log = opts.log;
    this.#components = [...opts.components];
    this.#shutdownGraceMs = opts.shutdownGraceMs;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#stopRequested = new Promise((resolve) => (this.#resolveStopRequested = resolve));
  }

  /** True from the moment every component has reported ready until the shutdown begins. */
  get isReady(): boolean {
    return this.#ready;
  }

  /**
   * Starts the components in order. Resolves once every one of them has reported ready; rejects with a
   * CANCELLED ShoalError if the supervisor is stopped first, whether by `stop()` or by a component
   * failing (the failure itself is reported in {@link done}).
   */
  async start(): Promise<void> {
    if (this.#started) throw errors.failedPrecondition('the supervisor was already started');
    this.#started = true;
    for (const component of this.#components) {
      if (this.#stopReason !== undefined) break;
      await this.#launch(component);
    }
    const reason = this.#stopReason;
    if (reason !== undefined) {
      throw new ShoalError(ErrorCode.Cancelled, `stopped before every component was ready: ${reason}`, {
        details: { reason },
        cause: this.#failures[0]?.error,
      });
    }
    this.#ready = true;
    this.#log.info({ state: 'ready' }, 'all components ready');
  }

  /**
   * Stops every started component in reverse order, aborting each and waiting for it before moving to
   * the next, all within the grace period. Safe to call at any time and more than once; every call
   * returns the same outcome as {@link done}.
   */
  stop(reason = 'stop requested'): Promise<SupervisorResult> {
    this.#shutdown ??= this.#shutdownAll(reason);
    return this.#shutdown;
  }

  /** Starts one component and resolves when it reports ready, exits, or the shutdown begins. */
  async #launch(component: Component): Promise<void> {
    const log = this.#log.child({ component: component.name });
    const entry: Running = { component, controller: new AbortController(), log, settled: Promise.resolve(), finished: false };
    let reportReady!: () => void;
    const ready = new Promise<void>((resolve) => (reportReady = resolve));
    let reported = false;
    const ctx: ComponentContext = {
      signal: entry.controller.signal,
      log,
      ready: () => {
        if (reported || entry.controller.signal.aborted) return;
        reported = true;
        log.info({ state: 'ready' }, 'component state changed');
        reportReady();
      },
    };
    log.info({ state: 'starting' }, 'component state changed');
    entry.settled = Promise.resolve()
      .then(() => component.run(ctx))
      .then(
        () => this.#onExit(entry, { threw: false }),
        (error: unknown) => this.#onExit(entry, { threw: true, error }),
      );
    this.#running.push(entry);
    await Promise.race([ready, entry.settled, this.#stopRequested]);
  }

  /** Records how a component's `run` ended and, if that was a failure, stops everything else. */
  #onExit(entry: Running, outcome: { threw: false } | { threw: true; error: unknown }): void {
    entry.finished = true;
    const { signal } = entry.controller;
    if (this.#finished) {
      entry.log.warn({ state: 'stopped', err: outcome.threw ? outcome.error : undefined }, 'component stopped after the shutdown deadline');
      return;
    }
    let failure: unknown;
    if (outcome.threw) {
      if (!(signal.aborted && isAbortError(outcome.error, signal))) failure = outcome.error;
    } else if (!signal.aborted) {
      failure = errors.internal(`component ${entry.component.name} stopped before it was asked to`, { component: entry.component.name });
    }
    if (failure === undefined) {
      entry.log.info({ state: 'stopped' }, 'component state changed');
      return;
    }
    this.#failures.push({ component: entry.component.name, error: failure });
    entry.log.error({ state: 'failed', err: failure }, 'component state changed');
    void this.stop(`component ${entry.component.name} failed`);
  }

  async #shutdownAll(reason: string): Promise<SupervisorResult> {
    this.#ready = false;
    this.#stopReason = reason;
    this.#resolveStopRequested();
    this.#log.info({ state: 'stopping', reason }, 'supervisor state changed');

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), this.#shutdownGraceMs)));
    const timedOut: string[] = [];
    let expired = false;
    for (const entry of [...this.#running].reverse()) {
      if (entry.finished) continue;
      entry.controller.abort();
      if (!expired) {
        entry.log.info({ state: 'stopping', reason }, 'component state changed');
        expired = (await Promise.race([entry.settled, deadline])) === 'expired';
      }
      // Once the grace period is spent, the remaining components are still aborted (they may yet clean
      // up) but nobody waits for them any more.
      if (expired && !entry.finished) {
        timedOut.push(entry.component.name);
        entry.log.error({ state: 'timed-out' }, 'component did not stop within the shutdown grace period');
      }
    }
    clearTimeout(timer);

    this.#finished = true;
    const result: SupervisorResult = {
      ok: this.#failures.length === 0 && timedOut.length === 0,
      failures: [...this.#failures],
      timedOut,
    };
    const summary = { state: 'stopped', failed: result.failures.map((f) => f.component), timedOut };
    if (result.ok) this.#log.info(summary, 'supervisor state changed');
    else this.#log.error(summary, 'supervisor state changed');
    this.#resolveDone(result);
    return result;
  }
}

/** True if `err` is how an aborted operation reports the abort, rather than a failure of its own. */
function isAbortError(err: unknown, signal: AbortSignal): boolean {
  return err === signal.reason || (err instanceof Error && err.name === 'AbortError');
}
