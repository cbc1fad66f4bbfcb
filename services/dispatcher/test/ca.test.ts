import { ErrorCode } from '@shoal/errors';
import {
  certificateChainsTo,
  createCertificateAuthority,
  DEFAULT_CERTIFICATE_VALIDITY_MS,
  generateJoinToken,
  MANAGER_ROLE,
  readCertificate,
  WORKER_ROLE,
} from '@shoal/pki';
import { CAService, Cluster, IssuanceStatus_State, NodeCAService, NodeRole, NodeSpec_Availability, NodeSpec_Membership, NodeStatus_State } from '@shoal/proto';
import { clusterUnlockKey, generateUnlockKey, managerUnlockKeys } from '@shoal/raft-storage';
import { unaryCall } from '@shoal/rpc';
import { durationOfMs } from '@shoal/store-client';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RunningDispatcher } from '../src/index.js';
import { defer } from './support/cleanup.js';
import { createSwarm, eventually, serve, type TestSwarm } from './support/swarm.js';
import { managerClient, rejection, requestCertificate, TestNode, type NodeIdentity } from './support/test-node.js';

const HOUR_MS = 60 * 60 * 1000;

let swarm: TestSwarm;
let dispatcher: RunningDispatcher;

beforeEach(async () => {
  swarm = await createSwarm();
  dispatcher = await serve(swarm);
});

const tokens = () => swarm.tokens();

function join(token: string, options: { availability?: NodeSpec_Availability } = {}): Promise<NodeIdentity> {
  return requestCertificate(dispatcher.address, swarm.ca.caCertPem, { token, ...options });
}

function renew(identity: NodeIdentity, csrCn?: string): Promise<NodeIdentity> {
  return requestCertificate(dispatcher.address, swarm.ca.caCertPem, { identity, csrCn });
}

function node(identity: NodeIdentity): TestNode {
  const testNode = new TestNode(identity, dispatcher.address, swarm.ca.caCertPem);
  defer(() => testNode.close());
  return testNode;
}

function client(tls: { cert?: string; key?: string } = {}) {
  const grpcClient = managerClient(dispatcher.address, { ca: swarm.ca.caCertPem, ...tls });
  defer(() => grpcClient.close());
  return grpcClient;
}

const nodeCount = () => swarm.state.view((tx) => tx.list('node').length);

describe('joining', () => {
  it('creates a worker with the worker token, certified as the node (CN), its role (OU) and the cluster (O) by the cluster CA', async () => {
    const identity = await join(tokens().worker);

    const certificate = readCertificate(identity.certPem);
    expect(certificate).toMatchObject({ cn: identity.nodeId, ou: WORKER_ROLE, o: swarm.clusterId });
    expect(certificateChainsTo(identity.certPem, swarm.ca.caCertPem)).toBe(true);
    const stored = swarm.node(identity.nodeId);
    expect(stored).toMatchObject({
      role: NodeRole.WORKER,
      spec: { desiredRole: NodeRole.WORKER, membership: NodeSpec_Membership.ACCEPTED, availability: NodeSpec_Availability.ACTIVE },
      status: { state: NodeStatus_State.UNKNOWN },
      certificate: { role: NodeRole.WORKER, cn: identity.nodeId, status: { state: IssuanceStatus_State.ISSUED } },
    });
    expect(stored?.certificate?.certificate.toString()).toBe(identity.certPem);
  });

  it('creates a manager with the manager token, with the availability it asked for', async () => {
    const identity = await join(tokens().manager, { availability: NodeSpec_Availability.DRAIN });

    expect(readCertificate(identity.certPem).ou).toBe(MANAGER_ROLE);
    expect(swarm.node(identity.nodeId)).toMatchObject({
      role: NodeRole.MANAGER,
      spec: { desiredRole: NodeRole.MANAGER, availability: NodeSpec_Availability.DRAIN },
    });
  });

  it("signs for the cluster's node certificate expiry, and for 90 days when it is set under an hour", async () => {
    const setExpiry = (ms: number) =>
      swarm.updateCluster((cluster) => Cluster.fromPartial({ ...cluster, spec: { ...cluster.spec, caConfig: { nodeCertExpiry: durationOfMs(ms) } } }));
    await setExpiry(3 * HOUR_MS);
    const threeHours = readCertificate((await join(tokens().worker)).certPem);
    await setExpiry(HOUR_MS / 2);
    const defaulted = readCertificate((await join(tokens().worker)).certPem);

    // Certificates are backdated an hour for clock skew.
    expect(threeHours.notAfter.getTime() - threeHours.notBefore.getTime()).toBe(4 * HOUR_MS);
    expect(defaulted.notAfter.getTime() - defaulted.notBefore.getTime()).toBe(DEFAULT_CERTIFICATE_VALIDITY_MS + HOUR_MS);
  });

  it.each([
    ['a malformed token', () => 'SWMTKN-1-nonsense', 'invalid join token'],
    ["another swarm's token", () => generateJoinToken(createCertificateAuthority('other-swarm').caCertPem), "the join token was issued by another swarm's certificate authority"],
    ['a token with the wrong secret', () => `${tokens().worker.slice(0, -25)}${'0'.repeat(25)}`, 'A valid join token is necessary to join this cluster'],
  ])('refuses %s and creates nothing', async (_case, token, message) => {
    const error = await rejection(join(token()));

    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument, message });
    expect(nodeCount()).toBe(0);
  });

  it('refuses a join whose CSR names a node ID, and creates nothing', async () => {
    const error = await rejection(requestCertificate(dispatcher.address, swarm.ca.caCertPem, { token: tokens().worker, csrCn: 'i-choose-my-id' }));

    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'a joining node cannot choose its node ID' });
    expect(nodeCount()).toBe(0);
  });

  it('refuses a join whose CSR is not one, and creates nothing', async () => {
    const request = { role: 0, csr: Buffer.from('not a CSR'), token: tokens().worker, availability: NodeSpec_Availability.ACTIVE };
    const error = await rejection(unaryCall(client(), NodeCAService.issueNodeCertificate, request));

    expect(error.code).toBe(ErrorCode.InvalidArgument);
    expect(error.message).toMatch(/^invalid certificate signing request: /);
    expect(nodeCount()).toBe(0);
  });

  it('refuses a rotated token for new joins, while the node that joined with it keeps working', async () => {
    const oldToken = tokens().worker;
    const joined = await join(oldToken);
    await swarm.updateCluster((cluster) => ({
      ...cluster,
      rootCa: { ...cluster.rootCa!, joinTokens: { ...cluster.rootCa!.joinTokens!, worker: generateJoinToken(swarm.ca.caCertPem) } },
    }));

    const error = await rejection(join(oldToken));
    const renewed = await renew(joined);
    const { sessionId } = await node(renewed).register();

    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'A valid join token is necessary to join this cluster' });
    expect(renewed.nodeId).toBe(joined.nodeId);
    expect(sessionId).not.toBe('');
    expect(await join(tokens().worker)).toMatchObject({ nodeId: expect.any(String) });
  });
});

describe('renewal', () => {
  it("keeps the node ID and carries the node's role after a promotion", async () => {
    const joined = await join(tokens().worker);
    const stored = swarm.node(joined.nodeId)!;
    await swarm.state.commit({ changes: [{ action: 'update', kind: 'node', object: { ...stored, spec: { ...stored.spec!, desiredRole: NodeRole.MANAGER } } }] });
    await eventually('the role manager to promote the node', () => swarm.node(joined.nodeId)?.role === NodeRole.MANAGER);

    const renewed = await renew(joined, joined.nodeId);

    expect(renewed.nodeId).toBe(joined.nodeId);
    expect(readCertificate(renewed.certPem)).toMatchObject({ cn: joined.nodeId, ou: MANAGER_ROLE, o: swarm.clusterId });
    expect(swarm.node(joined.nodeId)?.certificate).toMatchObject({ role: NodeRole.MANAGER, cn: joined.nodeId, status: { state: IssuanceStatus_State.ISSUED } });
    expect(swarm.node(joined.nodeId)?.certificate?.certificate.toString()).toBe(renewed.certPem);
  });

  it('demotes a manager and drops its manager status, so its next certificate is a worker one', async () => {
    const joined = await join(tokens().manager);
    const stored = swarm.node(joined.nodeId)!;
    await swarm.state.commit({
      changes: [{ action: 'update', kind: 'node', object: { ...stored, spec: { ...stored.spec!, desiredRole: NodeRole.WORKER }, managerStatus: { raftId: 2n, addr: '10.0.0.2:2377', leader: false, reachability: 0 } } }],
    });
    await eventually('the role manager to demote the node', () => swarm.node(joined.nodeId)?.role === NodeRole.WORKER);

    expect(swarm.node(joined.nodeId)?.managerStatus).toBeUndefined();
    expect(readCertificate((await renew(joined)).certPem).ou).toBe(WORKER_ROLE);
  });

  it("refuses to renew another node's certificate", async () => {
    const [mine, theirs] = await Promise.all([join(tokens().worker), join(tokens().worker)]);

    const error = await rejection(renew(mine, theirs.nodeId));

    expect(error).toMatchObject({ code: ErrorCode.PermissionDenied, message: 'a node may only renew its own certificate' });
    expect(swarm.node(theirs.nodeId)?.certificate?.certificate.toString()).toBe(theirs.certPem);
  });

  it('refuses a caller with neither a token nor a certificate', async () => {
    const error = await rejection(requestCertificate(dispatcher.address, swarm.ca.caCertPem, {}));

    expect(error.code).toBe(ErrorCode.Unauthenticated);
    expect(nodeCount()).toBe(0);
  });

  it('refuses a node that was removed', async () => {
    const joined = await join(tokens().worker);
    await swarm.state.commit({ changes: [{ action: 'delete', kind: 'node', id: joined.nodeId }] });

    const error = await rejection(renew(joined));

    expect(error).toMatchObject({ code: ErrorCode.NotFound, message: `node ${joined.nodeId} not found when attempting to renew certificate` });
  });
});

describe('the CA service', () => {
  it('gives the root CA certificate to a caller without a certificate', async () => {
    const response = await unaryCall(client(), CAService.getRootCaCertificate, {});

    expect(response.certificate.toString()).toBe(swarm.ca.caCertPem);
  });

  it('gives the unlock key to managers only', async () => {
    const unlockKey = generateUnlockKey();
    await swarm.updateCluster((cluster) => ({
      ...cluster,
      spec: { ...cluster.spec!, encryptionConfig: { autoLockManagers: true } },
      unlockKeys: managerUnlockKeys(unlockKey),
    }));
    const [manager, worker] = await Promise.all([join(tokens().manager), join(tokens().worker)]);

    const managerAnswer = await unaryCall(client({ cert: manager.certPem, key: manager.keyPem }), CAService.getUnlockKey, {});
    const workerError = await rejection(unaryCall(client({ cert: worker.certPem, key: worker.keyPem }), CAService.getUnlockKey, {}));

    expect(managerAnswer.unlockKey.toString()).toBe(unlockKey);
    expect(clusterUnlockKey(swarm.cluster())).toBe(unlockKey);
    expect(workerError.code).toBe(ErrorCode.PermissionDenied);
  });

  it('answers NOT_FOUND for the certificate status of an unknown node', async () => {
    const error = await rejection(unaryCall(client(), NodeCAService.nodeCertificateStatus, { nodeId: 'no-such-node' }));

    expect(error).toMatchObject({ code: ErrorCode.NotFound, message: 'node no-such-node not found' });
  });
});

describe('forged certificates', () => {
  it.each([
    ['self-signed', (nodeId: string) => {
      const own = createCertificateAuthority(nodeId);
      return { certPem: own.caCertPem, keyPem: own.caKeyPem };
    }],
    ['issued by another CA with the right subject', (nodeId: string) => createCertificateAuthority('swarm-ca').issue({ cn: nodeId, ou: WORKER_ROLE, o: swarm.clusterId })],
  ])('cannot open a session with a certificate %s (UNAUTHENTICATED)', async (_case, forge) => {
    // The forged certificate names a real node: only its signature gives it away.
    const victim = await join(tokens().worker);
    const { certPem, keyPem } = forge(victim.nodeId);

    const error = await node({ nodeId: victim.nodeId, certPem, keyPem }).session().end();

    expect(error?.code).toBe(ErrorCode.Unauthenticated);
    expect(swarm.node(victim.nodeId)?.status?.state).toBe(NodeStatus_State.UNKNOWN);
  });
});
