import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANAGER_ROLE, MANAGER_SERVER_NAME, createCertificateAuthority, loadCertificateAuthority } from '@shoal/pki';
import { newId } from '@shoal/proto';

/** The PEM files a manager service serves and dials with. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/**
 * This host's own certificate authority and the `swarm-manager` certificate its manager services use,
 * made once under `<dataDir>/pki` and reused afterwards, so that even a single host talks mTLS only.
 * The CA's O is a fresh cluster ID and the certificate's CN a fresh node ID, as Swarm lays them out.
 * Keys are written with mode 0600. It secures only this host's manager processes and its store; nodes
 * talk to the dispatcher with certificates of the swarm's own CA, which `docker swarm init` makes.
 */
export function ensureHostPki(dataDir: string): TlsFiles & { caKey: string } {
  const dir = join(dataDir, 'pki');
  const files = { ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'manager.crt'), key: join(dir, 'manager.key') };
  if (Object.values(files).every((file) => existsSync(file))) return files;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const authority = existsSync(files.ca) && existsSync(files.caKey)
    ? loadCertificateAuthority(readFileSync(files.ca, 'utf8'), readFileSync(files.caKey, 'utf8'))
    : createCertificateAuthority('Shoal host CA');
  writeFileSync(files.ca, authority.caCertPem);
  writeFileSync(files.caKey, authority.caKeyPem, { mode: 0o600 });
  const manager = authority.issue({ cn: newId(), ou: MANAGER_ROLE, o: newId(), serverNames: [MANAGER_SERVER_NAME, 'localhost', '127.0.0.1'] });
  writeFileSync(files.cert, manager.certPem);
  writeFileSync(files.key, manager.keyPem, { mode: 0o600 });
  return files;
}
