import { ErrorCode, ShoalError } from '@shoal/errors';
import { MANAGER_ROLE, WORKER_ROLE } from '@shoal/pki';
import { requirePeerRole, type CallWithPeer, type PeerIdentity } from '@shoal/rpc';

/** The certificate roles of nodes: both may hold a session and renew their certificate. */
export const NODE_ROLES: readonly string[] = [WORKER_ROLE, MANAGER_ROLE];

/**
 * The verified identity of the caller, provided its certificate has one of `roles` and belongs to
 * this cluster (O = cluster ID): swarmkit's `AuthorizeOrgAndRole`. UNAUTHENTICATED without a
 * certificate of the cluster CA, PERMISSION_DENIED for another role or organization.
 */
export function requireClusterPeer(call: CallWithPeer, clusterId: string, roles: readonly string[]): PeerIdentity {
  const peer = requirePeerRole(call, roles);
  if (peer.o !== clusterId) {
    throw new ShoalError(ErrorCode.PermissionDenied, `Permission denied: remote certificate not part of organization: ${clusterId}`, {
      details: { nodeId: peer.cn, organization: peer.o },
    });
  }
  return peer;
}

/**
 * The IP address in grpc-js's description of a peer (`10.0.0.5:41234`, `[::1]:41234`, with or without
 * an `ipv4:`/`ipv6:` scheme), an IPv4-mapped IPv6 address as plain IPv4: what swarmkit records as the
 * node's `status.addr`.
 */
export function peerAddress(peer: string): string {
  const address = peer.replace(/^ipv[46]:/, '');
  const host = /^\[(.*)\]:\d+$/.exec(address)?.[1] ?? address.replace(/:\d+$/, '');
  return host.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
}
