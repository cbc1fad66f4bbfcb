import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { MANAGER_ROLE } from '@shoal/pki';
import { Cluster, NodeSpec_Availability } from '@shoal/proto';
import { generateUnlockKey, parseUnlockKey } from '@shoal/raft-storage';
import { createTestPki } from '@shoal/testkit';
import {
  clusterSpecFromDocker,
  clusterToDocker,
  defaultClusterSpec,
  swarmInitRequestFromDocker,
  swarmJoinRequestFromDocker,
  unlockKeyOf,
} from '../src/convert/swarm.js';
import { expectPrintedAsRecorded, recordedRequestBodies, wireJson } from './support/recorded-json.js';
import { clusterBehind, recordedSwarms } from './support/recorded-swarm.js';

const invalidArgument = (message: string) => expect.objectContaining({ code: ErrorCode.InvalidArgument, message });
const { ca, foreignCa } = createTestPki();

const swarms = recordedSwarms();

/** node-forge's reading of a certificate's subject and SubjectPublicKeyInfo, re-encoded as DER in base64. */
function forgeIssuerFields(pem: string): { subject: string; publicKey: string } {
  const certificate = forge.asn1.fromDer(forge.pem.decode(pem)[0]!.body);
  const tbs = (certificate.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  // tbsCertificate: [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  const base64Of = (node: forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary').toString('base64');
  return { subject: base64Of(tbs[5]!), publicKey: base64Of(tbs[6]!) };
}

function clusterWithRootCa(caCertPem: string, rotatingToPem?: string): Cluster {
  return Cluster.fromPartial({
    id: 'c1',
    spec: defaultClusterSpec(),
    rootCa: { caCert: Buffer.from(caCertPem), rootRotation: rotatingToPem === undefined ? undefined : { caCert: Buffer.from(rotatingToPem) } },
  });
}

describe('the swarm to Docker', () => {
  it('finds a recorded GET /swarm to compare with', () => {
    expect(swarms.length).toBeGreaterThanOrEqual(1);
  });

  it("prints the swarm dockerd printed, field for field, TLSInfo derived from the root CA's DER", () => {
    for (const { transcript, body } of swarms) {
      expectPrintedAsRecorded(clusterToDocker(clusterBehind(body), { includeJoinTokens: true }), body, transcript);
    }
  });

  it("prints swarmkit's default spec exactly as dockerd printed a new swarm's", () => {
    const { body } = swarms[0]!;
    expect(wireJson(clusterToDocker(clusterWithRootCa(ca.caCertPem), { includeJoinTokens: false }).Spec)).toEqual(body.Spec);
  });

  it("reports the issuer subject and public key as node-forge reads them from the CA's DER", () => {
    const tlsInfo = clusterToDocker(clusterWithRootCa(ca.caCertPem), { includeJoinTokens: false }).TLSInfo;
    const forgeView = forgeIssuerFields(ca.caCertPem);
    expect(tlsInfo).toEqual({ TrustRoot: ca.caCertPem, CertIssuerSubject: forgeView.subject, CertIssuerPublicKey: forgeView.publicKey });
    expect(Buffer.from(tlsInfo.CertIssuerPublicKey!, 'base64')).toEqual(new X509Certificate(ca.caCertPem).publicKey.export({ type: 'spki', format: 'der' }));
  });

  it('during a root rotation, trusts the old root and names the new one as issuer', () => {
    const info = clusterToDocker(clusterWithRootCa(ca.caCertPem, foreignCa.caCertPem), { includeJoinTokens: false });
    const forgeView = forgeIssuerFields(foreignCa.caCertPem);
    expect(info.RootRotationInProgress).toBe(true);
    expect(info.TLSInfo).toEqual({ TrustRoot: ca.caCertPem, CertIssuerSubject: forgeView.subject, CertIssuerPublicKey: forgeView.publicKey });
  });

  it('leaves the issuer out rather than fail when the stored root CA does not parse, as dockerd does', () => {
    expect(clusterToDocker(clusterWithRootCa('not a certificate'), { includeJoinTokens: false }).TLSInfo).toEqual({ TrustRoot: 'not a certificate' });
  });

  it('gives the join tokens only when asked, as Info.Swarm.Cluster has none', () => {
    const cluster = clusterBehind(swarms[0]!.body);
    expect(clusterToDocker(cluster, { includeJoinTokens: false })).not.toHaveProperty('JoinTokens');
    expect(clusterToDocker(cluster, { includeJoinTokens: true }).JoinTokens).toEqual(swarms[0]!.body.JoinTokens);
  });

  it('prints the external CAs, log driver and forced rotation of a spec that has them, never the signing CA', () => {
    const spec = clusterSpecFromDocker({
      CAConfig: { ExternalCAs: [{ Protocol: 'CFSSL', URL: 'https://ca.example', CACert: 'PEM' }], ForceRotate: 2, SigningCACert: 'CERT', SigningCAKey: 'KEY' },
      TaskDefaults: { LogDriver: { Name: 'json-file', Options: { 'max-size': '10m' } } },
    });
    const printed = wireJson(clusterToDocker(Cluster.fromPartial({ id: 'c1', spec }), { includeJoinTokens: false }).Spec);
    expect(printed).toMatchObject({
      CAConfig: { NodeCertExpiry: 7776000000000000, ExternalCAs: [{ Protocol: 'cfssl', URL: 'https://ca.example', CACert: 'PEM' }], ForceRotate: 2 },
      TaskDefaults: { LogDriver: { Name: 'json-file', Options: { 'max-size': '10m' } } },
    });
    expect(JSON.stringify(printed)).not.toMatch(/SigningCA|KEY|CERT/);
  });
});

describe('unlock keys', () => {
  it('prints the stored manager key as the SWMKEY-1- key it was made from', () => {
    const unlockKey = generateUnlockKey();
    const cluster = Cluster.fromPartial({
      spec: { encryptionConfig: { autoLockManagers: true } },
      unlockKeys: [{ subsystem: MANAGER_ROLE, key: parseUnlockKey(unlockKey) }],
    });
    expect(unlockKeyOf(cluster)).toBe(unlockKey);
    // A key left behind with autolock off unlocks nothing, so none is shown.
    expect(unlockKeyOf(Cluster.fromPartial({ ...cluster, spec: { encryptionConfig: { autoLockManagers: false } } }))).toBe('');
  });

  it('is empty without autolock, and ignores keys of other subsystems', () => {
    expect(unlockKeyOf(Cluster.fromPartial({}))).toBe('');
    expect(unlockKeyOf(Cluster.fromPartial({ unlockKeys: [{ subsystem: 'networking:gossip', key: Buffer.alloc(16) }] }))).toBe('');
  });
});

describe('swarm init', () => {
  const inits = recordedRequestBodies('POST', /^\/swarm\/init$/);

  it('reads every init body the CLIs sent, zero values taking the defaults', () => {
    expect(inits.length).toBeGreaterThanOrEqual(5);
    for (const { transcript, body } of inits) {
      const sent = body as {
        Spec: { Orchestration: { TaskHistoryRetentionLimit?: number } };
        AutoLockManagers: boolean;
        Availability: string;
        DefaultAddrPool: string[] | null;
        DataPathPort: number;
      };
      const request = swarmInitRequestFromDocker(sent);
      expect(request.listenAddr, transcript).toBe('0.0.0.0:2377');
      expect(request.spec.orchestration?.taskHistoryRetentionLimit, transcript).toBe(BigInt(sent.Spec.Orchestration.TaskHistoryRetentionLimit ?? 5));
      expect(request.spec.raft, transcript).toMatchObject({ electionTick: 10, heartbeatTick: 1 });
      expect(request.spec.encryptionConfig?.autoLockManagers, transcript).toBe(sent.AutoLockManagers);
      expect(request.availability, transcript).toBe(sent.Availability === 'drain' ? NodeSpec_Availability.DRAIN : NodeSpec_Availability.ACTIVE);
      expect(request.defaultAddrPool, transcript).toEqual(sent.DefaultAddrPool?.length ? sent.DefaultAddrPool : ['10.0.0.0/8']);
      expect(request.subnetSize, transcript).toBe(24);
      expect(request.dataPathPort, transcript).toBe(4789);
    }
  });

  it('keeps a zero TaskHistoryRetentionLimit and KeepOldSnapshots that were sent, as dockerd reads pointers', () => {
    const { spec } = swarmInitRequestFromDocker({ ListenAddr: '0.0.0.0:2377', Spec: { Orchestration: { TaskHistoryRetentionLimit: 0 }, Raft: { KeepOldSnapshots: 3 } } });
    expect(spec.orchestration?.taskHistoryRetentionLimit).toBe(0n);
    expect(spec.raft?.keepOldSnapshots).toBe(3n);
  });

  it('turns autolock on from either the request or its spec', () => {
    const viaSpec = swarmInitRequestFromDocker({ ListenAddr: ':2377', Spec: { EncryptionConfig: { AutoLockManagers: true } } });
    const viaRequest = swarmInitRequestFromDocker({ ListenAddr: ':2377', AutoLockManagers: true });
    expect(viaSpec.spec.encryptionConfig?.autoLockManagers).toBe(true);
    expect(viaRequest.spec.encryptionConfig?.autoLockManagers).toBe(true);
  });

  it.each([
    ['eth0', 'eth0:2377'],
    [':4000', '0.0.0.0:4000'],
    ['10.1.2.3', '10.1.2.3:2377'],
    ['[::1]', '[::1]:2377'],
    ['[fd00::1]:2400', '[fd00::1]:2400'],
  ])('completes the listen address %s as %s', (listenAddr, expected) => {
    expect(swarmInitRequestFromDocker({ ListenAddr: listenAddr }).listenAddr).toBe(expected);
  });

  it('accepts a pool, subnet size and data path port dockerd accepts', () => {
    const request = swarmInitRequestFromDocker({ ListenAddr: ':2377', DefaultAddrPool: [' 10.20.0.0/16 ', '192.168.0.0/16'], SubnetSize: 26, DataPathPort: 7789 });
    expect(request).toMatchObject({ defaultAddrPool: ['10.20.0.0/16', '192.168.0.0/16'], subnetSize: 26, dataPathPort: 7789 });
  });

  it.each([
    [{ ListenAddr: '' }, 'invalid ListenAddr "": invalid empty address'],
    [{ ListenAddr: ':2377', Spec: { Name: 'prod' } }, 'swarm spec must be named "default"'],
    [{ ListenAddr: ':2377', SubnetSize: 30 }, 'subnet size is out of range: 30'],
    [{ ListenAddr: ':2377', DefaultAddrPool: ['10.0.0.0/33'] }, 'invalid base pool 10.0.0.0/33: invalid CIDR address: 10.0.0.0/33'],
    [{ ListenAddr: ':2377', DefaultAddrPool: ['10.0.0.0/16'], SubnetSize: 8 }, 'invalid CIDR: "10.0.0.0/16". Subnet size is too small for pool: 8'],
    [{ ListenAddr: ':2377', DataPathPort: 80 }, 'Datapath port number is not in valid range (1024-49151) : 80'],
    [{ ListenAddr: ':2377', DataPathPort: 50000 }, 'Datapath port number is not in valid range (1024-49151) : 50000'],
    [{ ListenAddr: ':2377', Availability: 'asleep' }, 'invalid Availability: "asleep"'],
    [{ ListenAddr: ':2377', SubnetSize: -1 }, 'json: cannot unmarshal number -1 into Go struct field InitRequest.SubnetSize of type uint32'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => swarmInitRequestFromDocker(body)).toThrow(invalidArgument(message));
  });
});

describe('swarm join', () => {
  it('reads the join bodies the CLIs sent, completing the manager address', () => {
    const joins = recordedRequestBodies('POST', /^\/swarm\/join$/);
    expect(joins.length).toBeGreaterThanOrEqual(2);
    for (const { transcript, body } of joins) {
      const sent = body as { JoinToken: string; Availability: string };
      const request = swarmJoinRequestFromDocker(sent);
      expect(request, transcript).toMatchObject({ listenAddr: '0.0.0.0:2377', remoteAddrs: ['10.9.9.9:2377'], joinToken: sent.JoinToken });
      expect(request.availability, transcript).toBe(sent.Availability === 'drain' ? NodeSpec_Availability.DRAIN : NodeSpec_Availability.ACTIVE);
    }
  });

  it.each([
    [{ ListenAddr: ':2377', RemoteAddrs: [], JoinToken: 'x' }, 'at least 1 RemoteAddr is required to join'],
    [{ ListenAddr: ':2377', JoinToken: 'x' }, 'at least 1 RemoteAddr is required to join'],
    [{ ListenAddr: ':2377', RemoteAddrs: [''], JoinToken: 'x' }, 'invalid remoteAddr "": invalid empty address'],
    [{ ListenAddr: '', RemoteAddrs: ['10.9.9.9'], JoinToken: 'x' }, 'invalid ListenAddr "": invalid empty address'],
    [{ ListenAddr: ':2377', RemoteAddrs: ['10.9.9.9'] }, 'invalid join token'],
    [{ ListenAddr: ':2377', RemoteAddrs: ['10.9.9.9'], JoinToken: 'SWMTKN-1-abc-def' }, 'invalid join token'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => swarmJoinRequestFromDocker(body)).toThrow(invalidArgument(message));
  });
});

describe('swarm update', () => {
  it('reads every full spec the CLIs sent and prints it back unchanged', () => {
    const updates = recordedRequestBodies('POST', /^\/swarm\/update$/);
    expect(updates.length).toBeGreaterThanOrEqual(3);
    for (const { transcript, body } of updates) {
      const spec = clusterSpecFromDocker(body);
      expect(wireJson(clusterToDocker(Cluster.fromPartial({ spec }), { includeJoinTokens: false }).Spec), transcript).toEqual(body);
    }
  });

  it('fills zero and absent fields with the defaults, so the stored spec is complete', () => {
    expect(clusterSpecFromDocker({ Raft: { ElectionTick: 0 }, Dispatcher: {}, CAConfig: {} })).toEqual(defaultClusterSpec());
    expect(clusterSpecFromDocker(null)).toEqual(defaultClusterSpec());
  });

  it.each([
    [{ Name: 'other' }, 'swarm spec must be named "default"'],
    [{ CAConfig: { NodeCertExpiry: 1_800_000_000_000 } }, 'minimum certificate expiry time is: 1h0m0s'],
    [{ Dispatcher: { HeartbeatPeriod: -1 } }, 'heartbeat time period cannot be a negative duration'],
    [{ CAConfig: { ExternalCAs: [{ Protocol: 'acme', URL: 'https://ca' }] } }, 'invalid protocol: "acme"'],
    [{ Raft: { ElectionTick: 1, HeartbeatTick: 1 } }, 'election tick must be greater than heartbeat tick'],
    [{ Raft: { ElectionTick: 'ten' } }, 'json: cannot unmarshal string into Go struct field Spec.Raft.ElectionTick of type uint32'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => clusterSpecFromDocker(body)).toThrow(invalidArgument(message));
  });
});
