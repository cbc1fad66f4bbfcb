import { ErrorCode, toShoalError } from '@shoal/errors';
import type { Lease } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Precondition } from '@shoal/store';
import type { LeaseHolding } from './client.js';

/** The lease calls of the Store API (`StoreApiClient` has them). */
export interface LeaseApi {
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease>;
  renewLease(lease: LeaseHolding, ttlMs: number): Promise<Lease>;
  releaseLease(lease: LeaseHolding): Promise<Lease>;
}

/** What a singleton holds while it leads: the epoch to fence its writes with, and a signal that fires when it is deposed. */
export interface Leadership {
  readonly epoch: bigint;
  /** Aborts when the lease is lost (a renewal failed or came too late) or the holder is stopping. */
  readonly lost: AbortSignal;
  /** The precondition every write of the leader carries: it fails once another holder has the lease. */
  readonly fence: Precondition;
}

export interface HoldLeaseOptions {
  readonly api: LeaseApi;
  /** The role, e.g. `orchestrator`. */
  readonly name: string;
  /** This instance's ID. */
  readonly holder: string;
  /** How long the lease lasts without renewal; a standby takes over at most this long after a leader dies. */
  readonly ttlMs: number;
  readonly log: Logger;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Runs `lead` whenever this instance holds the named lease, until `signal` aborts: waits as a
 * standby while another holder has it, renews it every third of its TTL while leading, and aborts
 * the leadership (then waits as a standby again) as soon as a renewal fails or the renewals fall
 * so far behind that the lease may have lapsed. On stop the lease is released, so a standby takes
 * over at once rather than after the TTL.
 */
export async function holdLease(options: HoldLeaseOptions, signal: AbortSignal, lead: (leadership: Leadership) => Promise<void>): Promise<void> {
  const { api, name, holder, ttlMs, log } = options;
  const renewEveryMs = Math.max(1, Math.floor(ttlMs / 3));
  while (!signal.aborted) {
    let lease: Lease;
    try {
      lease = await api.acquireLease(name, holder, ttlMs);
    } catch (err) {
      const error = toShoalError(err);
      // FAILED_PRECONDITION: another holder has it; CONFLICT: a concurrent acquirer won. Both mean: stand by.
      if (error.code !== ErrorCode.FailedPrecondition && error.code !== ErrorCode.Conflict) {
        log.warn({ code: error.code, err: error.message, lease: name }, 'could not reach the store to take the lease; retrying');
      }
      await sleep(renewEveryMs, signal);
      continue;
    }
    const holding: LeaseHolding = { name, holder, epoch: lease.epoch };
    const deposed = new AbortController();
    const lost = AbortSignal.any([deposed.signal, signal]);
    log.info({ lease: name, epoch: lease.epoch }, 'leading');
    let renewedAt = Date.now();
    const renewals = (async () => {
      while (!lost.aborted) {
        await sleep(renewEveryMs, lost);
        if (lost.aborted) return;
        try {
          await api.renewLease(holding, ttlMs);
          renewedAt = Date.now();
        } catch (err) {
          log.warn({ lease: name, epoch: lease.epoch, err: toShoalError(err).message }, 'lease renewal failed; stepping down');
          deposed.abort();
          return;
        }
        // A process stalled past the TTL may already have been replaced: stop acting as leader.
        if (Date.now() - renewedAt > ttlMs) deposed.abort();
      }
    })();
    try {
      await lead({ epoch: lease.epoch, lost, fence: { kind: 'lease', id: lease.id, leaseEpoch: lease.epoch } });
    } finally {
      deposed.abort();
      await renewals;
    }
    if (signal.aborted) {
      await api.releaseLease(holding).catch((err: unknown) => log.warn({ lease: name, err: toShoalError(err).message }, 'could not release the lease; it lapses by itself'));
      return;
    }
    log.info({ lease: name, epoch: lease.epoch }, 'no longer leading');
  }
}
