import type { BusConnection } from '@shoal/bus';
import { errors } from '@shoal/errors';
import { loadCertificateAuthority } from '@shoal/pki';
import type { Cluster } from '@shoal/proto';
import { createServer } from '@shoal/rpc';
import { untilAborted, type Component, type Logger } from '@shoal/runtime';
import { holdLease, type ClusterState, type LeaseApi, type Leadership } from '@shoal/store-client';
import { addCaServices } from './ca-service.js';
import { currentCluster, rootCaPem } from './cluster-settings.js';
import { DispatcherApi } from './dispatcher-service.js';
import { LogRelay } from './log-relay.js';
import { INSTANCE_LEASE_PREFIX, NodeHealth } from './node-health.js';
import { RoleManager } from './role-manager.js';
import { dispatcherIdentity, splitListenAddress } from './server-identity.js';
import { SessionRegistry } from './sessions.js';
import { StatusBatcher } from './status-batcher.js';

/** The lease one dispatcher at a time reconciles node roles under. */
export const ROLE_MANAGER_LEASE = 'dispatcher-role-manager';

/** What a {@link Dispatcher} serves from and reaches out to. */
export interface DispatcherOptions {
  readonly state: ClusterState;
  /** The Store API's lease calls: this instance's own lease and the role manager's. */
  readonly leases: LeaseApi;
  /** Where log subscriptions and lines travel; without it, no logs. */
  readonly bus?: BusConnection;
  /** `host:port`; port 0 picks one, which is then kept for as long as this object runs. */
  readonly listen: string;
  /** Names this instance in node statuses and in its lease `dispatcher.<instance>`. */
  readonly instance: string;
  readonly leaseTtlMs: number;
  readonly log: Logger;
  /** How long calls in flight may take to finish when serving stops. @default 2000 */
  readonly stopGraceMs?: number;
}

/**
 * A dispatcher instance: it serves the nodes of the swarm the store holds, on one port, for as long
 * as it holds its own lease `dispatcher.<instance>` (which tells the other instances it is alive).
 * Without a swarm it waits for one; when the swarm is removed (or replaced) it ends every session,
 * stops listening and waits for the next. While any instance runs, one of them also reconciles node
 * roles (under the `dispatcher-role-manager` lease).
 */
export class Dispatcher {
  readonly #options: DispatcherOptions;
  #port: number | undefined;
  #address: string | undefined;
  readonly #listening = new Set<(address: string) => void>();

  constructor(options: DispatcherOptions) {
    this.#options = options;
  }

  /** `host:port` it listens on, while it does. */
  get address(): string | undefined {
    return this.#address;
  }

  /** Resolves with the address once it listens (at once if it does). */
  listening(): Promise<string> {
    if (this.#address !== undefined) return Promise.resolve(this.#address);
    return new Promise((resolve) => this.#listening.add(resolve));
  }

  /** Runs until `signal` aborts; `ready` is called once it listens, or once it found no swarm to serve yet. */
  async run(signal: AbortSignal, ready: () => void = () => {}): Promise<void> {
    const { leases, instance, leaseTtlMs, log, state } = this.#options;
    const roles = holdLease({ api: leases, name: ROLE_MANAGER_LEASE, holder: instance, ttlMs: leaseTtlMs, log }, signal, (leadership) =>
      new RoleManager({ state, fence: leadership.fence, log: log.child({ module: 'role-manager' }) }).run(leadership.lost),
    );
    try {
      while (!signal.aborted) {
        const cluster = await this.#swarm(signal, ready);
        if (cluster === undefined) return;
        const swarmChanged = this.#untilSwarmChanges(cluster, signal);
        try {
          const lease = { api: leases, name: `${INSTANCE_LEASE_PREFIX}${instance}`, holder: instance, ttlMs: leaseTtlMs, log };
          await holdLease(lease, swarmChanged.signal, (leadership) => this.#serve(cluster, leadership, ready));
        } finally {
          swarmChanged.dispose();
        }
      }
    } finally {
      await roles;
    }
  }

  /** The swarm's cluster object, once there is one (undefined if `signal` aborts first). */
  async #swarm(signal: AbortSignal, ready: () => void): Promise<Cluster | undefined> {
    const { state, log } = this.#options;
    let found: () => void = () => {};
    const appeared = new Promise<void>((resolve) => (found = resolve));
    const unsubscribe = state.subscribe(() => {
      if (state.view(currentCluster) !== undefined) found();
    });
    try {
      const cluster = state.view(currentCluster);
      if (cluster !== undefined) return cluster;
      log.info({ state: 'waiting' }, 'no swarm yet: waiting for `docker swarm init` before listening');
      ready();
      await Promise.race([appeared, untilAborted(signal)]);
      return signal.aborted ? undefined : state.view(currentCluster);
    } finally {
      unsubscribe();
    }
  }

  /** A signal that aborts when `signal` does or the swarm is removed or replaced (another ID or root CA). */
  #untilSwarmChanges(cluster: Cluster, signal: AbortSignal): { signal: AbortSignal; dispose(): void } {
    const { state, log } = this.#options;
    const changed = new AbortController();
    const caCert = rootCaPem(cluster);
    const unsubscribe = state.subscribe(() => {
      const current = state.view((tx) => tx.get('cluster', cluster.id));
      if (current !== undefined && rootCaPem(current) === caCert) return;
      log.info({ clusterId: cluster.id }, current === undefined ? 'the swarm was removed' : 'the swarm root CA changed');
      changed.abort();
    });
    return { signal: AbortSignal.any([signal, changed.signal]), dispose: unsubscribe };
  }

  /** Serves the swarm's nodes until the lease is lost or serving must stop. */
  async #serve(cluster: Cluster, leadership: Leadership, ready: () => void): Promise<void> {
    const { state, bus, instance, stopGraceMs = 2_000 } = this.#options;
    const log = this.#options.log.child({ clusterId: cluster.id });
    const caKey = Buffer.from(cluster.rootCa?.caKey ?? []).toString('utf8');
    if (caKey === '') throw errors.failedPrecondition('the swarm root CA has no key here: Shoal does not support external CAs', { clusterId: cluster.id });
    const ca = loadCertificateAuthority(rootCaPem(cluster), caKey);
    const identity = dispatcherIdentity(ca, cluster.id, instance, this.#options.listen);
    const server = createServer({ log, tls: { ca: ca.caCertPem, cert: identity.certPem, key: identity.keyPem, requireClientCert: false, requestClientCert: true } });
    const batcher = new StatusBatcher({ state, fence: leadership.fence, log: log.child({ module: 'status-batcher' }) });
    const sessions = new SessionRegistry((session) => health.sessionExpired(session));
    const health = new NodeHealth({ state, clusterId: cluster.id, instance, sessions, batcher, log: log.child({ module: 'node-health' }) });
    const logRelay = bus === undefined ? undefined : new LogRelay(bus, log.child({ module: 'log-relay' }));
    const api = new DispatcherApi({ state, clusterId: cluster.id, instance, sessions, batcher, logRelay, log });
    addCaServices(server, { state, clusterId: cluster.id, ca, batcher, fence: leadership.fence, log });
    api.register(server);
    const unfollow = api.follow();
    logRelay?.start();
    const sweeping = health.run(leadership.lost);
    try {
      const { host, port } = splitListenAddress(this.#options.listen);
      // A port picked by the system (0) is kept, so that nodes find this instance where it was.
      this.#port = await server.bind(`${host}:${this.#port ?? port}`);
      this.#announce(`${host}:${this.#port}`);
      log.info({ state: 'serving', address: this.#address, instance }, 'serving the swarm');
      ready();
      await untilAborted(leadership.lost);
    } finally {
      this.#address = undefined;
      log.info({ state: 'stopping' }, 'ending the node sessions');
      sessions.endAll(errors.unavailable('the dispatcher is stopping; connect to another manager'));
      logRelay?.close();
      await server.stop(stopGraceMs);
      unfollow();
      await sweeping;
      await batcher.close();
    }
  }

  #announce(address: string): void {
    this.#address = address;
    for (const resolve of this.#listening) resolve(address);
    this.#listening.clear();
  }
}

/** The dispatcher as a supervisor component (services/dispatcher's main.ts). */
export function dispatcherComponent(options: () => DispatcherOptions): Component & { readonly address: string | undefined } {
  let dispatcher: Dispatcher | undefined;
  return {
    name: 'dispatcher',
    get address() {
      return dispatcher?.address;
    },
    async run({ signal, ready }) {
      dispatcher = new Dispatcher(options());
      await dispatcher.run(signal, ready);
    },
  };
}
