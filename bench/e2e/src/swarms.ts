import { errors } from '@shoal/errors';
import { DOCKER, removeTestContainers, runDocker, SwarmCluster, type ManagerHost } from '@shoal/testkit';
import { EngineClient } from './engine-client.js';

/** The machine's dockerd, as the docker CLI reaches it with DOCKER_HOST unset. */
export const LOCAL_DOCKERD = 'unix:///var/run/docker.sock';

/** The label on every service the bench creates, valued with the run ID, so that clean-up finds exactly those. */
export const BENCH_LABEL = 'shoal.bench';

/** The bridge `docker swarm init` creates on first use and `docker swarm leave` leaves behind. */
const SWARM_GATEWAY_BRIDGE = 'docker_gwbridge';

/** Runs one docker CLI command; resolves with its standard output, throws with what it printed unless it succeeds. */
export type DockerCli = (args: readonly string[]) => Promise<string>;

/** The docker CLI (28) against `dockerHost`, with `configDir` as its config directory so the machine's contexts play no part. */
export function dockerCli(dockerHost: string, configDir: string): DockerCli {
  return async (args) => {
    const result = await runDocker(DOCKER, dockerHost, args, { configDir });
    if (result.code !== 0) throw errors.internal(`docker ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}${result.stdout.trim()}`);
    return result.stdout;
  };
}

/** One system under test: a single-node swarm on this machine's dockerd, driven by the docker CLI. */
export interface SwarmUnderTest {
  readonly name: string;
  /** The Engine API that manages the swarm (where `docker service …` goes and tasks are listed). */
  readonly api: EngineClient;
  /** The docker CLI against {@link api}. */
  readonly docker: DockerCli;
  /** Throws if a part of the system died on its own. */
  assertRunning(): void;
  /** Takes down what the bench set up and removes what it left; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Shoal as `shoal up` runs it on one manager host (raft, orchestrator, allocator, scheduler,
 * dispatcher, agent and api, each a process; `SwarmCluster` from @shoal/testkit), initialised with
 * `docker swarm init` through its API. Its agent runs the tasks' containers on the machine's dockerd,
 * labelled `shoal.test=<testRunId()>`.
 */
export class ShoalSwarm implements SwarmUnderTest {
  static readonly title = 'Shoal';
  readonly name = ShoalSwarm.title;
  readonly docker: DockerCli;
  #stopped = false;

  private constructor(
    private readonly cluster: SwarmCluster,
    private readonly host: ManagerHost,
    readonly api: EngineClient,
  ) {
    this.docker = (args) => host.dockerOk(args);
  }

  /** Starts the host's processes and initialises the swarm. */
  static async start(): Promise<ShoalSwarm> {
    const cluster = SwarmCluster.create();
    try {
      const host = await cluster.startManager('shoal-bench-e2e');
      await host.dockerOk(['swarm', 'init']);
      return new ShoalSwarm(cluster, host, new EngineClient(host.dockerHost));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  assertRunning(): void {
    const [crash] = this.host.crashes();
    if (crash !== undefined) throw errors.internal(crash);
  }

  /** Stops every process and removes the containers labelled with the run ID, the tmpfs mounts and the directories. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.api.close();
    await this.cluster.stop();
  }
}

/**
 * Docker's own swarm mode on the machine's dockerd: `docker swarm init` there, and on {@link stop}
 * the services the bench made removed, `docker swarm leave --force`, the run's containers removed and
 * the gateway bridge removed if the swarm created it. Refuses to start unless dockerd is in no swarm:
 * a swarm the bench did not create is never touched.
 */
export class DockerSwarm implements SwarmUnderTest {
  static readonly title = 'Docker';
  readonly name = DockerSwarm.title;
  readonly api = new EngineClient(LOCAL_DOCKERD);
  #stopped = false;

  private constructor(
    readonly docker: DockerCli,
    private readonly runId: string,
    /** Whether the gateway bridge existed before the swarm was created, so it is someone else's. */
    private readonly bridgeExisted: boolean,
  ) {}

  /** Checks that dockerd is in no swarm, then initialises one; `runId` labels the bench's services and containers. */
  static async start(docker: DockerCli, runId: string): Promise<DockerSwarm> {
    const state = (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim();
    if (state !== 'inactive') {
      throw errors.failedPrecondition(`dockerd is already in a swarm (LocalNodeState ${state}): refusing to touch a swarm the bench did not create`);
    }
    const networks = (await docker(['network', 'ls', '--format', '{{.Name}}'])).split('\n');
    await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    return new DockerSwarm(docker, runId, networks.includes(SWARM_GATEWAY_BRIDGE));
  }

  /** dockerd runs outside the bench: whatever fails in it shows in the polls. */
  assertRunning(): void {}

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.api.close();
    try {
      // Leaving takes the services down anyway; removing them first is what a user does, and says so if it fails.
      const services = (await this.docker(['service', 'ls', '-q', '--filter', `label=${BENCH_LABEL}=${this.runId}`])).split('\n').filter(Boolean);
      if (services.length > 0) await this.docker(['service', 'rm', ...services]);
    } finally {
      await this.docker(['swarm', 'leave', '--force']);
      await removeTestContainers(this.runId);
      if (!this.bridgeExisted) await this.docker(['network', 'rm', SWARM_GATEWAY_BRIDGE]);
    }
  }
}
