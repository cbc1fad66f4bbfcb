import { errors } from '@shoal/errors';
import { AddressPool, formatCidr, IdPool, parseCidr, SubnetPool, VXLAN_IDS, VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import { Network, newId, type Cluster, type IPAMConfig, type NetworkSpec } from '@shoal/proto';


/** A subnet a user asked for at `docker network create --subnet … [--gateway …] [--ip-range …]`. */
export interface RequestedSubnet {
  readonly subnet?: string;
  readonly gateway?: string;
  readonly ipRange?: string;
}

/**
 * Subnets and VXLAN IDs the existing networks hold, rebuilt from their records. Allocation happens
 * when the network is created (rather than later in the allocator, as swarmkit does) so that
 * `docker network create` answers with a network whose subnet and gateway are already known, and a
 * subnet conflict is refused right there with libnetwork's message.
 */
function holdings(cluster: Cluster | undefined, networks: readonly Network[]): { subnets: SubnetPool; vxlanIds: IdPool } {
  const subnets = new SubnetPool({ pools: (cluster?.defaultAddressPool ?? []).map(parseCidr), subnetSize: cluster?.subnetSize });
  const vxlanIds = new IdPool(VXLAN_IDS);
  for (const network of networks) {
    for (const config of network.ipam?.configs ?? []) if (config.subnet !== '') subnets.reserve(parseCidr(config.subnet));
    const vxlanId = Number(network.driverState?.options[VXLAN_ID_LIST_OPTION] ?? Number.NaN);
    if (Number.isInteger(vxlanId)) vxlanIds.reserve(vxlanId);
  }
  return { subnets, vxlanIds };
}

/** One IPAM config: the requested or next free subnet, and its gateway (the first usable address unless given). */
function allocateConfig(subnets: SubnetPool, requested: RequestedSubnet | undefined): IPAMConfig {
  const subnet = requested?.subnet === undefined || requested.subnet === '' ? subnets.allocate() : parseCidr(requested.subnet);
  if (requested?.subnet !== undefined && requested.subnet !== '') subnets.reserve(subnet);
  const addresses = new AddressPool({
    subnet,
    gateway: requested?.gateway || undefined,
    range: requested?.ipRange ? parseCidr(requested.ipRange) : undefined,
  });
  return { family: 4, subnet: formatCidr(subnet), range: requested?.ipRange ?? '', gateway: addresses.gateway, reserved: {} };
}

/** A new overlay network with its subnets, gateways and VXLAN ID allocated against the `existing` ones. */
export function allocateNetwork(cluster: Cluster | undefined, existing: readonly Network[], spec: NetworkSpec, requested: readonly RequestedSubnet[]): Network {
  if (requested.length > 1) throw errors.invalidArgument('an overlay network takes at most one IPv4 subnet');
  const { subnets, vxlanIds } = holdings(cluster, existing);
  const config = allocateConfig(subnets, requested[0]);
  return Network.fromPartial({
    id: newId(),
    spec,
    driverState: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: String(vxlanIds.allocate()) } },
    ipam: { driver: { name: 'default' }, configs: [config] },
  });
}

/** The routing mesh's network every swarm starts with: `ingress`, the pool's first subnet (10.0.0.0/24 by default). */
export function ingressNetwork(cluster: Cluster): Network {
  const spec: NetworkSpec = {
    annotations: { name: 'ingress', labels: {}, indices: [] },
    driverConfig: { name: 'overlay', options: {} },
    ipv6Enabled: false,
    internal: false,
    ipam: { driver: { name: 'default', options: {} }, configs: [] },
    attachable: false,
    ingress: true,
  };
  return allocateNetwork(cluster, [], spec, []);
}
