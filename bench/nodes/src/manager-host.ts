import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errors } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, ServiceProcess, serviceEnvironment, startNatsServer, writeManagerIdentity, type NatsServer } from '@shoal/testkit';

/** The manager services, in the order they start (raft first: everything else needs the store). */
export const MANAGER_SERVICES = ['raft', 'orchestrator', 'allocator', 'scheduler', 'dispatcher', 'api'] as const;
/** One of {@link MANAGER_SERVICES}. */
export type ManagerService = (typeof MANAGER_SERVICES)[number];

/** The built service, exactly what `shoal up` runs; by path, since not every service exports its main. */
const mainOf = (service: ManagerService) => fileURLToPath(new URL(`../../../services/${service}/dist/main.js`, import.meta.url));

/** A single raft replica elects itself after 10 ticks: a second at 100 ms (as the tests run it) instead of ten. */
const RAFT_TICK = '100ms';

/** V8 CPU profiles of some of the services, written into `dir` when they stop (`node --cpu-prof`). */
export interface CpuProfiles {
  readonly dir: string;
  readonly services: readonly ManagerService[];
}

/**
 * A manager host as `shoal up` runs it, minus the agent (the bench's simulated nodes are the only
 * nodes, so no real container is ever started): a nats-server, then raft, orchestrator, allocator,
 * scheduler, dispatcher and api, each its own process on loopback with a throw-away PKI, their data
 * and logs under `root`. {@link stop} stops them all.
 */
export class ManagerHost {
  private constructor(
    private readonly nats: NatsServer,
    private readonly services: ReadonlyMap<ManagerService, ServiceProcess>,
    /** The Store API client with the host's manager identity; closed by {@link stop}. */
    readonly store: StoreApiClient,
    /** `host:port` of the dispatcher and node CA: where nodes join (Docker's port 2377). */
    readonly managerAddr: string,
    /** DOCKER_HOST of the api (`tcp://127.0.0.1:port`). */
    readonly dockerHost: string,
  ) {}

  /** Starts every process, each once the one before it reported ready; on a failure, stops those already running. */
  static async start(root: string, cpuProfiles?: CpuProfiles): Promise<ManagerHost> {
    const nats = await startNatsServer();
    const services = new Map<ManagerService, ServiceProcess>();
    try {
      const identity = writeManagerIdentity(createTestPki().ca, root, 'bench-nodes-manager');
      const storeAddress = `127.0.0.1:${await freeLoopbackPort()}`;
      const managerPort = await freeLoopbackPort();
      const common = { ...serviceEnvironment(), ...identity.env, SHOAL_NATS_URL: nats.url, SHOAL_LOG_LEVEL: 'warn', SHOAL_STORE_ADDRESS: storeAddress };
      const dataDir = (service: ManagerService) => {
        const dir = join(root, service);
        mkdirSync(dir, { recursive: true });
        return dir;
      };
      const settings: Record<ManagerService, NodeJS.ProcessEnv> = {
        raft: { SHOAL_RAFT_LISTEN: storeAddress, SHOAL_RAFT_TICK: RAFT_TICK },
        orchestrator: {},
        allocator: {},
        scheduler: {},
        dispatcher: { SHOAL_DISPATCHER_LISTEN: `127.0.0.1:${managerPort}` },
        // No SHOAL_AGENT_SOCKET: this host runs no agent, so `swarm init` leaves its own node out of the placement.
        api: { SHOAL_MANAGER_PORT: String(managerPort), SHOAL_ADVERTISE_ADDR: '127.0.0.1', SHOAL_API_LISTEN: '127.0.0.1:0' },
      };
      for (const service of MANAGER_SERVICES) {
        const env = { ...common, SHOAL_DATA_DIR: dataDir(service), ...settings[service] };
        // Node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line.
        const flags = cpuProfiles?.services.includes(service) ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfiles.dir}`, `--cpu-prof-name=${service}.${Date.now()}.cpuprofile`] : [];
        services.set(service, await ServiceProcess.start(service, mainOf(service), env, join(root, `${service}.log`), flags));
      }
      const dockerHost = services.get('api')?.endpoints['docker'];
      if (dockerHost === undefined || !dockerHost.startsWith('tcp://')) throw errors.internal(`the api reported ready without a TCP endpoint (${dockerHost ?? 'none'})`);
      const store = createStoreClient({ address: storeAddress, tls: identity.pem, serverName: MANAGER_SERVER_NAME });
      return new ManagerHost(nats, services, store, `127.0.0.1:${managerPort}`, dockerHost);
    } catch (err) {
      await stopInReverse(services.values());
      await nats.stop();
      throw err;
    }
  }

  /** The process ID of each service, in {@link MANAGER_SERVICES}' order. */
  get pids(): ReadonlyMap<ManagerService, number> {
    return new Map([...this.services].map(([service, process]) => [service, process.pid]));
  }

  /** Every warning or error the services logged, by service. */
  warnings(): ReadonlyMap<ManagerService, string[]> {
    return new Map([...this.services].map(([service, process]) => [service, process.warnings()]));
  }

  /** Throws, with the end of its log, if a service exited without being stopped. */
  assertRunning(): void {
    for (const process of this.services.values()) {
      const exit = process.unexpectedExit;
      if (exit !== undefined) throw errors.internal(exit);
    }
  }

  /** Stops the services (api first, raft last), then nats-server. */
  async stop(): Promise<void> {
    this.store.close();
    await stopInReverse(this.services.values());
    await this.nats.stop();
  }
}

async function stopInReverse(processes: Iterable<ServiceProcess>): Promise<void> {
  for (const process of [...processes].reverse()) await process.stop();
}
