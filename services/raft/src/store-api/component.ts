import { errors } from '@shoal/errors';
import { StoreService } from '@shoal/proto';
import { createServer, grpcServerComponent, type GrpcServerComponent, type ServerTls } from '@shoal/rpc';
import type { Component, ComponentContext } from '@shoal/runtime';
import { createStoreService, type StoreServiceDeps } from './service.js';

/** What the component needs; it supplies the log and the stopping signal from the supervisor itself. */
export interface StoreApiComponentOptions extends Omit<StoreServiceDeps, 'log' | 'stopping'> {
  /**
   * This manager's certificate and key and the cluster CA. Clients must present a certificate from
   * the same CA (mutual TLS) with the `swarm-manager` role.
   */
  tls: Omit<ServerTls, 'requireClientCert'>;
  /** `host:port` to listen on; port 0 picks a free one (read it from {@link StoreApiComponent.port}). */
  address: string;
  /** How long calls in flight may take to finish on stop (see `grpcServerComponent`). */
  stopGraceMs?: number;
  /** @default `store-api` */
  name?: string;
}

/**
 * Serves the Store API over gRPC with mutual TLS under the supervisor: ready once listening. On stop
 * it refuses new calls, ends open watches with UNAVAILABLE (their clients watch again elsewhere), and
 * lets other calls in flight finish within the grace period before cancelling them. Put it after the
 * components that run the consensus and the bus, so that it starts last and stops first.
 */
export class StoreApiComponent implements Component {
  readonly name: string;
  readonly #options: StoreApiComponentOptions;
  #server: GrpcServerComponent | undefined;

  constructor(options: StoreApiComponentOptions) {
    this.name = options.name ?? 'store-api';
    this.#options = options;
  }

  /** The bound port. Throws FAILED_PRECONDITION before the component is ready. */
  get port(): number {
    if (this.#server === undefined) throw errors.failedPrecondition(`${this.name} is not listening yet`);
    return this.#server.port;
  }

  run(ctx: ComponentContext): Promise<void> {
    const { tls, address, stopGraceMs, consensus, bus, limits } = this.#options;
    const server = createServer({ log: ctx.log, tls: { ...tls, requireClientCert: true } });
    server.addService(StoreService, createStoreService({ consensus, bus, limits, log: ctx.log, stopping: ctx.signal }));
    this.#server = grpcServerComponent({ server, address, stopGraceMs, name: this.name });
    return this.#server.run(ctx);
  }
}

/** Creates a {@link StoreApiComponent}. */
export function storeApiComponent(options: StoreApiComponentOptions): StoreApiComponent {
  return new StoreApiComponent(options);
}
