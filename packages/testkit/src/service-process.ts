import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';

/** How long a service may take to report ready: the raft replica first elects itself. */
const READY_TIMEOUT_MS = 60_000;
/** After SIGTERM, how long a service may take to stop (their own grace is 10 s) before it is killed. */
const STOP_TIMEOUT_MS = 15_000;
/** Enough of a service's log to explain a failure without flooding the report. */
const LOG_TAIL_CHARS = 4_000;
/** pino's numeric or named levels from `warn` up. */
const WARNING_LEVELS = new Set<unknown>(['warn', 'error', 'fatal', 40, 50, 60]);

/**
 * The environment a service process starts from: this process's, minus every `SHOAL_*` setting and
 * `NODE_OPTIONS`, so the service runs at its defaults whatever shell the test or bench runs in.
 */
export function serviceEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_') && name !== 'NODE_OPTIONS'));
}

/**
 * One Shoal service process (`node <main>`) for tests and benchmarks, its output in a log file,
 * ready when it says so over IPC as `shoal up` waits for it, with the endpoints it announced. It
 * notes an exit nobody asked for, so a caller can report a crash rather than time out on it.
 * Services stop by themselves when their parent dies (their IPC channel closes).
 */
export class ServiceProcess {
  #stopping = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
    /** What the process serves, from its ready message (e.g. `docker: tcp://127.0.0.1:2375`). */
    readonly endpoints: Readonly<Record<string, string>>,
  ) {}

  /** Spawns `node [nodeFlags] main` with `env` and resolves once it reports `shoal.ready`. */
  static async start(name: string, main: string, env: NodeJS.ProcessEnv, logFile: string, nodeFlags: readonly string[] = []): Promise<ServiceProcess> {
    const log = openSync(logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...nodeFlags, main], { env, stdio: ['ignore', log, log, 'ipc'] });
    } finally {
      closeSync(log);
    }
    const logTail = () => readFileSync(logFile, 'utf8').slice(-LOG_TAIL_CHARS);
    try {
      const endpoints = await new Promise<Record<string, string>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new ShoalError(ErrorCode.DeadlineExceeded, `${name} did not report ready within ${READY_TIMEOUT_MS} ms:\n${logTail()}`)), READY_TIMEOUT_MS);
        child.on('message', (message: { type?: string; endpoints?: Record<string, string> }) => {
          if (message.type !== 'shoal.ready') return;
          clearTimeout(timer);
          resolve(message.endpoints ?? {});
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(errors.unavailable(`${name} exited (${code ?? signal}) before it was ready:\n${logTail()}`));
        });
      });
      return new ServiceProcess(name, child, logFile, endpoints);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** The process ID (the process runs from {@link start} until {@link stop}). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Why the process ended without being stopped, with the end of its log; undefined while it runs. */
  get unexpectedExit(): string | undefined {
    const { exitCode, signalCode } = this.child;
    if (this.#stopping || (exitCode === null && signalCode === null)) return undefined;
    return `${this.name} exited (${exitCode ?? signalCode}):\n${this.logTail()}`;
  }

  /** The end of its log. */
  logTail(): string {
    return readFileSync(this.logFile, 'utf8').slice(-LOG_TAIL_CHARS);
  }

  /** The `msg` of every warning or error it has logged (JSON lines at level warn and above), in order. */
  warnings(): string[] {
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .flatMap((line) => {
        try {
          const record = JSON.parse(line) as { level?: unknown; msg?: unknown; err?: { message?: unknown } | string };
          if (!WARNING_LEVELS.has(record.level)) return [];
          const reason = typeof record.err === 'string' ? record.err : record.err?.message;
          return [`${String(record.msg)}${reason === undefined ? '' : `: ${String(reason)}`}`];
        } catch {
          return [];
        }
      });
  }

  /** SIGKILL, as a crash or `kill -9` ends it: nothing of its own shutdown runs. Resolves once it is gone. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL');
  }

  /** SIGTERM, so the service shuts down as under `shoal down` (and writes its CPU profile); SIGKILL if it hangs. */
  async stop(): Promise<void> {
    const killer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.#end('SIGTERM');
    clearTimeout(killer);
  }

  async #end(signal: NodeJS.Signals): Promise<void> {
    this.#stopping = true;
    const { child } = this;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}
