import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errors } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, ServiceProcess, serviceEnvironment, startNatsServer, writeManagerIdentity, type NatsServer } from '@shoal/testkit';

/** The manager services the bench runs. */
export const SERVICE_NAMES = ['raft', 'orchestrator', 'allocator', 'scheduler'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * The built service, exactly what `shoal up` runs on a manager host. By path: the scheduler's package
 * exports only its placement core, so its main cannot be resolved by package name.
 */
const mainOf = (service: ServiceName) => fileURLToPath(new URL(`../../../services/${service}/dist/main.js`, import.meta.url));

/**
 * A raft tick of 100 ms, as services/api's tests use: a single replica elects itself after 10 ticks,
 * so it is up in about a second instead of ten. A lone replica never waits on ticks to commit.
 */
const RAFT_TICK = '100ms';

/** How the processes of a {@link ControlPlane} run. */
export interface ControlPlaneOptions {
  /** Scheduler processes; more than one share the services through NATS. */
  readonly schedulers: number;
  /** V8 CPU profiles of these services (of the first scheduler, for `scheduler`), written into `dir` when they stop. */
  readonly cpuProfile?: { readonly services: readonly ServiceName[]; readonly dir: string };
}

/** Control planes not yet stopped, for {@link stopAllControlPlanes}. */
const running = new Set<ControlPlane>();

/** Stops every control plane still running at once: what a bench interrupted twice does before it exits. */
export async function stopAllControlPlanes(): Promise<void> {
  await Promise.all([...running].map((plane) => plane.stop()));
}

/**
 * A manager host's control plane as `shoal up` runs it, minus the api and the dispatcher: a real
 * nats-server, one raft-store replica, the orchestrator, the allocator and one or more schedulers,
 * each its own process on loopback with a throw-away PKI, all in one temporary directory
 * (`$TMPDIR/shoal-bench-control-plane-*`: certificates, the raft data, every service's log) that
 * {@link stop} removes along with the processes.
 */
export class ControlPlane {
  readonly #root = mkdtempSync(join(tmpdir(), 'shoal-bench-control-plane-'));
  /** Each process that reported ready, with the service it runs; raft first. */
  readonly #services: { readonly service: ServiceName; readonly process: ServiceProcess }[] = [];
  #nats: NatsServer | undefined;
  #store: StoreApiClient | undefined;
  #stopped = false;

  private constructor() {
    // Registered before anything starts, so that an interrupted start is cleaned up too.
    running.add(this);
  }

  /** Starts every process, each once the one before it reported ready (the control loops together, after raft). */
  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane();
    try {
      await plane.#launch(options);
      return plane;
    } catch (err) {
      await plane.stop();
      throw err;
    }
  }

  async #launch(options: ControlPlaneOptions): Promise<void> {
    const nats = await startNatsServer();
    this.#nats = nats;
    const identity = writeManagerIdentity(createTestPki().ca, this.#root, 'bench-control-plane-manager');
    const storeAddress = `127.0.0.1:${await freeLoopbackPort()}`;
    const common = {
      ...serviceEnvironment(),
      ...identity.env,
      SHOAL_NATS_URL: nats.url,
      SHOAL_LOG_LEVEL: 'warn',
      SHOAL_STORE_ADDRESS: storeAddress,
    };
    const profiled = new Set<ServiceName>();
    const start = async (service: ServiceName, name: string, env: NodeJS.ProcessEnv = {}) => {
      const { cpuProfile } = options;
      // Node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line; named so each run's profile of each service is told apart.
      const profile =
        cpuProfile?.services.includes(service) && !profiled.has(service)
          ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfile.dir}`, `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`]
          : [];
      if (profile.length > 0) profiled.add(service);
      const launched = await ServiceProcess.start(name, mainOf(service), { ...common, ...env }, join(this.#root, `${name}.log`), profile);
      this.#services.push({ service, process: launched });
    };
    await start('raft', 'raft', { SHOAL_DATA_DIR: join(this.#root, 'raft'), SHOAL_RAFT_LISTEN: storeAddress, SHOAL_RAFT_TICK: RAFT_TICK });
    const schedulerNames = Array.from({ length: options.schedulers }, (_, index) => `scheduler-${index + 1}`);
    const started = await Promise.allSettled([
      start('orchestrator', 'orchestrator'),
      start('allocator', 'allocator'),
      ...schedulerNames.map((name) => start('scheduler', name)),
    ]);
    const failure = started.find((outcome) => outcome.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    this.#store = createStoreClient({
      address: storeAddress,
      tls: identity.pem,
      serverName: MANAGER_SERVER_NAME,
    });
  }

  /** The Store API client with the host's manager identity; closed by {@link stop}. */
  get store(): StoreApiClient {
    if (this.#store === undefined) throw errors.failedPrecondition('the control plane is not started');
    return this.#store;
  }

  /** The nats-server the processes share. */
  get natsUrl(): string {
    if (this.#nats === undefined) throw errors.failedPrecondition('the control plane is not started');
    return this.#nats.url;
  }

  /** Every service process, raft first. */
  get services(): readonly ServiceProcess[] {
    return this.#services.map(({ process }) => process);
  }

  /** The processes of one service (several for `scheduler`), in the order of their names. */
  processesOf(service: ServiceName): ServiceProcess[] {
    return this.#services
      .filter((running) => running.service === service)
      .map(({ process }) => process)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Throws, with the end of its log, if a service exited without the bench stopping it. */
  assertRunning(): void {
    for (const service of this.services) {
      const exit = service.unexpectedExit;
      if (exit !== undefined) throw errors.internal(exit);
    }
  }

  /**
   * Stops the control loops, then the raft replica (each with SIGTERM), then nats-server, and removes
   * the directory; whatever of it was started. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    running.delete(this);
    this.#store?.close();
    const [raft, ...loops] = this.services;
    await Promise.all(loops.map((service) => service.stop()));
    await raft?.stop();
    await this.#nats?.stop();
    rmSync(this.#root, { recursive: true, force: true });
  }
}
