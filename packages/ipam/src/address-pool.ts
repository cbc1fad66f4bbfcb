import { errors } from '@shoal/errors';
import { cidrContains, cidrEnd, formatAddress, formatCidr, parseAddress, type Cidr } from './cidr.js';
import { SerialBitmap } from './serial-bitmap.js';

/**
 * The prefix lengths a network's subnet may have: at most a /8, as in libnetwork (it also bounds a
 * pool's bitmap to 2 MiB), and at least a /30, the smallest with room for the gateway and one more.
 */
export const SUBNET_PREFIX_LENGTHS = { min: 8, max: 30 } as const;

/** True if a network subnet may have this prefix length. */
export function isSupportedSubnetSize(prefixLength: number): boolean {
  return Number.isInteger(prefixLength) && prefixLength >= SUBNET_PREFIX_LENGTHS.min && prefixLength <= SUBNET_PREFIX_LENGTHS.max;
}

/** @throws INVALID_ARGUMENT naming the subnet if a network cannot use it. */
export function assertSupportedSubnet(subnet: Cidr): void {
  if (!isSupportedSubnetSize(subnet.prefixLength)) {
    const { min, max } = SUBNET_PREFIX_LENGTHS;
    throw errors.invalidArgument(`invalid subnet ${formatCidr(subnet)}: the prefix length must be between ${min} and ${max}`, {
      subnet: formatCidr(subnet),
    });
  }
}

/** One network's IPAM configuration (an `IPAMConfig` entry). */
export interface AddressPoolOptions {
  /** The network's subnet, /8 to /30. */
  readonly subnet: Cidr;
  /** The gateway address. Default: the subnet's first usable address (`.1` of a /24). */
  readonly gateway?: string;
  /**
   * The `IPRange`: {@link AddressPool.allocate} hands out addresses from this block only, while
   * {@link AddressPool.reserve} accepts any usable address of the subnet (as Docker does for static
   * addresses). Default: the whole subnet.
   */
  readonly range?: Cidr;
}

/**
 * The addresses of one network's subnet: VIPs, task addresses and node load-balancer addresses.
 * The network and broadcast addresses are never handed out, and the gateway is reserved for the
 * pool's lifetime.
 *
 * {@link allocate} is serial, like the `serial` option swarmkit passes to libnetwork: it hands out
 * the first free address after the previous one and wraps around, so an address released a moment
 * ago is reused last (see {@link SerialBitmap}). Rebuild after a restart by calling {@link reserve}
 * with every address the store records on this network; allocation then resumes after the highest.
 */
export class AddressPool {
  /** The network's subnet. */
  readonly subnet: Cidr;
  /** The gateway address, held for the pool's lifetime: the given one, or the subnet's first usable address. */
  readonly gateway: string;
  /** The block {@link allocate} hands addresses out from, if narrower than the subnet. */
  readonly range: Cidr | undefined;
  private readonly gatewayAddress: number;
  private readonly addresses: SerialBitmap;

  /**
   * @throws INVALID_ARGUMENT if the subnet is larger than /8 or smaller than /30, the range is not
   *   inside the subnet, or the gateway is not a usable address of the subnet.
   */
  constructor(options: AddressPoolOptions) {
    const { subnet, range } = options;
    assertSupportedSubnet(subnet);
    if (range !== undefined && !cidrContains(subnet, range)) {
      throw errors.invalidArgument(`IP range ${formatCidr(range)} is not inside subnet ${formatCidr(subnet)}`, {
        subnet: formatCidr(subnet),
        range: formatCidr(range),
      });
    }
    this.subnet = subnet;
    this.range = range;
    const firstUsable = subnet.start + 1;
    const lastUsable = cidrEnd(subnet) - 1;
    this.addresses = new SerialBitmap(
      firstUsable,
      lastUsable,
      Math.max(firstUsable, range?.start ?? firstUsable),
      Math.min(lastUsable, range === undefined ? lastUsable : cidrEnd(range)),
    );
    this.gatewayAddress = options.gateway === undefined ? firstUsable : this.usableAddress(options.gateway, 'gateway');
    this.gateway = formatAddress(this.gatewayAddress);
    this.addresses.mark(this.gatewayAddress);
  }

  /** How many addresses {@link allocate} can still hand out. */
  get available(): number {
    return this.addresses.available;
  }

  /**
   * Hands out the next free address of the range, serially.
   *
   * @throws RESOURCE_EXHAUSTED `no available IP addresses in subnet <subnet>` (or `in range <range>
   *   of subnet <subnet>`); the allocator shows it to users as the task's error.
   */
  allocate(): string {
    const address = this.addresses.take();
    if (address === undefined) {
      const where = this.range === undefined ? '' : ` range ${formatCidr(this.range)} of`;
      throw errors.resourceExhausted(`no available IP addresses in${where} subnet ${formatCidr(this.subnet)}`, {
        subnet: formatCidr(this.subnet),
      });
    }
    return formatAddress(address);
  }

  /**
   * Marks an address as held: one recorded in the store, or a static address a user asked for.
   *
   * @throws INVALID_ARGUMENT if it is outside the subnet, the network, broadcast or gateway address,
   *   or already held.
   */
  reserve(address: string): void {
    const value = this.usableAddress(address, 'address');
    if (value === this.gatewayAddress) throw this.addressError(address, 'is the gateway of');
    if (!this.addresses.mark(value)) throw this.addressError(address, 'is already in use in');
  }

  /**
   * Frees a held address; it will be handed out again only after every other free one. Returns false,
   * changing nothing, if it is not held (the gateway always stays held).
   */
  release(address: string): boolean {
    const value = parseAddress(address);
    return this.isHeldByCaller(value) && this.addresses.unmark(value);
  }

  /** True if the address was handed out or reserved and not released since (false for the gateway). */
  isAllocated(address: string): boolean {
    const value = parseAddress(address);
    return this.isHeldByCaller(value) && this.addresses.has(value);
  }

  /** True if `value` is a usable address other than the gateway, i.e. one a caller can hold. */
  private isHeldByCaller(value: number): boolean {
    return value > this.subnet.start && value < cidrEnd(this.subnet) && value !== this.gatewayAddress;
  }

  /** Parses an address that must be usable: inside the subnet, neither its network nor broadcast address. */
  private usableAddress(text: string, label: 'address' | 'gateway'): number {
    const value = parseAddress(text);
    if (value < this.subnet.start || value > cidrEnd(this.subnet)) throw this.addressError(text, 'is not in', label);
    if (value === this.subnet.start) throw this.addressError(text, 'is the network address of', label);
    if (value === cidrEnd(this.subnet)) throw this.addressError(text, 'is the broadcast address of', label);
    return value;
  }

  private addressError(address: string, relation: string, label: 'address' | 'gateway' = 'address') {
    const subnet = formatCidr(this.subnet);
    return errors.invalidArgument(`${label} ${address} ${relation} subnet ${subnet}`, { address, subnet });
  }
}
