import { errors, toShoalError, type ShoalError } from '@shoal/errors';
import { AddressPool, IdPool, PortPool, SubnetPool, type AddressPoolOptions, type Cidr, type PortProtocol, type SubnetPoolOptions } from '@shoal/ipam';
import { holderKey, hostPart, resourceKey, type Holder, type Resource } from './resources.js';

/** What syncing records to the ledger did. */
export interface SyncOutcome {
  /** Resources the records name that another holder has: left with that holder, to be reported. */
  readonly conflicts: ShoalError[];
  /** True if something went back to the pools (or, for a network, its address space opened): waiting work may fit now. */
  readonly capacityGained: boolean;
}

/** What one holder has, by resource key. */
interface Holdings {
  readonly holder: Holder;
  readonly resources: Map<string, Resource>;
}

/**
 * The cluster's allocations in memory: the `@shoal/ipam` pools (subnets, VXLAN IDs, ingress ports,
 * and one address pool per allocated network) and, for each holder, what it has from them. The
 * pools answer "is it free?"; the per-holder record answers "whose is it?", so that a holder can be
 * made to match its stored record at any time (see {@link sync}) and whatever it no longer records
 * goes back to the pools.
 *
 * Allocation is additive: planning an object only takes; what the object no longer needs is given
 * back by the {@link sync} that follows its write (and what a failed plan took, by a sync to the
 * record it still has). Until then the old values stay taken, so nothing planned in the same pass
 * can be handed a value a still-stored record names.
 */
export class Ledger {
  readonly #subnets: SubnetPool;
  readonly #vxlanIds = new IdPool();
  readonly #ports = new PortPool();
  readonly #addressPools = new Map<string, AddressPool>();
  readonly #holdings = new Map<string, Holdings>();

  /** @throws INVALID_ARGUMENT if the cluster's address pools or subnet size are unusable. */
  constructor(subnets: SubnetPoolOptions) {
    this.#subnets = new SubnetPool(subnets);
  }

  /** The address space of a network, while it is open. */
  addressPool(networkId: string): AddressPool | undefined {
    return this.#addressPools.get(networkId);
  }

  /**
   * Opens a network's address space, unless it is open already (an open one keeps its addresses).
   *
   * @throws INVALID_ARGUMENT if the gateway or range does not fit the subnet.
   */
  openNetwork(networkId: string, options: AddressPoolOptions): AddressPool {
    let pool = this.#addressPools.get(networkId);
    if (pool === undefined) {
      pool = new AddressPool(options);
      this.#addressPools.set(networkId, pool);
    }
    return pool;
  }

  /** Drops a network's address space and every holder's addresses in it: they went with the network. */
  closeNetwork(networkId: string): void {
    if (!this.#addressPools.delete(networkId)) return;
    for (const { resources } of this.#holdings.values()) {
      for (const [key, resource] of resources) if (resource.type === 'address' && resource.networkId === networkId) resources.delete(key);
    }
  }

  /** True if the holder has the resource. */
  holds(holder: Holder, resource: Resource): boolean {
    return this.#holdings.get(holderKey(holder))?.resources.has(resourceKey(resource)) ?? false;
  }

  /**
   * Gives the holder a resource it asked for or already records; nothing happens if it has it.
   *
   * @throws INVALID_ARGUMENT (the pool's message) if another holder has it or it is not a usable value;
   *   FAILED_PRECONDITION for an address on a network whose address space is not open.
   */
  take(holder: Holder, resource: Resource): void {
    const { resources } = this.#holdingsOf(holder);
    const key = resourceKey(resource);
    if (resources.has(key)) return;
    this.#reserve(holder, resource);
    resources.set(key, resource);
  }

  /** Gives the holder the lowest free subnet of the cluster's pools. @throws RESOURCE_EXHAUSTED when none is left. */
  allocateSubnet(holder: Holder): Cidr {
    const subnet = this.#subnets.allocate();
    this.#record(holder, { type: 'subnet', subnet });
    return subnet;
  }

  /** Gives the holder the next free VXLAN ID from 4096. @throws RESOURCE_EXHAUSTED when none is left. */
  allocateVxlanId(holder: Holder): number {
    const id = this.#vxlanIds.allocate();
    this.#record(holder, { type: 'vxlan', id });
    return id;
  }

  /** Gives the holder the next free ingress port from 30000–32767. @throws RESOURCE_EXHAUSTED when none is left. */
  allocatePort(holder: Holder, protocol: PortProtocol): number {
    const port = this.#ports.allocateDynamic(protocol, holder);
    this.#record(holder, { type: 'port', protocol, port });
    return port;
  }

  /**
   * The holder's address on a network, as a record writes it (`10.0.1.3/24`): `recorded` if the holder
   * still has it, else the network's next free address.
   *
   * @throws RESOURCE_EXHAUSTED `no available IP addresses in subnet …` when the network is full;
   *   FAILED_PRECONDITION if its address space is not open.
   */
  keepOrAllocateAddress(holder: Holder, networkId: string, recorded: string | undefined): string {
    const pool = this.#requireAddressPool(networkId);
    const kept = recorded === undefined ? undefined : hostPart(recorded);
    if (kept !== undefined && this.holds(holder, { type: 'address', networkId, address: kept })) return withPrefix(kept, pool);
    const address = pool.allocate();
    this.#record(holder, { type: 'address', networkId, address });
    return withPrefix(address, pool);
  }

  /**
   * Gives the holder an address it asked for (`10.0.1.9` or `10.0.1.9/24`), as a record writes it.
   *
   * @throws INVALID_ARGUMENT if another holder has it or it is not a usable address of the subnet.
   */
  takeAddress(holder: Holder, networkId: string, requested: string): string {
    const pool = this.#requireAddressPool(networkId);
    const address = hostPart(requested);
    this.take(holder, { type: 'address', networkId, address });
    return withPrefix(address, pool);
  }

  /**
   * Makes each holder have exactly the resources given for it: first every holder gives back what is
   * not in its list, then each takes what it lacks, so a value moving from one holder to another in
   * the same call never looks taken. A resource another holder has (two records naming the same
   * address) stays with that holder and is reported. Addresses on a network whose address space is
   * not open are skipped.
   */
  sync(entries: Iterable<readonly [Holder, readonly Resource[]]>): SyncOutcome {
    const wanted = [...entries].map(([holder, resources]) => ({ holder, resources: new Map(resources.map((r) => [resourceKey(r), r])) }));
    let freed = false;
    for (const { holder, resources } of wanted) {
      const holdings = this.#holdings.get(holderKey(holder));
      if (holdings === undefined) continue;
      for (const [key, resource] of holdings.resources) {
        if (resources.has(key)) continue;
        freed = this.#release(resource) || freed;
        holdings.resources.delete(key);
      }
    }
    const conflicts: ShoalError[] = [];
    for (const { holder, resources } of wanted) {
      for (const resource of resources.values()) {
        // An address on a network without an address space (deleted, or not allocated yet) holds nothing.
        if (resource.type === 'address' && !this.#addressPools.has(resource.networkId)) continue;
        try {
          this.take(holder, resource);
        } catch (err) {
          conflicts.push(toShoalError(err));
        }
      }
      if (this.#holdings.get(holderKey(holder))?.resources.size === 0) this.#holdings.delete(holderKey(holder));
    }
    return { conflicts, capacityGained: freed };
  }

  #holdingsOf(holder: Holder): Holdings {
    const key = holderKey(holder);
    let holdings = this.#holdings.get(key);
    if (holdings === undefined) {
      holdings = { holder, resources: new Map() };
      this.#holdings.set(key, holdings);
    }
    return holdings;
  }

  #record(holder: Holder, resource: Resource): void {
    this.#holdingsOf(holder).resources.set(resourceKey(resource), resource);
  }

  #requireAddressPool(networkId: string): AddressPool {
    const pool = this.#addressPools.get(networkId);
    if (pool === undefined) throw errors.failedPrecondition(`network ${networkId} has no subnet allocated`, { networkId });
    return pool;
  }

  #reserve(holder: Holder, resource: Resource): void {
    switch (resource.type) {
      case 'subnet':
        return this.#subnets.reserve(resource.subnet);
      case 'vxlan':
        return this.#vxlanIds.reserve(resource.id);
      case 'port':
        return this.#ports.reserve(resource.port, resource.protocol, holder);
      case 'address':
        return this.#requireAddressPool(resource.networkId).reserve(resource.address);
    }
  }

  /** Returns a resource to its pool; false if the pool did not have it as taken. */
  #release(resource: Resource): boolean {
    switch (resource.type) {
      case 'subnet':
        return this.#subnets.release(resource.subnet);
      case 'vxlan':
        return this.#vxlanIds.release(resource.id);
      case 'port':
        return this.#ports.release(resource.port, resource.protocol);
      case 'address':
        return this.#addressPools.get(resource.networkId)?.release(resource.address) ?? false;
    }
  }
}

function withPrefix(address: string, pool: AddressPool): string {
  return `${address}/${pool.subnet.prefixLength}`;
}
