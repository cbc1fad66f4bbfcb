import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError, errors, isShoalError } from '@shoal/errors';
import { untilAborted, type Component, type ComponentContext, type Logger } from '@shoal/runtime';
import { channelOptions } from './options.js';
import { toGrpcError } from './status.js';
import { createServerCredentials, type ServerTls } from './tls.js';

export interface RpcServerOptions {
  log: Logger;
  /** TLS material, or `'insecure'` for plaintext (tests, a host's local socket). */
  tls: ServerTls | 'insecure';
  /** Defaults to {@link GRPC_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
}

/** A gRPC server with Shoal's credentials, limits and keepalive, and a shutdown that cannot hang. */
export class RpcServer {
  /** The underlying grpc-js server, for anything this wrapper does not cover. */
  readonly grpc: grpc.Server;
  readonly #credentials: grpc.ServerCredentials;
  readonly #log: Logger;

  constructor(opts: RpcServerOptions) {
    this.grpc = new grpc.Server(channelOptions(opts.maxMessageBytes));
    this.#credentials = createServerCredentials(opts.tls);
    this.#log = opts.log;
  }

  /** Registers a service; build `implementation` with {@link wrapUnary} and {@link wrapServerStream}. */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.grpc.addService(definition, implementation);
  }

  /**
   * Listens on `address` (`host:port`; port 0 picks a free one) and resolves with the bound port.
   * Rejects with UNAVAILABLE when the address cannot be bound.
   */
  bind(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.grpc.bindAsync(address, this.#credentials, (err, port) => {
        if (err === null) {
          this.#log.info({ state: 'listening', address, port }, 'gRPC server listening');
          resolve(port);
        } else {
          reject(new ShoalError(ErrorCode.Unavailable, `cannot listen on ${address}: ${err.message}`, { details: { address }, cause: err }));
        }
      });
    });
  }

  /**
   * Stops accepting calls and waits up to `graceMs` for the calls in flight to finish, then cancels the
   * rest (long-lived watch streams never finish on their own). Resolves once the server is closed.
   */
  stop(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.#log.warn({ state: 'stopping' }, 'calls still running after the grace period; cancelling them');
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      this.grpc.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

/** Creates a {@link RpcServer}. */
export function createServer(opts: RpcServerOptions): RpcServer {
  return new RpcServer(opts);
}

/**
 * Logs a failed call at the edge. Expected outcomes (NOT_FOUND, CONFLICT, ...) are the caller's business
 * and logged at debug; INTERNAL means a bug or an unexpected error here, so it is logged as an error with
 * the whole error, which the client never sees.
 */
function logFailure(log: Logger, method: string, err: unknown): void {
  const code = isShoalError(err) ? err.code : ErrorCode.Internal;
  if (code === ErrorCode.Internal) log.error({ method, code, err }, 'call failed');
  else log.debug({ method, code, err }, 'call failed');
}

/**
 * Adapts an async unary handler to grpc-js: its result is the response, and whatever it throws is
 * logged and answered with {@link toGrpcError}, so handlers just throw ShoalErrors.
 */
export function wrapUnary<Req, Res>(
  log: Logger,
  handler: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handler(call.request, call))
      .then(
        (response) => callback(null, response),
        (err: unknown) => {
          logFailure(log, call.getPath(), err);
          callback(toGrpcError(err));
        },
      );
  };
}

/**
 * Adapts an async server-streaming handler to grpc-js. The handler writes to `call` and returns when the
 * stream is complete; `signal` aborts when the client cancels or goes away, which is how a watch loop
 * learns to stop. A thrown error ends the stream with {@link toGrpcError}.
 */
export function wrapServerStream<Req, Res>(
  log: Logger,
  handler: (request: Req, call: grpc.ServerWritableStream<Req, Res>, signal: AbortSignal) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const cancelled = new AbortController();
    call.once('cancelled', () => cancelled.abort(new ShoalError(ErrorCode.Cancelled, 'the client cancelled the call')));
    Promise.resolve()
      .then(() => handler(call.request, call, cancelled.signal))
      .then(
        () => call.end(),
        (err: unknown) => {
          if (cancelled.signal.aborted) return;
          logFailure(log, call.getPath(), err);
          call.emit('error', toGrpcError(err));
        },
      );
  };
}

export interface GrpcServerComponentOptions {
  /** Defaults to `grpc-server`; give each server its own name when a process runs several. */
  name?: string;
  server: RpcServer;
  /** `host:port` to listen on; port 0 picks a free one (read it from {@link GrpcServerComponent.port}). */
  address: string;
  /**
   * How long calls in flight may take to finish once the component is stopped.
   * @default 5000, half the default process grace period, leaving the other half to the components
   * stopped after the server.
   */
  stopGraceMs?: number;
}

/**
 * Runs a {@link RpcServer} under the supervisor: ready once it listens, stopped gracefully on abort. Put
 * it after the components its handlers use, so that it stops first and no call arrives at a component
 * that is already shutting down.
 */
export class GrpcServerComponent implements Component {
  readonly name: string;
  readonly #server: RpcServer;
  readonly #address: string;
  readonly #stopGraceMs: number;
  #port: number | undefined;

  constructor(opts: GrpcServerComponentOptions) {
    this.name = opts.name ?? 'grpc-server';
    this.#server = opts.server;
    this.#address = opts.address;
    this.#stopGraceMs = opts.stopGraceMs ?? 5_000;
  }

  /** The bound port. Throws FAILED_PRECONDITION before the component is ready. */
  get port(): number {
    if (this.#port === undefined) throw errors.failedPrecondition(`${this.name} is not listening yet`);
    return this.#port;
  }

  async run(ctx: ComponentContext): Promise<void> {
    this.#port = await this.#server.bind(this.#address);
    ctx.ready();
    await untilAborted(ctx.signal);
    await this.#server.stop(this.#stopGraceMs);
  }
}

/** Creates a {@link GrpcServerComponent}. */
export function grpcServerComponent(opts: GrpcServerComponentOptions): GrpcServerComponent {
  return new GrpcServerComponent(opts);
}
