import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, isIP } from 'node:net';
import { type PeerCertificate, type TLSSocket, connect, createServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { createCertificateAuthority, loadCertificateAuthority, type IssuedCertificate } from '../src/index.js';

function createTestPki() {
  return { ca: createCertificateAuthority('Shoal test CA'), foreignCa: createCertificateAuthority('Foreign test CA') };
}

const invalidArgument = expect.objectContaining({ code: ErrorCode.InvalidArgument });

const { ca, foreignCa } = createTestPki();
const closers: (() => void)[] = [];

afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** An mTLS server trusting only `ca`; it answers each client with the subject of the client's certificate. */
async function mtlsServer(identity: IssuedCertificate): Promise<number> {
  const server = createServer(
    { cert: identity.certPem, key: identity.keyPem, ca: ca.caCertPem, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      const { subject } = socket.getPeerCertificate() as PeerCertificate;
      socket.end(JSON.stringify({ CN: subject.CN, OU: subject.OU, O: subject.O }));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

/**
 * Connects to 127.0.0.1 as `identity`, trusting `trusted`, and checks the server's certificate against
 * `serverName`. Resolves with what the server wrote, or rejects with the TLS error.
 */
function exchange(port: number, serverName: string, identity: IssuedCertificate, trusted: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // An IP address is checked against the host; a DNS name goes through SNI (servername).
    const socket: TLSSocket = connect({
      port,
      host: '127.0.0.1',
      servername: isIP(serverName) ? undefined : serverName,
      ca: trusted,
      cert: identity.certPem,
      key: identity.keyPem,
    });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

describe('certificate authorities', () => {
  it('issues certificates that work both ways in mutual TLS, for localhost and 127.0.0.1, naming the client', async () => {
    const port = await mtlsServer(ca.issue({ cn: 'manager-1', ou: 'swarm-manager', o: 'cluster-1' }));
    const client = ca.issue({ cn: 'node-7', ou: 'swarm-worker', o: 'cluster-1' });

    for (const serverName of ['localhost', '127.0.0.1']) {
      expect(JSON.parse(await exchange(port, serverName, client, ca.caCertPem))).toEqual({ CN: 'node-7', OU: 'swarm-worker', O: 'cluster-1' });
    }
  });

  it('lets a server reject a client certificate issued by the foreign CA', async () => {
    const port = await mtlsServer(ca.issue({ cn: 'manager-1' }));
    const intruder = foreignCa.issue({ cn: 'node-7', ou: 'swarm-worker', o: 'cluster-1' });

    // With TLS 1.3 the client learns of the rejection as an alert or as a bare close, depending on
    // timing; either way the server never answers, which it does for every client it accepts.
    const answer = await exchange(port, 'localhost', intruder, ca.caCertPem).catch(() => '');
    expect(answer).toBe('');
  });

  it('lets a client reject a server certificate issued by the foreign CA', async () => {
    const port = await mtlsServer(foreignCa.issue({ cn: 'impostor' }));
    await expect(exchange(port, 'localhost', ca.issue({ cn: 'node-7' }), ca.caCertPem)).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('marks only the CA as a CA and chains every certificate it issues to it', () => {
    const caCert = new X509Certificate(ca.caCertPem);
    const leaf = new X509Certificate(ca.issue({ cn: 'node-1' }).certPem);
    expect(caCert.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.verify(new X509Certificate(foreignCa.caCertPem).publicKey)).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('puts the requested server names in the certificate and leaves out the defaults', () => {
    const cert = new X509Certificate(ca.issue({ cn: 'manager-2', serverNames: ['manager-2.shoal', '10.0.0.5'] }).certPem);
    expect(cert.subjectAltName).toBe('DNS:manager-2.shoal, IP Address:10.0.0.5');
    expect(cert.checkHost('manager-2.shoal')).toBe('manager-2.shoal');
    expect(cert.checkHost('localhost')).toBeUndefined();
  });

  it('rejects IPv6 server names and an empty common name as invalid arguments', () => {
    expect(() => ca.issue({ cn: 'n', serverNames: ['::1'] })).toThrow(invalidArgument);
    expect(() => ca.issue({ cn: '' })).toThrow(invalidArgument);
  });

  it("follows Swarm's validity: a 20-year CA and 90-day certificates, both backdated an hour for clock skew", () => {
    const day = 24 * 60 * 60 * 1000;
    const before = Date.now();
    const caCert = new X509Certificate(ca.caCertPem);
    const leaf = new X509Certificate(ca.issue({ cn: 'node-1' }).certPem);
    const shortLived = new X509Certificate(ca.issue({ cn: 'node-2' }, { validityMs: day }).certPem);
    const span = (cert: X509Certificate) => Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(span(caCert)).toBe(20 * 365 * day + 60 * 60 * 1000);
    expect(span(leaf)).toBe(90 * day + 60 * 60 * 1000);
    expect(span(shortLived)).toBe(day + 60 * 60 * 1000);
    expect(Date.parse(leaf.validFrom)).toBeLessThan(before - 59 * 60 * 1000);
  });

  it('reloads a CA from its PEM certificate and key, and what it issues then chains to the same CA', () => {
    const reloaded = loadCertificateAuthority(ca.caCertPem, ca.caKeyPem);
    const leaf = new X509Certificate(reloaded.issue({ cn: 'node-3', ou: 'swarm-manager' }).certPem);
    expect(leaf.checkIssued(new X509Certificate(ca.caCertPem))).toBe(true);
    expect(leaf.verify(new X509Certificate(ca.caCertPem).publicKey)).toBe(true);
    expect(leaf.issuer).toBe(new X509Certificate(ca.caCertPem).subject);
  });

  it('refuses to load a CA from a key that is not its own, a certificate that is no CA, or garbage', () => {
    const leaf = ca.issue({ cn: 'node-4' });
    expect(() => loadCertificateAuthority(ca.caCertPem, foreignCa.caKeyPem)).toThrow(invalidArgument);
    expect(() => loadCertificateAuthority(leaf.certPem, leaf.keyPem)).toThrow(invalidArgument);
    expect(() => loadCertificateAuthority('not a certificate', ca.caKeyPem)).toThrow(invalidArgument);
  });
});
