import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { caCertificateDigest, createCertificateAuthority, generateJoinToken, joinTokenMatchesCa, parseJoinToken } from '../src/index.js';

/** The root CA of the dockerd 20.10 swarm the API transcripts were recorded against. */
const recordedSwarmCa =
  '-----BEGIN CERTIFICATE-----\nMIIBajCCARCgAwIBAgIUZEd6ovzagNcGRbnslFzf6JjcTtIwCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAxMIc3dhcm0tY2EwHhcNMjYxMTIxMTkzMDAwWhcNNDYxMTE2MTkz\nMDAwWjATMREwDwYDVQQDEwhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\nA0IABBru/ahkY1wfnTP4cWfOdcwjtjehj5c9xgna8CDzDJhZOUoYhT8dOQMMjahr\nZqfGvrQFZ184TD4wyvjB+nn4H7ajQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNVHRMB\nAf8EBTADAQH/MB0GA1UdDgQWBBSFJJUwmy4abOxbMp7M8rO27VuspDAKBggqhkjO\nPQQDAgNIADBFAiA8fHaD1NSXc3Z+cjHkySwE/YG75YMB3uz+Acd5GcUUswIhALsd\nf0vFkzVSb3gKhFPFD27K3pC7V+LRR8KRrl39ziG0\n-----END CERTIFICATE-----\n';
/** The worker token that swarm printed. swarmkit's digest covers the PEM bytes; Shoal's covers the DER. */
const recordedWorkerToken = 'SWMTKN-1-14znrfs6rw6wu8wc7wbv20g1d7yjimzhk17k72h6ji9qc9zlt2-aqubvygs9tvhe9a3x35zt7dyq';

const ca = createCertificateAuthority('Shoal test CA');
const foreignCa = createCertificateAuthority('Foreign test CA');
const invalidJoinToken = expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'invalid join token' });

describe('join tokens', () => {
  it("reads a token dockerd made: the digest is swarmkit's SHA-256 of the CA PEM, the secret is kept verbatim", () => {
    const parsed = parseJoinToken(recordedWorkerToken);
    expect(parsed).toEqual({
      version: 1,
      caDigest: createHash('sha256').update(recordedSwarmCa).digest('hex'),
      secret: 'aqubvygs9tvhe9a3x35zt7dyq',
    });
  });

  it('pins the SHA-256 of the CA certificate DER as 50 zero-padded base-36 digits', () => {
    const token = generateJoinToken(recordedSwarmCa);
    expect(token).toMatch(/^SWMTKN-1-190ye3svk00cwyyp2mkct6rbzlyphhtx3fw27bri65q10upkbb-[0-9a-z]{25}$/);
    expect(caCertificateDigest(recordedSwarmCa)).toBe(
      createHash('sha256').update(new X509Certificate(recordedSwarmCa).raw).digest('hex'),
    );
  });

  it('gives the same digest however the PEM is wrapped', () => {
    const rewrapped = recordedSwarmCa.replaceAll('\n', '\r\n').trimEnd();
    expect(caCertificateDigest(rewrapped)).toBe(caCertificateDigest(recordedSwarmCa));
  });

  it('makes a fresh 25-digit secret for every token of the same CA', () => {
    const tokens = Array.from({ length: 20 }, () => generateJoinToken(ca.caCertPem));
    expect(new Set(tokens.map((token) => parseJoinToken(token).secret)).size).toBe(tokens.length);
    for (const token of tokens) expect(parseJoinToken(token).secret).toMatch(/^[0-9a-z]{25}$/);
  });

  it('round-trips: a generated token parses back to the digest of its CA', () => {
    const token = generateJoinToken(ca.caCertPem);
    expect(parseJoinToken(token)).toMatchObject({ version: 1, caDigest: caCertificateDigest(ca.caCertPem) });
  });

  it('matches the CA it was made for and not another', () => {
    const token = generateJoinToken(ca.caCertPem);
    expect(joinTokenMatchesCa(token, ca.caCertPem)).toBe(true);
    expect(joinTokenMatchesCa(token, foreignCa.caCertPem)).toBe(false);
    expect(joinTokenMatchesCa(generateJoinToken(foreignCa.caCertPem), ca.caCertPem)).toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['a token without its secret', 'SWMTKN-1-14znrfs6rw6wu8wc7wbv20g1d7yjimzhk17k72h6ji9qc9zlt2'],
    ['a token with an extra part', `${recordedWorkerToken}-x`],
    ['another prefix', recordedWorkerToken.replace('SWMTKN', 'SWMKEY')],
    ['the FIPS version, which Shoal does not make', recordedWorkerToken.replace('SWMTKN-1-', 'SWMTKN-2-1-')],
    ['version 2', recordedWorkerToken.replace('SWMTKN-1-', 'SWMTKN-2-')],
    ['a short digest', recordedWorkerToken.replace('-14znrf', '-4znrf')],
    ['a digest with an upper-case digit', recordedWorkerToken.replace('-14znrf', '-14Znrf')],
    ['a digest beyond 256 bits', `SWMTKN-1-${'z'.repeat(50)}-aqubvygs9tvhe9a3x35zt7dyq`],
    ['a short secret', recordedWorkerToken.slice(0, -1)],
    ['a secret with punctuation', `${recordedWorkerToken.slice(0, -1)}!`],
    ['surrounding whitespace', ` ${recordedWorkerToken}\n`],
  ])('refuses %s as an invalid join token', (_case, token) => {
    expect(() => parseJoinToken(token)).toThrow(invalidJoinToken);
    expect(() => joinTokenMatchesCa(token, ca.caCertPem)).toThrow(invalidJoinToken);
  });

  it('refuses to make a token for something that is not a certificate', () => {
    expect(() => generateJoinToken('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n')).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
  });
});
