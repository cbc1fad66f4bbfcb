import { isIPv6 } from 'node:net';
import { MANAGER_ROLE, MANAGER_SERVER_NAME, readCertificate, type CertificateAuthority, type IssuedCertificate } from '@shoal/pki';

/** Listen hosts that mean "every interface": no client dials them, so no certificate names them. */
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::']);

/** A `host:port` listen address split at its last colon; an IPv6 host keeps its brackets. */
export function splitListenAddress(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  return { host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)) };
}

/**
 * The dispatcher's own TLS identity, issued by the cluster CA: a `swarm-manager` of the cluster named
 * `dispatcher-<instance>`, valid as the manager server name nodes verify managers by, as localhost
 * and as the host it listens on (IPv4 or a DNS name). Its key exists only in this process, so the
 * certificate may live as long as the CA does: a long-running dispatcher never needs a new one.
 */
export function dispatcherIdentity(ca: CertificateAuthority, clusterId: string, instance: string, listen: string): IssuedCertificate {
  const host = splitListenAddress(listen).host.replace(/^\[(.*)\]$/, '$1');
  const serverNames = [MANAGER_SERVER_NAME, 'localhost', '127.0.0.1'];
  if (!WILDCARD_HOSTS.has(host) && !isIPv6(host) && !serverNames.includes(host)) serverNames.push(host);
  const validityMs = readCertificate(ca.caCertPem).notAfter.getTime() - Date.now();
  return ca.issue({ cn: `dispatcher-${instance}`, ou: MANAGER_ROLE, o: clusterId, serverNames }, { validityMs });
}
