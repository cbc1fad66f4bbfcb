import { createCertificateAuthority, type CertificateAuthority, type CertificateSubject, type IssuedCertificate } from '@shoal/pki';

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
