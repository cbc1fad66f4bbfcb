import { isDeepStrictEqual } from 'node:util';
import { errors } from '@shoal/errors';
import {
  EndpointSpec_ResolutionMode,
  PortConfig_PublishMode,
  type Endpoint,
  type Endpoint_VirtualIP,
  type NetworkAttachmentConfig,
  type PortConfig,
  type Service,
  type ServiceSpec,
} from '@shoal/proto';
import type { ReadTx } from '@shoal/store';
import type { Ledger } from './ledger.js';
import { hostPart, isIngressPort, protocolOf, type Holder, type Resource } from './resources.js';

/** A service as the holder of its ports and VIPs; its name is what port conflicts name. */
export function serviceHolder(service: Service): Holder {
  return { kind: 'service', id: service.id, name: service.spec?.annotations?.name ?? '' };
}

/** True if the service publishes a port through the routing mesh, which puts it and its tasks on the ingress network. */
export function publishesIngress(spec: ServiceSpec | undefined): boolean {
  return (spec?.endpoint?.ports ?? []).some(isIngressPort);
}

/** The networks a service's tasks attach to: the task template's, else the deprecated service-level list. */
function serviceNetworks(spec: ServiceSpec | undefined): readonly NetworkAttachmentConfig[] {
  const taskNetworks = spec?.task?.networks ?? [];
  return taskNetworks.length > 0 ? taskNetworks : (spec?.networks ?? []);
}

/**
 * The networks a service gets a virtual IP on, in order: ingress first when it publishes ingress
 * ports, then each of its networks (as in Docker's service inspect). None in DNS round-robin mode.
 */
function vipNetworkIds(service: Service, ingressId: string | undefined): string[] {
  if (service.spec?.endpoint?.mode === EndpointSpec_ResolutionMode.DNSRR) return [];
  const ingress = ingressId !== undefined && publishesIngress(service.spec) ? [ingressId] : [];
  return [...new Set([...ingress, ...serviceNetworks(service.spec).map((config) => config.target)])];
}

/**
 * True if the service's endpoint is what its spec asks for and the service holds every ingress port
 * and VIP it records. A service with no networks and no ports needs no endpoint at all (swarmkit
 * leaves it unset).
 */
export function isServiceAllocated(service: Service, ledger: Ledger, ingressId: string | undefined): boolean {
  const specPorts = service.spec?.endpoint?.ports ?? [];
  const wantedVips = vipNetworkIds(service, ingressId);
  const endpoint = service.endpoint;
  if (endpoint === undefined) return specPorts.length === 0 && wantedVips.length === 0;
  const holder = serviceHolder(service);
  const portsMatch = endpoint.ports.length === specPorts.length && specPorts.every((wanted, index) => portMatches(wanted, endpoint.ports[index]!, holder, ledger));
  const vipsMatch =
    endpoint.virtualIps.length === wantedVips.length &&
    wantedVips.every((networkId) => endpoint.virtualIps.some((vip) => vip.networkId === networkId && holdsVip(ledger, holder, vip)));
  return isDeepStrictEqual(endpoint.spec, service.spec?.endpoint) && portsMatch && vipsMatch;
}

/** True if `allocated` is what the allocator makes of the spec's `wanted` port, and is the service's. */
function portMatches(wanted: PortConfig, allocated: PortConfig, holder: Holder, ledger: Ledger): boolean {
  const sameShape =
    allocated.name === wanted.name &&
    allocated.protocol === wanted.protocol &&
    allocated.targetPort === wanted.targetPort &&
    allocated.publishMode === wanted.publishMode;
  if (!sameShape) return false;
  if (wanted.publishMode === PortConfig_PublishMode.HOST) return allocated.publishedPort === wanted.publishedPort;
  const resource = ingressPortResource(allocated);
  const published = wanted.publishedPort === 0 ? allocated.publishedPort !== 0 : allocated.publishedPort === wanted.publishedPort;
  return published && resource !== undefined && ledger.holds(holder, resource);
}

/** True if the VIP has an address and the service holds it. */
function holdsVip(ledger: Ledger, holder: Holder, vip: Endpoint_VirtualIP): boolean {
  return vip.addr !== '' && ledger.holds(holder, { type: 'address', networkId: vip.networkId, address: hostPart(vip.addr) });
}

/** The port-space resource a published ingress port is, unless its protocol is unknown. */
function ingressPortResource(port: PortConfig): Resource | undefined {
  const protocol = protocolOf(port);
  return protocol === undefined ? undefined : { type: 'port', protocol, port: port.publishedPort };
}

/**
 * The endpoint a service's spec asks for, mirroring swarmkit's allocator: `spec` a copy of the
 * endpoint spec; `ports` the spec's ports with each ingress port's published port filled in (a
 * requested one reserved, an empty one given the port this entry had before, else the next free
 * one from 30000) and host-mode ports as they are; `virtualIps` one address per network of
 * {@link vipNetworkIds}, keeping the ones the service has.
 *
 * @throws INVALID_ARGUMENT `port '<p>' is already in use by service '<name>' (<id>) as an ingress port`;
 *   RESOURCE_EXHAUSTED when no port or address is left; NOT_FOUND / FAILED_PRECONDITION when a network
 *   is missing or has no subnet, or the service publishes ingress ports and the swarm has no ingress network.
 */
export function allocateEndpoint(service: Service, tx: ReadTx, ledger: Ledger, ingressId: string | undefined): Endpoint {
  const holder = serviceHolder(service);
  if (publishesIngress(service.spec) && ingressId === undefined) {
    throw errors.failedPrecondition(`service ${holder.name} publishes ingress ports but the swarm has no ingress network`, { serviceId: service.id });
  }
  const ports = allocatePorts(service, holder, ledger);
  const virtualIps = vipNetworkIds(service, ingressId).map((networkId) => {
    const network = tx.get('network', networkId);
    if (network === undefined) throw errors.notFound(`network ${networkId} not found`, { networkId });
    const recorded = service.endpoint?.virtualIps.find((vip) => vip.networkId === networkId)?.addr;
    return { networkId, addr: ledger.keepOrAllocateAddress(holder, networkId, recorded) };
  });
  return { spec: service.spec?.endpoint, ports, virtualIps };
}

/** Identifies a port entry across spec changes, as swarmkit's port allocator does: name, protocol and target port. */
function entryKey(port: PortConfig): string {
  return `${port.name}/${port.protocol}/${port.targetPort}`;
}

/** A published port as its port space knows it: number and protocol. */
function publishedKey(port: PortConfig): string {
  return `${port.publishedPort}/${port.protocol}`;
}

function allocatePorts(service: Service, holder: Holder, ledger: Ledger): PortConfig[] {
  const specPorts = service.spec?.endpoint?.ports ?? [];
  const requested = new Set(specPorts.filter((port) => isIngressPort(port) && port.publishedPort !== 0).map(publishedKey));
  // The ports this service holds for each entry that no entry asks for by number: an entry that
  // leaves its published port empty gets the one it had.
  const previousPicks = new Map<string, number[]>();
  for (const port of service.endpoint?.ports ?? []) {
    const resource = ingressPortResource(port);
    if (!isIngressPort(port) || port.publishedPort === 0 || resource === undefined) continue;
    if (requested.has(publishedKey(port)) || !ledger.holds(holder, resource)) continue;
    previousPicks.set(entryKey(port), [...(previousPicks.get(entryKey(port)) ?? []), port.publishedPort]);
  }
  return specPorts.map((port) => {
    if (!isIngressPort(port)) return port;
    const protocol = protocolOf(port);
    if (protocol === undefined) throw errors.invalidArgument(`port ${port.targetPort} has an unsupported protocol`, { serviceId: service.id });
    if (port.publishedPort !== 0) {
      ledger.take(holder, { type: 'port', protocol, port: port.publishedPort });
      return port;
    }
    const publishedPort = previousPicks.get(entryKey(port))?.shift() ?? ledger.allocatePort(holder, protocol);
    return { ...port, publishedPort };
  });
}
