import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, hasCode } from '@shoal/errors';
import { createTestPki, type TestCertificate } from '@shoal/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { raftConfig } from '../src/config.js';
import { readManagerIdentity } from '../src/identity.js';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);
const tlsEnv = { SHOAL_TLS_CA: '/etc/shoal/ca.pem', SHOAL_TLS_CERT: '/etc/shoal/node.crt', SHOAL_TLS_KEY: '/etc/shoal/node.key' };

describe('raft service configuration', () => {
  it("defaults to swarmkit's raft timings and, without TLS files, to waiting idle for a certificate", () => {
    const config = raftConfig.load({});
    expect(config).toMatchObject({ listen: '0.0.0.0:2378', tickMs: 1_000, electionTicks: 10, heartbeatTicks: 1, snapshotInterval: 10_000 });
    expect(config.tls).toBeUndefined();
    expect(config.join).toBeUndefined();
  });

  it('advertises the listen address unless it listens on every interface, where the advertised address is required', () => {
    expect(raftConfig.load({ ...tlsEnv, SHOAL_RAFT_LISTEN: '10.0.0.5:2377' }).advertise).toBe('10.0.0.5:2377');
    expect(raftConfig.load({ ...tlsEnv, SHOAL_RAFT_ADVERTISE: '10.0.0.5:2377' }).advertise).toBe('10.0.0.5:2377');
    expect(() => raftConfig.load(tlsEnv)).toThrow('SHOAL_RAFT_ADVERTISE is required');
  });

  it('refuses a partial TLS configuration, and heartbeats no more frequent than elections, listing every problem at once', () => {
    const load = () => raftConfig.load({ SHOAL_TLS_CA: '/etc/shoal/ca.pem', SHOAL_RAFT_ELECTION_TICKS: '3', SHOAL_RAFT_HEARTBEAT_TICKS: '3' });
    expect(load).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    expect(load).toThrow('SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must be set together');
    expect(load).toThrow('SHOAL_RAFT_HEARTBEAT_TICKS=3 must be fewer than SHOAL_RAFT_ELECTION_TICKS=3');
  });

  it('refuses a malformed join address', () => {
    expect(() => raftConfig.load({ SHOAL_RAFT_JOIN: 'manager-1' })).toThrow('SHOAL_RAFT_JOIN=manager-1: must be host:port');
  });
});

describe("a manager's TLS identity", () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-raft-identity-'));
  const pki = createTestPki();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const files = (name: string, identity: TestCertificate) => {
    const path = (suffix: string) => join(dir, `${name}.${suffix}`);
    writeFileSync(path('ca'), identity.caCertPem);
    writeFileSync(path('crt'), identity.certPem);
    writeFileSync(path('key'), identity.keyPem);
    return { ca: path('ca'), cert: path('crt'), key: path('key') };
  };

  it("takes the node ID from the certificate's common name", async () => {
    const identity = await readManagerIdentity(files('manager', pki.ca.issue({ cn: 'node-7', ou: 'swarm-manager' })), undefined);
    expect(identity.nodeId).toBe('node-7');
    expect(identity.tls.cert).toContain('BEGIN CERTIFICATE');
  });

  it('refuses a worker certificate, a node ID that differs from the certificate, and a missing file', async () => {
    await expect(readManagerIdentity(files('worker', pki.ca.issue({ cn: 'node-8', ou: 'swarm-worker' })), undefined)).rejects.toThrow(
      'a raft replica needs a swarm-manager certificate',
    );
    const manager = files('other', pki.ca.issue({ cn: 'node-9', ou: 'swarm-manager' }));
    await expect(readManagerIdentity(manager, 'node-10')).rejects.toThrow('SHOAL_RAFT_NODE_ID=node-10 differs from the node ID');
    await expect(readManagerIdentity({ ...manager, key: join(dir, 'absent.key') }, undefined)).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
  });
});
