import { errors } from '@shoal/errors';
import { assertSupportedSubnet, isSupportedSubnetSize, SUBNET_PREFIX_LENGTHS } from './address-pool.js';
import { cidrEnd, cidrsOverlap, formatCidr, parseCidr, type Cidr } from './cidr.js';
import { IntervalSet } from './interval-set.js';

/** libnetwork's global-scope default (`ipamutils`): where overlay subnets come from unless the cluster says otherwise. */
export const DEFAULT_ADDRESS_POOLS: readonly Cidr[] = [parseCidr('10.0.0.0/8')];

/** The prefix length of carved subnets unless the cluster says otherwise: /24, 254 usable addresses. */
export const DEFAULT_SUBNET_SIZE = 24;

/** Configuration, shaped like the Cluster object's `defaultAddressPool` and `subnetSize`. */
export interface SubnetPoolOptions {
  /** Blocks to carve subnets from, in order of preference. Absent or empty: {@link DEFAULT_ADDRESS_POOLS}. */
  readonly pools?: readonly Cidr[];
  /** Prefix length of the subnets {@link SubnetPool.allocate} carves. Absent or 0: {@link DEFAULT_SUBNET_SIZE}. */
  readonly subnetSize?: number;
}

/**
 * Which subnets networks hold, cluster-wide: hands out `subnetSize` subnets carved from the
 * configured pools (the lowest free one, trying pools in order, as libnetwork's default IPAM does)
 * and records subnets users asked for, inside the pools or not. No two held subnets overlap.
 *
 * Rebuild after a restart by calling {@link reserve} with every network's subnet.
 */
export class SubnetPool {
  /** The blocks subnets are carved from, in order of preference. */
  readonly pools: readonly Cidr[];
  /** The prefix length of carved subnets. */
  readonly subnetSize: number;
  /** Every address of every held subnet, for overlap checks and free-space search. */
  private readonly taken = new IntervalSet();
  /**
   * The prefix length of each held subnet by its start, so that only an exact held subnet can be
   * released; two held subnets never share a start, since one would contain the other.
   */
  private readonly held = new Map<number, number>();

  /**
   * @throws INVALID_ARGUMENT if the subnet size is outside {@link SUBNET_PREFIX_LENGTHS}, a pool
   *   cannot hold a subnet of that size, or two pools overlap.
   */
  constructor(options: SubnetPoolOptions = {}) {
    this.pools = options.pools !== undefined && options.pools.length > 0 ? [...options.pools] : DEFAULT_ADDRESS_POOLS;
    this.subnetSize = options.subnetSize || DEFAULT_SUBNET_SIZE;
    if (!isSupportedSubnetSize(this.subnetSize)) {
      const { min, max } = SUBNET_PREFIX_LENGTHS;
      throw errors.invalidArgument(`invalid subnet size ${this.subnetSize}: it must be an integer between ${min} and ${max}`, {
        subnetSize: this.subnetSize,
      });
    }
    this.pools.forEach((pool, index) => {
      if (pool.prefixLength > this.subnetSize) {
        throw errors.invalidArgument(`default address pool ${formatCidr(pool)} is smaller than the subnet size /${this.subnetSize}`, {
          pool: formatCidr(pool),
        });
      }
      const overlapping = this.pools.slice(index + 1).find((other) => cidrsOverlap(pool, other));
      if (overlapping !== undefined) {
        throw errors.invalidArgument(`default address pools ${formatCidr(pool)} and ${formatCidr(overlapping)} overlap`, {
          pool: formatCidr(pool),
        });
      }
    });
  }

  /**
   * Carves the lowest free `subnetSize` subnet out of the first pool that has one.
   *
   * @throws RESOURCE_EXHAUSTED (libnetwork's message) when no pool has room left.
   */
  allocate(): Cidr {
    const blockSize = 2 ** (32 - this.subnetSize);
    for (const pool of this.pools) {
      const poolEnd = cidrEnd(pool);
      let start = pool.start;
      while (start + blockSize - 1 <= poolEnd) {
        const next = this.taken.intervalFrom(start);
        if (next === undefined || next.start > start + blockSize - 1) {
          const subnet = { start, prefixLength: this.subnetSize };
          this.hold(subnet);
          return subnet;
        }
        // Pools start on a multiple of the block size, so rounding up keeps candidates aligned.
        start = Math.ceil((next.end + 1) / blockSize) * blockSize;
      }
    }
    throw errors.resourceExhausted(
      'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
      { subnetSize: this.subnetSize },
    );
  }

  /**
   * Records a subnet a network already holds or a user asked for; it may lie outside the pools.
   *
   * @throws INVALID_ARGUMENT `invalid pool request: Pool overlaps with other one on this address space`
   *   (libnetwork's message) if it overlaps a held subnet; `invalid subnet …` if its prefix length is
   *   outside {@link SUBNET_PREFIX_LENGTHS}.
   */
  reserve(subnet: Cidr): void {
    assertSupportedSubnet(subnet);
    if (this.taken.intersects(subnet.start, cidrEnd(subnet))) {
      throw errors.invalidArgument('invalid pool request: Pool overlaps with other one on this address space', {
        subnet: formatCidr(subnet),
      });
    }
    this.hold(subnet);
  }

  /** Frees a held subnet. Returns false, changing nothing, if `subnet` is not exactly a held one. */
  release(subnet: Cidr): boolean {
    if (!this.isAllocated(subnet)) return false;
    this.held.delete(subnet.start);
    this.taken.remove(subnet.start, cidrEnd(subnet));
    return true;
  }

  /** True if `subnet` is exactly one of the held subnets. */
  isAllocated(subnet: Cidr): boolean {
    return this.held.get(subnet.start) === subnet.prefixLength;
  }

  private hold(subnet: Cidr): void {
    this.held.set(subnet.start, subnet.prefixLength);
    this.taken.add(subnet.start, cidrEnd(subnet));
  }
}
