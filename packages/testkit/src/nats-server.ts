import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { freeLoopbackPort } from './loopback-port.js';

/** Where Debian's nats-server package puts the binary; root's PATH has /usr/sbin, other users' may not. */
const DEBIAN_NATS_SERVER = '/usr/sbin/nats-server';
/** A free port can be taken by another process before nats-server binds it; that many tries cover the race. */
const PORT_ATTEMPTS = 3;
const STOP_GRACE_MS = 5_000;
const PROBE_INTERVAL_MS = 20;
/** Enough of nats-server's log to explain a failed start without flooding the error message. */
const LOG_TAIL_CHARS = 2_000;

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /**
   * Enable JetStream, with its store in a fresh temporary directory that `stop()` removes.
   * @default false
   */
  jetStream?: boolean;
  /**
   * The nats-server executable.
   * @default "/usr/sbin/nats-server" if it exists, else "nats-server" from PATH
   */
  binary?: string;
  /**
   * How long to wait for the server to accept connections before giving up.
   * @default 10000
   */
  startTimeoutMs?: number;
}

/** A nats-server started for one test. Stop it in `afterAll`/`afterEach`, or hold it with `await using`. */
export interface NatsServer extends AsyncDisposable {
  /** Client URL, e.g. `nats://127.0.0.1:41235`. */
  readonly url: string;
  readonly port: number;
  /** JetStream's store directory, when JetStream is on. */
  readonly storeDir: string | undefined;
  /** Stops the server and removes its store directory. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts a real nats-server on a free 127.0.0.1 port and resolves once it accepts client connections
 * (it has sent its INFO greeting, so JetStream, when enabled, is up too).
 *
 * Clean-up is the caller's job (`stop()` or `await using`), with a safety net: if the test process
 * exits without stopping it, the server is killed and its store removed on the way out. A SIGKILL of
 * the test process itself cannot be caught, so that case can still leave a server behind.
 *
 * Fails with FAILED_PRECONDITION when nats-server is not installed (run `scripts/bootstrap.sh`), and
 * with DEADLINE_EXCEEDED or INTERNAL, quoting the server's log, when it does not come up.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = options.binary ?? (existsSync(DEBIAN_NATS_SERVER) ? DEBIAN_NATS_SERVER : 'nats-server');
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    const storeDir = options.jetStream === true ? await mkdtemp(join(tmpdir(), 'shoal-nats-')) : undefined;
    const server = await NatsServerProcess.spawn(binary, await freeLoopbackPort(), storeDir);
    try {
      await server.waitUntilReady(startTimeoutMs);
      return server;
    } catch (err) {
      await server.stop();
      if (!server.lostPortRace() || attempt === PORT_ATTEMPTS) throw err;
    }
  }
}

class NatsServerProcess implements NatsServer {
  readonly url: string;
  private exitStatus: string | undefined;
  private logTail = '';
  private stopping: Promise<void> | undefined;
  private readonly exited: Promise<void>;
  private readonly killOnProcessExit = (): void => {
    this.child.kill('SIGKILL');
    if (this.storeDir !== undefined) rmSync(this.storeDir, { recursive: true, force: true });
  };

  private constructor(
    readonly port: number,
    readonly storeDir: string | undefined,
    private readonly child: ChildProcess,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.exited = once(child, 'close').then(([code, signal]: unknown[]) => {
      this.exitStatus = signal === null ? `exit code ${String(code)}` : `signal ${String(signal)}`;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.logTail = (this.logTail + chunk).slice(-LOG_TAIL_CHARS);
    });
    process.on('exit', this.killOnProcessExit);
  }

  static async spawn(binary: string, port: number, storeDir: string | undefined): Promise<NatsServerProcess> {
    const args = ['-a', '127.0.0.1', '-p', String(port), ...(storeDir === undefined ? [] : ['-js', '-sd', storeDir])];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await once(child, 'spawn');
    } catch (err) {
      if (storeDir !== undefined) await rm(storeDir, { recursive: true, force: true });
      throw new ShoalError(ErrorCode.FailedPrecondition, `cannot run ${binary}; install nats-server with scripts/bootstrap.sh`, {
        cause: err,
      });
    }
    return new NatsServerProcess(port, storeDir, child);
  }

  async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.exitStatus === undefined) {
      if (await answersWithNatsGreeting(this.port)) return;
      if (Date.now() >= deadline) {
        throw new ShoalError(
          ErrorCode.DeadlineExceeded,
          `nats-server did not accept connections on ${this.url} within ${timeoutMs} ms; its log ends:\n${this.logTail}`,
        );
      }
      await sleep(PROBE_INTERVAL_MS);
    }
    throw errors.internal(`nats-server on ${this.url} stopped during start-up (${this.exitStatus}); its log ends:\n${this.logTail}`);
  }

  /** True when start-up failed because another process took the port first. */
  lostPortRace(): boolean {
    return this.logTail.includes('address already in use');
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async shutdown(): Promise<void> {
    if (this.exitStatus === undefined) {
      this.child.kill('SIGTERM');
      const escalation = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(escalation);
    }
    process.off('exit', this.killOnProcessExit);
    if (this.storeDir !== undefined) await rm(this.storeDir, { recursive: true, force: true });
  }
}

/** Connects once and checks that the peer speaks NATS: a NATS server greets every client with `INFO {…}`. */
function answersWithNatsGreeting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const finish = (answered: boolean): void => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(1_000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('data', (chunk: Buffer) => finish(chunk.toString('latin1').startsWith('INFO ')));
  });
}
