import { isIPv6 } from 'node:net';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { cidrContains, cidrContainsAddress, parseAddress, parseCidr, VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import { type Annotations, type Driver, IPAMConfig_AddressFamily, type IPAMOptions, type Network, type NetworkSpec } from '@shoal/proto';
import { Decoder } from './decode.js';
import { type DockerMeta, dockerMeta, dockerTime } from './wire.js';

/*
 * Swarm-scoped networks as dockerd 20.10 takes and shows them: the engine's `NetworkCreateRequest`
 * and `NetworkResource` (daemon/cluster/convert/network.go `BasicNetworkCreateToGRPC`,
 * `BasicNetworkFromGRPC`), and the swarm `Network` object embedded in task attachments
 * (`networkFromGRPC`). Validation follows swarmkit's control API (manager/controlapi/network.go) with
 * its messages. Two of Docker's swarm types are shared by every object, and their conversions live
 * here for the other converters: `Annotations` (name and labels) and `Driver` (a name and options,
 * which also describes IPAM, secret, templating and log drivers).
 */

/** The only network driver Shoal provides; swarm-scoped networks are overlays. */
export const OVERLAY_DRIVER = 'overlay';
/** The only IPAM driver: Shoal's allocator carves subnets from the cluster's address pools. */
export const DEFAULT_IPAM_DRIVER = 'default';

/** Names the engine reserves for its local networks (runconfig `IsPreDefinedNetwork`). */
const PREDEFINED_NETWORK_NAMES = new Set(['bridge', 'host', 'none', 'default']);
/** Label swarmkit puts on the networks it creates itself; users may not set it. */
const PREDEFINED_LABEL = 'com.docker.swarm.predefined';
/** swarmkit's `validateAnnotations`: a DNS label of letters and digits, inner `-`/`_` allowed. */
// One optional run of inner characters, so matching stays linear (nested quantifiers backtrack exponentially).
const DNS_COMPONENT_NAME = /^[a-zA-Z0-9](?:[-_a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const MAX_DNS_COMPONENT_LENGTH = 63;

/** Docker's swarm `Annotations`, which every spec starts with. */
export interface DockerAnnotations {
  Name?: string;
  /** Never null: dockerd's `annotationsFromGRPC` prints `{}` for no labels. */
  Labels: Record<string, string>;
}

/** Docker's swarm `Driver`: both fields are omitted when empty. */
export interface DockerDriver {
  Name?: string;
  Options?: Record<string, string>;
}

/** `POST /networks/create`, read: the spec to store and what the user asked the allocator for. */
export interface NetworkCreateRequest {
  spec: NetworkSpec;
  /** `IPAM.Config[]` in order (`""` for what was not given); none means "carve a subnet from the cluster's pools". */
  subnets: { subnet: string; gateway: string; ipRange: string }[];
}

/** `GET /networks/{id}`: the engine's NetworkResource for a swarm network. */
export interface DockerNetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'swarm';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: DockerIpamConfig[] | null };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: false;
  /** Endpoints on this engine; a manager runs no containers, so always null. */
  Containers: null;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
}

export interface DockerIpamConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** The swarm `Network` object of `Task.NetworksAttachments[].Network`. */
export interface DockerSwarmNetwork extends DockerMeta {
  Spec: DockerAnnotations & {
    DriverConfiguration?: DockerDriver;
    IPv6Enabled?: boolean;
    Internal?: boolean;
    Attachable?: boolean;
    Ingress?: boolean;
    IPAMOptions?: DockerSwarmIpamOptions;
    ConfigFrom?: { Network: string };
    Scope: 'swarm';
  };
  DriverState: DockerDriver;
  IPAMOptions?: DockerSwarmIpamOptions;
}

export interface DockerSwarmIpamOptions {
  Driver: DockerDriver;
  Configs?: { Subnet?: string; Range?: string; Gateway?: string }[];
}

/**
 * Reads the body of `POST /networks/create` (both CLIs' shapes: CLI 20.10 adds `EnableIPv6`, CLI 28
 * drops `CheckDuplicate` at API 1.44). `Driver` defaults to `overlay` and must be it; `Scope` may only
 * be empty or `swarm`; `IPAM.Driver` defaults to `default` and must be it; every IPAM config needs a
 * subnet containing its range, gateway and auxiliary addresses. Errors are INVALID_ARGUMENT, except a
 * predefined engine network name or swarm's own label (PERMISSION_DENIED, dockerd's 403). Names are
 * unique whatever `CheckDuplicate` says: the caller refuses a taken name, as dockerd does for swarm
 * networks.
 */
export function networkCreateFromDocker(body: unknown): NetworkCreateRequest {
  const decoder = Decoder.root(body, 'NetworkCreateRequest', 'types');
  // Read only to refuse a value of the wrong type: names are unique whatever it says.
  decoder.boolean('CheckDuplicate');
  const annotations = annotationsFromDocker(decoder);
  const { name, labels } = annotations;
  const driverName = decoder.string('Driver') || OVERLAY_DRIVER;
  const scope = decoder.string('Scope') ?? '';
  const ingress = decoder.boolean('Ingress') ?? false;
  const attachable = decoder.boolean('Attachable') ?? false;
  const configOnly = decoder.boolean('ConfigOnly') ?? false;
  const configFrom = decoder.object('ConfigFrom', 'network.ConfigReference')?.string('Network') ?? '';
  const ipamDecoder = decoder.object('IPAM', 'network.IPAM');
  const ipam = ipamDecoder && ipamFromDocker(ipamDecoder);
  const spec: NetworkSpec = {
    annotations,
    driverConfig: { name: driverName, options: decoder.stringMap('Options') ?? {} },
    ipv6Enabled: decoder.boolean('EnableIPv6') ?? false,
    internal: decoder.boolean('Internal') ?? false,
    ipam,
    attachable,
    ingress,
  };

  if (PREDEFINED_NETWORK_NAMES.has(name)) {
    throw new ShoalError(ErrorCode.PermissionDenied, `${name} is a pre-defined network and cannot be created`);
  }
  validateDnsComponentName(name);
  if (driverName !== OVERLAY_DRIVER) {
    throw errors.invalidArgument(
      `network driver ${JSON.stringify(driverName)} is not supported: swarm networks use the "${OVERLAY_DRIVER}" driver`,
    );
  }
  if (scope !== '' && scope !== 'swarm') {
    throw errors.invalidArgument(`network scope ${JSON.stringify(scope)} is not supported: overlay networks are swarm-scoped`);
  }
  if (ingress && attachable) throw errors.invalidArgument('ingress network cannot be attachable');
  if (Object.hasOwn(labels, PREDEFINED_LABEL)) {
    throw new ShoalError(
      ErrorCode.PermissionDenied,
      `label ${PREDEFINED_LABEL} is for internally created predefined networks and cannot be applied by users`,
    );
  }
  if (configOnly) {
    throw errors.invalidArgument('config-only networks are not supported: they configure local networks, which swarm does not manage');
  }
  if (configFrom !== '') {
    throw errors.invalidArgument('ConfigFrom is not supported: swarm networks cannot take their configuration from a config-only network');
  }
  if (ipam !== undefined) validateIpam(ipam);
  const subnets = (ipam?.configs ?? []).map((config) => ({ subnet: config.subnet, gateway: config.gateway, ipRange: config.range }));
  return { spec, subnets };
}

/**
 * A swarm network as `GET /networks` and `GET /networks/{id}` show it. Driver and IPAM are what the
 * allocator recorded (`driver_state`; `ipam`, with the gateways it chose), or the spec's until it
 * has. Options are the spec's driver options (such as `encrypted`) with the driver state's over them
 * (the overlay's `vxlanid_list`), which is what dockerd's overlay allocator records. Empty labels and
 * options are null, as dockerd prints a swarm network's.
 */
export function networkToDocker(network: Network): DockerNetworkResource {
  const spec = network.spec;
  const ipam = network.ipam ?? spec?.ipam;
  return {
    Name: spec?.annotations?.name ?? '',
    Id: network.id,
    Created: dockerTime(network.meta?.createdAt),
    Scope: 'swarm',
    Driver: network.driverState?.name || spec?.driverConfig?.name || '',
    EnableIPv6: spec?.ipv6Enabled ?? false,
    IPAM: {
      Driver: ipam?.driver?.name ?? '',
      Options: nonEmptyMap(ipam?.driver?.options) ?? null,
      Config:
        ipam === undefined
          ? null
          : ipam.configs.map((config) => ({
              Subnet: config.subnet || undefined,
              IPRange: config.range || undefined,
              Gateway: config.gateway || undefined,
              AuxiliaryAddresses: nonEmptyMap(config.reserved),
            })),
    },
    Internal: spec?.internal ?? false,
    Attachable: spec?.attachable ?? false,
    Ingress: spec?.ingress ?? false,
    ConfigFrom: { Network: spec?.network ?? '' },
    ConfigOnly: false,
    Containers: null,
    Options: nonEmptyMap({ ...spec?.driverConfig?.options, ...network.driverState?.options }) ?? null,
    Labels: nonEmptyMap(spec?.annotations?.labels) ?? null,
  };
}

/** A network as swarm's own `Network` type shows it inside a task's `NetworksAttachments`. */
export function networkToSwarmDocker(network: Network): DockerSwarmNetwork {
  const spec = network.spec;
  return {
    ...dockerMeta(network.id, network.meta),
    Spec: {
      ...annotationsToDocker(spec?.annotations),
      DriverConfiguration: spec?.driverConfig && driverToDocker(spec.driverConfig),
      IPv6Enabled: spec?.ipv6Enabled || undefined,
      Internal: spec?.internal || undefined,
      Attachable: spec?.attachable || undefined,
      Ingress: spec?.ingress || undefined,
      IPAMOptions: spec?.ipam && swarmIpamToDocker(spec.ipam),
      ConfigFrom: spec?.network ? { Network: spec.network } : undefined,
      Scope: 'swarm',
    },
    DriverState: driverToDocker(network.driverState),
    IPAMOptions: network.ipam && swarmIpamToDocker(network.ipam),
  };
}

/**
 * Checks a service or network name as swarmkit does: present, a DNS label of letters and digits
 * with inner `-` or `_`, at most 63 characters. Throws INVALID_ARGUMENT with swarmkit's messages.
 */
export function validateDnsComponentName(name: string): void {
  if (name === '') throw errors.invalidArgument('meta: name must be provided');
  if (!DNS_COMPONENT_NAME.test(name)) throw errors.invalidArgument('name must be valid as a DNS name component');
  if (name.length > MAX_DNS_COMPONENT_LENGTH) {
    throw errors.invalidArgument(`name must be ${MAX_DNS_COMPONENT_LENGTH} characters or fewer`);
  }
}

/** Name and labels in Docker's JSON. */
export function annotationsToDocker(annotations: Annotations | undefined): DockerAnnotations {
  return { Name: annotations?.name || undefined, Labels: { ...annotations?.labels } };
}

/** `Name` and `Labels` of a Docker spec. */
export function annotationsFromDocker(decoder: Decoder): Annotations {
  return { name: decoder.string('Name') ?? '', labels: decoder.stringMap('Labels') ?? {}, indices: [] };
}

/** A driver in Docker's JSON; an absent one is `{}`, as Go prints a zero struct. */
export function driverToDocker(driver: Driver | undefined): DockerDriver {
  return { Name: driver?.name || undefined, Options: nonEmptyMap(driver?.options) };
}

/** The `Driver` object under `key`, or undefined when absent or null. */
export function driverFromDocker(decoder: Decoder, key: string): Driver | undefined {
  const driver = decoder.object(key, 'swarm.Driver');
  return driver && { name: driver.string('Name') ?? '', options: driver.stringMap('Options') ?? {} };
}

function ipamFromDocker(ipam: Decoder): IPAMOptions {
  return {
    driver: { name: ipam.string('Driver') || DEFAULT_IPAM_DRIVER, options: ipam.stringMap('Options') ?? {} },
    configs: (ipam.objectArray('Config', 'network.IPAMConfig') ?? []).map((config) => ({
      // Shoal's IPAM allocates IPv4 only (validateIpam refuses the rest).
      family: IPAMConfig_AddressFamily.IPV4,
      subnet: config.string('Subnet') ?? '',
      range: config.string('IPRange') ?? '',
      gateway: config.string('Gateway') ?? '',
      reserved: config.stringMap('AuxiliaryAddresses') ?? {},
    })),
  };
}

/**
 * swarmkit's `validateIPAM` with its messages, on IPv4 only (Shoal's IPAM refuses IPv6 with its own
 * message), also checking the auxiliary addresses, which swarmkit does not look at.
 */
function validateIpam(ipam: IPAMOptions): void {
  const driverName = ipam.driver?.name ?? DEFAULT_IPAM_DRIVER;
  if (driverName !== DEFAULT_IPAM_DRIVER) {
    throw errors.invalidArgument(`IPAM driver ${JSON.stringify(driverName)} is not supported: only "${DEFAULT_IPAM_DRIVER}" is`);
  }
  for (const config of ipam.configs) {
    const subnet = ipamParse('subnet', config.subnet, parseCidr);
    if (config.range !== '' && !cidrContains(subnet, ipamParse('range', config.range, parseCidr))) {
      throw ipamError(`subnet ${config.subnet} does not contain range ${config.range}`);
    }
    const addresses: [what: string, address: string][] = Object.values(config.reserved).map((address) => ['auxiliary address', address]);
    if (config.gateway !== '') addresses.unshift(['gateway', config.gateway]);
    for (const [what, address] of addresses) {
      if (!cidrContainsAddress(subnet, ipamParse(what, address, parseAddress))) {
        throw ipamError(`subnet ${config.subnet} does not contain ${what} ${address}`);
      }
    }
  }
}

/** `parse(text)`, failing as `ipam configuration: invalid <what> <text>`, or as IPAM's own refusal of IPv6. */
function ipamParse<T>(what: string, text: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (err) {
    if (isIPv6(text.split('/')[0] ?? '')) throw err;
    throw ipamError(`invalid ${what} ${text}`);
  }
}

function ipamError(problem: string): ShoalError {
  return errors.invalidArgument(`ipam configuration: ${problem}`);
}

function swarmIpamToDocker(ipam: IPAMOptions): DockerSwarmIpamOptions {
  return {
    Driver: driverToDocker(ipam.driver),
    Configs:
      ipam.configs.length > 0
        ? ipam.configs.map((config) => ({
            Subnet: config.subnet || undefined,
            Range: config.range || undefined,
            Gateway: config.gateway || undefined,
          }))
        : undefined,
  };
}

/** Go's omitempty for maps: an empty map is left out. */
function nonEmptyMap(map: Record<string, string> | undefined): Record<string, string> | undefined {
  return map !== undefined && Object.keys(map).length > 0 ? { ...map } : undefined;
}
