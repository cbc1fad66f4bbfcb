import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import {
  MANAGER_ROLE,
  WORKER_ROLE,
  certificateChainsTo,
  createCertificateAuthority,
  createCertificateRequest,
  nodeCertificateSubject,
  readCertificate,
  readCertificateRequest,
} from '../src/index.js';

const ca = createCertificateAuthority('swarm-ca');
const foreignCa = createCertificateAuthority('swarm-ca');
const scratch = mkdtempSync(join(tmpdir(), 'shoal-pki-csr-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const invalidRequest = (reason: RegExp) =>
  expect.objectContaining({ code: ErrorCode.InvalidArgument, message: expect.stringMatching(reason) as unknown });

/** The request with one byte of its signature flipped (the signature is the DER's last bytes). */
function withBrokenSignature(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe('certificate signing requests', () => {
  it('makes requests openssl accepts, naming the common name only when asked to', () => {
    const named = createCertificateRequest({ cn: 'node-1' });
    const anonymous = createCertificateRequest();
    const path = join(scratch, 'named.csr');
    writeFileSync(path, named.csrPem);
    expect(execFileSync('openssl', ['req', '-in', path, '-verify', '-noout'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('');
    expect(readCertificateRequest(named.csrPem)).toEqual({ cn: 'node-1' });
    expect(readCertificateRequest(anonymous.csrPem)).toEqual({ cn: undefined });
  });

  it('signs the key of the request, under the subject the CA chooses', () => {
    const request = createCertificateRequest({ cn: 'someone-else' });
    const certPem = ca.signRequest(request.csrPem, nodeCertificateSubject('node-7', WORKER_ROLE, 'cluster-1'));
    const facts = readCertificate(certPem);
    expect(facts).toMatchObject({ cn: 'node-7', ou: WORKER_ROLE, o: 'cluster-1' });
    expect(facts.notAfter.getTime() - facts.notBefore.getTime()).toBeGreaterThan(89 * 24 * 3600 * 1000);
    const certPath = join(scratch, 'node.crt');
    const keyPath = join(scratch, 'node.key');
    writeFileSync(certPath, certPem);
    writeFileSync(keyPath, request.keyPem);
    // The certificate belongs to the requester's key: openssl pairs them.
    const modulus = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
    expect(modulus(['x509', '-in', certPath, '-noout', '-pubkey'])).toBe(modulus(['pkey', '-in', keyPath, '-pubout']));
  });

  it('refuses a request whose signature does not match its key', () => {
    const { csrPem } = createCertificateRequest({ cn: 'node-1' });
    expect(() => readCertificateRequest(withBrokenSignature(csrPem))).toThrow(invalidRequest(/signature does not match/));
    expect(() => ca.signRequest(withBrokenSignature(csrPem), nodeCertificateSubject('n', WORKER_ROLE, 'c'))).toThrow(invalidRequest(/signature/));
  });

  it('refuses text that is not a PEM certificate request', () => {
    expect(() => readCertificateRequest('hello')).toThrow(invalidRequest(/not a PEM "CERTIFICATE REQUEST"/));
    expect(() => readCertificateRequest(ca.caCertPem)).toThrow(invalidRequest(/not a PEM/));
    expect(() => readCertificateRequest('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----')).toThrow(invalidRequest(/request/));
  });
});

describe('node certificates', () => {
  it('names managers as swarm-manager servers and workers as swarm-worker', () => {
    expect(nodeCertificateSubject('n1', MANAGER_ROLE, 'c1')).toEqual({ cn: 'n1', ou: MANAGER_ROLE, o: 'c1', serverNames: [MANAGER_ROLE, 'n1'] });
    expect(nodeCertificateSubject('n2', WORKER_ROLE, 'c1').serverNames).toEqual([WORKER_ROLE, 'n2']);
  });

  it('tells a certificate of this CA from one of another CA with the same name', () => {
    const ours = ca.issue(nodeCertificateSubject('n1', WORKER_ROLE, 'c1'));
    const forged = foreignCa.issue(nodeCertificateSubject('n1', WORKER_ROLE, 'c1'));
    expect(certificateChainsTo(ours.certPem, ca.caCertPem)).toBe(true);
    expect(certificateChainsTo(forged.certPem, ca.caCertPem)).toBe(false);
    expect(certificateChainsTo('not a certificate', ca.caCertPem)).toBe(false);
  });

  it('reads a certificate subject and refuses what is not one', () => {
    const issued = ca.issue({ cn: 'n9', ou: MANAGER_ROLE, o: 'c9' });
    expect(readCertificate(issued.certPem)).toMatchObject({ cn: 'n9', ou: MANAGER_ROLE, o: 'c9' });
    expect(() => readCertificate('nope')).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });
});
