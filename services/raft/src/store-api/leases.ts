/**
 * Leases for singleton services, as store transactions. A lease changes hands only through a
 * version-checked write, so of two concurrent acquirers one wins and the other's write fails with
 * CONFLICT when it is applied; and each change of hands raises the epoch, so a deposed holder that
 * fences its writes with its epoch (a `lease_epoch` precondition) has them refused. Expiry is judged
 * at `now`, the leader's time the transaction is proposed with.
 */
import { errors } from '@shoal/errors';
import { Lease, newId, type AcquireLeaseRequest, type Duration, type ReleaseLeaseRequest, type RenewLeaseRequest } from '@shoal/proto';
import { byName, type WriteTx } from '@shoal/store';
import { msOfDuration } from '@shoal/store-client';

const quote = JSON.stringify;

/** True while the lease has a holder and has not expired at `now` (the same boundary the store fences writes with). */
function isHeld(lease: Lease, now: Date): boolean {
  return lease.holder !== '' && lease.expiry !== undefined && lease.expiry > now;
}

function describeHolding(lease: Lease, now: Date): string {
  if (lease.holder === '') return 'free';
  const expiry = lease.expiry?.toISOString() ?? 'an unknown time';
  return isHeld(lease, now) ? `held by ${lease.holder} until ${expiry}` : `held by ${lease.holder} until it expired at ${expiry}`;
}

function requireNamed(request: { name: string; holder: string }): void {
  if (request.name === '') throw errors.invalidArgument('a lease request must name the lease');
  if (request.holder === '') throw errors.invalidArgument(`a request for lease ${quote(request.name)} must name its holder`, { name: request.name });
}

/** The TTL of a request in milliseconds, after checking it is between 1 ms and `maxTtlMs`. */
function ttlMsOf(name: string, ttl: Duration | undefined, maxTtlMs: number): number {
  const ttlMs = ttl === undefined ? 0 : msOfDuration(ttl);
  if (!(ttlMs >= 1 && ttlMs <= maxTtlMs)) {
    throw errors.invalidArgument(`the TTL of lease ${quote(name)} must be between 1 ms and ${maxTtlMs} ms, not ${ttlMs} ms`, {
      name,
      ttlMs,
      maxTtlMs,
    });
  }
  return ttlMs;
}

function findLease(tx: WriteTx, name: string): Lease | undefined {
  return tx.find('lease', byName(name))[0];
}

function requireLease(tx: WriteTx, name: string): Lease {
  const lease = findLease(tx, name);
  if (lease === undefined) throw errors.notFound(`lease ${quote(name)} does not exist; acquire it first`, { name });
  return lease;
}

/**
 * Throws CONFLICT, naming the lease and both epochs, unless `request.holder` still holds the lease at
 * `request.epoch` (for a renewal, also unexpired: a lapsed lease must be acquired again).
 */
function requireStillHeld(lease: Lease, request: { holder: string; epoch: bigint }, action: 'renew' | 'release', now: Date): void {
  const details = { kind: 'lease', id: lease.id, name: lease.name, epoch: lease.epoch, expectedEpoch: request.epoch, holder: lease.holder };
  const cannot = `cannot ${action} lease ${quote(lease.name)} at epoch ${request.epoch} for ${request.holder}`;
  if (lease.epoch !== request.epoch || lease.holder !== request.holder) {
    throw errors.conflict(`${cannot}: it is at epoch ${lease.epoch}, ${describeHolding(lease, now)}`, details);
  }
  if (action === 'renew' && !isHeld(lease, now)) {
    throw errors.conflict(`${cannot}: it expired at ${lease.expiry?.toISOString() ?? 'an unknown time'}; acquire it again`, details);
  }
}

/**
 * Gives the lease to `request.holder` until `now + ttl`: a new lease starts at epoch 1; a free or
 * expired one moves to the next epoch; one the holder already holds keeps its epoch (a renewal).
 * Throws FAILED_PRECONDITION, naming the holder and the expiry, if another holder has it. Returns
 * the lease's id.
 */
export function acquireLease(tx: WriteTx, request: AcquireLeaseRequest, now: Date, maxTtlMs: number): string {
  requireNamed(request);
  const expiry = new Date(now.getTime() + ttlMsOf(request.name, request.ttl, maxTtlMs));
  const current = findLease(tx, request.name);
  if (current === undefined) {
    const lease = Lease.fromPartial({ id: newId(), name: request.name, holder: request.holder, epoch: 1n, expiry });
    tx.create('lease', lease);
    return lease.id;
  }
  const held = isHeld(current, now);
  if (held && current.holder !== request.holder) {
    throw errors.failedPrecondition(
      `lease ${quote(current.name)} is ${describeHolding(current, now)}; it can be acquired once it is released or expires`,
      { kind: 'lease', id: current.id, name: current.name, holder: current.holder, epoch: current.epoch, expiry: current.expiry?.toISOString() },
    );
  }
  tx.update('lease', { ...current, holder: request.holder, epoch: held ? current.epoch : current.epoch + 1n, expiry });
  return current.id;
}

/** Extends the holder's lease to `now + ttl`. Throws CONFLICT if it lapsed or changed hands. Returns its id. */
export function renewLease(tx: WriteTx, request: RenewLeaseRequest, now: Date, maxTtlMs: number): string {
  requireNamed(request);
  const expiry = new Date(now.getTime() + ttlMsOf(request.name, request.ttl, maxTtlMs));
  const current = requireLease(tx, request.name);
  requireStillHeld(current, request, 'renew', now);
  tx.update('lease', { ...current, expiry });
  return current.id;
}

/**
 * Frees the holder's lease at once, keeping its epoch so the next holder gets a greater one, and
 * ending it at `now` so writes fenced with the old epoch fail from here on. Throws CONFLICT if it
 * changed hands. Returns its id.
 */
export function releaseLease(tx: WriteTx, request: ReleaseLeaseRequest, now: Date): string {
  requireNamed(request);
  const current = requireLease(tx, request.name);
  requireStillHeld(current, request, 'release', now);
  tx.update('lease', { ...current, holder: '', expiry: now });
  return current.id;
}
