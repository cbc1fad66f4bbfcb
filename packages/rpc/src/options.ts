import type * as grpc from '@grpc/grpc-js';

/**
 * Largest message either side sends or accepts: 4 MiB, swarmkit's `GRPCMaxMsgSize`. Anything bigger
 * (raft snapshots) must be chunked by the service that sends it.
 */
export const GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Keepalive pings every 30 s, a peer that does not answer within 10 s is dropped, and pings continue on
 * idle connections, so that a dead peer (a crashed agent, a partitioned manager) is noticed even when no
 * call is in flight, well before TCP would notice it.
 */
const keepaliveOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/** Channel options Shoal's servers and clients share: message size limits and keepalive. */
export function channelOptions(maxMessageBytes = GRPC_MAX_MESSAGE_BYTES): grpc.ChannelOptions {
  return {
    ...keepaliveOptions,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.max_receive_message_length': maxMessageBytes,
  };
}
