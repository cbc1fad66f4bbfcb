import * as grpc from '@grpc/grpc-js';
import { channelOptions } from './options.js';
import { fromGrpcError } from './status.js';

export interface ClientOptions {
  /** `host:port` of the server. */
  address: string;
  /** From {@link createChannelCredentials}. */
  credentials: grpc.ChannelCredentials;
  /**
   * The name the server's certificate must carry, when it differs from the host in `address`: Shoal's
   * managers are verified as `swarm-manager` whatever address they are dialled at, as in swarmkit.
   */
  serverName?: string;
  /** Defaults to {@link GRPC_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
}

/** A client class as grpc-js's `makeGenericClientConstructor` and ts-proto's generated code make them. */
export type ClientConstructor<C> = new (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => C;

/**
 * Creates a client with Shoal's limits and keepalive: a plain `grpc.Client` (for {@link unaryCall} and
 * {@link serverStreamCall}) or, given its constructor, a generated typed client. Close it with `close()`.
 */
export function createClient(opts: ClientOptions): grpc.Client;
export function createClient<C>(opts: ClientOptions, Client: ClientConstructor<C>): C;
export function createClient<C>(opts: ClientOptions, Client?: ClientConstructor<C>): C | grpc.Client {
  const options: grpc.ChannelOptions = channelOptions(opts.maxMessageBytes);
  if (opts.serverName !== undefined) options['grpc.ssl_target_name_override'] = opts.serverName;
  return new (Client ?? grpc.Client)(opts.address, opts.credentials, options);
}

export interface CallOptions {
  /** Milliseconds the whole call may take; the call fails with DEADLINE_EXCEEDED after that. */
  deadlineMs?: number;
  /** Cancels the call; it then fails with CANCELLED. */
  signal?: AbortSignal;
  metadata?: grpc.Metadata;
}

/** The arguments every grpc-js `make*Request` takes, in its order. */
function requestArguments<Req, Res>(method: grpc.MethodDefinition<Req, Res>, request: Req, options: CallOptions) {
  const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return [method.path, method.requestSerialize, method.responseDeserialize, request, options.metadata ?? new grpc.Metadata(), callOptions] as const;
}

/** Cancels `call` when `signal` aborts; returns the function that stops listening. */
function cancelOnAbort(call: { cancel(): void }, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return () => {};
  const cancel = () => call.cancel();
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

/**
 * Calls a unary method and resolves with its response. Failures reject with the ShoalError the server
 * threw (same code, message and details) or, for transport failures, the closest ShoalError.
 */
export function unaryCall<Req, Res>(client: grpc.Client, method: grpc.MethodDefinition<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = client.makeUnaryRequest(...requestArguments(method, request, options), (err, response) => {
      stopListening();
      if (err !== null) reject(fromGrpcError(err));
      else resolve(response as Res);
    });
    const stopListening = cancelOnAbort(call, options.signal);
  });
}

/**
 * Calls a server-streaming method and yields its messages. Stopping the iteration early (`break`,
 * `return`, or `signal`) cancels the call; a failure is thrown as a ShoalError, as by {@link unaryCall}.
 */
export async function* serverStreamCall<Req, Res>(
  client: grpc.Client,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  options: CallOptions = {},
): AsyncGenerator<Res, void, undefined> {
  const call = client.makeServerStreamRequest(...requestArguments(method, request, options));
  const stopListening = cancelOnAbort(call, options.signal);
  try {
    for await (const message of call) yield message as Res;
  } catch (err) {
    throw fromGrpcError(err as grpc.ServiceError);
  } finally {
    stopListening();
    call.cancel();
  }
}
