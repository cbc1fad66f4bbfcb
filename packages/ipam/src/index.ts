/**
 * Shoal's address and port bookkeeping: the subnets networks hold, the addresses inside each
 * subnet, VXLAN IDs and ingress published ports. Pure data structures without I/O, mirroring
 * swarmkit's allocator and libnetwork's default IPAM; their state is rebuilt from the store by
 * reserving what it records.
 */
export { AddressPool, SUBNET_PREFIX_LENGTHS, type AddressPoolOptions } from './address-pool.js';
export {
  cidrContains,
  cidrContainsAddress,
  cidrEnd,
  cidrSize,
  cidrsOverlap,
  formatAddress,
  formatCidr,
  parseAddress,
  parseCidr,
  type Cidr,
} from './cidr.js';
export { IdPool, VXLAN_ID_LIST_OPTION, VXLAN_IDS, type IdPoolOptions } from './id-pool.js';
export { PortPool, type PortOwner, type PortProtocol, type PublishedPort } from './port-pool.js';
export { DEFAULT_ADDRESS_POOLS, DEFAULT_SUBNET_SIZE, SubnetPool, type SubnetPoolOptions } from './subnet-pool.js';
