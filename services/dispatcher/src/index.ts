/**
 * The dispatcher as a library (`@shoal/dispatcher/control`), for tests, simulations and benchmarks
 * that run it in-process over a `ClusterState`. Importing it starts nothing; the service itself is
 * `dist/main.js`.
 */
import type { BusConnection } from '@shoal/bus';
import { errors } from '@shoal/errors';
import { newId } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { ClusterState, LeaseApi } from '@shoal/store-client';
import { Dispatcher } from './dispatcher-component.js';

export { Dispatcher, ROLE_MANAGER_LEASE, type DispatcherOptions } from './dispatcher-component.js';
export { HEARTBEAT_FAILURE, INSTANCE_LEASE_PREFIX, UNKNOWN_AFTER_DISPATCHER_CHANGE } from './node-health.js';

/** What {@link startDispatcher} needs: a store, its leases, where to listen. */
export interface StartDispatcherOptions {
  readonly state: ClusterState;
  /** The Store API client, or `new ClusterStateLeases(state)` (@shoal/store-client) over an in-process store. */
  readonly leases: LeaseApi;
  /** NATS, for `docker service logs`; without it no logs are relayed. */
  readonly bus?: BusConnection;
  /** `host:port`, e.g. `127.0.0.1:0` for a free port. */
  readonly listen: string;
  readonly log: Logger;
  /** @default a fresh random ID */
  readonly instance?: string;
  /** @default 10000 */
  readonly leaseTtlMs?: number;
}

/** A dispatcher running in this process. */
export interface RunningDispatcher {
  /** `host:port` it serves on (the same for as long as it runs, even when the swarm is replaced). */
  readonly address: string;
  readonly instance: string;
  /** Ends its sessions, stops serving, writes what it queued and gives its leases up. */
  stop(): Promise<void>;
}

/**
 * Starts a dispatcher over `state` and resolves once it serves, which needs a swarm: it waits for the
 * cluster object if there is none yet. Rejects if it fails before that (e.g. the port is taken).
 */
export async function startDispatcher(options: StartDispatcherOptions): Promise<RunningDispatcher> {
  const instance = options.instance ?? newId();
  const dispatcher = new Dispatcher({ ...options, instance, leaseTtlMs: options.leaseTtlMs ?? 10_000 });
  const stopping = new AbortController();
  const running = dispatcher.run(stopping.signal);
  const stop = async () => {
    stopping.abort();
    await running;
  };
  try {
    const stoppedFirst = running.then(() => Promise.reject(errors.internal('the dispatcher stopped before it served')));
    const address = await Promise.race([dispatcher.listening(), stoppedFirst]);
    return { address, instance, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
