import { ErrorCode, errors, hasCode } from '@shoal/errors';
import {
  ConfigReference,
  ContainerSpec,
  ContainerSpec_Isolation,
  ContainerSpec_Ulimit,
  type Duration,
  type GenericResource,
  HealthConfig,
  Mount,
  Mount_BindOptions,
  Mount_BindOptions_Propagation,
  Mount_Consistency,
  Mount_TmpfsOptions,
  Mount_Type,
  Mount_VolumeOptions,
  Network,
  type NetworkAttachment,
  NetworkAttachmentConfig,
  Placement,
  PortConfig,
  PortConfig_Protocol,
  PortConfig_PublishMode,
  Privileges,
  Privileges_AppArmorOpts_AppArmorMode,
  type Privileges_CredentialSpec,
  Privileges_SeccompOpts_SeccompMode,
  type ResourceRequirements,
  type Resources,
  RestartPolicy,
  RestartPolicy_RestartCondition,
  SecretReference,
  type FileTarget,
  type Task,
  TaskSpec,
  TaskState,
  type Version,
  taskStateName,
} from '@shoal/proto';
import type { Decoder } from './decode.js';
import {
  type DockerDriver,
  type DockerSwarmNetwork,
  driverFromDocker,
  driverToDocker,
  networkToSwarmDocker,
} from './network.js';
import type { DockerGenericResource } from './node.js';
import { type DockerMeta, dockerMeta, dockerTime, durationOfNanos, nanosOf } from './wire.js';

// Docker's JSON shapes of a task and of the task template a service carries (moby's api/types/swarm,
// api/types/mount, api/types/container), and their conversion to and from shoal.v1.TaskSpec as
// moby's daemon/cluster/convert does it. Properties Go marks `omitempty` are optional here and
// left undefined when Go would omit them; JSON.stringify drops them.

/** `swarm.NetworkAttachmentConfig`: a network a service's tasks join. */
export interface DockerNetworkAttachmentConfig {
  /** A network ID, or (from `docker stack deploy`) a name the API resolves before storing. */
  Target?: string;
  Aliases?: string[];
  DriverOpts?: Record<string, string>;
}

/** `swarm.PortConfig`: a published port. */
export interface DockerPortConfig {
  Name?: string;
  Protocol?: string;
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: string;
}

/** The file a secret or config appears as: `Mode` is the decimal file mode (0444 is 292). */
export interface DockerFileTarget {
  Name: string;
  UID: string;
  GID: string;
  Mode: number;
}

export interface DockerSecretReference {
  File: DockerFileTarget | null;
  SecretID: string;
  SecretName: string;
}

export interface DockerConfigReference {
  File?: DockerFileTarget;
  /** Present (and empty) when the config is for the runtime itself, e.g. a credential spec. */
  Runtime?: Record<string, never>;
  ConfigID: string;
  ConfigName: string;
}

export interface DockerPrivileges {
  CredentialSpec: { Config: string; File: string; Registry: string } | null;
  SELinuxContext: { Disable: boolean; User: string; Role: string; Type: string; Level: string } | null;
  Seccomp?: { Mode?: string; Profile?: string };
  AppArmor?: { Mode?: string };
  NoNewPrivileges?: boolean;
}

/** `mount.Mount`. */
export interface DockerMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: {
    Propagation?: string;
    NonRecursive?: boolean;
    CreateMountpoint?: boolean;
    ReadOnlyNonRecursive?: boolean;
    ReadOnlyForceRecursive?: boolean;
  };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: DockerDriver; Subpath?: string };
  /** `Options` are `[name]` or `[name, value]` pairs, as mount(8) options. */
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
}

/** `container.HealthConfig`; durations in nanoseconds. */
export interface DockerHealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** `swarm.ContainerSpec`. */
export interface DockerContainerSpec {
  Image?: string;
  Labels?: Record<string, string>;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  Groups?: string[];
  Privileges?: DockerPrivileges;
  Init?: boolean;
  StopSignal?: string;
  TTY?: boolean;
  OpenStdin?: boolean;
  ReadOnly?: boolean;
  Mounts?: DockerMount[];
  StopGracePeriod?: number;
  Healthcheck?: DockerHealthConfig;
  Hosts?: string[];
  DNSConfig?: { Nameservers?: string[]; Search?: string[]; Options?: string[] };
  Secrets?: DockerSecretReference[];
  Configs?: DockerConfigReference[];
  Isolation?: string;
  Sysctls?: Record<string, string>;
  CapabilityAdd?: string[];
  CapabilityDrop?: string[];
  Ulimits?: { Name: string; Hard: number; Soft: number }[];
  OomScoreAdj?: number;
}

export interface DockerResourceRequirements {
  Limits?: { NanoCPUs?: number; MemoryBytes?: number; Pids?: number };
  Reservations?: { NanoCPUs?: number; MemoryBytes?: number; GenericResources?: DockerGenericResource[] };
  SwapBytes?: number;
  MemorySwappiness?: number;
}

export interface DockerRestartPolicy {
  Condition?: string;
  Delay?: number;
  MaxAttempts?: number;
  Window?: number;
}

export interface DockerPlacement {
  Constraints?: string[];
  Preferences?: { Spread: { SpreadDescriptor: string } }[];
  MaxReplicas?: number;
  Platforms?: { Architecture?: string; OS?: string }[];
}

/** `swarm.TaskSpec`: a task's spec, and a service's `TaskTemplate`. */
export interface DockerTaskSpec {
  ContainerSpec?: DockerContainerSpec;
  NetworkAttachmentSpec?: { ContainerID: string };
  Resources?: DockerResourceRequirements;
  RestartPolicy?: DockerRestartPolicy;
  Placement?: DockerPlacement;
  Networks?: DockerNetworkAttachmentConfig[];
  LogDriver?: DockerDriver;
  ForceUpdate: number;
  /** `container` on a service's template; `attachment` on a network-attachment task; else absent. */
  Runtime?: string;
}

/** `swarm.Version` as Go writes it when the index may be zero (`{}`), e.g. a job iteration. */
export interface DockerVersion {
  Index?: number;
}

/** A task's presence on a network: a full copy of the network and the task's addresses on it. */
export interface DockerNetworkAttachment {
  Network: DockerSwarmNetwork;
  Addresses?: string[];
}

export interface DockerTaskStatus {
  Timestamp: string;
  State: string;
  Message?: string;
  Err?: string;
  ContainerStatus?: { ContainerID: string; PID: number; ExitCode: number };
  PortStatus: { Ports?: DockerPortConfig[] };
}

/** `swarm.Task` (GET /tasks, GET /tasks/{id}). */
export interface DockerTask extends DockerMeta {
  Name?: string;
  Labels: Record<string, string>;
  Spec: DockerTaskSpec;
  ServiceID?: string;
  /** Omitted for global tasks, which the CLI then names after their node. */
  Slot?: number;
  NodeID?: string;
  Status: DockerTaskStatus;
  DesiredState: string;
  NetworksAttachments?: DockerNetworkAttachment[];
  GenericResources?: DockerGenericResource[];
  JobIteration?: DockerVersion;
}

/**
 * The strings of one Docker enum and the proto values they stand for. The first name listed for a
 * value is the one written back; later ones are accepted spellings (such as `""` for the default).
 */
export class DockerEnum<V extends number> {
  readonly #goType: string;
  readonly #valueByName = new Map<string, V>();
  readonly #nameByValue = new Map<V, string>();
  readonly #caseInsensitive: boolean;
  readonly #invalid: (name: string) => string;

  /**
   * @param goType The Go type dockerd decodes the field into, named in type errors.
   * @param names The names and their values, canonical spelling first.
   * @param options `caseInsensitive` where moby upper-cases before looking up; `invalid` words the
   *   error for a name that is not listed, as dockerd does for this enum.
   */
  constructor(
    goType: string,
    names: readonly (readonly [string, V])[],
    options: { caseInsensitive?: boolean; invalid: (name: string) => string },
  ) {
    this.#goType = goType;
    for (const [name, value] of names) {
      this.#valueByName.set(name, value);
      if (!this.#nameByValue.has(value)) this.#nameByValue.set(value, name);
    }
    this.#caseInsensitive = options.caseInsensitive ?? false;
    this.#invalid = options.invalid;
  }

  /** Reads the field `key` (absence reads as `""`). Throws INVALID_ARGUMENT for a non-string or an unknown name. */
  read(d: Decoder, key: string): V {
    const name = readAs(this.#goType, () => d.string(key)) ?? '';
    const value = this.#valueByName.get(this.#caseInsensitive ? name.toLowerCase() : name);
    if (value === undefined) throw errors.invalidArgument(this.#invalid(name));
    return value;
  }

  /** The Docker name of a value; `""` (which Go omits) for a value the enum does not know. */
  name(value: V): string {
    return this.#nameByValue.get(value) ?? '';
  }
}

/**
 * Go's `omitempty`: the value, or undefined when it is the zero value of a string, number, bool,
 * slice or map. Only for fields Go declares `omitempty`; Go never omits a struct.
 */
export function omitEmpty<T>(value: T): T | undefined {
  if (value === '' || value === 0 || value === false) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value;
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return undefined;
  return value;
}

/**
 * Runs a Decoder read and, if it fails on the value's type, names the Go type dockerd's decoder
 * would (`time.Duration`, `fs.FileMode`, `swarm.RestartPolicyCondition`) instead of the
 * underlying kind the Decoder checked (`int64`, `uint32`, `string`).
 */
export function readAs<T>(goType: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (hasCode(err, ErrorCode.InvalidArgument) && err.message.startsWith('json: cannot unmarshal ')) {
      throw errors.invalidArgument(err.message.replace(/ of type \S+$/, ` of type ${goType}`));
    }
    throw err;
  }
}

/** A `time.Duration` (integer nanoseconds). */
export function readDuration(d: Decoder, key: string): Duration | undefined {
  const nanos = readAs('time.Duration', () => d.integer(key, 'int64'));
  return nanos === undefined ? undefined : durationOfNanos(nanos);
}

/** An `os.FileMode`: permission bits as a decimal number (0444 is 292). */
function readFileMode(d: Decoder, key: string): number {
  return readAs('fs.FileMode', () => d.integer(key, 'uint32')) ?? 0;
}

/** A non-nullable `time.Duration`, which Go leaves at zero when absent. */
export function durationToNanos(duration: Duration | undefined): number {
  return duration === undefined ? 0 : nanosOf(duration);
}

/** An int64 or uint64 field as the bigint the proto carries. */
function readBig(d: Decoder, key: string, goType: 'int64' | 'uint64' = 'int64'): bigint {
  return BigInt(d.integer(key, goType) ?? 0);
}

/** A `map[string]string`, empty when absent. */
function readMap(d: Decoder, key: string): Record<string, string> {
  return d.stringMap(key) ?? {};
}

function readList(d: Decoder, key: string): string[] {
  return d.stringArray(key) ?? [];
}

export function networkAttachmentConfigsFromDocker(d: Decoder, key: string): NetworkAttachmentConfig[] {
  return (d.objectArray(key, 'swarm.NetworkAttachmentConfig') ?? []).map((network) =>
    NetworkAttachmentConfig.create({
      target: network.string('Target') ?? '',
      aliases: readList(network, 'Aliases'),
      driverAttachmentOpts: readMap(network, 'DriverOpts'),
    }),
  );
}

export function networkAttachmentConfigToDocker(network: NetworkAttachmentConfig): DockerNetworkAttachmentConfig {
  return {
    Target: omitEmpty(network.target),
    Aliases: omitEmpty(network.aliases),
    DriverOpts: omitEmpty(network.driverAttachmentOpts),
  };
}

const portProtocols = new DockerEnum<PortConfig_Protocol>(
  'swarm.PortConfigProtocol',
  [
    ['tcp', PortConfig_Protocol.TCP],
    ['udp', PortConfig_Protocol.UDP],
    ['sctp', PortConfig_Protocol.SCTP],
    ['', PortConfig_Protocol.TCP],
  ],
  { caseInsensitive: true, invalid: (name) => `invalid port protocol: "${name}"` },
);

const publishModes = new DockerEnum<PortConfig_PublishMode>(
  'swarm.PortConfigPublishMode',
  [
    ['ingress', PortConfig_PublishMode.INGRESS],
    ['host', PortConfig_PublishMode.HOST],
    ['', PortConfig_PublishMode.INGRESS],
  ],
  { caseInsensitive: true, invalid: (name) => `invalid port publish mode: "${name}"` },
);

/** A published port; a missing protocol means tcp and a missing publish mode ingress, as in dockerd. */
export function portConfigFromDocker(port: Decoder): PortConfig {
  return PortConfig.create({
    name: port.string('Name') ?? '',
    protocol: portProtocols.read(port, 'Protocol'),
    targetPort: port.integer('TargetPort', 'uint32') ?? 0,
    publishedPort: port.integer('PublishedPort', 'uint32') ?? 0,
    publishMode: publishModes.read(port, 'PublishMode'),
  });
}

export function portConfigToDocker(port: PortConfig): DockerPortConfig {
  return {
    Name: omitEmpty(port.name),
    Protocol: omitEmpty(portProtocols.name(port.protocol)),
    TargetPort: omitEmpty(port.targetPort),
    PublishedPort: omitEmpty(port.publishedPort),
    PublishMode: omitEmpty(publishModes.name(port.publishMode)),
  };
}

const restartConditions = new DockerEnum<RestartPolicy_RestartCondition>(
  'swarm.RestartPolicyCondition',
  [
    ['none', RestartPolicy_RestartCondition.NONE],
    ['on-failure', RestartPolicy_RestartCondition.ON_FAILURE],
    ['any', RestartPolicy_RestartCondition.ANY],
    ['', RestartPolicy_RestartCondition.ANY],
  ],
  { invalid: (name) => `invalid RestartCondition: "${name}"` },
);

const mountTypes = new DockerEnum<Mount_Type>(
  'mount.Type',
  [
    ['bind', Mount_Type.BIND],
    ['volume', Mount_Type.VOLUME],
    ['tmpfs', Mount_Type.TMPFS],
    ['npipe', Mount_Type.NPIPE],
    ['cluster', Mount_Type.CLUSTER],
    ['', Mount_Type.BIND],
  ],
  { caseInsensitive: true, invalid: (name) => `invalid MountType: "${name}"` },
);

const propagations = new DockerEnum<Mount_BindOptions_Propagation>(
  'mount.Propagation',
  [
    ['rprivate', Mount_BindOptions_Propagation.RPRIVATE],
    ['private', Mount_BindOptions_Propagation.PRIVATE],
    ['rshared', Mount_BindOptions_Propagation.RSHARED],
    ['shared', Mount_BindOptions_Propagation.SHARED],
    ['rslave', Mount_BindOptions_Propagation.RSLAVE],
    ['slave', Mount_BindOptions_Propagation.SLAVE],
    ['', Mount_BindOptions_Propagation.RPRIVATE],
  ],
  { caseInsensitive: true, invalid: (name) => `invalid MountPropagation: "${name}"` },
);

// moby never returns a consistency; the default reads back as none.
const consistencies = new DockerEnum<Mount_Consistency>(
  'mount.Consistency',
  [
    ['', Mount_Consistency.DEFAULT],
    ['default', Mount_Consistency.DEFAULT],
    ['consistent', Mount_Consistency.CONSISTENT],
    ['cached', Mount_Consistency.CACHED],
    ['delegated', Mount_Consistency.DELEGATED],
  ],
  { invalid: (name) => `invalid MountConsistency: "${name}"` },
);

const isolations = new DockerEnum<ContainerSpec_Isolation>(
  'container.Isolation',
  [
    ['default', ContainerSpec_Isolation.DEFAULT],
    ['process', ContainerSpec_Isolation.PROCESS],
    ['hyperv', ContainerSpec_Isolation.HYPERV],
    ['', ContainerSpec_Isolation.DEFAULT],
  ],
  { caseInsensitive: true, invalid: (name) => `invalid isolation: "${name}"` },
);

const seccompModes = new DockerEnum<Privileges_SeccompOpts_SeccompMode>(
  'swarm.SeccompMode',
  [
    ['default', Privileges_SeccompOpts_SeccompMode.DEFAULT],
    ['unconfined', Privileges_SeccompOpts_SeccompMode.UNCONFINED],
    ['custom', Privileges_SeccompOpts_SeccompMode.CUSTOM],
    ['', Privileges_SeccompOpts_SeccompMode.DEFAULT],
  ],
  { invalid: (name) => `invalid SeccompMode: "${name}"` },
);

const appArmorModes = new DockerEnum<Privileges_AppArmorOpts_AppArmorMode>(
  'swarm.AppArmorMode',
  [
    ['default', Privileges_AppArmorOpts_AppArmorMode.DEFAULT],
    ['disabled', Privileges_AppArmorOpts_AppArmorMode.DISABLED],
    ['', Privileges_AppArmorOpts_AppArmorMode.DEFAULT],
  ],
  { invalid: (name) => `invalid AppArmorMode: "${name}"` },
);

/**
 * Converts a service's `TaskTemplate`, as dockerd's ServiceSpecToGRPC does. Only the `container`
 * runtime is supported (an empty Runtime means it), and it needs a ContainerSpec.
 * `Resources.Limits.Pids` is kept as the container's pids limit, where swarmkit keeps it.
 */
export function taskSpecFromDocker(template: Decoder | undefined): TaskSpec {
  const runtime = template === undefined ? '' : (readAs('swarm.RuntimeType', () => template.string('Runtime')) ?? '');
  if (runtime !== '' && runtime !== 'container') {
    throw errors.invalidArgument(`unsupported runtime "${runtime}": only "container" is supported`);
  }
  const container = template?.object('ContainerSpec', 'swarm.ContainerSpec');
  if (template === undefined || container === undefined) {
    throw errors.invalidArgument('mismatched Runtime and *Spec fields');
  }
  const resources = template.object('Resources', 'swarm.ResourceRequirements');
  const pidsLimit = resources?.object('Limits', 'swarm.Limit')?.integer('Pids', 'int64') ?? 0;
  const restart = template.object('RestartPolicy', 'swarm.RestartPolicy');
  const placement = template.object('Placement', 'swarm.Placement');
  return TaskSpec.create({
    container: containerSpecFromDocker(container, BigInt(pidsLimit)),
    resources: resources && resourcesFromDocker(resources),
    restart: restart && restartPolicyFromDocker(restart),
    placement: placement && placementFromDocker(placement),
    logDriver: driverFromDocker(template, 'LogDriver'),
    networks: networkAttachmentConfigsFromDocker(template, 'Networks'),
    forceUpdate: readBig(template, 'ForceUpdate', 'uint64'),
  });
}

/**
 * A task spec in Docker's form, as moby's taskSpecFromGRPC writes it: a task's `Spec`, and (with
 * `Runtime: "container"` added by the service converter) a service's `TaskTemplate`.
 */
export function taskSpecToDocker(spec: TaskSpec): DockerTaskSpec {
  return {
    ContainerSpec: spec.container && containerSpecToDocker(spec.container),
    NetworkAttachmentSpec: spec.attachment && { ContainerID: spec.attachment.containerId },
    Resources: resourcesToDocker(spec),
    RestartPolicy: spec.restart && restartPolicyToDocker(spec.restart),
    Placement: spec.placement && placementToDocker(spec.placement),
    Networks: omitEmpty(spec.networks.map(networkAttachmentConfigToDocker)),
    LogDriver: spec.logDriver && driverToDocker(spec.logDriver),
    ForceUpdate: Number(spec.forceUpdate),
    Runtime: spec.attachment === undefined ? undefined : 'attachment',
  };
}

function containerSpecFromDocker(c: Decoder, pidsLimit: bigint): ContainerSpec {
  const privileges = c.object('Privileges', 'swarm.Privileges');
  const healthcheck = c.object('Healthcheck', 'container.HealthConfig');
  const dnsConfig = c.object('DNSConfig', 'swarm.DNSConfig');
  return ContainerSpec.create({
    image: c.string('Image') ?? '',
    labels: readMap(c, 'Labels'),
    command: readList(c, 'Command'),
    args: readList(c, 'Args'),
    hostname: c.string('Hostname') ?? '',
    env: readList(c, 'Env'),
    dir: c.string('Dir') ?? '',
    user: c.string('User') ?? '',
    groups: readList(c, 'Groups'),
    privileges: privileges && privilegesFromDocker(privileges),
    init: c.boolean('Init'),
    stopSignal: c.string('StopSignal') ?? '',
    tty: c.boolean('TTY') ?? false,
    openStdin: c.boolean('OpenStdin') ?? false,
    readOnly: c.boolean('ReadOnly') ?? false,
    mounts: (c.objectArray('Mounts', 'mount.Mount') ?? []).map(mountFromDocker),
    stopGracePeriod: readDuration(c, 'StopGracePeriod'),
    healthcheck: healthcheck && healthConfigFromDocker(healthcheck),
    hosts: readList(c, 'Hosts'),
    dnsConfig: dnsConfig && {
      nameservers: readList(dnsConfig, 'Nameservers'),
      search: readList(dnsConfig, 'Search'),
      options: readList(dnsConfig, 'Options'),
    },
    secrets: (c.objectArray('Secrets', 'swarm.SecretReference') ?? []).map(secretReferenceFromDocker),
    configs: (c.objectArray('Configs', 'swarm.ConfigReference') ?? []).map(configReferenceFromDocker),
    isolation: isolations.read(c, 'Isolation'),
    sysctls: readMap(c, 'Sysctls'),
    capabilityAdd: readList(c, 'CapabilityAdd'),
    capabilityDrop: readList(c, 'CapabilityDrop'),
    ulimits: (c.objectArray('Ulimits', 'container.Ulimit') ?? []).map((ulimit) =>
      ContainerSpec_Ulimit.create({
        name: ulimit.string('Name') ?? '',
        soft: readBig(ulimit, 'Soft'),
        hard: readBig(ulimit, 'Hard'),
      }),
    ),
    oomScoreAdj: readBig(c, 'OomScoreAdj'),
    pidsLimit,
  });
}

function containerSpecToDocker(c: ContainerSpec): DockerContainerSpec {
  return {
    Image: omitEmpty(c.image),
    Labels: omitEmpty(c.labels),
    Command: omitEmpty(c.command),
    Args: omitEmpty(c.args),
    Hostname: omitEmpty(c.hostname),
    Env: omitEmpty(c.env),
    Dir: omitEmpty(c.dir),
    User: omitEmpty(c.user),
    Groups: omitEmpty(c.groups),
    Privileges: c.privileges && privilegesToDocker(c.privileges),
    Init: c.init,
    StopSignal: omitEmpty(c.stopSignal),
    TTY: omitEmpty(c.tty),
    OpenStdin: omitEmpty(c.openStdin),
    ReadOnly: omitEmpty(c.readOnly),
    Mounts: omitEmpty(c.mounts.map(mountToDocker)),
    StopGracePeriod: c.stopGracePeriod && nanosOf(c.stopGracePeriod),
    Healthcheck: c.healthcheck && healthConfigToDocker(c.healthcheck),
    Hosts: omitEmpty(c.hosts),
    DNSConfig: c.dnsConfig && {
      Nameservers: omitEmpty(c.dnsConfig.nameservers),
      Search: omitEmpty(c.dnsConfig.search),
      Options: omitEmpty(c.dnsConfig.options),
    },
    // dockerd lists only secrets with a file target; one without is malformed and refused on write.
    Secrets: omitEmpty(
      c.secrets.flatMap((secret) =>
        secret.file === undefined
          ? []
          : [{ File: fileTargetToDocker(secret.file), SecretID: secret.secretId, SecretName: secret.secretName }],
      ),
    ),
    Configs: omitEmpty(
      c.configs
        .filter((config) => config.file !== undefined || config.runtime !== undefined)
        .map(configReferenceToDocker),
    ),
    Isolation: omitEmpty(isolations.name(c.isolation)),
    Sysctls: omitEmpty(c.sysctls),
    CapabilityAdd: omitEmpty(c.capabilityAdd),
    CapabilityDrop: omitEmpty(c.capabilityDrop),
    Ulimits: omitEmpty(c.ulimits.map((u) => ({ Name: u.name, Hard: Number(u.hard), Soft: Number(u.soft) }))),
    OomScoreAdj: omitEmpty(Number(c.oomScoreAdj)),
  };
}

function privilegesFromDocker(p: Decoder): Privileges {
  const credentialSpec = p.object('CredentialSpec', 'swarm.CredentialSpec');
  const selinux = p.object('SELinuxContext', 'swarm.SELinuxContext');
  const seccomp = p.object('Seccomp', 'swarm.SeccompOpts');
  const appArmor = p.object('AppArmor', 'swarm.AppArmorOpts');
  return Privileges.create({
    credentialSpec: credentialSpec && credentialSpecFromDocker(credentialSpec),
    selinuxContext: selinux && {
      disable: selinux.boolean('Disable') ?? false,
      user: selinux.string('User') ?? '',
      role: selinux.string('Role') ?? '',
      type: selinux.string('Type') ?? '',
      level: selinux.string('Level') ?? '',
    },
    seccomp: seccomp && {
      mode: seccompModes.read(seccomp, 'Mode'),
      profile: readBase64(seccomp, 'Profile'),
    },
    apparmor: appArmor && { mode: appArmorModes.read(appArmor, 'Mode') },
    noNewPrivileges: p.boolean('NoNewPrivileges') ?? false,
  });
}

/** A credential spec names exactly one source, as moby's credentialSpecToGRPC requires. */
function credentialSpecFromDocker(spec: Decoder): Privileges_CredentialSpec {
  const config = spec.string('Config') ?? '';
  const file = spec.string('File') ?? '';
  const registry = spec.string('Registry') ?? '';
  const given = [
    ['"config"', config],
    ['"file"', file],
    ['"registry"', registry],
  ].flatMap(([quoted, value]) => (value === '' ? [] : [quoted]));
  if (given.length === 0) {
    throw errors.invalidArgument(
      'invalid CredentialSpec: must either provide "file", "registry", or "config" for credential spec',
    );
  }
  if (given.length > 1) {
    const listed = given.length === 2 ? given.join(' and ') : `${given.slice(0, -1).join(', ')}, and ${given.at(-1)}`;
    throw errors.invalidArgument(`invalid CredentialSpec: cannot specify both ${listed} credential specs`);
  }
  if (config !== '') return { config };
  return file !== '' ? { file } : { registry };
}

function privilegesToDocker(p: Privileges): DockerPrivileges {
  const credentialSpec = p.credentialSpec;
  const selinux = p.selinuxContext;
  return {
    CredentialSpec: credentialSpec
      ? {
          Config: credentialSpec.config ?? '',
          File: credentialSpec.file ?? '',
          Registry: credentialSpec.registry ?? '',
        }
      : null,
    SELinuxContext: selinux
      ? { Disable: selinux.disable, User: selinux.user, Role: selinux.role, Type: selinux.type, Level: selinux.level }
      : null,
    Seccomp: p.seccomp && {
      Mode: omitEmpty(seccompModes.name(p.seccomp.mode)),
      Profile: omitEmpty(p.seccomp.profile.toString('base64')),
    },
    AppArmor: p.apparmor && { Mode: omitEmpty(appArmorModes.name(p.apparmor.mode)) },
    // dockerd 20.10 (API 1.41) has no such field; only a set flag is worth echoing to newer clients.
    NoNewPrivileges: omitEmpty(p.noNewPrivileges),
  };
}

/** A `[]byte`, which Go's JSON carries as standard padded base64. */
function readBase64(d: Decoder, key: string): Buffer {
  const text = readAs('[]uint8', () => d.string(key)) ?? '';
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw errors.invalidArgument(`illegal base64 data in ${d.pathOf(key)}`);
  return bytes;
}

function mountFromDocker(m: Decoder): Mount {
  const bind = m.object('BindOptions', 'mount.BindOptions');
  const volume = m.object('VolumeOptions', 'mount.VolumeOptions');
  const tmpfs = m.object('TmpfsOptions', 'mount.TmpfsOptions');
  return Mount.create({
    type: mountTypes.read(m, 'Type'),
    source: m.string('Source') ?? '',
    target: m.string('Target') ?? '',
    readonly: m.boolean('ReadOnly') ?? false,
    consistency: consistencies.read(m, 'Consistency'),
    bindOptions: bind && bindOptionsFromDocker(bind),
    volumeOptions:
      volume &&
      Mount_VolumeOptions.create({
        nocopy: volume.boolean('NoCopy') ?? false,
        labels: readMap(volume, 'Labels'),
        driverConfig: driverFromDocker(volume, 'DriverConfig'),
        subpath: volume.string('Subpath') ?? '',
      }),
    tmpfsOptions:
      tmpfs &&
      Mount_TmpfsOptions.create({
        sizeBytes: readBig(tmpfs, 'SizeBytes'),
        mode: readFileMode(tmpfs, 'Mode'),
        options: tmpfsOptionsFromDocker(tmpfs),
      }),
  });
}

/**
 * Bind options are kept only when they say something: moby drops `{}` (an empty propagation is
 * the default rprivate), so such a mount reads back without BindOptions.
 */
function bindOptionsFromDocker(bind: Decoder): Mount_BindOptions | undefined {
  const options = Mount_BindOptions.create({
    propagation: propagations.read(bind, 'Propagation'),
    nonrecursive: bind.boolean('NonRecursive') ?? false,
    createmountpoint: bind.boolean('CreateMountpoint') ?? false,
    readonlynonrecursive: bind.boolean('ReadOnlyNonRecursive') ?? false,
    readonlyforcerecursive: bind.boolean('ReadOnlyForceRecursive') ?? false,
  });
  const saysSomething =
    (bind.string('Propagation') ?? '') !== '' ||
    options.nonrecursive ||
    options.createmountpoint ||
    options.readonlynonrecursive ||
    options.readonlyforcerecursive;
  return saysSomething ? options : undefined;
}

/**
 * Docker's `[][]string` tmpfs options (`[["noexec"], ["mode", "1770"]]`) as the mount(8) option
 * string the proto carries (`noexec,mode=1770`). Each option is a name, or a name and a value.
 */
function tmpfsOptionsFromDocker(tmpfs: Decoder): string {
  const raw = tmpfs.raw('Options');
  if (raw === undefined) return '';
  const isOption = (option: unknown): option is [string] | [string, string] =>
    Array.isArray(option) &&
    (option.length === 1 || option.length === 2) &&
    option.every((part) => typeof part === 'string' && !part.includes(',')) &&
    !String(option[0]).includes('=');
  if (!Array.isArray(raw) || !raw.every(isOption)) {
    throw errors.invalidArgument(
      `${tmpfs.pathOf('Options')} must be a list of [name] or [name, value] options without "," (and no "=" in a name)`,
    );
  }
  return raw.map((option) => option.join('=')).join(',');
}

function tmpfsOptionsToDocker(options: string): string[][] | undefined {
  if (options === '') return undefined;
  return options.split(',').map((option) => {
    const equals = option.indexOf('=');
    return equals < 0 ? [option] : [option.slice(0, equals), option.slice(equals + 1)];
  });
}

function mountToDocker(m: Mount): DockerMount {
  const bind = m.bindOptions;
  const volume = m.volumeOptions;
  const tmpfs = m.tmpfsOptions;
  return {
    Type: omitEmpty(mountTypes.name(m.type)),
    Source: omitEmpty(m.source),
    Target: omitEmpty(m.target),
    ReadOnly: omitEmpty(m.readonly),
    Consistency: omitEmpty(consistencies.name(m.consistency)),
    BindOptions: bind && {
      Propagation: omitEmpty(propagations.name(bind.propagation)),
      NonRecursive: omitEmpty(bind.nonrecursive),
      CreateMountpoint: omitEmpty(bind.createmountpoint),
      ReadOnlyNonRecursive: omitEmpty(bind.readonlynonrecursive),
      ReadOnlyForceRecursive: omitEmpty(bind.readonlyforcerecursive),
    },
    VolumeOptions: volume && {
      NoCopy: omitEmpty(volume.nocopy),
      Labels: omitEmpty(volume.labels),
      DriverConfig: volume.driverConfig && driverToDocker(volume.driverConfig),
      Subpath: omitEmpty(volume.subpath),
    },
    TmpfsOptions: tmpfs && {
      SizeBytes: omitEmpty(Number(tmpfs.sizeBytes)),
      Mode: omitEmpty(tmpfs.mode),
      Options: tmpfsOptionsToDocker(tmpfs.options),
    },
  };
}

/** moby sets every duration of a healthcheck, zero included, so absent and zero read the same. */
function healthConfigFromDocker(h: Decoder): HealthConfig {
  const zero = durationOfNanos(0);
  return HealthConfig.create({
    test: readList(h, 'Test'),
    interval: readDuration(h, 'Interval') ?? zero,
    timeout: readDuration(h, 'Timeout') ?? zero,
    startPeriod: readDuration(h, 'StartPeriod') ?? zero,
    startInterval: readDuration(h, 'StartInterval') ?? zero,
    retries: readAs('int', () => h.integer('Retries', 'int32')) ?? 0,
  });
}

function healthConfigToDocker(h: HealthConfig): DockerHealthConfig {
  return {
    Test: omitEmpty(h.test),
    Interval: omitEmpty(durationToNanos(h.interval)),
    Timeout: omitEmpty(durationToNanos(h.timeout)),
    StartPeriod: omitEmpty(durationToNanos(h.startPeriod)),
    StartInterval: omitEmpty(durationToNanos(h.startInterval)),
    Retries: omitEmpty(h.retries),
  };
}

function fileTargetFromDocker(file: Decoder): FileTarget {
  return {
    name: file.string('Name') ?? '',
    uid: file.string('UID') ?? '',
    gid: file.string('GID') ?? '',
    mode: readFileMode(file, 'Mode'),
  };
}

function fileTargetToDocker(file: FileTarget): DockerFileTarget {
  return { Name: file.name, UID: file.uid, GID: file.gid, Mode: file.mode };
}

function secretReferenceFromDocker(secret: Decoder): SecretReference {
  const file = secret.object('File', 'swarm.SecretReferenceFileTarget');
  return SecretReference.create({
    secretId: secret.string('SecretID') ?? '',
    secretName: secret.string('SecretName') ?? '',
    file: file && fileTargetFromDocker(file),
  });
}

/** A config goes to a file or to the runtime (a credential spec), never both and never neither. */
function configReferenceFromDocker(config: Decoder): ConfigReference {
  const file = config.object('File', 'swarm.ConfigReferenceFileTarget');
  const runtime = config.object('Runtime', 'swarm.ConfigReferenceRuntimeTarget');
  if (file === undefined && runtime === undefined) {
    throw errors.invalidArgument('invalid Config: either File or Runtime should be set');
  }
  if (file !== undefined && runtime !== undefined) {
    throw errors.invalidArgument('invalid Config: cannot specify both File and Runtime');
  }
  return ConfigReference.create({
    configId: config.string('ConfigID') ?? '',
    configName: config.string('ConfigName') ?? '',
    file: file && fileTargetFromDocker(file),
    runtime: runtime && {},
  });
}

function configReferenceToDocker(config: ConfigReference): DockerConfigReference {
  return {
    File: config.file && fileTargetToDocker(config.file),
    Runtime: config.runtime && {},
    ConfigID: config.configId,
    ConfigName: config.configName,
  };
}

function resourcesFromDocker(r: Decoder): ResourceRequirements {
  const limits = r.object('Limits', 'swarm.Limit');
  const reservations = r.object('Reservations', 'swarm.Resources');
  const swapBytes = r.integer('SwapBytes', 'int64');
  const memorySwappiness = r.integer('MemorySwappiness', 'int64');
  return {
    limits: limits && {
      nanoCpus: readBig(limits, 'NanoCPUs'),
      memoryBytes: readBig(limits, 'MemoryBytes'),
      generic: [],
    },
    reservations: reservations && {
      nanoCpus: readBig(reservations, 'NanoCPUs'),
      memoryBytes: readBig(reservations, 'MemoryBytes'),
      generic: (reservations.objectArray('GenericResources', 'swarm.GenericResource') ?? []).flatMap(
        genericResourceFromDocker,
      ),
    },
    swapBytes: swapBytes === undefined ? undefined : BigInt(swapBytes),
    memorySwappiness: memorySwappiness === undefined ? undefined : BigInt(memorySwappiness),
  };
}

/** A generic resource names a discrete count or a named unit; one naming neither is dropped, as moby does. */
function genericResourceFromDocker(resource: Decoder): GenericResource[] {
  const discrete = resource.object('DiscreteResourceSpec', 'swarm.DiscreteGenericResource');
  if (discrete !== undefined) {
    return [{ discreteResourceSpec: { kind: discrete.string('Kind') ?? '', value: readBig(discrete, 'Value') } }];
  }
  const named = resource.object('NamedResourceSpec', 'swarm.NamedGenericResource');
  if (named !== undefined) {
    return [{ namedResourceSpec: { kind: named.string('Kind') ?? '', value: named.string('Value') ?? '' } }];
  }
  return [];
}

function genericResourceToDocker(resource: GenericResource): DockerGenericResource {
  const { discreteResourceSpec: discrete, namedResourceSpec: named } = resource;
  return {
    NamedResourceSpec: named && { Kind: omitEmpty(named.kind), Value: omitEmpty(named.value) },
    DiscreteResourceSpec: discrete && { Kind: omitEmpty(discrete.kind), Value: omitEmpty(Number(discrete.value)) },
  };
}

/** Resources, with the container's pids limit shown as `Limits.Pids` as moby's resourcesFromGRPC does. */
function resourcesToDocker(spec: TaskSpec): DockerResourceRequirements | undefined {
  const pids = Number(spec.container?.pidsLimit ?? 0n);
  const resources = spec.resources;
  if (resources === undefined && pids === 0) return undefined;
  const limits = resources?.limits;
  const reservations = resources?.reservations;
  const limitsShown = limits !== undefined || pids !== 0;
  return {
    Limits: limitsShown ? { ...resourceAmounts(limits), Pids: omitEmpty(pids) } : undefined,
    Reservations: reservations && {
      ...resourceAmounts(reservations),
      GenericResources: omitEmpty(reservations.generic.map(genericResourceToDocker)),
    },
    SwapBytes: resources?.swapBytes === undefined ? undefined : Number(resources.swapBytes),
    MemorySwappiness: resources?.memorySwappiness === undefined ? undefined : Number(resources.memorySwappiness),
  };
}

function resourceAmounts(resources: Resources | undefined): { NanoCPUs?: number; MemoryBytes?: number } {
  return {
    NanoCPUs: omitEmpty(Number(resources?.nanoCpus ?? 0n)),
    MemoryBytes: omitEmpty(Number(resources?.memoryBytes ?? 0n)),
  };
}

function restartPolicyFromDocker(r: Decoder): RestartPolicy {
  return RestartPolicy.create({
    condition: restartConditions.read(r, 'Condition'),
    delay: readDuration(r, 'Delay'),
    maxAttempts: readBig(r, 'MaxAttempts', 'uint64'),
    window: readDuration(r, 'Window'),
  });
}

function restartPolicyToDocker(r: RestartPolicy): DockerRestartPolicy {
  return {
    Condition: omitEmpty(restartConditions.name(r.condition)),
    Delay: r.delay && nanosOf(r.delay),
    MaxAttempts: Number(r.maxAttempts),
    Window: r.window && nanosOf(r.window),
  };
}

/** Preferences other than spread (none exist yet) are dropped, as moby does. */
function placementFromDocker(p: Decoder): Placement {
  return Placement.create({
    constraints: readList(p, 'Constraints'),
    preferences: (p.objectArray('Preferences', 'swarm.PlacementPreference') ?? []).flatMap((preference) => {
      const spread = preference.object('Spread', 'swarm.SpreadOver');
      return spread === undefined ? [] : [{ spread: { spreadDescriptor: spread.string('SpreadDescriptor') ?? '' } }];
    }),
    maxReplicas: readBig(p, 'MaxReplicas', 'uint64'),
    platforms: (p.objectArray('Platforms', 'swarm.Platform') ?? []).map((platform) => ({
      architecture: platform.string('Architecture') ?? '',
      os: platform.string('OS') ?? '',
    })),
  });
}

function placementToDocker(p: Placement): DockerPlacement {
  return {
    Constraints: omitEmpty(p.constraints),
    Preferences: omitEmpty(
      p.preferences.flatMap(({ spread }) =>
        spread === undefined ? [] : [{ Spread: { SpreadDescriptor: spread.spreadDescriptor } }],
      ),
    ),
    MaxReplicas: omitEmpty(Number(p.maxReplicas)),
    Platforms: omitEmpty(
      p.platforms.map((platform) => ({ Architecture: omitEmpty(platform.architecture), OS: omitEmpty(platform.os) })),
    ),
  };
}

/** A version where Go omits a zero index (`{}`), as for job iterations. */
export function versionToDocker(version: Version | undefined): DockerVersion {
  return { Index: omitEmpty(Number(version?.index ?? 0n)) };
}

/**
 * A task as dockerd's GET /tasks returns it (moby's TaskFromGRPC). dockerd leaves
 * network-attachment tasks (containers started with `docker run --network`) out of listings; that
 * filtering is the caller's.
 */
export function taskToDocker(task: Task): DockerTask {
  const status = task.status;
  const container = status?.container;
  return {
    ...dockerMeta(task.id, task.meta),
    Name: omitEmpty(task.annotations?.name ?? ''),
    Labels: { ...task.annotations?.labels },
    Spec: taskSpecToDocker(task.spec ?? TaskSpec.create()),
    ServiceID: omitEmpty(task.serviceId),
    Slot: omitEmpty(Number(task.slot)),
    NodeID: omitEmpty(task.nodeId),
    Status: {
      Timestamp: dockerTime(status?.timestamp),
      State: taskStateName(status?.state ?? TaskState.NEW),
      Message: omitEmpty(status?.message ?? ''),
      Err: omitEmpty(status?.err ?? ''),
      ContainerStatus: container && {
        ContainerID: container.containerId,
        PID: container.pid,
        ExitCode: container.exitCode,
      },
      PortStatus: { Ports: omitEmpty((status?.portStatus?.ports ?? []).map(portConfigToDocker)) },
    },
    DesiredState: taskStateName(task.desiredState),
    NetworksAttachments: omitEmpty(task.networks.map(networkAttachmentToDocker)),
    GenericResources: omitEmpty(task.assignedGenericResources.map(genericResourceToDocker)),
    JobIteration: task.jobIteration && versionToDocker(task.jobIteration),
  };
}

function networkAttachmentToDocker(attachment: NetworkAttachment): DockerNetworkAttachment {
  return {
    Network: networkToSwarmDocker(attachment.network ?? Network.create()),
    Addresses: omitEmpty(attachment.addresses),
  };
}
