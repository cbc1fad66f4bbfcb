import { isDeepStrictEqual } from 'node:util';
import { parseConstraints } from '@shoal/constraints';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import {
  type Annotations,
  type ContainerSpec,
  type Duration,
  type EndpointSpec,
  type FileTarget,
  EndpointSpec_ResolutionMode,
  type HealthConfig,
  type Mount,
  Mount_Type,
  PortConfig_PublishMode,
  type Resources,
  type ServiceSpec,
  type TaskSpec,
  type UpdateConfig,
} from '@shoal/proto';
import { validateDnsComponentName } from './network.js';
import { nanosOf } from './wire.js';

// The checks swarmkit's control API (manager/controlapi/service.go) makes on a service spec before
// storing it, with its messages, plus the mount checks moby's executor would otherwise only make
// when a task starts (daemon/cluster/executor/container/validate.go). Checks against other objects
// (published ports in use, secrets and networks that must exist) belong to the caller.

/**
 * Throws an INVALID_ARGUMENT ShoalError (UNIMPLEMENTED for a runtime other than containers) with
 * swarmkit's message if the spec cannot be stored: a missing or non-DNS name, a missing or
 * malformed image, bad mounts or healthcheck, too small resources, negative durations, malformed
 * placement constraints, conflicting secret or config targets, a failure ratio outside [0, 1], an
 * update config on a job, or ports that clash or cannot be published with the resolution mode.
 */
export function validateServiceSpec(spec: ServiceSpec): void {
  validateName(spec.annotations);
  validateTaskSpec(spec.task);
  const isJob = spec.replicatedJob !== undefined || spec.globalJob !== undefined;
  if (!isJob && spec.replicated === undefined && spec.global === undefined) {
    throw errors.invalidArgument('Unrecognized service mode');
  }
  if (isJob && spec.update !== undefined) throw errors.invalidArgument('Jobs may not have an update config');
  validateUpdateConfig(spec.update, 'update');
  // swarmkit leaves the rollback config unchecked; a negative delay or a ratio above 1 is no more
  // meaningful there, so it gets the same checks.
  validateUpdateConfig(spec.rollback, 'rollback');
  validateEndpointSpec(spec.endpoint);
}

/**
 * Throws an UNIMPLEMENTED ShoalError, with swarmkit's message, for the changes an update may not
 * make to a stored spec: changing the deprecated service-level networks on their own, changing
 * the mode (replicated, global, replicated job, global job), or renaming the service.
 */
export function validateServiceSpecUpdate(current: ServiceSpec, next: ServiceSpec): void {
  const serviceNetworksChanged = !isDeepStrictEqual(next.networks, current.networks);
  const taskNetworksChanged = !isDeepStrictEqual(next.task?.networks ?? [], current.task?.networks ?? []);
  if (serviceNetworksChanged && !taskNetworksChanged) {
    throw unimplemented('networks must be migrated to TaskSpec before being changed');
  }
  if (modeOf(current) !== modeOf(next)) throw unimplemented('service mode change is not allowed');
  if ((current.annotations?.name ?? '') !== (next.annotations?.name ?? '')) {
    throw unimplemented('renaming services is not supported');
  }
}

function unimplemented(message: string): ShoalError {
  return new ShoalError(ErrorCode.Unimplemented, message);
}

function modeOf(spec: ServiceSpec): string {
  if (spec.replicated) return 'replicated';
  if (spec.global) return 'global';
  if (spec.replicatedJob) return 'replicated-job';
  return spec.globalJob ? 'global-job' : 'none';
}

/** Service names become DNS labels, as network names do. */
function validateName(annotations: Annotations | undefined): void {
  validateDnsComponentName(annotations?.name ?? '');
}

function validateTaskSpec(task: TaskSpec | undefined): void {
  validateResources(task?.resources?.limits);
  validateResources(task?.resources?.reservations);
  if (isNegative(task?.restart?.delay)) throw errors.invalidArgument('TaskSpec: restart-delay cannot be negative');
  if (isNegative(task?.restart?.window)) throw errors.invalidArgument('TaskSpec: restart-window cannot be negative');
  parseConstraints(task?.placement?.constraints ?? []);
  const container = task?.container;
  if (container !== undefined) {
    validateSecretReferences(container);
    validateConfigReferences(container);
    validateContainerSpec(container);
  } else if (task?.attachment !== undefined || task?.generic !== undefined) {
    throw unimplemented('RuntimeSpec: unimplemented runtime in service spec');
  } else {
    throw errors.invalidArgument('TaskSpec: missing runtime');
  }
}

function isNegative(duration: Duration | undefined): boolean {
  return duration !== undefined && nanosOf(duration) < 0;
}

const minimumNanoCpus = 1_000_000n;
const minimumMemoryBytes = 4n * 1024n * 1024n;

function validateResources(resources: Resources | undefined): void {
  if (resources === undefined) return;
  const { nanoCpus, memoryBytes } = resources;
  if (nanoCpus !== 0n && nanoCpus < minimumNanoCpus) {
    const cpus = (nanos: bigint) => formatGoFloat(Number(nanos) / 1e9);
    throw errors.invalidArgument(`invalid cpu value ${cpus(nanoCpus)}: Must be at least ${cpus(minimumNanoCpus)}`);
  }
  if (memoryBytes !== 0n && memoryBytes < minimumMemoryBytes) {
    throw errors.invalidArgument(`invalid memory value ${memoryBytes}: Must be at least 4MiB`);
  }
}

/** A float64 as Go's `%g` prints it: exponent form (two exponent digits at least) below 1e-4 and from 1e6. */
function formatGoFloat(value: number): string {
  const [mantissa = '', exponentText = '0'] = value.toExponential().split('e');
  const exponent = Number(exponentText);
  if (value === 0 || (exponent >= -4 && exponent < 6)) return String(value);
  const sign = exponent < 0 ? '-' : '+';
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/** A secret or config reference, as far as the checks on it go. */
interface FileReference {
  id: string;
  name: string;
  file: FileTarget | undefined;
  hasTarget: boolean;
}

/** References need an ID, a name and a target; no two may land on the same file. */
function validateReferences(kind: 'secret' | 'config', references: FileReference[]): void {
  const nameByTarget = new Map<string, string>();
  for (const { id, name, file, hasTarget } of references) {
    if (id === '' || name === '') throw errors.invalidArgument(`malformed ${kind} reference`);
    if (!hasTarget) throw errors.invalidArgument(`malformed ${kind} reference, no target provided`);
    if (file === undefined) continue;
    if (file.name === '') {
      throw errors.invalidArgument(`malformed file ${kind} reference, invalid target file name provided`);
    }
    const previous = nameByTarget.get(file.name);
    if (previous !== undefined) {
      throw errors.invalidArgument(
        `${kind} references '${previous}' and '${name}' have a conflicting target: '${file.name}'`,
      );
    }
    nameByTarget.set(file.name, name);
  }
}

function validateSecretReferences(container: ContainerSpec): void {
  validateReferences(
    'secret',
    container.secrets.map(({ secretId, secretName, file }) => ({
      id: secretId,
      name: secretName,
      file,
      hasTarget: file !== undefined,
    })),
  );
}

/** Configs are checked as secrets are, and a config a credential spec names must go to the runtime. */
function validateConfigReferences(container: ContainerSpec): void {
  validateReferences(
    'config',
    container.configs.map(({ configId, configName, file, runtime }) => ({
      id: configId,
      name: configName,
      file,
      hasTarget: file !== undefined || runtime !== undefined,
    })),
  );
  const credentialSpecConfig = container.privileges?.credentialSpec?.config ?? '';
  const attachedToRuntime = container.configs.some(
    (config) => config.runtime !== undefined && config.configId === credentialSpecConfig,
  );
  if (credentialSpecConfig !== '' && !attachedToRuntime) {
    throw errors.invalidArgument(
      `CredentialSpec references config '${credentialSpecConfig}', ` +
        "but that config isn't in config references with RuntimeTarget",
    );
  }
}

function validateContainerSpec(container: ContainerSpec): void {
  if (container.image === '') throw errors.invalidArgument('ContainerSpec: image reference must be provided');
  if (!isValidImageReference(container.image)) {
    throw errors.invalidArgument(`ContainerSpec: ${JSON.stringify(container.image)} is not a valid repository/tag`);
  }
  validateMounts(container.mounts);
  validateHealthcheck(container.healthcheck);
}

/** A tag: a word character, then up to 127 word characters, dots and dashes. */
const tagPattern = /^\w[\w.-]{0,127}$/;
/** One component of a repository path: lowercase alphanumerics joined by `.`, `_`, `__` or dashes. */
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponentPattern = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const ipv6HostPattern = /^\[[a-fA-F0-9:]+\]$/;
const digestPattern = /^([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})$/;
const digestHexLength: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const maximumNameLength = 255;

/**
 * Whether `image` parses as docker/distribution's ParseNormalizedNamed would accept it:
 * `[domain[:port]/]path[:tag][@algorithm:hex]`, with a lowercase path and a known digest.
 */
function isValidImageReference(image: string): boolean {
  if (/^[a-f0-9]{64}$/.test(image)) return false;
  const at = image.indexOf('@');
  if (at >= 0 && !isValidDigest(image.slice(at + 1))) return false;
  const nameAndTag = at >= 0 ? image.slice(0, at) : image;
  const colon = nameAndTag.lastIndexOf(':');
  const hasTag = colon > nameAndTag.lastIndexOf('/');
  if (hasTag && !tagPattern.test(nameAndTag.slice(colon + 1))) return false;
  const name = hasTag ? nameAndTag.slice(0, colon) : nameAndTag;
  const { domain, path } = splitDockerDomain(name);
  if (domain !== undefined && !isValidDomain(domain)) return false;
  return name.length <= maximumNameLength && path.split('/').every((part) => pathComponentPattern.test(part));
}

/**
 * The registry part of a name, if it has one: a first component that has a dot or a port, is
 * `localhost`, or has uppercase letters (which a repository path may not).
 */
function splitDockerDomain(name: string): { domain: string | undefined; path: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  const isDomain = slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  return isDomain ? { domain: first, path: name.slice(slash + 1) } : { domain: undefined, path: name };
}

function isValidDomain(domain: string): boolean {
  const port = /:([0-9]+)$/.exec(domain);
  const host = port === null ? domain : domain.slice(0, port.index);
  return ipv6HostPattern.test(host) || host.split('.').every((part) => domainComponentPattern.test(part));
}

function isValidDigest(digest: string): boolean {
  const match = digestPattern.exec(digest);
  if (match === null) return false;
  const [, algorithm = '', hex = ''] = match;
  return digestHexLength[algorithm] === hex.length && /^[a-f0-9]+$/.test(hex);
}

/**
 * Every mount needs an absolute target (a named pipe aside) and a source that fits its type, and
 * no two share a target. Cluster (CSI) volumes are not supported.
 */
function validateMounts(mounts: Mount[]): void {
  const targets = new Set<string>();
  for (const { type, source, target } of mounts) {
    if (type !== Mount_Type.NPIPE && !target.startsWith('/')) {
      throw errors.invalidArgument(`invalid mount target, must be an absolute path: ${target}`);
    }
    if (type === Mount_Type.BIND && !source.startsWith('/')) {
      throw errors.invalidArgument(`invalid bind mount source, must be an absolute path: ${source}`);
    }
    if (type === Mount_Type.VOLUME && source.startsWith('/')) {
      throw errors.invalidArgument(`invalid volume mount source, must not be an absolute path: ${source}`);
    }
    if (type === Mount_Type.TMPFS && source !== '') {
      throw errors.invalidArgument('invalid tmpfs source, source must be empty');
    }
    if (type === Mount_Type.NPIPE && source === '') {
      throw errors.invalidArgument('invalid npipe source, source must not be empty');
    }
    if (type === Mount_Type.CLUSTER) throw errors.invalidArgument('invalid mount type: cluster');
    if (targets.has(target)) throw errors.invalidArgument(`ContainerSpec: duplicate mount point: ${target}`);
    targets.add(target);
  }
}

const minimumHealthcheckNanos = 1e6;

function validateHealthcheck(healthcheck: HealthConfig | undefined): void {
  if (healthcheck === undefined) return;
  const periods: [string, Duration | undefined][] = [
    ['Interval', healthcheck.interval],
    ['Timeout', healthcheck.timeout],
    ['StartPeriod', healthcheck.startPeriod],
    ['StartInterval', healthcheck.startInterval],
  ];
  for (const [field, period] of periods) {
    const nanos = period === undefined ? 0 : nanosOf(period);
    if (nanos !== 0 && nanos < minimumHealthcheckNanos) {
      throw errors.invalidArgument(`ContainerSpec: ${field} in HealthConfig cannot be less than 1ms`);
    }
  }
  if (healthcheck.retries < 0) {
    throw errors.invalidArgument('ContainerSpec: Retries in HealthConfig cannot be negative');
  }
}

function validateUpdateConfig(config: UpdateConfig | undefined, kind: 'update' | 'rollback'): void {
  if (config === undefined) return;
  if (isNegative(config.delay)) throw errors.invalidArgument(`TaskSpec: ${kind}-delay cannot be negative`);
  if (isNegative(config.monitor)) throw errors.invalidArgument(`TaskSpec: ${kind}-monitor cannot be negative`);
  if (!(config.maxFailureRatio >= 0 && config.maxFailureRatio <= 1)) {
    throw errors.invalidArgument(`TaskSpec: ${kind}-maxfailureratio cannot be less than 0 or bigger than 1`);
  }
}

/**
 * Routing-mesh ports need a virtual IP, so not with DNS round robin; no two ports publish the same
 * port and protocol.
 */
function validateEndpointSpec(endpoint: EndpointSpec | undefined): void {
  if (endpoint === undefined) return;
  const published = new Set<string>();
  for (const port of endpoint.ports) {
    if (endpoint.mode === EndpointSpec_ResolutionMode.DNSRR && port.publishMode === PortConfig_PublishMode.INGRESS) {
      throw errors.invalidArgument("EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
    }
    if (port.publishedPort === 0) continue;
    const key = `${port.publishedPort}/${port.protocol}`;
    if (published.has(key)) throw errors.invalidArgument('EndpointSpec: duplicate published ports provided');
    published.add(key);
  }
}
