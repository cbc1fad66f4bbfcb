import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@shoal/errors';
import { createCertificateAuthority, nodeCertificateSubject, MANAGER_ROLE } from '@shoal/pki';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IdentityFile, identityOf, verifiedIdentity } from '../src/identity.js';

const ca = createCertificateAuthority('identity test CA');
const issued = ca.issue(nodeCertificateSubject('node-1', MANAGER_ROLE, 'cluster-1'));
const material = { certPem: issued.certPem, keyPem: issued.keyPem, caCertPem: ca.caCertPem, managers: ['10.0.0.1:2377'] };

let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'shoal-agent-identity-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('a node identity', () => {
  it('takes its node ID, role and cluster from the certificate', () => {
    expect(verifiedIdentity(material)).toMatchObject({ nodeId: 'node-1', role: 'manager', clusterId: 'cluster-1', managers: ['10.0.0.1:2377'] });
  });

  it('is refused for a certificate that is not a node certificate', () => {
    const plain = ca.issue({ cn: 'someone', ou: 'admins', o: 'cluster-1' });

    expect(() => identityOf({ ...material, certPem: plain.certPem, keyPem: plain.keyPem })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'the certificate\'s OU "admins" is not a node role (swarm-manager or swarm-worker)' }),
    );
  });

  it('is saved to a file only its owner can read, and loaded back the same', async () => {
    const file = new IdentityFile(dataDir);
    await file.save(verifiedIdentity(material));

    expect((await stat(file.path)).mode & 0o777).toBe(0o600);
    expect(await file.load()).toEqual(verifiedIdentity(material));
    expect(await readdir(dataDir)).toEqual(['node-identity.json']);
  });

  it('is absent from a data directory that has none, and gone after removal', async () => {
    const file = new IdentityFile(dataDir);
    expect(await file.load()).toBeUndefined();

    await file.save(verifiedIdentity(material));
    await file.remove();
    expect(await file.load()).toBeUndefined();
  });

  it('reports a damaged file as such, naming it', async () => {
    const file = new IdentityFile(dataDir);
    await writeFile(file.path, '{"certPem": "half a certificate');

    await expect(file.load()).rejects.toMatchObject({ code: ErrorCode.InvalidArgument, message: `${file.path} does not hold a node identity: not JSON` });
  });
});
