import { timingSafeEqual } from 'node:crypto';
import { errors } from '@shoal/errors';
import { joinTokenMatchesCa } from '@shoal/pki';
import { NodeRole, type Cluster } from '@shoal/proto';
import { rootCaPem } from './cluster-settings.js';

/**
 * The role a join token admits a node with, by the cluster's current tokens (a rotated token admits
 * nobody new; nodes that joined with it are not affected). INVALID_ARGUMENT with swarmkit's messages:
 * `invalid join token` for a malformed one, another swarm's token named as such, and `A valid join
 * token is necessary to join this cluster` for a wrong secret. The secret is compared in constant time.
 */
export function roleOfJoinToken(cluster: Cluster, token: string): NodeRole {
  if (!joinTokenMatchesCa(token, rootCaPem(cluster))) {
    throw errors.invalidArgument("the join token was issued by another swarm's certificate authority");
  }
  const tokens = cluster.rootCa?.joinTokens;
  // Both are compared, so the time taken does not tell which one matched.
  const worker = sameSecret(token, tokens?.worker ?? '');
  const manager = sameSecret(token, tokens?.manager ?? '');
  if (worker) return NodeRole.WORKER;
  if (manager) return NodeRole.MANAGER;
  throw errors.invalidArgument('A valid join token is necessary to join this cluster');
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
