import {
  Cluster,
  Network,
  newId,
  Node,
  NodeRole,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  ServiceSpec,
} from '@shoal/proto';
import { durationOfMs } from '@shoal/store-client';

/** What `fromPartial` of a message accepts: any subset of its fields, at any depth. */
export type PartialOf<T extends { fromPartial(object: never): unknown }> = Parameters<T['fromPartial']>[0];

/** The stored objects a new swarm starts with, as the control loops see them (swarmkit's defaults). */
export const SWARM_DEFAULTS = {
  /** Finished tasks kept per slot. */
  taskHistoryRetentionLimit: 5n,
  heartbeatPeriodMs: 5_000,
  /** What every simulated node has unless told otherwise. */
  nodeResources: { nanoCpus: 4_000_000_000n, memoryBytes: 8n << 30n },
} as const;

/**
 * The cluster object `docker swarm init` writes, with swarmkit's default settings for what the
 * control loops read (the task history retention limit, the heartbeat period) and no PKI.
 */
export function defaultCluster(): Cluster {
  return Cluster.fromPartial({
    id: newId(),
    spec: {
      annotations: { name: 'default' },
      orchestration: { taskHistoryRetentionLimit: SWARM_DEFAULTS.taskHistoryRetentionLimit },
      dispatcher: { heartbeatPeriod: durationOfMs(SWARM_DEFAULTS.heartbeatPeriodMs) },
    },
  });
}

/**
 * An overlay network as a client asks for it: a spec only. The allocator gives it its subnet (the
 * lowest free /24 of 10.0.0.0/8) and VXLAN ID (from 4096), as swarmkit's does.
 */
export function overlayNetwork(name: string, options: { ingress?: boolean } = {}): Network {
  return Network.fromPartial({
    id: newId(),
    spec: { annotations: { name }, driverConfig: { name: 'overlay' }, ingress: options.ingress ?? false },
  });
}

/** How a simulated node is described. */
export interface NodeOptions {
  /** Its engine's CPU and memory. @default 4 cores, 8 GiB */
  readonly resources?: { readonly nanoCpus: bigint; readonly memoryBytes: bigint };
  /** Its node labels (`docker node update --label-add`). */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A worker that joined and holds a session: accepted, active, and READY (the dispatcher's word),
 * a linux/x86_64 host called `hostname`.
 */
export function readyWorker(hostname: string, options: NodeOptions = {}): Node {
  return Node.fromPartial({
    id: newId(),
    spec: {
      annotations: { name: '', labels: { ...options.labels } },
      desiredRole: NodeRole.WORKER,
      membership: NodeSpec_Membership.ACCEPTED,
      availability: NodeSpec_Availability.ACTIVE,
    },
    role: NodeRole.WORKER,
    description: {
      hostname,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: options.resources ?? SWARM_DEFAULTS.nodeResources,
    },
    status: { state: NodeStatus_State.READY },
  });
}

/** `spec` with `replicas` replicas, as `docker service scale` sends it. */
export function scaledSpec(spec: ServiceSpec, replicas: number): ServiceSpec {
  return ServiceSpec.fromPartial({ ...spec, replicated: { replicas: BigInt(replicas) } });
}
