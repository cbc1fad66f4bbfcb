/**
 * Shoal's X.509 certificates: ECDSA P-256 certificate authorities and the certificates they issue,
 * as Docker Swarm uses them (CN = node ID, OU = role, O = cluster ID), and Swarm's join tokens,
 * which pin the root CA.
 */
export {
  DEFAULT_CA_VALIDITY_MS,
  DEFAULT_CERTIFICATE_VALIDITY_MS,
  MANAGER_ROLE,
  MANAGER_SERVER_NAME,
  WORKER_ROLE,
  certificateChainsTo,
  createCertificateAuthority,
  createCertificateRequest,
  loadCertificateAuthority,
  nodeCertificateSubject,
  readCertificate,
  readCertificateRequest,
  type CertificateAuthority,
  type CertificateFacts,
  type CertificateSubject,
  type IssuedCertificate,
} from './certificates.js';
export {
  caCertificateDigest,
  generateJoinToken,
  joinTokenMatchesCa,
  parseJoinToken,
  type ParsedJoinToken,
} from './join-token.js';
