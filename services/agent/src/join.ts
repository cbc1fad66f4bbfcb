import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '@shoal/errors';
import { joinTokenMatchesCa, parseJoinToken } from '@shoal/pki';
import { NodeSpec_Availability } from '@shoal/proto';
import { verifiedIdentity, type NodeIdentity } from './identity.js';
import { fetchRootCaUnverified, isUnreachable, managerClient, requestNodeCertificate } from './node-ca.js';

/** Node availability as `docker swarm join --availability` spells it. */
export type AvailabilityName = 'active' | 'pause' | 'drain';

const availabilityByName: Readonly<Record<AvailabilityName, NodeSpec_Availability>> = {
  active: NodeSpec_Availability.ACTIVE,
  pause: NodeSpec_Availability.PAUSE,
  drain: NodeSpec_Availability.DRAIN,
};

/** What `docker swarm join` asks for. */
export interface JoinRequest {
  readonly token: string;
  /** Managers to join through (`host:port`), tried in order. */
  readonly remoteAddrs: readonly string[];
  /** @default 'active' */
  readonly availability?: AvailabilityName;
}

export interface JoinOptions {
  readonly signal?: AbortSignal;
  /**
   * Rounds over `remoteAddrs` before an unreachable swarm is reported: a manager that is starting
   * refuses connections for a moment.
   * @default 5
   */
  readonly attempts?: number;
  /**
   * Pause after the first unsuccessful round, doubled after each further one.
   * @default 500 (rounds end after about 7.5 s in all)
   */
  readonly retryDelayMs?: number;
}

/**
 * Joins a swarm as swarmkit's node does: checks the token's form, fetches the root CA from a manager
 * and checks it against the token's CA digest before sending anything, then asks that manager (now
 * verified against the CA) for a certificate with a fresh key, a CSR and the token, and waits until it
 * is issued. Resolves with the new identity; the caller saves it.
 *
 * A malformed token is INVALID_ARGUMENT "invalid join token"; a CA that does not match the token is
 * INVALID_ARGUMENT, before any CSR is sent; the manager's own refusals keep their code and message; a
 * swarm that stays unreachable is UNAVAILABLE naming the addresses tried.
 */
export async function joinCluster(request: JoinRequest, options: JoinOptions = {}): Promise<NodeIdentity> {
  parseJoinToken(request.token);
  if (request.remoteAddrs.length === 0) throw errors.invalidArgument('no manager address to join through');
  const signal = options.signal ?? new AbortController().signal;
  const attempts = options.attempts ?? 5;
  let delayMs = options.retryDelayMs ?? 500;
  let lastFailure: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    for (const address of request.remoteAddrs) {
      try {
        return await joinThrough(address, request, signal);
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        lastFailure = err;
      }
    }
    if (attempt < attempts) {
      await sleep(delayMs, undefined, { signal });
      delayMs *= 2;
    }
  }
  throw errors.unavailable(`cannot reach a swarm manager at ${request.remoteAddrs.join(', ')}: ${lastFailure?.message ?? 'no answer'}`, {
    addresses: request.remoteAddrs.join(','),
  });
}

async function joinThrough(address: string, request: JoinRequest, signal: AbortSignal): Promise<NodeIdentity> {
  const caCertPem = await fetchRootCaUnverified(address, signal);
  if (!joinTokenMatchesCa(request.token, caCertPem)) {
    throw errors.invalidArgument("the swarm manager's certificate authority does not match the join token", { address });
  }
  const client = managerClient(address, { caCertPem });
  try {
    const issued = await requestNodeCertificate(client, { token: request.token, availability: availabilityByName[request.availability ?? 'active'] }, signal);
    const managers = [address, ...request.remoteAddrs.filter((other) => other !== address)];
    const identity = verifiedIdentity({ certPem: issued.certPem, keyPem: issued.keyPem, caCertPem, managers });
    if (identity.nodeId !== issued.nodeId) {
      throw errors.internal(`the manager issued a certificate for node ${identity.nodeId} to node ${issued.nodeId}`, { nodeId: issued.nodeId });
    }
    return identity;
  } finally {
    client.close();
  }
}
