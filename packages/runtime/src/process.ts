import type { Component } from './component.js';
import { flushLogger, type Logger } from './logger.js';
import { Supervisor, type SupervisorResult } from './supervisor.js';

/**
 * The message a process sends its parent over the IPC channel (when it has one) once every component is
 * ready. The `shoal` CLI's host supervisor waits for it before starting the next daemon.
 */
export interface ReadyMessage {
  type: 'shoal.ready';
  service: string;
  pid: number;
  /** What the process serves, by name (e.g. `docker: tcp://127.0.0.1:2375`), for `shoal env` and `shoal status`. */
  endpoints?: Record<string, string>;
}

export interface RunProcessOptions {
  service: string;
  log: Logger;
  /** Bound on the whole shutdown, in milliseconds; see {@link Supervisor}. */
  shutdownGraceMs: number;
  components: Component[];
  /** Read once every component is ready (addresses bound by then are known) and sent with the ready message. */
  endpoints?: () => Record<string, string>;
}

const stopSignals = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs a service's components as the whole life of the process; every service's `main.ts` ends with it.
 *
 * - SIGINT and SIGTERM stop the components in reverse order; a second signal exits at once with code 1.
 * - A process started with an IPC channel (by the host supervisor) stops the same way when that channel
 *   closes, so a supervisor that died leaves no orphans behind.
 * - Once every component is ready, logs `ready` and sends a {@link ReadyMessage} to the parent process.
 * - Sets `process.exitCode` to 0 if everything stopped cleanly and 1 if any component failed or
 *   outlived the grace period, flushes the logs, and resolves with the outcome.
 * - If a component outlived the grace period it may be holding the event loop open forever, so in that
 *   case the process exits right after the logs are flushed instead of resolving.
 */
export async function runProcess(opts: RunProcessOptions): Promise<SupervisorResult> {
  const { service, log } = opts;
  const supervisor = new Supervisor({ log, components: opts.components, shutdownGraceMs: opts.shutdownGraceMs });

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      log.warn({ state: 'exiting', reason: `received ${signal} again` }, 'exiting without waiting for components');
      void flushLogger(log).then(() => process.exit(1));
      return;
    }
    signalled = true;
    void supervisor.stop(`received ${signal}`);
  };
  for (const signal of stopSignals) process.on(signal, onSignal);
  // A child of the host supervisor stops when its parent goes away, rather than living on unsupervised.
  const onParentGone = (): void => void supervisor.stop('parent process went away');
  process.once('disconnect', onParentGone);
  // Signal handlers do not keep Node's event loop alive: without this timer a process whose components
  // only wait for their abort signal (idle components) would exit at once with code 13.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);

  try {
    const started = await supervisor.start().then(
      () => true,
      // Whatever stopped the start (a signal, a failing component) is logged and reported in `done`.
      () => false,
    );
    if (started) announceReady(service, log, opts.endpoints?.());
    const result = await supervisor.done;
    process.exitCode = result.ok ? 0 : 1;
    await flushLogger(log);
    if (result.timedOut.length > 0) process.exit();
    return result;
  } finally {
    clearInterval(keepAlive);
    for (const signal of stopSignals) process.off(signal, onSignal);
    process.off('disconnect', onParentGone);
  }
}

function announceReady(service: string, log: Logger, endpoints: Record<string, string> | undefined): void {
  log.info({ state: 'ready', endpoints }, 'ready');
  if (process.send !== undefined && process.connected) {
    const message: ReadyMessage = { type: 'shoal.ready', service, pid: process.pid, ...(endpoints === undefined ? {} : { endpoints }) };
    process.send(message);
  }
}
