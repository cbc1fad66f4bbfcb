import { formatAddress, parseCidr, VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import {
  Cluster,
  EndpointSpec_ResolutionMode,
  IPAMConfig_AddressFamily,
  Lease,
  Network,
  newId,
  Node,
  Service,
  Task,
  TaskState,
  type KindedObject,
  type ObjectKindName,
  type ObjectTypes,
  type PortConfig,
} from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import type { Change, Commit, Precondition, ReadTx } from '@shoal/store';
import { LocalClusterState, type ClusterState, type CommitInput } from '@shoal/store-client';
import { Allocator } from '../src/allocator.js';

/** What the allocator stamps on tasks it moves to PENDING in these tests. */
export const NOW = new Date('2026-03-01T12:00:00Z');

const quiet = createLogger({ service: 'allocator-test', level: 'silent' });

/** A network as services/api writes it at `docker network create`: subnet, first address as gateway, VXLAN ID. */
export function allocatedNetwork(name: string, subnet: string, vxlanId: number, options: { ingress?: boolean } = {}): Network {
  const gateway = formatAddress(parseCidr(subnet).start + 1);
  return Network.fromPartial({
    id: newId(),
    spec: { annotations: { name }, driverConfig: { name: 'overlay' }, ingress: options.ingress ?? false },
    driverState: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: String(vxlanId) } },
    ipam: { driver: { name: 'default' }, configs: [{ family: IPAMConfig_AddressFamily.IPV4, subnet, gateway }] },
  });
}

/** The routing mesh's network as `swarm init` creates it: the default pool's first /24 and VXLAN ID. */
export function ingressNetwork(): Network {
  return allocatedNetwork('ingress', '10.0.0.0/24', 4096, { ingress: true });
}

/** A network another client wrote with only a spec: the allocator has to give it everything. */
export function bareNetwork(name: string, spec: Partial<Network['spec']> = {}): Network {
  return Network.fromPartial({ id: newId(), spec: { annotations: { name }, driverConfig: { name: 'overlay' }, ...spec } });
}

export interface ServiceOptions {
  readonly networks?: readonly Network[];
  readonly ports?: readonly Partial<PortConfig>[];
  readonly dnsrr?: boolean;
}

/** A replicated service, with the endpoint spec the docker CLI always sends. */
export function service(name: string, options: ServiceOptions = {}): Service {
  return Service.fromPartial({
    id: newId(),
    spec: {
      annotations: { name },
      task: { container: { image: 'nginx:alpine' }, networks: (options.networks ?? []).map((network) => ({ target: network.id })) },
      replicated: { replicas: 1n },
      endpoint: { mode: options.dnsrr ? EndpointSpec_ResolutionMode.DNSRR : EndpointSpec_ResolutionMode.VIP, ports: [...(options.ports ?? [])] },
    },
    specVersion: { index: 1n },
  });
}

/** A task as the orchestrator creates it: NEW, wanted RUNNING, with a copy of the service's task spec. */
export function task(of: Service, slot: number, options: { nodeId?: string; desiredState?: TaskState } = {}): Task {
  return Task.fromPartial({
    id: newId(),
    serviceId: of.id,
    slot: BigInt(slot),
    nodeId: options.nodeId ?? '',
    spec: of.spec?.task,
    specVersion: of.specVersion,
    serviceAnnotations: of.spec?.annotations,
    desiredState: options.desiredState ?? TaskState.RUNNING,
    status: { state: TaskState.NEW, message: 'created', timestamp: new Date('2026-03-01T11:59:00Z') },
  });
}

export function node(hostname: string): Node {
  return Node.fromPartial({ id: newId(), description: { hostname } });
}

/** The cluster object `swarm init` writes, with the given address pool settings. */
export function clusterWith(pools: { defaultAddressPool?: string[]; subnetSize?: number }): Cluster {
  return Cluster.fromPartial({ id: newId(), spec: { annotations: { name: 'default' } }, ...pools });
}

/** A lease held at `epoch` until long after the test. */
export function lease(epoch: bigint): Lease {
  return Lease.fromPartial({ id: newId(), name: 'allocator', holder: 'test', epoch, expiry: new Date('2100-01-01T00:00:00Z') });
}

/**
 * The allocator's view of the store, recording every commit it makes and letting a test act just
 * before one lands, or cut the commit stream (as a broken watch does) and then announce a resync.
 */
class InterceptedState implements ClusterState {
  readonly commits: CommitInput[] = [];
  beforeCommit: ((write: CommitInput) => Promise<void>) | undefined;
  /** While true, commits are not delivered to subscribers. */
  deaf = false;
  readonly #listeners = new Set<(commit: Commit) => void>();

  constructor(private readonly inner: ClusterState) {}

  get version(): bigint {
    return this.inner.version;
  }

  view<R>(read: (tx: ReadTx) => R): R {
    return this.inner.view(read);
  }

  async commit(write: CommitInput): Promise<bigint> {
    this.commits.push(write);
    await this.beforeCommit?.(write);
    return this.inner.commit(write);
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    this.#listeners.add(listener);
    const unsubscribe = this.inner.subscribe((commit) => {
      if (!this.deaf) listener(commit);
    });
    return () => {
      this.#listeners.delete(listener);
      unsubscribe();
    };
  }

  /** Hears commits again and tells subscribers, as a `StoreMirror` does after a resync: a commit without events. */
  resync(): void {
    this.deaf = false;
    for (const listener of this.#listeners) listener({ version: this.inner.version, events: [] });
  }
}

interface RunningAllocator {
  readonly allocator: Allocator;
  readonly stop: AbortController;
  readonly done: Promise<void>;
}

/**
 * An in-process store with an allocator running over it. The test's own writes go to the store
 * directly and wait until the allocator has handled them; `allocatorState` records the allocator's.
 */
export class TestCluster implements AsyncDisposable {
  readonly store = new LocalClusterState();
  readonly allocatorState = new InterceptedState(this.store);
  #running: RunningAllocator | undefined;

  /** Starts an allocator (a fresh one each time, as after a restart or failover). */
  start(options: { fence?: Precondition } = {}): Promise<void> {
    const allocator = new Allocator({ state: this.allocatorState, fence: options.fence, log: quiet, clock: () => NOW });
    const stop = new AbortController();
    this.#running = { allocator, stop, done: allocator.run(stop.signal) };
    return this.settle();
  }

  /** The running allocator's `run`, which resolves when it stops by itself. */
  get done(): Promise<void> {
    return this.#require().done;
  }

  async stop(): Promise<void> {
    const running = this.#running;
    this.#running = undefined;
    running?.stop.abort();
    await running?.done;
  }

  /** Waits until the allocator has handled everything committed so far. */
  settle(): Promise<void> {
    return this.#require().allocator.idle();
  }

  async commit(...changes: Change[]): Promise<void> {
    await this.store.commit({ changes });
    if (this.#running !== undefined) await this.settle();
  }

  create(...objects: KindedObject[]): Promise<void> {
    return this.commit(...objects.map((object) => ({ action: 'create', ...object }) as Change));
  }

  update<K extends ObjectKindName>(kind: K, id: string, change: (object: ObjectTypes[K]) => ObjectTypes[K]): Promise<void> {
    return this.commit({ action: 'update', kind, object: change(this.get(kind, id)) } as Change);
  }

  delete(kind: ObjectKindName, id: string): Promise<void> {
    return this.commit({ action: 'delete', kind, id });
  }

  get<K extends ObjectKindName>(kind: K, id: string): ObjectTypes[K] {
    const object = this.store.view((tx) => tx.get(kind, id));
    if (object === undefined) throw new Error(`${kind} ${id} is not in the store`);
    return object;
  }

  list<K extends ObjectKindName>(kind: K): ObjectTypes[K][] {
    return this.store.view((tx) => tx.list(kind));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #require(): RunningAllocator {
    if (this.#running === undefined) throw new Error('no allocator is running');
    return this.#running;
  }
}
