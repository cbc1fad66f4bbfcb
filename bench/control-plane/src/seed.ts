import {
  Cluster,
  EndpointSpec_ResolutionMode,
  IPAMConfig_AddressFamily,
  Network,
  Node,
  NodeRole,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  Service,
  newId,
} from '@shoal/proto';
import type { Change } from '@shoal/store';
import type { StoreApiClient } from '@shoal/store-client';

/** The worker nodes every run places its tasks on. */
export const NODE_COUNT = 1_000;

/** The store's limit on one transaction (swarmkit's MaxChangesPerTransaction). */
const CHANGES_PER_TRANSACTION = 200;

/**
 * The routing mesh's subnet. `swarm init` gives ingress the pool's first /24, but the allocator gives
 * every node an address on ingress, and a /24 holds 254: with 1,000 nodes, 746 would wait for an
 * address. A swarm this size needs ingress recreated bigger (`docker network create --ingress
 * --subnet …`), so the bench starts with the /22 that its user would have made.
 */
const INGRESS_ADDRESSES: AddressSpace = { subnet: '10.0.0.0/22', gateway: '10.0.0.1' };
/**
 * The services' network, as `docker network create -d overlay --subnet 10.1.0.0/16` makes it: the
 * pool's default /24 would hold 254 tasks, not 10,000 plus a load-balancer address per node.
 */
const OVERLAY_ADDRESSES: AddressSpace = { subnet: '10.1.0.0/16', gateway: '10.1.0.1' };
/** VXLAN IDs as services/api hands them out: 4096 first (ingress at `swarm init`), then the next free. */
const FIRST_VXLAN_ID = 4096;
/** Driver-state option the overlay driver keeps a network's VXLAN ID in (services/api and the allocator use the same). */
const VXLAN_ID_LIST_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

/** A network's subnet and its gateway, the subnet's first address (as libnetwork's default IPAM picks it). */
interface AddressSpace {
  readonly subnet: string;
  readonly gateway: string;
}

/** What a run asks of the control plane: `services` replicated services of `replicas` tasks each. */
export interface Workload {
  readonly services: number;
  readonly replicas: number;
}

/**
 * An overlay network as services/api stores it at `swarm init` (ingress) or `docker network create`:
 * its spec, the subnet and gateway allocated, and a VXLAN ID in the driver state.
 */
function overlayNetwork(name: string, { subnet, gateway }: AddressSpace, vxlanId: number, ingress: boolean): Network {
  return Network.fromPartial({
    id: newId(),
    spec: {
      annotations: { name, labels: {} },
      driverConfig: { name: 'overlay', options: {} },
      ipam: { driver: { name: 'default', options: {} }, configs: ingress ? [] : [{ subnet }] },
      ingress,
    },
    driverState: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: String(vxlanId) } },
    ipam: { driver: { name: 'default' }, configs: [{ family: IPAMConfig_AddressFamily.IPV4, subnet, range: '', gateway, reserved: {} }] },
  });
}

/** A worker node as the dispatcher keeps it once its agent is connected: accepted, active, READY, 1 CPU and 2 GiB. */
function workerNode(index: number): Node {
  return Node.fromPartial({
    id: newId(),
    role: NodeRole.WORKER,
    spec: { desiredRole: NodeRole.WORKER, membership: NodeSpec_Membership.ACCEPTED, availability: NodeSpec_Availability.ACTIVE },
    description: {
      hostname: `worker-${index}`,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCpus: 1_000_000_000n, memoryBytes: 2n * 1024n ** 3n },
      engine: { engineVersion: '28.0.0' },
    },
    status: { state: NodeStatus_State.READY, addr: `10.200.${index >> 8}.${index & 0xff}` },
  });
}

/** The swarm's cluster object as `swarm init` writes it (minus the CA material, which no control loop reads). */
function clusterObject(): Cluster {
  return Cluster.fromPartial({
    id: newId(),
    spec: {
      annotations: { name: 'default', labels: {} },
      orchestration: { taskHistoryRetentionLimit: 5n },
      dispatcher: { heartbeatPeriod: { seconds: 5n, nanos: 0 } },
      encryptionConfig: { autoLockManagers: false },
    },
    defaultAddressPool: ['10.0.0.0/8'],
    subnetSize: 24,
    vxlanUdpPort: 4789,
  });
}

/** What {@link seedCluster} wrote that a run refers to. */
export interface SeededCluster {
  /** The network the services attach to. */
  readonly network: Network;
  readonly nodeIds: readonly string[];
}

/**
 * Writes a swarm ready for services through the Store API: the cluster object, ingress and one
 * overlay network (one transaction, as `swarm init` commits its objects together), then
 * {@link NODE_COUNT} ready worker nodes in transactions of at most 200.
 */
export async function seedCluster(store: StoreApiClient): Promise<SeededCluster> {
  const network = overlayNetwork('bench', OVERLAY_ADDRESSES, FIRST_VXLAN_ID + 1, false);
  await store.commit({
    changes: [
      { action: 'create', kind: 'cluster', object: clusterObject() },
      { action: 'create', kind: 'network', object: overlayNetwork('ingress', INGRESS_ADDRESSES, FIRST_VXLAN_ID, true) },
      { action: 'create', kind: 'network', object: network },
    ],
  });
  const nodes = Array.from({ length: NODE_COUNT }, (_, index) => workerNode(index));
  for (let start = 0; start < nodes.length; start += CHANGES_PER_TRANSACTION) {
    const changes = nodes.slice(start, start + CHANGES_PER_TRANSACTION).map((object): Change => ({ action: 'create', kind: 'node', object }));
    await store.commit({ changes });
  }
  return { network, nodeIds: nodes.map((node) => node.id) };
}

/**
 * The workload's services as services/api stores them for `docker service create --name web-<i>
 * --replicas <n> --network bench busybox:1` (CLI 28's request body: resources, placement and DNS
 * config present but empty, VIP endpoint mode), network name resolved to its ID, spec version 1.
 * Each is small, so even 100 fit in one transaction.
 */
export function workloadServices(workload: Workload, network: Network): Service[] {
  return Array.from({ length: workload.services }, (_, index) =>
    Service.fromPartial({
      id: newId(),
      specVersion: { index: 1n },
      spec: {
        annotations: { name: `web-${index}`, labels: {} },
        task: {
          container: { image: 'busybox:1', args: ['sleep', 'infinity'], init: false, dnsConfig: {} },
          resources: { limits: {}, reservations: {} },
          placement: {},
          networks: [{ target: network.id, aliases: [] }],
          forceUpdate: 0n,
        },
        replicated: { replicas: BigInt(workload.replicas) },
        endpoint: { mode: EndpointSpec_ResolutionMode.VIP, ports: [] },
      },
    }),
  );
}
