import {
  Cluster,
  Network,
  newId,
  Node,
  NodeRole,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  Service,
  ServiceSpec,
  type JobStatus,
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

/*
 * The service writes below copy services/api's rules (`src/routes/services.ts`) rather than import
 * the api: the simulation must store exactly what the api would, and the control loops depend on
 * nothing else of it.
 */

/** A job's run record as the api starts it; none for a service that is not a job. */
function newJobStatus(spec: ServiceSpec, iteration: bigint, now: Date): JobStatus | undefined {
  if (spec.replicatedJob === undefined && spec.globalJob === undefined) return undefined;
  return { jobIteration: { index: iteration }, lastExecution: now };
}

/**
 * The version a new spec gets: above both the current and the previous one, so that a version is
 * never reused, even after a rollback (the updater takes equal versions to mean equal specs).
 */
function nextSpecVersion(service: Service): bigint {
  const current = service.specVersion?.index ?? 0n;
  const previous = service.previousSpecVersion?.index ?? 0n;
  return (current > previous ? current : previous) + 1n;
}

/** A service as `POST /services/create` stores it: spec version 1 and, for a job, its first run. */
export function createdService(spec: ServiceSpec, now: Date): Service {
  return Service.fromPartial({ id: newId(), spec, specVersion: { index: 1n }, jobStatus: newJobStatus(spec, 0n, now) });
}

/**
 * `service` as `POST /services/{id}/update` stores it with `spec`: a new spec version, the old spec
 * kept as the previous one (what a rollback returns to), the update status cleared (a paused update
 * resumes) and, for a job, a new run.
 */
export function updatedService(service: Service, spec: ServiceSpec, now: Date): Service {
  return Service.fromPartial({
    ...service,
    spec,
    specVersion: { index: nextSpecVersion(service) },
    previousSpec: service.spec,
    previousSpecVersion: service.specVersion,
    updateStatus: undefined,
    jobStatus: newJobStatus(spec, (service.jobStatus?.jobIteration?.index ?? 0n) + 1n, now),
  });
}

/** `spec` with `replicas` replicas, as `docker service scale` sends it. */
export function scaledSpec(spec: ServiceSpec, replicas: number): ServiceSpec {
  return ServiceSpec.fromPartial({ ...spec, replicated: { replicas: BigInt(replicas) } });
}
