import { errors } from '@shoal/errors';
import { readCertificate } from '@shoal/pki';
import type { Logger } from '@shoal/runtime';
import { verifiedIdentity, type NodeIdentity, type NodeRoleName } from './identity.js';
import { managerClient, requestNodeCertificate } from './node-ca.js';
import { Notifier } from './notifier.js';

/** swarmkit's `CertLowerRotationRange` and `CertUpperRotationRange`: renew between 50 % and 80 % into a certificate's life. */
const RENEW_FROM = 0.5;
const RENEW_UNTIL = 0.8;
/** swarmkit's renewal backoff: 5 s after the first failure, doubling, at most an hour. */
const FAILURE_BACKOFF_BASE_MS = 5_000;
const FAILURE_BACKOFF_MAX_MS = 60 * 60 * 1000;

/**
 * When to renew `certPem` (ms since the epoch): a random point 50–80 % into its validity, so that the
 * nodes of a swarm, whose certificates were issued together, do not all renew at once (swarmkit's
 * `calculateRandomExpiry`).
 */
export function renewalTime(certPem: string, random: () => number = Math.random): number {
  const { notBefore, notAfter } = readCertificate(certPem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notBefore.getTime() + lifetime * (RENEW_FROM + (RENEW_UNTIL - RENEW_FROM) * random());
}

/** How long to wait after `failures` failed renewals in a row. */
export function renewalBackoffMs(failures: number): number {
  return Math.min(FAILURE_BACKOFF_MAX_MS, FAILURE_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
}

/**
 * Renews the node certificate of `identity` through the manager at `address`: a fresh key and a CSR
 * naming the node, sent without a token over mTLS with the current certificate, which is what tells
 * the CA this is a renewal. The CA decides the role, so a promoted or demoted node gets its new role
 * this way. Resolves with the new identity (same node, same managers).
 */
export async function renewCertificate(identity: NodeIdentity, address: string, signal: AbortSignal): Promise<NodeIdentity> {
  const client = managerClient(address, identity);
  try {
    const issued = await requestNodeCertificate(client, { nodeId: identity.nodeId }, signal);
    const renewed = verifiedIdentity({ certPem: issued.certPem, keyPem: issued.keyPem, caCertPem: identity.caCertPem, managers: identity.managers });
    if (renewed.nodeId !== identity.nodeId || renewed.clusterId !== identity.clusterId) {
      throw errors.internal(`the manager renewed the certificate of node ${identity.nodeId} as node ${renewed.nodeId} of cluster ${renewed.clusterId}`, {
        nodeId: identity.nodeId,
      });
    }
    return renewed;
  } finally {
    client.close();
  }
}

export interface CertificateRenewerOptions {
  /** The identity in use now. */
  readonly identity: () => NodeIdentity;
  /** Obtains a renewed identity (normally {@link renewCertificate} through the current manager). */
  readonly renew: (identity: NodeIdentity, signal: AbortSignal) => Promise<NodeIdentity>;
  /** Takes the renewed identity into use: saves it and reconnects with it. */
  readonly renewed: (identity: NodeIdentity) => Promise<void>;
  readonly log: Logger;
  readonly random?: () => number;
}

/**
 * Keeps the node certificate current (swarmkit's `TLSRenewer`): renews it at a random 50–80 % of its
 * life, and at once when the node's role in the swarm is not the one the certificate carries (a
 * promotion or demotion). Failures are retried with exponential backoff (5 s, doubling, at most 1 h);
 * a renewal that still carries the old role counts as a failure, since the CA may not have seen the
 * role change yet.
 */
export class CertificateRenewer {
  readonly #options: CertificateRenewerOptions;
  readonly #wakeup = new Notifier();
  #wantedRole: NodeRoleName | undefined;

  constructor(options: CertificateRenewerOptions) {
    this.#options = options;
  }

  /** The swarm says the node's role is `role`: renew now if the certificate says otherwise. */
  roleObserved(role: NodeRoleName): void {
    if (role === this.#options.identity().role) {
      this.#wantedRole = undefined;
      return;
    }
    this.#wantedRole = role;
    this.#wakeup.notify();
  }

  /** Renews whenever due until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { log, random } = this.#options;
    let failures = 0;
    let scheduledFor = '';
    let renewAt = 0;
    while (!signal.aborted) {
      const identity = this.#options.identity();
      if (scheduledFor !== identity.certPem) {
        scheduledFor = identity.certPem;
        renewAt = renewalTime(identity.certPem, random);
      }
      const roleChange = this.#wantedRole !== undefined && this.#wantedRole !== identity.role;
      const waitMs = failures > 0 ? renewalBackoffMs(failures) : roleChange ? 0 : renewAt - Date.now();
      if (waitMs > 0 && (await this.#wakeup.wait(signal, waitMs))) continue;
      if (signal.aborted) return;
      if (failures === 0 && !roleChange && Date.now() < renewAt) continue;
      try {
        const renewed = await this.#options.renew(identity, signal);
        await this.#options.renewed(renewed);
        if (this.#wantedRole !== undefined && renewed.role !== this.#wantedRole) {
          failures++;
          log.warn({ nodeId: renewed.nodeId, reason: `wanted role ${this.#wantedRole}, got ${renewed.role}` }, 'renewed certificate still carries the old role; retrying');
          continue;
        }
        this.#wantedRole = undefined;
        failures = 0;
        log.info({ nodeId: renewed.nodeId, state: renewed.role }, 'node certificate renewed');
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        log.warn({ err, nodeId: identity.nodeId }, 'node certificate renewal failed; retrying');
      }
    }
  }
}
