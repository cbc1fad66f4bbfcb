import { ErrorCode, errors } from '@shoal/errors';
import { MANAGER_ROLE, WORKER_ROLE, createCertificateAuthority, generateJoinToken, readCertificate } from '@shoal/pki';
import { createLogger } from '@shoal/runtime';
import { freeLoopbackPort } from '@shoal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinCluster } from '../src/join.js';
import { INVALID_TOKEN_MESSAGE, TestCluster, TestManager } from './support/test-cluster.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });
let cluster: TestCluster;
let manager: TestManager;

beforeAll(async () => {
  cluster = new TestCluster();
  manager = await TestManager.start(cluster, log);
});

afterAll(async () => {
  await manager.stop();
});

describe('joining a swarm', () => {
  it('gets a worker certificate for a worker token, naming the new node, its role and the cluster', async () => {
    const identity = await joinCluster({ token: cluster.workerToken, remoteAddrs: [manager.address] });

    expect(identity).toMatchObject({ role: 'worker', clusterId: cluster.clusterId, caCertPem: cluster.ca.caCertPem, managers: [manager.address] });
    expect(cluster.nodes.get(identity.nodeId)?.role).toBe('worker');
    expect(readCertificate(identity.certPem)).toMatchObject({ cn: identity.nodeId, ou: WORKER_ROLE, o: cluster.clusterId });
  });

  it('gets a manager certificate for a manager token', async () => {
    const identity = await joinCluster({ token: cluster.managerToken, remoteAddrs: [manager.address], availability: 'drain' });

    expect(identity.role).toBe('manager');
    expect(readCertificate(identity.certPem).ou).toBe(MANAGER_ROLE);
  });

  it('refuses a manager whose CA does not match the token before sending it a CSR', async () => {
    const before = cluster.joinRequests;
    const otherSwarmToken = generateJoinToken(createCertificateAuthority('another swarm').caCertPem);

    await expect(joinCluster({ token: otherSwarmToken, remoteAddrs: [manager.address] })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: "the swarm manager's certificate authority does not match the join token",
    });
    expect(cluster.joinRequests).toBe(before);
  });

  it("passes the manager's refusal on with its code and message", async () => {
    const forgedSecret = `${cluster.workerToken.slice(0, -25)}${'0'.repeat(25)}`;

    await expect(joinCluster({ token: forgedSecret, remoteAddrs: [manager.address] })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: INVALID_TOKEN_MESSAGE,
    });
  });

  it('keeps the code and message of a refusal the manager makes for its own reasons', async () => {
    cluster.refuseJoins = errors.failedPrecondition('the swarm is locked');
    try {
      await expect(joinCluster({ token: cluster.workerToken, remoteAddrs: [manager.address] })).rejects.toMatchObject({
        code: ErrorCode.FailedPrecondition,
        message: 'the swarm is locked',
      });
    } finally {
      cluster.refuseJoins = undefined;
    }
  });

  it('refuses a malformed token without contacting anyone', async () => {
    const before = cluster.joinRequests;

    await expect(joinCluster({ token: 'SWMTKN-1-nonsense', remoteAddrs: [manager.address] })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: 'invalid join token',
    });
    expect(cluster.joinRequests).toBe(before);
  });

  it('reports an unreachable manager as UNAVAILABLE naming its address, after retrying', async () => {
    const nobody = `127.0.0.1:${await freeLoopbackPort()}`;

    const failure = joinCluster({ token: cluster.workerToken, remoteAddrs: [nobody] }, { attempts: 2, retryDelayMs: 10 });
    await expect(failure).rejects.toMatchObject({ code: ErrorCode.Unavailable });
    await expect(failure).rejects.toThrow(nobody);
  });

  it('joins through the next address when the first one does not answer', async () => {
    const nobody = `127.0.0.1:${await freeLoopbackPort()}`;

    const identity = await joinCluster({ token: cluster.workerToken, remoteAddrs: [nobody, manager.address] }, { attempts: 1 });
    expect(identity.managers).toEqual([manager.address, nobody]);
  });
});
