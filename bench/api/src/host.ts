import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { MANAGER_ROLE, MANAGER_SERVER_NAME } from '@shoal/pki';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, startNatsServer, type NatsServer } from '@shoal/testkit';

/** The built services, exactly what `shoal up` runs on a manager host. */
const RAFT_MAIN = fileURLToPath(import.meta.resolve('@shoal/raft'));
const API_MAIN = fileURLToPath(import.meta.resolve('@shoal/api'));

/** How long a service may take to report ready: the raft replica first elects itself, the api then takes a snapshot. */
const READY_TIMEOUT_MS = 60_000;
/** After SIGTERM, how long a service may take to shut down (the api's own grace is 10 s) before it is killed. */
const STOP_TIMEOUT_MS = 15_000;
/** Enough of a service's log to explain a failure without flooding the report. */
const LOG_TAIL_CHARS = 4_000;

/**
 * A raft tick of 100 ms, as services/api's tests use: a single replica elects itself after 10 ticks,
 * so the host is up in about a second instead of ten. Reads, which are all the bench measures, are
 * answered from the api's own copy and never wait on raft.
 */
const RAFT_TICK = '100ms';

/** Hosts not yet stopped, for {@link stopAllHosts}. */
const runningHosts = new Set<BenchHost>();

/** Stops every host still running: what an interrupted bench does before it exits. */
export async function stopAllHosts(): Promise<void> {
  await Promise.all([...runningHosts].map((host) => host.stop()));
}

/**
 * The environment a service starts with: the bench's own minus `SHOAL_*` settings and `NODE_OPTIONS`,
 * so that the services run at their defaults whatever the shell the bench runs from has set.
 */
function baseEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_') && name !== 'NODE_OPTIONS'));
}

/** One service process, logging to a file, ready when it says so over IPC (as `shoal up` waits for it). */
class ServiceProcess {
  #stopping = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
    readonly endpoints: Readonly<Record<string, string>>,
  ) {}

  static async start(name: string, main: string, env: NodeJS.ProcessEnv, logFile: string, nodeFlags: readonly string[] = []): Promise<ServiceProcess> {
    const log = openSync(logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...nodeFlags, main], { env, stdio: ['ignore', log, log, 'ipc'] });
    } finally {
      closeSync(log);
    }
    const tail = () => readFileSync(logFile, 'utf8').slice(-LOG_TAIL_CHARS);
    try {
      const endpoints = await new Promise<Record<string, string>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new ShoalError(ErrorCode.DeadlineExceeded, `${name} did not report ready within ${READY_TIMEOUT_MS} ms:\n${tail()}`)), READY_TIMEOUT_MS);
        child.on('message', (message: { type?: string; endpoints?: Record<string, string> }) => {
          if (message.type !== 'shoal.ready') return;
          clearTimeout(timer);
          resolve(message.endpoints ?? {});
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(errors.unavailable(`${name} exited (${code ?? signal}) before it was ready:\n${tail()}`));
        });
      });
      return new ServiceProcess(name, child, logFile, endpoints);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** Why the process ended without the bench stopping it, with the end of its log; undefined while it runs. */
  get unexpectedExit(): string | undefined {
    const { exitCode, signalCode } = this.child;
    if (this.#stopping || (exitCode === null && signalCode === null)) return undefined;
    return `${this.name} exited (${exitCode ?? signalCode}):\n${readFileSync(this.logFile, 'utf8').slice(-LOG_TAIL_CHARS)}`;
  }

  /** SIGTERM, so the service shuts down as it would under `shoal down` (and a CPU profile is written); SIGKILL if it hangs. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const { child } = this;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(killer);
  }
}

/** How the api process of a {@link BenchHost} runs. */
export interface BenchHostOptions {
  /** Directory for a V8 CPU profile of the api process (`node --cpu-prof`), written when it stops. */
  readonly apiCpuProfileDir?: string;
}

/**
 * A manager host as `shoal up` runs it, minus the services the API does not need: a real
 * nats-server, one raft-store replica and the api, each its own process, on free loopback ports, with
 * a throw-away PKI, all in one temporary directory (`$TMPDIR/shoal-bench-api-*`) that `stop()` removes
 * along with the processes.
 */
export class BenchHost {
  readonly #root: string;
  readonly #nats: NatsServer;
  readonly #services: readonly ServiceProcess[];
  readonly #api: ServiceProcess;

  private constructor(
    root: string,
    nats: NatsServer,
    services: readonly ServiceProcess[],
    api: ServiceProcess,
    /** `http://127.0.0.1:port` of the api's TCP listener. */
    readonly apiUrl: string,
    /** The Store API client with this host's manager identity; closed by `stop()`. */
    readonly store: StoreApiClient,
  ) {
    this.#root = root;
    this.#nats = nats;
    this.#services = services;
    this.#api = api;
    runningHosts.add(this);
  }

  static async start(options: BenchHostOptions = {}): Promise<BenchHost> {
    const root = mkdtempSync(join(tmpdir(), 'shoal-bench-api-'));
    const services: ServiceProcess[] = [];
    let nats: NatsServer | undefined;
    try {
      nats = await startNatsServer();
      const identity = createTestPki().ca.issue({ cn: 'bench-api-manager', ou: MANAGER_ROLE, o: 'bench-api', serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
      const file = (name: string, content: string) => {
        const path = join(root, name);
        writeFileSync(path, content, { mode: 0o600 });
        return path;
      };
      const common = {
        ...baseEnvironment(),
        SHOAL_TLS_CA: file('ca.pem', identity.caCertPem),
        SHOAL_TLS_CERT: file('node.crt', identity.certPem),
        SHOAL_TLS_KEY: file('node.key', identity.keyPem),
        SHOAL_NATS_URL: nats.url,
      };
      const storeAddress = `127.0.0.1:${await freeLoopbackPort()}`;
      const raftEnv = { ...common, SHOAL_DATA_DIR: join(root, 'raft'), SHOAL_RAFT_LISTEN: storeAddress, SHOAL_RAFT_TICK: RAFT_TICK };
      services.push(await ServiceProcess.start('raft', RAFT_MAIN, raftEnv, join(root, 'raft.log')));
      const apiEnv = {
        ...common,
        SHOAL_DATA_DIR: join(root, 'api'),
        SHOAL_STORE_ADDRESS: storeAddress,
        SHOAL_MANAGER_PORT: storeAddress.split(':')[1],
        SHOAL_API_LISTEN: '127.0.0.1:0',
      };
      // Node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line.
      const profile = options.apiCpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.apiCpuProfileDir}`];
      const api = await ServiceProcess.start('api', API_MAIN, apiEnv, join(root, 'api.log'), profile);
      services.push(api);
      const docker = api.endpoints['docker'];
      if (docker === undefined || !docker.startsWith('tcp://')) throw errors.internal(`the api reported ready without a TCP endpoint (${docker ?? 'none'})`);
      const store = createStoreClient({
        address: storeAddress,
        tls: { ca: identity.caCertPem, cert: identity.certPem, key: identity.keyPem },
        serverName: MANAGER_SERVER_NAME,
      });
      return new BenchHost(root, nats, services, api, docker.replace(/^tcp:/, 'http:'), store);
    } catch (err) {
      await Promise.all(services.map((service) => service.stop()));
      await nats?.stop();
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** The api's process ID, to read its CPU time and memory. */
  get apiPid(): number {
    return this.#api.child.pid!;
  }

  /** Throws, with the end of its log, if a service exited without the bench stopping it. */
  assertRunning(): void {
    for (const service of this.#services) {
      const exit = service.unexpectedExit;
      if (exit !== undefined) throw errors.internal(exit);
    }
  }

  /** Stops the api, then the raft replica (each with SIGTERM), then nats-server, and removes the directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (!runningHosts.delete(this)) return;
    this.store.close();
    for (const service of [...this.#services].reverse()) await service.stop();
    await this.#nats.stop();
    rmSync(this.#root, { recursive: true, force: true });
  }
}
