import { errors } from '@shoal/errors';
import { RaftMembershipService, RaftService, RaftUnlockService, StoreService } from '@shoal/proto';
import { createServer, grpcServerComponent, type GrpcServerComponent, type ServerTls } from '@shoal/rpc';
import type { Component, ComponentContext } from '@shoal/runtime';
import { createStoreService, type NudgePublisher, type StoreApiLimits } from '../store-api/index.js';
import { refusingWhile } from './gate.js';
import type { RaftReplica } from './replica.js';
import { createRaftMembershipService, createRaftService, createRaftUnlockService } from './services.js';

export interface ManagerServerOptions {
  replica: RaftReplica;
  /** This manager's certificate and key and the cluster CA; callers need a certificate from that CA. */
  tls: Omit<ServerTls, 'requireClientCert'>;
  /** `host:port` to listen on (port 0 picks a free one; see {@link ManagerServerComponent.port}). */
  address: string;
  /** Receives the Store API's commit nudges. */
  bus?: NudgePublisher;
  limits?: Partial<StoreApiLimits>;
  /** How long calls in flight may take to finish on stop. */
  stopGraceMs?: number;
}

/**
 * The raft-store's one gRPC server, over mutual TLS, as swarmkit serves everything a manager offers on
 * one port: the Store API, Raft (peer traffic), RaftMembership and RaftUnlock. It starts before the
 * replica, because a joiner's address must answer the leader's health check before it is added and a
 * LOCKED replica must be reachable to be unlocked; until the replica runs, every call but Unlock is
 * refused with the replica's reason (UNAVAILABLE while starting, FAILED_PRECONDITION while locked).
 */
export class ManagerServerComponent implements Component {
  readonly name = 'raft-server';
  readonly #options: ManagerServerOptions;
  #server: GrpcServerComponent | undefined;

  constructor(options: ManagerServerOptions) {
    this.#options = options;
  }

  /** The bound port. Throws FAILED_PRECONDITION before the component is ready. */
  get port(): number {
    if (this.#server === undefined) throw errors.failedPrecondition(`${this.name} is not listening yet`);
    return this.#server.port;
  }

  run(ctx: ComponentContext): Promise<void> {
    const { replica, tls, address, bus, limits, stopGraceMs } = this.#options;
    const refusal = () => replica.refusal();
    const server = createServer({ log: ctx.log, tls: { ...tls, requireClientCert: true } });
    const store = createStoreService({ consensus: replica, bus, limits, log: ctx.log, stopping: ctx.signal });
    server.addService(StoreService, refusingWhile(StoreService, store, refusal));
    server.addService(RaftService, createRaftService(replica, ctx.log));
    server.addService(RaftMembershipService, createRaftMembershipService(replica, ctx.log));
    server.addService(RaftUnlockService, createRaftUnlockService(replica, ctx.log));
    this.#server = grpcServerComponent({ server, address, stopGraceMs, name: this.name });
    return this.#server.run(ctx);
  }
}
