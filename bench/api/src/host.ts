import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errors } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, ServiceProcess, serviceEnvironment, startNatsServer, writeManagerIdentity, type NatsServer } from '@shoal/testkit';

/** The built services, exactly what `shoal up` runs on a manager host. */
const RAFT_MAIN = fileURLToPath(import.meta.resolve('@shoal/raft'));
const API_MAIN = fileURLToPath(import.meta.resolve('@shoal/api'));


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
      const identity = writeManagerIdentity(createTestPki().ca, root, 'bench-api-manager');
      const common = { ...serviceEnvironment(), ...identity.env, SHOAL_NATS_URL: nats.url };
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
        tls: identity.pem,
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
