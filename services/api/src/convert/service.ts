import { errors } from '@shoal/errors';
import {
  ContainerSpec_DNSConfig,
  type Endpoint,
  EndpointSpec,
  EndpointSpec_ResolutionMode,
  Placement,
  ResourceRequirements,
  RestartPolicy,
  RestartPolicy_RestartCondition,
  type Service,
  ServiceSpec,
  TaskSpec,
  UpdateConfig,
  UpdateConfig_FailureAction,
  UpdateConfig_UpdateOrder,
  type UpdateStatus,
  UpdateStatus_UpdateState,
} from '@shoal/proto';
import { Decoder } from './decode.js';
import {
  DockerEnum,
  type DockerNetworkAttachmentConfig,
  type DockerPortConfig,
  type DockerTaskSpec,
  type DockerVersion,
  durationToNanos,
  networkAttachmentConfigToDocker,
  networkAttachmentConfigsFromDocker,
  omitEmpty,
  portConfigFromDocker,
  portConfigToDocker,
  readAs,
  readDuration,
  taskSpecFromDocker,
  taskSpecToDocker,
  versionToDocker,
} from './task.js';
import { type DockerMeta, dockerMeta, dockerTime, durationOfNanos } from './wire.js';

// Docker's JSON shape of a service and its spec, and their conversion to and from shoal.v1 as
// moby's daemon/cluster/convert/service.go does it, including the server-side normalisation the
// CLI relies on (replicas default to 1, an empty endpoint spec means vip, ports default to tcp and
// ingress). Properties Go marks `omitempty` are optional here and left undefined when Go omits them.

/** `swarm.ServiceMode`: exactly one of the four is set. */
export interface DockerServiceMode {
  Replicated?: { Replicas?: number };
  Global?: Record<string, never>;
  ReplicatedJob?: { MaxConcurrent?: number; TotalCompletions?: number };
  GlobalJob?: Record<string, never>;
}

/** `swarm.UpdateConfig`, for both `UpdateConfig` and `RollbackConfig`; durations in nanoseconds. */
export interface DockerUpdateConfig {
  Parallelism: number;
  Delay?: number;
  FailureAction?: string;
  Monitor?: number;
  MaxFailureRatio: number;
  /** `""` on input means stop-first; dockerd always writes the order back. */
  Order: string;
}

export interface DockerEndpointSpec {
  Mode?: string;
  Ports?: DockerPortConfig[];
}

/** `swarm.ServiceSpec` (the body of POST /services/create and /services/{id}/update). */
export interface DockerServiceSpec {
  Name?: string;
  Labels: Record<string, string>;
  TaskTemplate: DockerTaskSpec;
  Mode: DockerServiceMode;
  UpdateConfig?: DockerUpdateConfig;
  RollbackConfig?: DockerUpdateConfig;
  /** Deprecated in favour of `TaskTemplate.Networks`; kept for services that still use it. */
  Networks?: DockerNetworkAttachmentConfig[];
  EndpointSpec?: DockerEndpointSpec;
}

/** `swarm.Endpoint`: what the allocator made of the endpoint spec. */
export interface DockerEndpoint {
  /** `{}` until the allocator has run. */
  Spec: DockerEndpointSpec;
  Ports?: DockerPortConfig[];
  VirtualIPs?: { NetworkID?: string; Addr?: string }[];
}

export interface DockerUpdateStatus {
  State?: string;
  StartedAt?: string;
  CompletedAt?: string;
  Message?: string;
}

/** Task counts of a service, which `docker service ls` shows as REPLICAS. */
export interface DockerServiceStatus {
  RunningTasks: number;
  DesiredTasks: number;
  CompletedTasks: number;
}

/** `swarm.Service` (GET /services, GET /services/{id}). */
export interface DockerService extends DockerMeta {
  Spec: DockerServiceSpec;
  PreviousSpec?: DockerServiceSpec;
  Endpoint: DockerEndpoint;
  UpdateStatus?: DockerUpdateStatus;
  ServiceStatus?: DockerServiceStatus;
  JobStatus?: { JobIteration: DockerVersion; LastExecution: string };
}

/** How to write a service spec: as stored, or with swarmkit's defaults filled in (`?insertDefaults=true`). */
export interface ServiceSpecWriteOptions {
  /**
   * Fill what the user left unset with the values the cluster applies (stop grace period 10s,
   * restart on any failure after 5s, update and rollback one task at a time, monitored 5s, pausing
   * on failure), as `docker service inspect` shows. Leave false for everything that posts the spec
   * back (update, scale, rollback), so defaults never become part of the stored spec.
   */
  insertDefaults: boolean;
}

const failureActions = new DockerEnum<UpdateConfig_FailureAction>(
  'string',
  [
    ['pause', UpdateConfig_FailureAction.PAUSE],
    ['continue', UpdateConfig_FailureAction.CONTINUE],
    ['rollback', UpdateConfig_FailureAction.ROLLBACK],
    ['', UpdateConfig_FailureAction.PAUSE],
  ],
  { invalid: (name) => `unrecognized update failure action ${name}` },
);

const updateOrders = new DockerEnum<UpdateConfig_UpdateOrder>(
  'string',
  [
    ['stop-first', UpdateConfig_UpdateOrder.STOP_FIRST],
    ['start-first', UpdateConfig_UpdateOrder.START_FIRST],
    ['', UpdateConfig_UpdateOrder.STOP_FIRST],
  ],
  { invalid: (name) => `unrecognized update order ${name}` },
);

const resolutionModes = new DockerEnum<EndpointSpec_ResolutionMode>(
  'swarm.ResolutionMode',
  [
    ['vip', EndpointSpec_ResolutionMode.VIP],
    ['dnsrr', EndpointSpec_ResolutionMode.DNSRR],
    ['', EndpointSpec_ResolutionMode.VIP],
  ],
  { invalid: (name) => `invalid resolution mode: "${name}"` },
);

const updateStateNames = new Map<UpdateStatus_UpdateState, string>([
  [UpdateStatus_UpdateState.UPDATING, 'updating'],
  [UpdateStatus_UpdateState.PAUSED, 'paused'],
  [UpdateStatus_UpdateState.COMPLETED, 'completed'],
  [UpdateStatus_UpdateState.ROLLBACK_STARTED, 'rollback_started'],
  [UpdateStatus_UpdateState.ROLLBACK_PAUSED, 'rollback_paused'],
  [UpdateStatus_UpdateState.ROLLBACK_COMPLETED, 'rollback_completed'],
]);

/**
 * Reads the body of POST /services/create or /services/{id}/update into a ServiceSpec, as dockerd
 * does before handing it to swarmkit: with Go's type errors, moby's conversion errors (unknown
 * enum strings, an unsupported runtime, more than one mode) and its normalisation (no mode or an
 * empty replicated mode means one replica; a replicated job without counts runs one task at a
 * time and needs as many completions as it runs at once). Network targets stay as given, names
 * included: resolving them is the caller's, as is picking a name when none is given (dockerd
 * makes up one on create). Everything throws an INVALID_ARGUMENT ShoalError.
 */
export function serviceSpecFromDocker(body: unknown): ServiceSpec {
  const spec = Decoder.root(body, 'ServiceSpec');
  const update = spec.object('UpdateConfig', 'swarm.UpdateConfig');
  const rollback = spec.object('RollbackConfig', 'swarm.UpdateConfig');
  const endpoint = spec.object('EndpointSpec', 'swarm.EndpointSpec');
  return ServiceSpec.create({
    annotations: { name: spec.string('Name') ?? '', labels: spec.stringMap('Labels') ?? {} },
    task: taskSpecFromDocker(spec.object('TaskTemplate', 'swarm.TaskSpec')),
    ...modeFromDocker(spec.object('Mode', 'swarm.ServiceMode')),
    update: update && updateConfigFromDocker(update),
    rollback: rollback && updateConfigFromDocker(rollback),
    networks: networkAttachmentConfigsFromDocker(spec, 'Networks'),
    endpoint: endpoint && endpointSpecFromDocker(endpoint),
  });
}

type ServiceMode = Pick<ServiceSpec, 'replicated' | 'global' | 'replicatedJob' | 'globalJob'>;

function modeFromDocker(mode: Decoder | undefined): ServiceMode {
  const replicated = mode?.object('Replicated', 'swarm.ReplicatedService');
  const global = mode?.object('Global', 'swarm.GlobalService');
  const replicatedJob = mode?.object('ReplicatedJob', 'swarm.ReplicatedJob');
  const globalJob = mode?.object('GlobalJob', 'swarm.GlobalJob');
  const given = [replicated, global, replicatedJob, globalJob].filter((m) => m !== undefined);
  if (given.length > 1) throw errors.invalidArgument('must specify only one service mode');
  if (global !== undefined) return { global: {} };
  if (globalJob !== undefined) return { globalJob: {} };
  if (replicatedJob !== undefined) {
    const maxConcurrent = replicatedJob.uint64('MaxConcurrent') ?? 1n;
    const totalCompletions = replicatedJob.uint64('TotalCompletions') ?? maxConcurrent;
    return { replicatedJob: { maxConcurrent, totalCompletions } };
  }
  return { replicated: { replicas: replicated?.uint64('Replicas') ?? 1n } };
}

function modeToDocker(spec: ServiceSpec): DockerServiceMode {
  if (spec.replicated) return { Replicated: { Replicas: Number(spec.replicated.replicas) } };
  if (spec.global) return { Global: {} };
  if (spec.replicatedJob) {
    const { maxConcurrent, totalCompletions } = spec.replicatedJob;
    return { ReplicatedJob: { MaxConcurrent: Number(maxConcurrent), TotalCompletions: Number(totalCompletions) } };
  }
  if (spec.globalJob) return { GlobalJob: {} };
  return {};
}

/** moby keeps a monitor period only when it is non-zero, so zero and absent both mean the default. */
function updateConfigFromDocker(config: Decoder): UpdateConfig {
  const monitor = readDuration(config, 'Monitor');
  return UpdateConfig.create({
    parallelism: config.uint64('Parallelism') ?? 0n,
    delay: readDuration(config, 'Delay') ?? durationOfNanos(0),
    failureAction: failureActions.read(config, 'FailureAction'),
    monitor: monitor === undefined || durationToNanos(monitor) === 0 ? undefined : monitor,
    maxFailureRatio: readFloat32(config, 'MaxFailureRatio'),
    order: updateOrders.read(config, 'Order'),
  });
}

function updateConfigToDocker(config: UpdateConfig): DockerUpdateConfig {
  return {
    Parallelism: Number(config.parallelism),
    Delay: omitEmpty(durationToNanos(config.delay)),
    FailureAction: omitEmpty(failureActions.name(config.failureAction)),
    Monitor: omitEmpty(durationToNanos(config.monitor)),
    MaxFailureRatio: float32ForJson(config.maxFailureRatio),
    Order: updateOrders.name(config.order),
  };
}

/**
 * A Go float32: kept at float32 precision, which is all the stored (protobuf `float`) field holds,
 * so a spec reads the same before and after a trip through the store.
 */
function readFloat32(d: Decoder, key: string): number {
  const value = d.raw(key);
  if (typeof value === 'number') return Math.fround(value);
  // Anything else but absence fails the integer read too, with Go's message for its kind.
  return readAs('float32', () => d.integer(key)) ?? 0;
}

/**
 * The shortest decimal that reads back as the same float32, as Go prints a float32 (0.1, not the
 * 0.10000000149011612 the stored single-precision value is as a double).
 */
function float32ForJson(value: number): number {
  const single = Math.fround(value);
  for (let digits = 1; digits < 9; digits += 1) {
    const candidate = Number(single.toPrecision(digits));
    if (Math.fround(candidate) === single) return candidate;
  }
  return single;
}

function endpointSpecFromDocker(endpoint: Decoder): EndpointSpec {
  return EndpointSpec.create({
    mode: resolutionModes.read(endpoint, 'Mode'),
    ports: (endpoint.objectArray('Ports', 'swarm.PortConfig') ?? []).map(portConfigFromDocker),
  });
}

function endpointSpecToDocker(endpoint: EndpointSpec): DockerEndpointSpec {
  return {
    Mode: omitEmpty(resolutionModes.name(endpoint.mode)),
    Ports: omitEmpty(endpoint.ports.map(portConfigToDocker)),
  };
}

/**
 * A service spec in Docker's form, exactly as dockerd returns it from GET /services/{id}: the
 * stored spec (so the CLI can post it back unchanged), or with `insertDefaults` swarmkit's
 * defaults filled in.
 */
export function serviceSpecToDocker(spec: ServiceSpec, options: ServiceSpecWriteOptions): DockerServiceSpec {
  const shown = options.insertDefaults ? withSwarmDefaults(spec) : spec;
  const task = shown.task ?? TaskSpec.create();
  return {
    Name: omitEmpty(shown.annotations?.name ?? ''),
    Labels: { ...shown.annotations?.labels },
    TaskTemplate: { ...taskSpecToDocker(task), Runtime: task.container === undefined ? undefined : 'container' },
    Mode: modeToDocker(shown),
    UpdateConfig: shown.update && updateConfigToDocker(shown.update),
    RollbackConfig: shown.rollback && updateConfigToDocker(shown.rollback),
    Networks: omitEmpty(shown.networks.map(networkAttachmentConfigToDocker)),
    EndpointSpec: shown.endpoint && endpointSpecToDocker(shown.endpoint),
  };
}

const defaultStopGracePeriod = durationOfNanos(10e9);
const defaultRestartDelay = durationOfNanos(5e9);
const defaultMonitor = durationOfNanos(5e9);

/**
 * The spec with swarmkit's defaults (api/defaults.InterpolateService) filled in where the user
 * left them unset. The endpoint spec is not touched: swarmkit has no default for it.
 */
function withSwarmDefaults(spec: ServiceSpec): ServiceSpec {
  const task = spec.task ?? TaskSpec.create();
  const container = task.container;
  return {
    ...spec,
    task: {
      ...task,
      container: container && {
        ...container,
        stopGracePeriod: container.stopGracePeriod ?? defaultStopGracePeriod,
        dnsConfig: container.dnsConfig ?? ContainerSpec_DNSConfig.create(),
      },
      resources: task.resources ?? ResourceRequirements.create(),
      restart: task.restart
        ? { ...task.restart, delay: task.restart.delay ?? defaultRestartDelay }
        : RestartPolicy.create({ condition: RestartPolicy_RestartCondition.ANY, delay: defaultRestartDelay }),
      placement: task.placement ?? Placement.create(),
    },
    update: withUpdateDefaults(spec.update),
    rollback: withUpdateDefaults(spec.rollback),
  };
}

function withUpdateDefaults(config: UpdateConfig | undefined): UpdateConfig {
  if (config !== undefined) return { ...config, monitor: config.monitor ?? defaultMonitor };
  return UpdateConfig.create({
    parallelism: 1n,
    failureAction: UpdateConfig_FailureAction.PAUSE,
    monitor: defaultMonitor,
    order: UpdateConfig_UpdateOrder.STOP_FIRST,
  });
}

/** What a service listing adds to each service besides the service itself. */
export interface ServiceWriteOptions extends ServiceSpecWriteOptions {
  /** Task counts, shown only by GET /services?status=true. */
  serviceStatus?: { running: number; desired: number; completed: number };
}

/**
 * A service as dockerd's GET /services and GET /services/{id} return it (moby's ServiceFromGRPC).
 * `insertDefaults` applies to the current spec only; the previous spec is always shown as stored.
 */
export function serviceToDocker(service: Service, options: ServiceWriteOptions): DockerService {
  const { serviceStatus } = options;
  const jobStatus = service.jobStatus;
  return {
    ...dockerMeta(service.id, service.meta),
    Spec: serviceSpecToDocker(service.spec ?? ServiceSpec.create(), options),
    PreviousSpec: service.previousSpec && serviceSpecToDocker(service.previousSpec, { insertDefaults: false }),
    Endpoint: endpointToDocker(service.endpoint),
    UpdateStatus: service.updateStatus && updateStatusToDocker(service.updateStatus),
    ServiceStatus: serviceStatus && {
      RunningTasks: serviceStatus.running,
      DesiredTasks: serviceStatus.desired,
      CompletedTasks: serviceStatus.completed,
    },
    JobStatus: jobStatus && {
      JobIteration: versionToDocker(jobStatus.jobIteration),
      LastExecution: dockerTime(jobStatus.lastExecution),
    },
  };
}

function endpointToDocker(endpoint: Endpoint | undefined): DockerEndpoint {
  return {
    Spec: endpoint?.spec === undefined ? {} : endpointSpecToDocker(endpoint.spec),
    Ports: omitEmpty((endpoint?.ports ?? []).map(portConfigToDocker)),
    VirtualIPs: omitEmpty(
      (endpoint?.virtualIps ?? []).map((vip) => ({ NetworkID: omitEmpty(vip.networkId), Addr: omitEmpty(vip.addr) })),
    ),
  };
}

function updateStatusToDocker(status: UpdateStatus): DockerUpdateStatus {
  return {
    State: updateStateNames.get(status.state),
    StartedAt: shownTime(status.startedAt),
    CompletedAt: shownTime(status.completedAt),
    Message: omitEmpty(status.message),
  };
}

/** moby shows an update's times only when they are set and not the Unix epoch. */
function shownTime(time: Date | undefined): string | undefined {
  if (time === undefined || Math.trunc(time.getTime() / 1000) === 0) return undefined;
  return dockerTime(time);
}
