import { MANAGER_ROLE } from '@shoal/pki';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errors } from '@shoal/errors';
import type { TlsFiles } from './config.js';

/** A manager's TLS material, read from its files, and the node ID its certificate names. */
export interface ManagerIdentity {
  tls: { ca: string; cert: string; key: string };
  nodeId: string;
}

/**
 * Reads the manager's certificate, key and CA. The node ID is the certificate's common name, as in
 * swarmkit (peers check it); a configured node ID must match it. Throws INVALID_ARGUMENT naming the
 * file or field that is wrong.
 */
export async function readManagerIdentity(files: TlsFiles, configuredNodeId: string | undefined): Promise<ManagerIdentity> {
  const [ca, cert, key] = await Promise.all(
    [files.ca, files.cert, files.key].map((path) =>
      readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw errors.invalidArgument(`cannot read ${path}: ${err.code ?? err.message}`, { path });
      }),
    ),
  );
  let subject: Map<string, string>;
  try {
    subject = new Map(
      new X509Certificate(cert as string).subject.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
  } catch (err) {
    throw errors.invalidArgument(`${files.cert} is not a PEM certificate: ${(err as Error).message}`, { path: files.cert });
  }
  const commonName = subject.get('CN') ?? '';
  const role = subject.get('OU') ?? '';
  if (role !== MANAGER_ROLE) throw errors.invalidArgument(`${files.cert} has role (OU) "${role}"; a raft replica needs a ${MANAGER_ROLE} certificate`);
  if (commonName === '') throw errors.invalidArgument(`${files.cert} names no node (its common name is empty)`);
  if (configuredNodeId !== undefined && configuredNodeId !== commonName) {
    throw errors.invalidArgument(`SHOAL_RAFT_NODE_ID=${configuredNodeId} differs from the node ID in ${files.cert} (${commonName})`);
  }
  return { tls: { ca: ca as string, cert: cert as string, key: key as string }, nodeId: commonName };
}
