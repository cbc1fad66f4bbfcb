import type { Logger } from './logger.js';

/** What the supervisor hands a component when it starts it. */
export interface ComponentContext {
  /** Aborts when the component must stop: the process is shutting down, or another component failed. */
  signal: AbortSignal;
  /**
   * Reports that the component is serving (its server is bound, its first snapshot is loaded). The next
   * component starts only after this, and the process reports ready only after every component has.
   * Calling it again does nothing.
   */
  ready(): void;
  /** The process logger with `component` set to this component's name. */
  log: Logger;
}

/**
 * A long-running part of a process (a gRPC server, a NATS connection, a scheduler loop), run by a
 * {@link Supervisor}. A component gets fresh state per run: to run it again, build a new instance.
 */
export interface Component {
  /** Unique within the process; used in logs and in the supervisor's result. */
  readonly name: string;
  /**
   * Runs until `ctx.signal` aborts, then cleans up and resolves. Rejecting, or resolving before the
   * signal aborted, counts as a failure and stops the whole process. Rejecting with the signal's own
   * abort error after the abort counts as a clean stop, so `await setTimeout(ms, undefined, { signal })`
   * and similar calls need no special handling.
   */
  run(ctx: ComponentContext): Promise<void>;
}

/** Resolves when `signal` aborts (at once if it already has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * A component that does nothing but report ready and wait to be stopped. Service skeletons use it for a
 * part whose implementation arrives later, so the process already starts, reports ready and stops like
 * the finished one will; `why` is logged at startup so nobody mistakes the skeleton for the real thing.
 */
export function idleComponent(name: string, why: string): Component {
  return {
    name,
    async run(ctx) {
      ctx.log.info({ state: 'idle', reason: why }, 'component does nothing yet');
      ctx.ready();
      await untilAborted(ctx.signal);
    },
  };
}
