import { errors } from '@shoal/errors';
import { Lease, newId } from '@shoal/proto';
import { byName } from '@shoal/store';
import type { ClusterState } from './cluster-state.js';
import type { LeaseApi } from './lease.js';

type LeaseHolding = Parameters<LeaseApi['renewLease']>[0];

/**
 * The Store API's lease calls carried out as conditional commits on a {@link ClusterState}, with the
 * raft-store's rules (services/raft's leases.ts): a free or lapsed lease goes to its next holder at
 * the next epoch, a held one only to its holder; renewing or releasing a lease that changed hands or
 * lapsed is a CONFLICT. For components run in-process over a `LocalClusterState` (tests,
 * simulations, benchmarks); the services themselves use the Store API's.
 */
export class ClusterStateLeases implements LeaseApi {
  readonly #state: ClusterState;

  constructor(state: ClusterState) {
    this.#state = state;
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease> {
    const now = new Date();
    const expiry = new Date(now.getTime() + ttlMs);
    const current = this.#find(name);
    if (current === undefined) {
      return this.#write('create', Lease.fromPartial({ id: newId(), name, holder, epoch: 1n, expiry }));
    }
    const held = isLeaseHeld(current, now);
    if (held && current.holder !== holder) {
      throw errors.failedPrecondition(`lease ${JSON.stringify(name)} is held by ${current.holder} until ${current.expiry?.toISOString()}`, { name });
    }
    return this.#write('update', { ...current, holder, epoch: held ? current.epoch : current.epoch + 1n, expiry });
  }

  async renewLease(lease: LeaseHolding, ttlMs: number): Promise<Lease> {
    const now = new Date();
    const current = this.#held(lease, 'renew');
    if (!isLeaseHeld(current, now)) throw errors.conflict(`cannot renew lease ${JSON.stringify(lease.name)}: it expired; acquire it again`, { name: lease.name });
    return this.#write('update', { ...current, expiry: new Date(now.getTime() + ttlMs) });
  }

  async releaseLease(lease: LeaseHolding): Promise<Lease> {
    return this.#write('update', { ...this.#held(lease, 'release'), holder: '', expiry: new Date() });
  }

  #find(name: string): Lease | undefined {
    return this.#state.view((tx) => tx.find('lease', byName(name))[0]);
  }

  /** The lease as `lease` holds it: CONFLICT if it changed hands since. */
  #held(lease: LeaseHolding, action: 'renew' | 'release'): Lease {
    const current = this.#find(lease.name);
    if (current === undefined) throw errors.notFound(`lease ${JSON.stringify(lease.name)} does not exist`, { name: lease.name });
    if (current.holder !== lease.holder || current.epoch !== lease.epoch) {
      throw errors.conflict(`cannot ${action} lease ${JSON.stringify(lease.name)} at epoch ${lease.epoch}: it is at epoch ${current.epoch}, held by ${current.holder || 'nobody'}`, {
        name: lease.name,
      });
    }
    return current;
  }

  async #write(action: 'create' | 'update', lease: Lease): Promise<Lease> {
    await this.#state.commit({ changes: [{ action, kind: 'lease', object: lease }] });
    return this.#state.view((tx) => tx.get('lease', lease.id)) ?? lease;
  }
}

/** Whether someone holds the lease at `now`: the raft-store's own rule, judged here by this host's clock. */
export function isLeaseHeld(lease: Lease, now: Date): boolean {
  return lease.holder !== '' && lease.expiry !== undefined && lease.expiry > now;
}
