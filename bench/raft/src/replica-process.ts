import { MANAGER_ROLE, MANAGER_SERVER_NAME } from '@shoal/pki';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ErrorCode, errors, ShoalError } from '@shoal/errors';
import type { TestCertificateAuthority } from '@shoal/testkit';

/** The built raft service, exactly what `shoal up` runs on a manager host. */
const RAFT_MAIN = fileURLToPath(import.meta.resolve('@shoal/raft'));


/** How long a replica may take to report ready; a joiner first waits for the leader to admit it. */
const READY_TIMEOUT_MS = 60_000;

/** Lines of output kept to explain a replica that failed. */
const KEPT_OUTPUT_LINES = 100;

/** The raft timing settings a cluster's replicas share (`SHOAL_RAFT_*`). */
export interface RaftTimings {
  readonly tickMs: number;
  /** `SHOAL_RAFT_SNAPSHOT_INTERVAL`; the service's default (10,000) when absent. */
  readonly snapshotInterval?: number;
}

/** One JSON log line a replica wrote, and when the bench read it (`performance.now()`). */
export interface LoggedLine {
  readonly fields: Record<string, unknown>;
  readonly readAt: number;
}

interface LogWaiter {
  readonly matches: (fields: Record<string, unknown>) => boolean;
  readonly resolve: (line: LoggedLine) => void;
}

/**
 * One `node services/raft/dist/main.js` process on loopback with its own data directory and
 * certificate, restartable on the same directory. It notes an exit it did not cause, so a bench can
 * report a replica that crashed rather than time out on it.
 */
export class ReplicaProcess {
  #child: ChildProcess | undefined;
  #unexpectedExit: string | undefined;
  readonly #output: string[] = [];
  readonly #logWaiters = new Set<LogWaiter>();
  readonly #env: NodeJS.ProcessEnv;

  constructor(
    readonly nodeId: string,
    readonly address: string,
    dir: string,
    ca: TestCertificateAuthority,
    timings: RaftTimings,
    joinVia: string | undefined,
  ) {
    mkdirSync(dir, { recursive: true });
    const identity = ca.issue({ cn: nodeId, ou: MANAGER_ROLE, o: 'bench-raft', serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    this.#env = {
      ...process.env,
      SHOAL_DATA_DIR: join(dir, 'data'),
      SHOAL_RAFT_LISTEN: address,
      SHOAL_RAFT_ADVERTISE: address,
      SHOAL_RAFT_JOIN: joinVia ?? '',
      SHOAL_TLS_CA: file('ca.pem', identity.caCertPem),
      SHOAL_TLS_CERT: file('node.crt', identity.certPem),
      SHOAL_TLS_KEY: file('node.key', identity.keyPem),
      SHOAL_RAFT_TICK: `${timings.tickMs}ms`,
      SHOAL_RAFT_SNAPSHOT_INTERVAL: timings.snapshotInterval === undefined ? '' : String(timings.snapshotInterval),
      SHOAL_NATS_URL: '',
      // `info` carries the snapshot and leadership events the bench times; nothing per write.
      SHOAL_LOG_LEVEL: 'info',
    };
  }

  /** The process ID while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Why the process ended without being killed by the bench, with its last output; undefined while all is well. */
  get unexpectedExit(): string | undefined {
    return this.#unexpectedExit;
  }

  /** The last `count` lines it wrote (since its last start), headed by its node ID: evidence for a failure report. */
  lastOutput(count: number): string {
    return `${this.nodeId} (${this.address}):\n${this.#output.slice(-count).join('\n')}`;
  }

  /** Starts the process and resolves once it reports ready over IPC, as `shoal up` waits for it. */
  start(): Promise<void> {
    this.#output.length = 0;
    const child = spawn(process.execPath, [RAFT_MAIN], { env: this.#env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.#child = child;
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    });
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk.toString('utf8')));
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#unexpectedExit = `${this.nodeId} exited (${code ?? signal}):\n${this.#output.join('\n')}`;
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ShoalError(ErrorCode.DeadlineExceeded, `${this.nodeId} did not report ready within ${READY_TIMEOUT_MS} ms:\n${this.#output.join('\n')}`)),
        READY_TIMEOUT_MS,
      );
      child.on('message', (message: { type?: string }) => {
        if (message.type !== 'shoal.ready') return;
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(errors.unavailable(this.#unexpectedExit ?? `${this.nodeId} was killed before it was ready`));
      });
    });
  }

  /** Resolves with the first JSON log line from now on that `matches` accepts. */
  nextLogLine(matches: (fields: Record<string, unknown>) => boolean): Promise<LoggedLine> {
    return new Promise((resolve) => {
      const waiter: LogWaiter = {
        matches,
        resolve: (line) => {
          this.#logWaiters.delete(waiter);
          resolve(line);
        },
      };
      this.#logWaiters.add(waiter);
    });
  }

  /** SIGKILL (`kill -9`): no shutdown, no flush; what is on disk is all that survives. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  private onLine(line: string): void {
    this.keep(line);
    let fields: unknown;
    try {
      fields = JSON.parse(line);
    } catch {
      return; // not a log record (a stack trace, say): kept for the failure message only
    }
    if (typeof fields !== 'object' || fields === null) return;
    const logged = { fields: fields as Record<string, unknown>, readAt: performance.now() };
    for (const waiter of this.#logWaiters) if (waiter.matches(logged.fields)) waiter.resolve(logged);
  }

  private keep(text: string): void {
    this.#output.push(...text.split('\n').filter((line) => line !== ''));
    this.#output.splice(0, Math.max(0, this.#output.length - KEPT_OUTPUT_LINES));
  }
}
