import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeTestContainers, TEST_LABEL, testRunId } from './containers.js';
import { DOCKER_CLIS, runDocker, type CliResult } from './docker-cli.js';
import { freeLoopbackPort } from './loopback-port.js';
import { startNatsServer, type NatsServer } from './nats-server.js';
import { ServiceProcess, serviceEnvironment } from './service-process.js';
import { createTestPki, writeManagerIdentity } from './test-pki.js';

/** A service's entry point in this repository (built: `npx turbo run build`). testkit names it by path only, never imports it. */
const mainOf = (service: string) => fileURLToPath(new URL(`../../../services/${service}/dist/main.js`, import.meta.url));

/** The docker CLI the scenario drives (28); the other one is used where the test says so. */
export const DOCKER = DOCKER_CLIS[0].path;

interface StartedService {
  process: ServiceProcess;
  readonly env: NodeJS.ProcessEnv;
  readonly logFile: string;
}

async function startService(name: string, env: NodeJS.ProcessEnv, logFile: string): Promise<StartedService> {
  const main = mainOf(name);
  if (!existsSync(main)) throw new Error(`${main} is missing: build the workspace (npx turbo run build) first`);
  return { process: await ServiceProcess.start(name, main, env, logFile), env, logFile };
}

/**
 * One host of a test swarm, run as `shoal up` runs it but with every process its own child of the
 * test: a manager host (nats-server, raft-store, api, orchestrator, allocator, scheduler, dispatcher
 * and agent) or a worker host (api and agent only, as `shoal up --worker`). Every host has its own
 * data directories, API and node identity; all share the machine's dockerd, which is why every
 * container the agents make carries `shoal.test=<run id>`.
 */
export class SwarmHost {
  private constructor(
    readonly name: string,
    readonly dir: string,
    /** DOCKER_HOST of this host's API. */
    readonly dockerHost: string,
    private readonly services: Map<string, StartedService>,
  ) {}

  /** The agent's data directory (its node certificate and key). */
  get agentDataDir(): string {
    return join(this.dir, 'agent');
  }

  /** Runs a docker CLI command against this host's API. */
  docker(args: readonly string[], options: { input?: string; cli?: string } = {}): Promise<CliResult> {
    return runDocker(options.cli ?? DOCKER, this.dockerHost, args, { input: options.input, configDir: join(this.dir, 'docker-config') });
  }

  /** Like {@link docker}, failing the test with the CLI's output unless the command succeeds. */
  async dockerOk(args: readonly string[], options: { input?: string; cli?: string } = {}): Promise<string> {
    const result = await this.docker(args, options);
    if (result.code !== 0) throw new Error(`docker ${args.join(' ')} on ${this.name} failed (${result.code}): ${result.stderr}${result.stdout}`);
    return result.stdout;
  }

  /** `kill -9` of the agent: its session stops without a goodbye and it is not restarted. */
  async killAgent(): Promise<void> {
    await this.service('agent').process.kill();
  }

  /** Starts the agent again on the same data directory, as a host's supervisor would after a crash. */
  async startAgent(): Promise<void> {
    const agent = this.service('agent');
    agent.process = await ServiceProcess.start('agent', mainOf('agent'), agent.env, agent.logFile);
  }

  /** Stops the agent with SIGTERM and starts it again: an upgrade or a restart of the agent alone. */
  async restartAgent(): Promise<void> {
    await this.service('agent').process.stop();
    await this.startAgent();
  }

  /** The end of one process's log, for failure messages. */
  logTail(service: string): string {
    return this.service(service).process.logTail();
  }

  /** Every process that ended without being stopped, with the end of its log. */
  crashes(): string[] {
    return [...this.services.values()].flatMap((service) => service.process.unexpectedExit ?? []);
  }

  async stop(): Promise<void> {
    for (const service of [...this.services.values()].reverse()) await service.process.stop();
  }

  private service(name: string): StartedService {
    const service = this.services.get(name);
    if (service === undefined) throw new Error(`${this.name} runs no ${name}`);
    return service;
  }

  /** Starts a host's processes in order; on a failure, stops the ones already running. */
  static async start(name: string, dir: string, steps: readonly [string, NodeJS.ProcessEnv][]): Promise<SwarmHost> {
    const services = new Map<string, StartedService>();
    try {
      for (const [service, env] of steps) services.set(service, await startService(service, env, join(dir, `${service}.log`)));
    } catch (err) {
      for (const started of [...services.values()].reverse()) await started.process.stop();
      throw err;
    }
    const dockerHost = services.get('api')?.process.endpoints['docker'];
    if (dockerHost === undefined) throw new Error(`${name}: the api reported ready without a docker endpoint`);
    return new SwarmHost(name, dir, dockerHost, services);
  }
}

/** Where test agents mount their tasks' secrets: under /run, which is memory, like the agents' default. */
const SECRETS_PARENT = '/run/shoal-e2e';

/** A manager host, with the address its dispatcher listens on and its store's data directory. */
export type ManagerHost = SwarmHost & { readonly managerAddr: string; readonly raftDataDir: string };

/**
 * Hosts of one test swarm on this machine: temporary directories, a nats-server for the manager, a
 * directory for the agents' per-task tmpfs mounts under /run, and the clean-up of all of it —
 * processes, containers labelled with this run's ID, leftover tmpfs mounts and directories.
 */
export class SwarmCluster {
  readonly runId = testRunId();
  readonly hosts: SwarmHost[] = [];
  private nats: NatsServer | undefined;

  private constructor(
    readonly root: string,
    /** Where the agents mount their per-task secret tmpfs (under /run, a tmpfs itself). */
    readonly secretsRoot: string,
  ) {}

  static create(): SwarmCluster {
    mkdirSync(SECRETS_PARENT, { recursive: true });
    return new SwarmCluster(mkdtempSync(join(tmpdir(), 'shoal-e2e-')), mkdtempSync(join(SECRETS_PARENT, 'secrets-')));
  }

  /** The environment every agent shares; the host's name is its node's hostname. */
  private agentEnv(name: string, dir: string): NodeJS.ProcessEnv {
    return {
      ...serviceEnvironment(),
      SHOAL_LOG_LEVEL: 'info',
      SHOAL_DATA_DIR: join(dir, 'agent'),
      SHOAL_AGENT_SOCKET: join(dir, 'agent.sock'),
      SHOAL_HOSTNAME: name,
      SHOAL_CONTAINER_LABELS: `${TEST_LABEL}=${this.runId}`,
      SHOAL_SECRETS_DIR: join(this.secretsRoot, name),
    };
  }

  private hostDir(name: string): string {
    const dir = join(this.root, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** A host that can start a swarm: the store, the manager services, the API and an agent. Its dispatcher listens on `managerAddr`. */
  async startManager(name: string): Promise<ManagerHost> {
    const dir = this.hostDir(name);
    this.nats ??= await startNatsServer();
    const { ca } = createTestPki();
    const identity = writeManagerIdentity(ca, dir, `${name}-manager`).env;
    const raftPort = await freeLoopbackPort();
    const dispatcherPort = await freeLoopbackPort();
    const managerEnv = { ...serviceEnvironment(), ...identity, SHOAL_NATS_URL: this.nats.url, SHOAL_LOG_LEVEL: 'info' };
    const storeAccess = { ...managerEnv, SHOAL_STORE_ADDRESS: `127.0.0.1:${raftPort}` };
    const dataDir = (service: string) => join(dir, service);
    const host = await SwarmHost.start(name, dir, [
      ['raft', { ...managerEnv, SHOAL_DATA_DIR: dataDir('raft'), SHOAL_RAFT_LISTEN: `127.0.0.1:${raftPort}`, SHOAL_RAFT_TICK: '100ms' }],
      ['orchestrator', storeAccess],
      ['allocator', storeAccess],
      ['scheduler', storeAccess],
      ['dispatcher', { ...storeAccess, SHOAL_DISPATCHER_LISTEN: `127.0.0.1:${dispatcherPort}` }],
      ['agent', this.agentEnv(name, dir)],
      [
        'api',
        {
          ...storeAccess,
          SHOAL_DATA_DIR: dataDir('api'),
          SHOAL_MANAGER_PORT: String(dispatcherPort),
          SHOAL_ADVERTISE_ADDR: '127.0.0.1',
          SHOAL_API_LISTEN: '127.0.0.1:0',
          SHOAL_AGENT_SOCKET: join(dir, 'agent.sock'),
        },
      ],
    ]);
    this.hosts.push(host);
    return Object.assign(host, { managerAddr: `127.0.0.1:${dispatcherPort}`, raftDataDir: dataDir('raft') });
  }

  /** A host that can only join as a worker (`shoal up --worker`): an API without a store, and an agent. */
  async startWorker(name: string): Promise<SwarmHost> {
    const dir = this.hostDir(name);
    const host = await SwarmHost.start(name, dir, [
      ['agent', this.agentEnv(name, dir)],
      [
        'api',
        {
          ...serviceEnvironment(),
          SHOAL_LOG_LEVEL: 'info',
          SHOAL_DATA_DIR: join(dir, 'api'),
          SHOAL_API_WORKER_ONLY: 'true',
          SHOAL_ADVERTISE_ADDR: '127.0.0.1',
          SHOAL_API_LISTEN: '127.0.0.1:0',
          SHOAL_AGENT_SOCKET: join(dir, 'agent.sock'),
        },
      ],
    ]);
    this.hosts.push(host);
    return host;
  }

  /** Every file under `dir` (recursively) whose bytes contain `needle`. */
  static filesContaining(dir: string, needle: string): string[] {
    try {
      return execFileSync('grep', ['-rlF', '--', needle, dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch (err) {
      // grep exits 1 when nothing matches.
      if ((err as { status?: number }).status === 1) return [];
      throw err;
    }
  }

  async stop(): Promise<void> {
    for (const host of this.hosts.reverse()) await host.stop();
    await this.nats?.stop();
    await removeTestContainers(this.runId);
    // A killed agent cannot unmount its tasks' secret tmpfs; the test does, deepest first.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((mountPoint) => mountPoint.startsWith(`${this.secretsRoot}/`))
      .sort((a, b) => b.length - a.length);
    for (const mountPoint of mounts) execFileSync('umount', [mountPoint]);
    rmSync(this.secretsRoot, { recursive: true, force: true });
    // The shared parent goes with the last cluster that used it.
    if (readdirSync(SECRETS_PARENT).length === 0) rmSync(SECRETS_PARENT, { recursive: true, force: true });
    rmSync(this.root, { recursive: true, force: true });
  }
}
