import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, MANAGER_ROLE, MANAGER_SERVER_NAME, type CertificateAuthority, type CertificateSubject, type IssuedCertificate } from '@shoal/pki';

export type TestCertificateSubject = CertificateSubject;
export type TestCertificate = IssuedCertificate;
export type TestCertificateAuthority = CertificateAuthority;

/** Two unrelated CAs: `ca` for the cluster under test, `foreignCa` for certificates it must reject. */
export interface TestPki {
  ca: TestCertificateAuthority;
  foreignCa: TestCertificateAuthority;
}

/** A throw-away PKI for mTLS tests: two in-memory CAs from `@shoal/pki`, nothing written to disk. */
export function createTestPki(): TestPki {
  return { ca: createCertificateAuthority('Shoal test CA'), foreignCa: createCertificateAuthority('Foreign test CA') };
}

/** A manager identity written to files: the settings a manager service reads it from, and the PEMs for an in-process client. */
export interface ManagerIdentity {
  readonly env: { readonly SHOAL_TLS_CA: string; readonly SHOAL_TLS_CERT: string; readonly SHOAL_TLS_KEY: string };
  readonly pem: { readonly ca: string; readonly cert: string; readonly key: string };
}

/**
 * Issues a `swarm-manager` certificate from `ca`, valid as the manager server name and 127.0.0.1, and
 * writes it with the CA and key into `dir` (mode 0600): the identity every manager process of a test
 * or benchmark host shares, as `shoal up` gives its services the host's one identity.
 */
export function writeManagerIdentity(ca: TestCertificateAuthority, dir: string, cn: string): ManagerIdentity {
  const identity = ca.issue({ cn, ou: MANAGER_ROLE, o: 'shoal-test', serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  return {
    env: { SHOAL_TLS_CA: file('ca.pem', identity.caCertPem), SHOAL_TLS_CERT: file('node.crt', identity.certPem), SHOAL_TLS_KEY: file('node.key', identity.keyPem) },
    pem: { ca: identity.caCertPem, cert: identity.certPem, key: identity.keyPem },
  };
}
