import { createCertificateAuthority, nodeCertificateSubject, readCertificate, WORKER_ROLE } from '@shoal/pki';
import { describe, expect, it } from 'vitest';
import { renewalBackoffMs, renewalTime } from '../src/renewal.js';

const ca = createCertificateAuthority('renewal test CA');
const { certPem } = ca.issue(nodeCertificateSubject('node-1', WORKER_ROLE, 'cluster-1'));
const { notBefore, notAfter } = readCertificate(certPem);
const lifetime = notAfter.getTime() - notBefore.getTime();

describe('when a node certificate is renewed', () => {
  it('is half-way through its life at the earliest and 80 % through at the latest', () => {
    expect(renewalTime(certPem, () => 0)).toBe(notBefore.getTime() + lifetime * 0.5);
    expect(renewalTime(certPem, () => 1)).toBe(notBefore.getTime() + lifetime * 0.8);
  });

  it('is spread at random between the two, so the nodes of a swarm do not renew together', () => {
    const times = new Set([0.1, 0.4, 0.9].map((draw) => renewalTime(certPem, () => draw)));

    expect(times.size).toBe(3);
    for (const time of times) expect(time).toBeGreaterThan(notBefore.getTime() + lifetime * 0.5);
  });

  it('backs off 5 s after a failure, doubling each time, up to an hour', () => {
    expect([1, 2, 3, 4].map(renewalBackoffMs)).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(renewalBackoffMs(30)).toBe(60 * 60 * 1000);
  });
});
