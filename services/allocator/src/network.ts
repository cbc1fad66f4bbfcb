import { toShoalError } from '@shoal/errors';
import { formatCidr, parseCidr, type AddressPoolOptions, VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import { IPAMConfig_AddressFamily, type IPAMConfig, type Network } from '@shoal/proto';
import type { ReadTx } from '@shoal/store';
import type { Ledger, SyncOutcome } from './ledger.js';
import type { Holder, Resource } from './resources.js';


/** The IPAM driver whose allocations these are (libnetwork's name for it). */
const DEFAULT_IPAM_DRIVER = 'default';

/** A network as the holder of its subnet and VXLAN ID. */
function networkHolder(network: Pick<Network, 'id'>): Holder {
  return { kind: 'network', id: network.id, name: '' };
}

/** The routing mesh's network (`spec.ingress`), if the swarm has one. */
export function findIngressNetwork(tx: ReadTx): Network | undefined {
  return tx.list('network').find((network) => network.spec?.ingress === true);
}

/** The address space a network's record describes, or undefined if it records none (or an unreadable one). */
function recordedAddressSpace(network: Network): AddressPoolOptions | undefined {
  const config = network.ipam?.configs[0];
  if (config === undefined || config.subnet === '') return undefined;
  try {
    return { subnet: parseCidr(config.subnet), gateway: config.gateway || undefined, range: config.range === '' ? undefined : parseCidr(config.range) };
  } catch {
    return undefined;
  }
}

/** The VXLAN ID a network's record (or, as a request, its spec) names. */
function vxlanIdIn(options: Readonly<Record<string, string>> | undefined): number | undefined {
  const text = options?.[VXLAN_ID_LIST_OPTION];
  const id = text === undefined || text === '' ? Number.NaN : Number(text);
  return Number.isInteger(id) ? id : undefined;
}

/** True once a network has a subnet and a VXLAN ID, whoever allocated them (services/api does at `docker network create`). */
export function isNetworkAllocated(network: Network): boolean {
  return recordedAddressSpace(network) !== undefined && vxlanIdIn(network.driverState?.options) !== undefined;
}

/** The subnet and VXLAN ID a network's record holds. */
function networkHoldings(network: Network): Resource[] {
  const space = recordedAddressSpace(network);
  const vxlanId = vxlanIdIn(network.driverState?.options);
  return [...(space === undefined ? [] : [{ type: 'subnet', subnet: space.subnet } as const]), ...(vxlanId === undefined ? [] : [{ type: 'vxlan', id: vxlanId } as const])];
}

/**
 * Makes the ledger match a network's record (nothing if the network is gone): it holds the recorded
 * subnet and VXLAN ID, and its address space is open exactly while the record has a subnet. An
 * address space that opens counts as capacity gained: work waiting for the network may proceed.
 */
export function syncNetwork(ledger: Ledger, id: string, network: Network | undefined): SyncOutcome {
  const { conflicts, capacityGained } = ledger.sync([[networkHolder({ id }), network === undefined ? [] : networkHoldings(network)]]);
  const space = network === undefined ? undefined : recordedAddressSpace(network);
  if (space === undefined) {
    ledger.closeNetwork(id);
    return { conflicts, capacityGained };
  }
  const opening = ledger.addressPool(id) === undefined;
  try {
    ledger.openNetwork(id, space);
  } catch (err) {
    return { conflicts: [...conflicts, toShoalError(err)], capacityGained };
  }
  return { conflicts, capacityGained: capacityGained || opening };
}

/**
 * Gives a network what it lacks of a subnet, gateway and VXLAN ID, as libnetwork's default IPAM and
 * overlay driver do: the subnet, gateway and range its spec asks for, else the lowest free subnet
 * of the cluster's pools with its first address as gateway; the VXLAN ID its driver options ask
 * for, else the next free one from 4096. Returns the network to write; its address space is open.
 *
 * @throws the pools' errors (no subnet left, a requested subnet or VXLAN ID in use, a gateway outside the subnet).
 */
export function allocateNetwork(network: Network, ledger: Ledger): Network {
  const holder = networkHolder(network);
  const recorded = recordedAddressSpace(network) === undefined ? undefined : network.ipam?.configs[0];
  const config = recorded ?? newIpamConfig(network, ledger);
  const requestedVxlanId = vxlanIdIn(network.driverState?.options) ?? vxlanIdIn(network.spec?.driverConfig?.options);
  if (requestedVxlanId !== undefined) ledger.take(holder, { type: 'vxlan', id: requestedVxlanId });
  const vxlanId = requestedVxlanId ?? ledger.allocateVxlanId(holder);
  return {
    ...network,
    driverState: { name: network.spec?.driverConfig?.name || 'overlay', options: { ...network.driverState?.options, [VXLAN_ID_LIST_OPTION]: String(vxlanId) } },
    ipam: { driver: network.ipam?.driver ?? { name: DEFAULT_IPAM_DRIVER, options: {} }, configs: [config] },
  };
}

/** Takes the subnet the spec asks for (or the lowest free one) and opens its address space. */
function newIpamConfig(network: Network, ledger: Ledger): IPAMConfig {
  const holder = networkHolder(network);
  const requested = network.spec?.ipam?.configs[0];
  const subnet = requested?.subnet ? parseCidr(requested.subnet) : ledger.allocateSubnet(holder);
  ledger.take(holder, { type: 'subnet', subnet });
  const range = requested?.range ?? '';
  const pool = ledger.openNetwork(network.id, { subnet, gateway: requested?.gateway || undefined, range: range === '' ? undefined : parseCidr(range) });
  return { family: IPAMConfig_AddressFamily.IPV4, subnet: formatCidr(subnet), range, gateway: pool.gateway, reserved: {} };
}
