import type Dockerode from 'dockerode';
import { errors } from '@shoal/errors';
import {
  Mount_BindOptions_Propagation,
  Mount_Type,
  PortConfig_Protocol,
  PortConfig_PublishMode,
  Privileges_AppArmorOpts_AppArmorMode,
  Privileges_SeccompOpts_SeccompMode,
  taskName,
  type ContainerSpec,
  type Duration,
  type GenericResource,
  type Mount,
  type Privileges,
  type Task,
} from '@shoal/proto';
import type { TaskFile } from './task-files.js';

/** The label naming a container's task, so that `docker ps` (and a restarted agent) can map it back. */
export const TASK_ID_LABEL = 'com.docker.swarm.task.id';
/** The label naming the node a container's task is assigned to, so an agent finds its own containers. */
export const NODE_ID_LABEL = 'com.docker.swarm.node.id';
const SWARM_LABEL_PREFIX = 'com.docker.swarm';

/** Marks a network the engine predefines (host, bridge, none); a task attached to one joins it by name. */
const PREDEFINED_NETWORK_LABEL = 'com.docker.swarm.predefined';
/**
 * The network every other task container joins: Docker's default bridge, until Shoal's overlay data
 * plane (a later issue) attaches tasks to their service networks.
 */
const DEFAULT_NETWORK_MODE = 'bridge';

/** How long the engine waits between the stop signal and SIGKILL when the spec says nothing (swarmkit's default). */
const DEFAULT_STOP_GRACE_SECONDS = 10;

/** A mount as the engine's API takes it; @types/dockerode 4.0.2 lacks `BindOptions.NonRecursive` and makes volume options all-or-nothing. */
interface EngineMount {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source: string;
  Target: string;
  ReadOnly: boolean;
  BindOptions?: { Propagation?: Dockerode.MountPropagation; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy: boolean; Labels: Record<string, string>; DriverConfig?: { Name: string; Options: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** The body of the engine's container-create call for one task. */
export interface ContainerCreateBody extends Omit<Dockerode.ContainerCreateOptions, 'HostConfig' | 'abortSignal'> {
  name: string;
  Image: string;
  Labels: Record<string, string>;
  StopTimeout: number;
  HostConfig: Omit<Dockerode.HostConfig, 'Mounts'> & { Mounts: EngineMount[] };
}

/** A named volume the engine must create with its driver before the container can mount it. */
export interface VolumeToCreate {
  readonly name: string;
  readonly driver: string;
  readonly driverOptions: Record<string, string>;
  readonly labels: Record<string, string>;
}

/**
 * The container spec of `task`. Throws INVALID_ARGUMENT (the task is then rejected) for a task that is
 * not a container (swarmkit's `ErrRuntimeUnsupported`) or names no image (moby's `ErrImageRequired`).
 */
export function containerSpecOf(task: Task): ContainerSpec {
  const spec = task.spec?.container;
  if (spec === undefined) throw errors.invalidArgument('unsupported runtime', { taskId: task.id });
  if (spec.image === '') throw errors.invalidArgument('dockerexec: image required', { taskId: task.id });
  return spec;
}

/**
 * The image reference as the engine should pull and create it: with `:latest` when it names neither a
 * tag nor a digest, as Docker's swarm executor does (`reference.TagNameOnly`), so a pull never fetches
 * every tag of a repository.
 */
export function imageReference(image: string): string {
  if (image.includes('@')) return image;
  const lastSlash = image.lastIndexOf('/');
  return image.includes(':', lastSlash + 1) ? image : `${image}:latest`;
}

/** The stop grace period in whole seconds, rounded up (the engine takes seconds; rounding down would cut it short). */
function stopGraceSeconds(spec: ContainerSpec): number {
  return spec.stopGracePeriod === undefined ? DEFAULT_STOP_GRACE_SECONDS : Math.ceil(durationNanos(spec.stopGracePeriod) / 1e9);
}

/**
 * The create call for `task`'s container, mirroring moby's swarm executor (`containerConfig`): the
 * task's name and labels, command → Entrypoint and args → Cmd, the spec's environment, user, mounts,
 * resource limits and security options, the task files bind-mounted read-only, and no restart policy
 * (swarm replaces tasks; dockerd must not restart them behind its back).
 */
export function containerCreateBody(task: Task, spec: ContainerSpec, extraLabels: Readonly<Record<string, string>>, files: readonly TaskFile[]): ContainerCreateBody {
  const limits = task.spec?.resources?.limits;
  const swapBytes = task.spec?.resources?.swapBytes;
  const memoryBytes = limits === undefined ? 0 : Number(limits.memoryBytes);
  const memorySwappiness = task.spec?.resources?.memorySwappiness;
  const hostPorts = (task.endpoint?.ports ?? []).filter((port) => port.publishMode === PortConfig_PublishMode.HOST);
  const portKey = (port: (typeof hostPorts)[number]) => `${port.targetPort}/${protocolNames[port.protocol] ?? 'tcp'}`;
  return {
    name: taskName(task),
    Image: imageReference(spec.image),
    Labels: containerLabels(task, spec, extraLabels),
    ...commandOf(spec),
    Env: [...spec.env, ...genericResourceEnv(task.assignedGenericResources)],
    WorkingDir: spec.dir,
    User: spec.user,
    Hostname: spec.hostname,
    Tty: spec.tty,
    OpenStdin: spec.openStdin,
    ...(spec.stopSignal === '' ? {} : { StopSignal: spec.stopSignal }),
    StopTimeout: stopGraceSeconds(spec),
    ...(spec.healthcheck === undefined ? {} : { Healthcheck: healthcheckOf(spec.healthcheck) }),
    ExposedPorts: Object.fromEntries(hostPorts.map((port) => [portKey(port), {}])),
    HostConfig: {
      NetworkMode: networkMode(task),
      RestartPolicy: { Name: 'no' },
      PortBindings: Object.fromEntries(
        hostPorts.map((port) => [portKey(port), [port.publishedPort === 0 ? {} : { HostPort: String(port.publishedPort) }]]),
      ),
      Mounts: [...spec.mounts.map(engineMount), ...files.map(readOnlyBind)],
      ReadonlyRootfs: spec.readOnly,
      GroupAdd: spec.groups,
      ...(spec.init === undefined ? {} : { Init: spec.init }),
      Sysctls: spec.sysctls,
      CapAdd: spec.capabilityAdd,
      CapDrop: spec.capabilityDrop,
      OomScoreAdj: Number(spec.oomScoreAdj),
      Ulimits: spec.ulimits.map((ulimit) => ({ Name: ulimit.name, Soft: Number(ulimit.soft), Hard: Number(ulimit.hard) })),
      ...(spec.pidsLimit === 0n ? {} : { PidsLimit: Number(spec.pidsLimit) }),
      ...(spec.dnsConfig === undefined
        ? {}
        : { Dns: spec.dnsConfig.nameservers, DnsSearch: spec.dnsConfig.search, DnsOptions: spec.dnsConfig.options }),
      ExtraHosts: spec.hosts.flatMap(extraHost),
      SecurityOpt: securityOptions(spec.privileges),
      ...(task.logDriver === undefined ? {} : { LogConfig: { Type: task.logDriver.name, Config: task.logDriver.options } }),
      ...(limits === undefined || limits.nanoCpus <= 0n ? {} : { NanoCpus: Number(limits.nanoCpus) }),
      ...(memoryBytes <= 0 ? {} : { Memory: memoryBytes }),
      // MemorySwap is memory plus swap for the engine; -1 means unlimited swap.
      ...(memoryBytes <= 0 || swapBytes === undefined || swapBytes < -1n
        ? {}
        : { MemorySwap: swapBytes === -1n ? -1 : memoryBytes + Number(swapBytes) }),
      ...(memorySwappiness === undefined ? {} : { MemorySwappiness: Number(memorySwappiness) }),
    },
  };
}

/**
 * Named volumes whose mounts give a driver: moby creates them before the container (with the driver,
 * its options and labels), since the engine's implicit creation would use the default driver.
 */
export function volumesToCreate(spec: ContainerSpec): VolumeToCreate[] {
  return spec.mounts.flatMap((mount) => {
    const driver = mount.volumeOptions?.driverConfig;
    if (mount.type !== Mount_Type.VOLUME || driver === undefined || mount.source === '') return [];
    return [{ name: mount.source, driver: driver.name, driverOptions: driver.options, labels: mount.volumeOptions?.labels ?? {} }];
  });
}

/** The spec's labels, then the task's own, then the agent's, then the swarm labels, which always win. */
function containerLabels(task: Task, spec: ContainerSpec, extraLabels: Readonly<Record<string, string>>): Record<string, string> {
  return {
    ...spec.labels,
    ...task.annotations?.labels,
    ...extraLabels,
    [SWARM_LABEL_PREFIX + '.task']: '',
    [TASK_ID_LABEL]: task.id,
    [SWARM_LABEL_PREFIX + '.task.name']: taskName(task),
    [NODE_ID_LABEL]: task.nodeId,
    [SWARM_LABEL_PREFIX + '.service.id']: task.serviceId,
    [SWARM_LABEL_PREFIX + '.service.name']: task.serviceAnnotations?.name ?? '',
  };
}

/** A command replaces the whole invocation (its args become Cmd); args alone feed the image's entrypoint. */
function commandOf(spec: ContainerSpec): Pick<ContainerCreateBody, 'Entrypoint' | 'Cmd'> {
  if (spec.command.length > 0) return { Entrypoint: spec.command, Cmd: spec.args };
  return spec.args.length > 0 ? { Cmd: spec.args } : {};
}

function networkMode(task: Task): string {
  const first = task.networks[0]?.network?.spec?.annotations;
  return first?.labels[PREDEFINED_NETWORK_LABEL] === 'true' ? first.name : DEFAULT_NETWORK_MODE;
}

function healthcheckOf(health: NonNullable<ContainerSpec['healthcheck']>): Dockerode.HealthConfig {
  return {
    Test: health.test,
    Interval: durationNanos(health.interval),
    Timeout: durationNanos(health.timeout),
    Retries: health.retries,
    StartPeriod: durationNanos(health.startPeriod),
    StartInterval: durationNanos(health.startInterval),
  };
}

const propagationNames: Readonly<Record<number, Dockerode.MountPropagation>> = {
  [Mount_BindOptions_Propagation.RPRIVATE]: 'rprivate',
  [Mount_BindOptions_Propagation.PRIVATE]: 'private',
  [Mount_BindOptions_Propagation.RSHARED]: 'rshared',
  [Mount_BindOptions_Propagation.SHARED]: 'shared',
  [Mount_BindOptions_Propagation.RSLAVE]: 'rslave',
  [Mount_BindOptions_Propagation.SLAVE]: 'slave',
};

const mountTypeNames: Readonly<Record<number, EngineMount['Type']>> = {
  [Mount_Type.BIND]: 'bind',
  [Mount_Type.VOLUME]: 'volume',
  [Mount_Type.TMPFS]: 'tmpfs',
};

function engineMount(mount: Mount): EngineMount {
  const type = mountTypeNames[mount.type];
  // Named pipes exist only on Windows engines and cluster (CSI) volumes are not implemented.
  if (type === undefined) throw errors.invalidArgument(`unsupported mount type ${Mount_Type[mount.type] ?? mount.type} at ${mount.target}`);
  const { bindOptions, volumeOptions, tmpfsOptions } = mount;
  return {
    Type: type,
    Source: mount.source,
    Target: mount.target,
    ReadOnly: mount.readonly,
    ...(bindOptions === undefined
      ? {}
      : { BindOptions: { Propagation: propagationNames[bindOptions.propagation] ?? 'rprivate', NonRecursive: bindOptions.nonrecursive } }),
    ...(volumeOptions === undefined
      ? {}
      : {
          VolumeOptions: {
            NoCopy: volumeOptions.nocopy,
            Labels: volumeOptions.labels,
            ...(volumeOptions.driverConfig === undefined
              ? {}
              : { DriverConfig: { Name: volumeOptions.driverConfig.name, Options: volumeOptions.driverConfig.options } }),
          },
        }),
    ...(tmpfsOptions === undefined ? {} : { TmpfsOptions: { SizeBytes: Number(tmpfsOptions.sizeBytes), Mode: tmpfsOptions.mode } }),
  };
}

function readOnlyBind(file: TaskFile): EngineMount {
  return { Type: 'bind', Source: file.hostPath, Target: file.containerPath, ReadOnly: true };
}

const protocolNames: Readonly<Record<number, string>> = {
  [PortConfig_Protocol.TCP]: 'tcp',
  [PortConfig_Protocol.UDP]: 'udp',
  [PortConfig_Protocol.SCTP]: 'sctp',
};

/** swarmkit writes hosts entries as in /etc/hosts ("IP name [aliases]"); the engine wants "name:IP" (aliases are dropped, as moby does). */
function extraHost(entry: string): string[] {
  const [address, hostname] = entry.trim().split(/\s+/);
  return address === undefined || hostname === undefined ? [] : [`${hostname}:${address}`];
}

/** The engine's security options for the spec's privileges, as moby's `applyPrivileges` writes them (Windows credential specs aside). */
function securityOptions(privileges: Privileges | undefined): string[] {
  if (privileges === undefined) return [];
  const options: string[] = [];
  const selinux = privileges.selinuxContext;
  if (selinux !== undefined) {
    if (selinux.disable) options.push('label=disable');
    if (selinux.user !== '') options.push(`label=user:${selinux.user}`);
    if (selinux.role !== '') options.push(`label=role:${selinux.role}`);
    if (selinux.level !== '') options.push(`label=level:${selinux.level}`);
    if (selinux.type !== '') options.push(`label=type:${selinux.type}`);
  }
  if (privileges.seccomp?.mode === Privileges_SeccompOpts_SeccompMode.UNCONFINED) options.push('seccomp=unconfined');
  if (privileges.seccomp?.mode === Privileges_SeccompOpts_SeccompMode.CUSTOM) options.push(`seccomp=${Buffer.from(privileges.seccomp.profile).toString('utf8')}`);
  if (privileges.apparmor?.mode === Privileges_AppArmorOpts_AppArmorMode.DISABLED) options.push('apparmor=unconfined');
  if (privileges.noNewPrivileges) options.push('no-new-privileges=true');
  return options;
}

/**
 * The generic resources the scheduler reserved for the task, as environment variables the way swarmkit's
 * `genericresource.EnvFormat` writes them: `DOCKER_RESOURCE_<KIND>=<value>[,<value>…]`.
 */
function genericResourceEnv(resources: readonly GenericResource[]): string[] {
  const valuesByKind = new Map<string, string[]>();
  for (const resource of resources) {
    const named = resource.namedResourceSpec;
    const discrete = resource.discreteResourceSpec;
    const [kind, value] = named !== undefined ? [named.kind, named.value] : discrete !== undefined ? [discrete.kind, discrete.value.toString()] : [];
    if (kind === undefined || value === undefined) continue;
    const key = `DOCKER_RESOURCE_${kind.toUpperCase()}`;
    valuesByKind.set(key, [...(valuesByKind.get(key) ?? []), value]);
  }
  return [...valuesByKind].map(([key, values]) => `${key}=${values.join(',')}`);
}

function durationNanos(duration: Duration | undefined): number {
  return duration === undefined ? 0 : Number(duration.seconds) * 1e9 + duration.nanos;
}
