/**
 * Shoal's gRPC edge: servers and clients with mutual TLS, Shoal's limits and keepalive, and the one
 * place where ShoalErrors become gRPC statuses and back.
 */
export { ERROR_CODE_METADATA_KEY, ERROR_DETAILS_METADATA_KEY, fromGrpcError, grpcStatusByCode, toGrpcError, type GrpcError } from './status.js';
export {
  createChannelCredentials,
  createServerCredentials,
  peerIdentity,
  requirePeerRole,
  type CallWithPeer,
  type ClientTls,
  type PeerIdentity,
  type Pem,
  type ServerTls,
} from './tls.js';
export { GRPC_MAX_MESSAGE_BYTES, channelOptions } from './options.js';
export {
  GrpcServerComponent,
  RpcServer,
  createServer,
  grpcServerComponent,
  wrapServerStream,
  wrapUnary,
  type GrpcServerComponentOptions,
  type RpcServerOptions,
} from './server.js';
export { createClient, serverStreamCall, unaryCall, type CallOptions, type ClientConstructor, type ClientOptions } from './client.js';
