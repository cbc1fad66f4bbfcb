import { Allocator } from '@shoal/allocator/control';
import { ErrorCode, errors, hasCode, ShoalError, toShoalError } from '@shoal/errors';
import { orchestrate } from '@shoal/orchestrator/control';
import {
  Lease,
  newId,
  newService,
  serviceWithSpec,
  NodeSpec,
  NodeStatus,
  NodeStatus_State,
  ServiceSpec,
  type Cluster,
  type KindedObject,
  type Network,
  type Node,
  type NodeSpec_Availability,
  type ObjectKindName,
  type ObjectTypes,
  type Service,
  type Task,
} from '@shoal/proto';
import { createLogger, type Logger } from '@shoal/runtime';
import { SchedulingLoop, systemClock, type Clock } from '@shoal/scheduler/control';
import { byName, byServiceId, MemoryStore, splitIntoTransactions, type Change, type Precondition } from '@shoal/store';
import { LocalClusterState, type ClusterState } from '@shoal/store-client';
import { FakeAgents, type FakeAgentsOptions } from './fake-agents.js';
import { ComponentLink, type WriteTally } from './component-link.js';
import { startTrailingMirror } from './trailing-mirror.js';
import {
  defaultCluster,
  overlayNetwork,
  readyWorker,
  scaledSpec,
  type NodeOptions,
  type PartialOf,
} from './swarm-objects.js';

/** A component of the simulated control plane; scheduling loops are numbered from 1. */
export type ComponentName = 'orchestrator' | 'allocator' | 'agents' | `scheduler-${number}`;

/** Whether a scheduling loop places the tasks of a service. */
export type ServiceOwnership = (serviceId: string) => boolean;

/** A scheduling loop that places the tasks of every service (one that runs without membership). */
export const OWNS_EVERY_SERVICE: ServiceOwnership = () => true;

export interface ControlPlaneOptions {
  /**
   * The time and timers of the control loops, and the store's timestamps. With a `FakeClock` from
   * `@shoal/testkit`, time moves only when the caller advances it: scheduling debounces, restart
   * delays and rollout delays and monitors all wait for it. The fake agents' batching and the
   * deadline of {@link ControlPlane.until} always run on real time.
   * @default the system clock
   */
  readonly clock?: Clock;
  /** Where the components log, each as a child with its component name. @default silent */
  readonly log?: Logger;
  /** One scheduling loop per entry, placing the tasks of the services it owns. @default one loop that owns every service */
  readonly schedulers?: readonly ServiceOwnership[];
  /** How long a scheduling loop waits for more commits before it places tasks. @default 5 */
  readonly schedulerDebounceMs?: number;
  /** How the fake agents' tasks turn out, and how long they gather status reports. */
  readonly agents?: Omit<FakeAgentsOptions, 'clock'>;
  /**
   * When set, every component instance reads through its own `StoreMirror` whose view trails the
   * store by this many milliseconds of real time, as each manager service reads through its own
   * mirror of the raft store; components then decide on views that lag each other's writes.
   * Otherwise they all share the store's own view.
   */
  readonly mirrorLagMs?: number;
}

/** A running instance of a component. */
interface Instance {
  readonly link: ComponentLink;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  readonly agents: FakeAgents | undefined;
}

/** What starting a component builds: how to run it, and the agents if it is them. */
interface Launch {
  readonly run: (signal: AbortSignal) => Promise<void>;
  readonly agents?: FakeAgents;
}

/** The roles that run as one leader at a time, under a lease. */
type LeaseRole = 'orchestrator' | 'allocator';

const isLeaseRole = (name: ComponentName): name is LeaseRole => name === 'orchestrator' || name === 'allocator';

/** Leases the harness hands out never lapse: a standby takes over when the test says so. */
const NEVER_EXPIRES = new Date('9999-12-31T00:00:00Z');
/** How many times a write on behalf of the api or dispatcher is re-read and retried when a control loop wrote the object first. */
const MAX_WRITE_ATTEMPTS = 5;
/** How long {@link ControlPlane.until} waits by default. */
const DEFAULT_UNTIL_MS = 10_000;

/**
 * The manager's control loops in one process, over one in-process store: the orchestrator (with
 * its rolling updater), the allocator, one or more scheduling loops and {@link FakeAgents} standing
 * in for the nodes, each connected to the store as the services are (a `ClusterState`, conditional
 * commits). The caller writes what the api and the dispatcher would (swarm init, nodes, networks,
 * services, node status) and watches the loops converge.
 *
 * Each component starts and stops on its own, to simulate a crash and a standby taking over: every
 * start builds a fresh instance, and the orchestrator and the allocator take their lease at a new
 * epoch and fence every write with it, as under `holdLease`. So a standby started while the old
 * instance still runs deposes it: nothing the old instance writes lands any more.
 */
export class ControlPlane implements AsyncDisposable {
  /** The store's own view, which the api's and the dispatcher's writes go through, and tests read. */
  readonly state: LocalClusterState;
  /** Every component, in the order {@link start} starts them. */
  readonly components: readonly ComponentName[];
  readonly #store: MemoryStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #schedulers: readonly ServiceOwnership[];
  readonly #schedulerDebounceMs: number;
  readonly #agentsOptions: Omit<FakeAgentsOptions, 'clock'>;
  readonly #mirrorLagMs: number | undefined;
  readonly #instances = new Map<ComponentName, Instance[]>();
  readonly #failures: ShoalError[] = [];
  readonly #tallies = new Map<ComponentName, WriteTally>();
  #nodesAdded = 0;
  #leaseHolders = 0;

  constructor(options: ControlPlaneOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? createLogger({ service: 'sim', level: 'silent' });
    this.#schedulers = options.schedulers ?? [OWNS_EVERY_SERVICE];
    this.#schedulerDebounceMs = options.schedulerDebounceMs ?? 5;
    this.#agentsOptions = options.agents ?? {};
    this.#mirrorLagMs = options.mirrorLagMs;
    this.#store = new MemoryStore({ clock: () => this.now() });
    this.state = new LocalClusterState(this.#store);
    this.components = ['agents', ...this.#schedulers.map((_, index): ComponentName => `scheduler-${index + 1}`), 'allocator', 'orchestrator'];
  }

  /** The control plane's time. */
  now(): Date {
    return new Date(this.#clock.now());
  }

  /**
   * Starts a fresh instance of each named component (all of them when none is named). Starting one
   * that runs already adds a standby that takes over; for the orchestrator and the allocator it
   * deposes the running instance.
   */
  async start(...names: ComponentName[]): Promise<void> {
    for (const name of names) {
      if (!this.components.includes(name)) throw errors.invalidArgument(`the control plane has no ${name}; it has ${this.components.join(', ')}`);
    }
    for (const name of names.length === 0 ? this.components : names) {
      // A leader reads only once it holds the lease, so that its view shows every write of the one before.
      const fence = isLeaseRole(name) ? await this.#takeLease(name) : undefined;
      const disconnect = new AbortController();
      const { state, following } = await this.#connect(name, disconnect.signal);
      const link = new ComponentLink(state, this.#tallyOf(name));
      const launch = this.#launch(name, link, fence);
      const stop = new AbortController();
      const done = (async () => {
        try {
          await launch.run(stop.signal);
        } catch (err) {
          // A crashed component's last words are not a failure of the simulation.
          if (!link.severed) this.#failures.push(new ShoalError(ErrorCode.Internal, `${name} failed: ${toShoalError(err).message}`, { cause: err }));
        } finally {
          // Only now: a stopping component may still wait for its last writes to show in its view.
          disconnect.abort();
          await following;
        }
      })();
      this.#instances.set(name, [...(this.#instances.get(name) ?? []), { link, stop, done, agents: launch.agents }]);
    }
  }

  /** Stops every instance of the named components (of all, when none is named), as a shutdown does: writes under way finish. */
  async stop(...names: ComponentName[]): Promise<void> {
    await this.#halt(names, false);
  }

  /**
   * Kills every instance of the named components, as a crash does: nothing they write from now on
   * reaches the store and they hear of no further commit; then their loops are stopped.
   */
  async kill(...names: ComponentName[]): Promise<void> {
    await this.#halt(names, true);
  }

  /** How the writes of every instance of the component so far have fared. */
  writes(name: ComponentName): Readonly<WriteTally> {
    return { ...this.#tallyOf(name) };
  }

  /** Stops everything, and throws if a component failed on its own while it ran. */
  async close(): Promise<void> {
    await this.stop();
    if (this.#failures.length > 0) throw errors.internal(this.#failures.map((failure) => failure.message).join('; '));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Resolves once `check` passes (returns without throwing), trying it now and after each commit;
   * rejects with DEADLINE_EXCEEDED, caused by the last error `check` threw, if it has not passed
   * within `timeoutMs` of real time.
   */
  until(check: () => void, timeoutMs = DEFAULT_UNTIL_MS): Promise<void> {
    let lastError: unknown;
    const passes = () => {
      try {
        check();
        return true;
      } catch (err) {
        lastError = err;
        return false;
      }
    };
    if (passes()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void) => {
        clearTimeout(deadline);
        unsubscribe();
        settle();
      };
      const deadline = setTimeout(() => {
        const message = `the control plane did not get there within ${timeoutMs} ms: ${toShoalError(lastError).message}`;
        finish(() => reject(new ShoalError(ErrorCode.DeadlineExceeded, message, { cause: lastError })));
      }, timeoutMs);
      const unsubscribe = this.state.subscribe(() => {
        if (passes()) finish(resolve);
      });
    });
  }

  /** Makes the container of a running task exit with `exitCode`, on the agents that run now. */
  async exit(taskId: string, exitCode: number): Promise<void> {
    const agents = this.#instances.get('agents')?.at(-1)?.agents;
    if (agents === undefined) throw errors.failedPrecondition('no agents run to make a task exit');
    await agents.exit(taskId, exitCode);
  }

  // What `docker swarm init`, `docker node`, `docker network` and `docker service` store through the api.

  /** Writes what `docker swarm init` does for the control loops: the cluster object and the ingress network. */
  async initSwarm(): Promise<{ cluster: Cluster; ingress: Network }> {
    const cluster = defaultCluster();
    const ingress = overlayNetwork('ingress', { ingress: true });
    await this.#create([
      { kind: 'cluster', object: cluster },
      { kind: 'network', object: ingress },
    ]);
    return { cluster, ingress };
  }

  /** Adds `count` workers that joined and are READY, named `node-1`, `node-2`, … across calls. */
  async addNodes(count: number, options: NodeOptions = {}): Promise<Node[]> {
    const nodes = Array.from({ length: count }, () => readyWorker(`node-${++this.#nodesAdded}`, options));
    await this.#create(nodes.map((object) => ({ kind: 'node', object })));
    return nodes;
  }

  /** Creates an overlay network (`docker network create -d overlay`). */
  async createNetwork(name: string): Promise<Network> {
    const network = overlayNetwork(name);
    await this.#create([{ kind: 'network', object: network }]);
    return network;
  }

  /** Creates a service (`docker service create`). */
  async createService(spec: PartialOf<typeof ServiceSpec>): Promise<Service> {
    const service = newService(ServiceSpec.fromPartial(spec), this.now());
    await this.#create([{ kind: 'service', object: service }]);
    return service;
  }

  /** Updates a service's spec (`docker service update`): `change` gets the current spec and returns the new one. */
  updateService(serviceId: string, change: (spec: ServiceSpec) => PartialOf<typeof ServiceSpec>): Promise<Service> {
    return this.#rewrite('service', serviceId, (service) => serviceWithSpec(service, ServiceSpec.fromPartial(change(service.spec ?? ServiceSpec.fromPartial({}))), this.now()));
  }

  /** `docker service scale`: a spec update with the new replica count. */
  scaleService(serviceId: string, replicas: number): Promise<Service> {
    return this.updateService(serviceId, (spec) => scaledSpec(spec, replicas));
  }

  /** `docker node update --availability`. */
  setNodeAvailability(nodeId: string, availability: NodeSpec_Availability): Promise<Node> {
    return this.#rewrite('node', nodeId, (node) => ({ ...node, spec: NodeSpec.fromPartial({ ...node.spec, availability }) }));
  }

  /** What the dispatcher writes when it loses a node's heartbeat (DOWN) or hears from it again (READY). */
  setNodeState(nodeId: string, state: NodeStatus_State): Promise<Node> {
    const message = state === NodeStatus_State.DOWN ? 'heartbeat failure' : '';
    return this.#rewrite('node', nodeId, (node) => ({ ...node, status: NodeStatus.fromPartial({ ...node.status, state, message }) }));
  }

  // Reads.

  service(serviceId: string): Service {
    return this.#get('service', serviceId);
  }

  network(networkId: string): Network {
    return this.#get('network', networkId);
  }

  /** The service's tasks, by slot, then oldest first. */
  tasks(serviceId: string): Task[] {
    const tasks = this.state.view((tx) => tx.find('task', byServiceId(serviceId)));
    return tasks.sort((a, b) => Number(a.slot - b.slot) || (a.meta?.createdAt?.getTime() ?? 0) - (b.meta?.createdAt?.getTime() ?? 0));
  }

  /** The view a new instance of the component reads: the store's own, or a mirror of it that trails it until `signal` aborts. */
  async #connect(name: ComponentName, signal: AbortSignal): Promise<{ state: ClusterState; following: Promise<void> }> {
    if (this.#mirrorLagMs === undefined) return { state: this.state, following: Promise.resolve() };
    const { mirror, following } = await startTrailingMirror(this.#store, this.#mirrorLagMs, this.#log.child({ component: name, module: 'mirror' }), signal);
    return { state: mirror, following };
  }

  /** Builds a fresh instance of the component, connected to the store through `state`; a leader's writes carry `fence`. */
  #launch(name: ComponentName, state: ComponentLink, fence: Precondition | undefined): Launch {
    const log = this.#log.child({ component: name });
    const now = () => this.now();
    if (name === 'agents') {
      const agents = new FakeAgents(state, { ...this.#agentsOptions, clock: now });
      return { run: (signal) => agents.run(signal), agents };
    }
    if (name === 'allocator') return { run: (signal) => new Allocator({ state, fence, log, clock: now }).run(signal) };
    if (name === 'orchestrator') return { run: (signal) => orchestrate({ state, fence, clock: now, timers: this.#clock, log }, signal) };
    // `start` checked that the loop is one of this plane's.
    const owns = this.#schedulers[Number(name.slice('scheduler-'.length)) - 1]!;
    const loop = new SchedulingLoop({ state, owns, log, clock: this.#clock, debounceMs: this.#schedulerDebounceMs });
    return { run: (signal) => loop.run(signal) };
  }

  async #halt(names: readonly ComponentName[], crash: boolean): Promise<void> {
    const halting = (names.length === 0 ? [...this.#instances.keys()] : names).flatMap((name) => {
      const instances = this.#instances.get(name) ?? [];
      this.#instances.delete(name);
      return instances;
    });
    if (crash) for (const { link } of halting) link.sever();
    for (const { stop } of halting) stop.abort();
    await Promise.all(halting.map(({ done }) => done));
  }

  #tallyOf(name: ComponentName): WriteTally {
    let tally = this.#tallies.get(name);
    if (tally === undefined) this.#tallies.set(name, (tally = { committed: 0, conflicts: 0 }));
    return tally;
  }

  /** Takes the role's lease at the next epoch, as a standby does once the holder is gone, and returns the fence for its writes. */
  async #takeLease(role: LeaseRole): Promise<Precondition> {
    const held = this.state.view((tx) => tx.find('lease', byName(role))[0]);
    const holder = `${role}-${++this.#leaseHolders}`;
    const lease = Lease.fromPartial({ ...held, id: held?.id ?? newId(), name: role, holder, epoch: (held?.epoch ?? 0n) + 1n, expiry: NEVER_EXPIRES });
    await this.state.commit({ changes: [{ action: held === undefined ? 'create' : 'update', kind: 'lease', object: lease }] });
    return { kind: 'lease', id: lease.id, leaseEpoch: lease.epoch };
  }

  async #create(objects: readonly KindedObject[]): Promise<void> {
    const changes = objects.map((object) => ({ action: 'create', ...object }) as Change);
    for (const batch of splitIntoTransactions(changes)) await this.state.commit({ changes: batch });
  }

  /** Rewrites a stored object with `change` applied to it as stored, reading again if a control loop wrote it in between. */
  async #rewrite<K extends ObjectKindName>(kind: K, id: string, change: (object: ObjectTypes[K]) => ObjectTypes[K]): Promise<ObjectTypes[K]> {
    for (let attempt = 1; ; attempt++) {
      const rewritten = change(this.#get(kind, id));
      try {
        await this.state.commit({ changes: [{ action: 'update', kind, object: rewritten } as Change] });
        return this.#get(kind, id);
      } catch (err) {
        if (!hasCode(err, ErrorCode.Conflict) || attempt === MAX_WRITE_ATTEMPTS) throw err;
      }
    }
  }

  #get<K extends ObjectKindName>(kind: K, id: string): ObjectTypes[K] {
    const object = this.state.view((tx) => tx.get(kind, id));
    if (object === undefined) throw errors.notFound(`${kind} ${id} not found`, { kind, id });
    return object;
  }
}
