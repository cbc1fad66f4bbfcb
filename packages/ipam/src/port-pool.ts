import { errors } from '@shoal/errors';
import { IdPool } from './id-pool.js';

/** The protocols a port can be published for; each has its own port space. */
export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** The service holding a published port, named in conflict messages. */
export interface PortOwner {
  readonly id: string;
  readonly name: string;
}

/** A published port and the protocol it is published for. */
export interface PublishedPort {
  readonly port: number;
  readonly protocol: PortProtocol;
}

const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];

/** swarmkit's ranges: any port may be asked for; automatic ones come from 30000–32767. */
const PUBLISHED_PORTS = { min: 1, max: 65535, dynamicMin: 30000, dynamicMax: 32767 } as const;

/** One protocol's ports: which are held and by whom. */
interface PortSpace {
  readonly ports: IdPool;
  readonly owners: Map<number, PortOwner>;
}

function newPortSpace(protocol: PortProtocol): PortSpace {
  return { ports: new IdPool({ kind: `${protocol} port`, ...PUBLISHED_PORTS }), owners: new Map() };
}

/**
 * The cluster's ingress (routing-mesh) published ports, as swarmkit's port allocator keeps them:
 * per protocol, a service may publish any port from 1–65535, and a service that leaves the
 * published port empty gets the next free one from 30000–32767, serially. Host-mode ports are not
 * allocated here: they are per node, and the scheduler checks them.
 *
 * Rebuild after a restart by calling {@link reserve} for every ingress port in every service's endpoint.
 */
export class PortPool {
  private readonly spaces = new Map<PortProtocol, PortSpace>(PROTOCOLS.map((protocol) => [protocol, newPortSpace(protocol)]));
  /** The ports each owner holds, keyed `<port>/<protocol>`, so that {@link releaseOwner} does not scan. */
  private readonly byOwner = new Map<string, Map<string, PublishedPort>>();

  /**
   * Gives `owner` a port it asked for. Reserving a port the same owner already holds does nothing, so
   * a service can be re-reserved as it is.
   *
   * @throws INVALID_ARGUMENT `port '<port>' is already in use by service '<name>' (<id>) as an ingress port`
   *   if another owner holds it; `invalid <protocol> port …` if it is not in 1–65535.
   */
  reserve(port: number, protocol: PortProtocol, owner: PortOwner): void {
    const space = this.space(protocol);
    const holder = space.owners.get(port);
    if (holder?.id === owner.id) return;
    if (holder !== undefined) {
      throw errors.invalidArgument(`port '${port}' is already in use by service '${holder.name}' (${holder.id}) as an ingress port`, {
        port,
        protocol,
        serviceId: holder.id,
      });
    }
    space.ports.reserve(port);
    this.hold(space, { port, protocol }, owner);
  }

  /**
   * Gives `owner` the next free port from 30000–32767.
   *
   * @throws RESOURCE_EXHAUSTED `no <protocol> port available: all of 30000-32767 are in use`.
   */
  allocateDynamic(protocol: PortProtocol, owner: PortOwner): number {
    const space = this.space(protocol);
    const port = space.ports.allocate();
    this.hold(space, { port, protocol }, owner);
    return port;
  }

  /** Frees a port. Returns false, changing nothing, if nobody holds it. */
  release(port: number, protocol: PortProtocol): boolean {
    const space = this.space(protocol);
    const owner = space.owners.get(port);
    if (owner === undefined) return false;
    space.owners.delete(port);
    space.ports.release(port);
    const held = this.byOwner.get(owner.id);
    held?.delete(portKey({ port, protocol }));
    if (held?.size === 0) this.byOwner.delete(owner.id);
    return true;
  }

  /** Frees every port the owner holds (a service being deleted or losing its ingress ports); returns them. */
  releaseOwner(ownerId: string): PublishedPort[] {
    const held = [...(this.byOwner.get(ownerId)?.values() ?? [])];
    for (const { port, protocol } of held) this.release(port, protocol);
    return held;
  }

  /** The owner holding the port, if any. */
  ownerOf(port: number, protocol: PortProtocol): PortOwner | undefined {
    return this.space(protocol).owners.get(port);
  }

  private space(protocol: PortProtocol): PortSpace {
    const space = this.spaces.get(protocol);
    if (space === undefined) throw errors.invalidArgument(`unsupported protocol '${String(protocol)}'`, { protocol });
    return space;
  }

  private hold(space: PortSpace, published: PublishedPort, owner: PortOwner): void {
    space.owners.set(published.port, owner);
    let held = this.byOwner.get(owner.id);
    if (held === undefined) {
      held = new Map();
      this.byOwner.set(owner.id, held);
    }
    held.set(portKey(published), published);
  }
}

function portKey({ port, protocol }: PublishedPort): string {
  return `${port}/${protocol}`;
}
