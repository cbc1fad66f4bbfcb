import { X509Certificate, createPrivateKey } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errors, hasCode, ErrorCode } from '@shoal/errors';
import { MANAGER_ROLE, WORKER_ROLE, certificateChainsTo, readCertificate } from '@shoal/pki';

/** A node's role as Docker names it (`docker node ls`, `docker info`). */
export type NodeRoleName = 'manager' | 'worker';

/**
 * Who this host is in its swarm: the node certificate (CN = node ID, OU = role, O = cluster ID), its
 * key, the cluster's root CA, and the managers it may reach. Everything derivable from the
 * certificate is derived from it, so the fields can never disagree.
 */
export interface NodeIdentity {
  readonly nodeId: string;
  readonly role: NodeRoleName;
  readonly clusterId: string;
  readonly certPem: string;
  /** The certificate's private key: the only secret an agent keeps on disk. */
  readonly keyPem: string;
  readonly caCertPem: string;
  /** `host:port` of every manager known, the preferred one (the one joined through) first. */
  readonly managers: readonly string[];
}

/** The PEM material an identity is made from, as a join, a renewal or the api hands it over. */
export interface IdentityMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caCertPem: string;
  readonly managers: readonly string[];
}

const roleByOrganizationalUnit: Readonly<Record<string, NodeRoleName>> = { [MANAGER_ROLE]: 'manager', [WORKER_ROLE]: 'worker' };

/** The OU a node certificate carries for `role`. */
export function certificateRole(role: NodeRoleName): typeof MANAGER_ROLE | typeof WORKER_ROLE {
  return role === 'manager' ? MANAGER_ROLE : WORKER_ROLE;
}

/**
 * Builds an identity from freshly received material, checking that the certificate chains to the CA
 * and is valid now, that the key is the certificate's, and that the certificate is a node certificate.
 * INVALID_ARGUMENT, naming the problem, otherwise.
 */
export function verifiedIdentity(material: IdentityMaterial): NodeIdentity {
  if (!certificateChainsTo(material.certPem, material.caCertPem)) {
    throw errors.invalidArgument('the node certificate is not signed by the given CA certificate, or is not valid now');
  }
  return identityOf(material);
}

/**
 * Builds an identity from material read back from disk: the same checks as {@link verifiedIdentity}
 * except validity in time, so that a host that was off past its certificate's expiry still knows
 * which node it was (its sessions then fail, and say why).
 */
export function identityOf(material: IdentityMaterial): NodeIdentity {
  const facts = readCertificate(material.certPem);
  const role = roleByOrganizationalUnit[facts.ou];
  if (role === undefined) throw errors.invalidArgument(`the certificate's OU "${facts.ou}" is not a node role (${MANAGER_ROLE} or ${WORKER_ROLE})`);
  if (facts.cn === '' || facts.o === '') throw errors.invalidArgument('the certificate names no node ID (CN) or no cluster ID (O)');
  if (!keyMatchesCertificate(material.keyPem, material.certPem)) throw errors.invalidArgument('the private key does not belong to the node certificate');
  return {
    nodeId: facts.cn,
    role,
    clusterId: facts.o,
    certPem: material.certPem,
    keyPem: material.keyPem,
    caCertPem: material.caCertPem,
    managers: [...material.managers],
  };
}

function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * The identity in an agent's data directory. It is one JSON file, mode 0600 since it holds the node
 * key, replaced by write-then-rename: certificate, key and CA change together (a renewal replaces
 * both certificate and key), and separate files could be caught half-replaced by a crash, leaving a
 * certificate with another certificate's key. Task data, secrets and configs are never written here.
 */
export class IdentityFile {
  readonly path: string;
  /** Saves run one after the other: two interleaved would share the temporary file, and an older one could land last. */
  #saving: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.path = join(dataDir, 'node-identity.json');
  }

  /** The saved identity, or undefined when this host is in no swarm. INVALID_ARGUMENT for a damaged file. */
  async load(): Promise<NodeIdentity | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return identityOf(parseMaterial(JSON.parse(text)));
    } catch (err) {
      const reason = hasCode(err, ErrorCode.InvalidArgument) ? err.message : 'not JSON';
      throw errors.invalidArgument(`${this.path} does not hold a node identity: ${reason}`);
    }
  }

  /** Replaces the saved identity atomically (a crash leaves the old one or the new one, never a mix). */
  save(identity: NodeIdentity): Promise<void> {
    const saved = this.#saving.then(() => this.#write(identity));
    this.#saving = saved.catch(() => undefined);
    return saved;
  }

  async #write(identity: NodeIdentity): Promise<void> {
    const material: IdentityMaterial = { certPem: identity.certPem, keyPem: identity.keyPem, caCertPem: identity.caCertPem, managers: identity.managers };
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(material));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
    await syncDirectory(dirname(this.path));
  }

  /** Forgets the identity (`docker swarm leave`). */
  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/** Makes a rename durable: the new directory entry is only on disk once the directory is synced. */
async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

function parseMaterial(value: unknown): IdentityMaterial {
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const text = (key: string): string => {
    const field = record[key];
    if (typeof field !== 'string') throw errors.invalidArgument(`"${key}" is missing`);
    return field;
  };
  const managers = record['managers'];
  if (!Array.isArray(managers) || !managers.every((address) => typeof address === 'string')) throw errors.invalidArgument('"managers" is not a list of addresses');
  return { certPem: text('certPem'), keyPem: text('keyPem'), caCertPem: text('caCertPem'), managers };
}
