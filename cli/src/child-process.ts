import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '@shoal/errors';
import type { Component, ComponentContext } from '@shoal/runtime';
import type { ProcessStatus } from './state.js';

/** How the host supervisor knows a child is ready. */
export type Readiness =
  /** A Shoal service: it sends `{type: 'shoal.ready'}` over the IPC channel once its own components are ready. */
  | { kind: 'ipc' }
  /** A foreign server (nats-server): ready once it accepts TCP connections. */
  | { kind: 'tcp'; host: string; port: number };

/** One process the host supervisor runs. */
export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  readiness: Readiness;
  logFile: string;
}

/**
 * When a child exits on its own it is restarted after a backoff; a child that keeps dying is a failure
 * of the whole host, so that `shoal up` exits non-zero instead of restarting forever.
 */
export interface RestartPolicy {
  /** Restarts allowed within `windowMs` before the child counts as failed. */
  maxRestarts: number;
  windowMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** After SIGTERM, how long the child may take to exit before it gets SIGKILL. */
  stopTimeoutMs: number;
}

export const defaultRestartPolicy: RestartPolicy = {
  maxRestarts: 5,
  windowMs: 60_000,
  initialBackoffMs: 200,
  maxBackoffMs: 5_000,
  stopTimeoutMs: 12_000,
};

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Runs one child process as a supervised component: spawn, wait for readiness, restart on crash, stop on abort. */
export class ChildProcessComponent implements Component {
  readonly name: string;
  private readonly status: ProcessStatus;

  constructor(
    private readonly spec: ChildSpec,
    private readonly policy: RestartPolicy,
    private readonly onChange: (status: ProcessStatus) => void,
  ) {
    this.name = spec.name;
    this.status = { name: spec.name, pid: null, state: 'starting', restarts: 0, log: spec.logFile, endpoints: {} };
  }

  async run(ctx: ComponentContext): Promise<void> {
    const restartTimes: number[] = [];
    let backoffMs = this.policy.initialBackoffMs;
    let announcedReady = false;
    while (!ctx.signal.aborted) {
      const child = this.spawnChild();
      const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      const outcome = await Promise.race([
        this.waitUntilReady(child, ctx.signal).then(() => 'ready' as const),
        exited.then(() => 'exited' as const),
        abortPromise(ctx.signal),
      ]);
      if (outcome === 'ready') {
        this.update({ state: 'ready' });
        ctx.log.info({ component: this.name, pid: child.pid }, 'process ready');
        if (!announcedReady) {
          announcedReady = true;
          ctx.ready();
        }
        backoffMs = this.policy.initialBackoffMs;
        await Promise.race([exited, abortPromise(ctx.signal)]);
      }
      if (ctx.signal.aborted) {
        await this.stopChild(child, exited, ctx);
        break;
      }
      const exit = await exited;
      const now = Date.now();
      restartTimes.push(now);
      while (restartTimes.length > 0 && restartTimes[0]! < now - this.policy.windowMs) restartTimes.shift();
      if (restartTimes.length > this.policy.maxRestarts) {
        this.update({ state: 'failed', pid: null });
        throw errors.unavailable(
          `${this.name} ${describeExit(exit)} ${restartTimes.length} times within ${this.policy.windowMs / 1000}s; giving up (see ${this.spec.logFile})`,
        );
      }
      ctx.log.warn({ component: this.name, code: exit.code, signal: exit.signal, backoffMs }, `process ${describeExit(exit)}; restarting`);
      this.update({ state: 'restarting', pid: null, restarts: this.status.restarts + 1 });
      await sleep(backoffMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, this.policy.maxBackoffMs);
    }
    this.update({ state: 'stopped', pid: null });
  }

  private spawnChild(): ChildProcess {
    const logFd = openSync(this.spec.logFile, 'a');
    try {
      const stdio: ('ignore' | number | 'ipc')[] = ['ignore', logFd, logFd];
      if (this.spec.readiness.kind === 'ipc') stdio.push('ipc');
      const child = spawn(this.spec.command, this.spec.args, { env: this.spec.env, stdio });
      // A spawn failure (ENOENT) arrives as an 'error' and then an 'exit'; the exit drives the restart logic.
      child.on('error', () => undefined);
      this.update({ state: 'starting', pid: child.pid ?? null, endpoints: {} });
      return child;
    } finally {
      closeSync(logFd);
    }
  }

  private waitUntilReady(child: ChildProcess, signal: AbortSignal): Promise<void> {
    const readiness = this.spec.readiness;
    if (readiness.kind === 'tcp') return waitForTcp(readiness.host, readiness.port, signal);
    return new Promise((resolve) => {
      const onMessage = (message: unknown) => {
        if (!isReadyMessage(message)) return;
        child.off('message', onMessage);
        this.update({ endpoints: message.endpoints ?? {} });
        resolve();
      };
      child.on('message', onMessage);
    });
  }

  private async stopChild(child: ChildProcess, exited: Promise<Exit>, ctx: ComponentContext): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.update({ state: 'stopping' });
    child.kill('SIGTERM');
    // The timer is cancelled once the child exits, so it cannot hold the supervisor's event loop open.
    const stopped = new AbortController();
    const timeout = sleep(this.policy.stopTimeoutMs, 'timeout' as const, { signal: stopped.signal }).catch(() => 'cancelled' as const);
    const outcome = await Promise.race([exited, timeout]);
    stopped.abort();
    if (outcome === 'timeout') {
      ctx.log.warn({ component: this.name, pid: child.pid }, 'process did not stop in time; killing it');
      child.kill('SIGKILL');
      await exited;
    }
  }

  private update(change: Partial<ProcessStatus>): void {
    Object.assign(this.status, change);
    this.onChange({ ...this.status });
  }
}

function isReadyMessage(message: unknown): message is { type: 'shoal.ready'; endpoints?: Record<string, string> } {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'shoal.ready';
}

function abortPromise(signal: AbortSignal): Promise<'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
}

/** Resolves once something accepts TCP connections on host:port; polls until the signal aborts. */
async function waitForTcp(host: string, port: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
    await sleep(100, undefined, { signal }).catch(() => undefined);
  }
  return new Promise(() => undefined);
}
