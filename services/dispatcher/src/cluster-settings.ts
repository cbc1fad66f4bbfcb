import { DEFAULT_CERTIFICATE_VALIDITY_MS } from '@shoal/pki';
import type { Cluster } from '@shoal/proto';
import type { ReadTx } from '@shoal/store';
import { msOfDuration } from '@shoal/store-client';

/** swarmkit's `DefaultHeartBeatPeriod`, for a cluster whose spec sets none. */
const DEFAULT_HEARTBEAT_PERIOD_MS = 5_000;

/** swarmkit's `ca.MinNodeCertExpiration`: a configured validity below it falls back to the default. */
const MIN_NODE_CERTIFICATE_VALIDITY_MS = 60 * 60 * 1000;

/** The swarm's cluster object: one per swarm (`docker swarm init` creates it), none before that. */
export function currentCluster(tx: ReadTx): Cluster | undefined {
  return tx.list('cluster')[0];
}

/** How often agents heartbeat: the cluster's `spec.dispatcher.heartbeatPeriod`, read live, or 5 s. */
export function heartbeatPeriodMs(cluster: Cluster | undefined): number {
  const period = cluster?.spec?.dispatcher?.heartbeatPeriod;
  const ms = period === undefined ? 0 : msOfDuration(period);
  return ms > 0 ? ms : DEFAULT_HEARTBEAT_PERIOD_MS;
}

/** How long a node certificate is valid: the cluster's `spec.caConfig.nodeCertExpiry`, or 90 days when unset or under an hour. */
export function nodeCertificateValidityMs(cluster: Cluster | undefined): number {
  const expiry = cluster?.spec?.caConfig?.nodeCertExpiry;
  const ms = expiry === undefined ? 0 : msOfDuration(expiry);
  return ms >= MIN_NODE_CERTIFICATE_VALIDITY_MS ? ms : DEFAULT_CERTIFICATE_VALIDITY_MS;
}

/** The cluster's root CA certificate as PEM text. */
export function rootCaPem(cluster: Cluster): string {
  return Buffer.from(cluster.rootCa?.caCert ?? []).toString('utf8');
}
