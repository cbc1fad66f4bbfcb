import { ErrorCode, hasCode } from '@shoal/errors';
import { RaftMemberStatus_Reachability } from '@shoal/proto';
import { freeLoopbackPort } from '@shoal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, TestCluster, type ReplicaHandle } from './support/cluster.js';
import { network } from './support/objects.js';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);

/** Log lines of `handle` with this message that name `raftId` (matched raw: JSON.parse rounds 64-bit IDs). */
function logged(handle: ReplicaHandle, msg: string, raftId: bigint): number {
  return handle.logs.raw.findIndex((line) => line.includes(`"msg":"${msg}"`) && line.includes(`"raftId":${raftId}`));
}

describe('raft membership', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(3);
    await eventually(() => expect(cluster.replicas[0]!.replica.status().voters).toHaveLength(3));
    await cluster.replicas[0]!.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('before-join', 'before-join') }] });
  }, 60_000);
  afterAll(() => cluster?.close());

  it('adds a fourth manager joining through a follower as a learner, gives it the log, then promotes it to voter', async () => {
    const leader = await cluster.leader();
    const [follower] = await cluster.followers();
    const joiner = await cluster.add(follower);
    const raftId = joiner.replica.status().raftId;
    await eventually(() => expect(leader.replica.status().voters).toContain(raftId));
    expect(logged(leader, 'raft member joined as a learner', raftId)).toBeGreaterThanOrEqual(0);
    expect(logged(leader, 'raft learner caught up: promoted to voter', raftId)).toBeGreaterThan(logged(leader, 'raft member joined as a learner', raftId));
    expect((await joiner.client().get('network', 'before-join')).id).toBe('before-join');
    const { members } = await joiner.listMembers();
    expect(members.map((member) => member.nodeId).sort()).toEqual(['manager-1', 'manager-2', 'manager-3', 'manager-4']);
  });

  it("refuses a join for another node's ID, and a joiner whose advertised address does not answer", async () => {
    const leader = await cluster.leader();
    const ghost = cluster.pki.ca.issue({ cn: 'manager-9', ou: 'swarm-manager', o: 'test-cluster' });
    const ghostTls = { ca: ghost.caCertPem, cert: ghost.certPem, key: ghost.keyPem };
    const nowhere = `127.0.0.1:${await freeLoopbackPort()}`;

    await expect(leader.join({ nodeId: 'manager-9', addr: nowhere }, cluster.clientTls)).rejects.toSatisfy(withCode(ErrorCode.PermissionDenied));
    const unreachable = leader.join({ nodeId: 'manager-9', addr: nowhere }, ghostTls);
    await expect(unreachable).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
    await expect(unreachable).rejects.toThrow(`raft: could not connect to prospective new cluster member using its advertised address ${nowhere}`);
    const { members } = await leader.listMembers();
    expect(members.map((member) => member.nodeId)).not.toContain('manager-9');
  }, 15_000); // the health check waits its full 5 s for the address to answer

  it('removes a member for good: it stops serving, and stays out when it restarts', async () => {
    const removed = cluster.replicas[3]!;
    const raftId = removed.replica.status().raftId;
    const [asked] = (await cluster.followers()).filter((handle) => handle !== removed);
    await asked!.leave(raftId);

    const { members } = await asked!.listMembers();
    expect(members.map((member) => member.raftId)).not.toContain(raftId);
    expect((await cluster.leader()).replica.status().voters).toHaveLength(3);
    await eventually(() => expect(removed.replica.status().state).toBe('removed'));
    await expect(removed.client().get('network', 'before-join')).rejects.toThrow('this manager was removed from the raft cluster');

    await removed.stop();
    await removed.start();
    expect(removed.replica.status().state).toBe('removed');
    await expect(removed.client().list('network')).rejects.toSatisfy(withCode(ErrorCode.FailedPrecondition));
    await removed.stop();
    await asked!.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('after-removal', 'after-removal') }] });
  });

  it('refuses to remove a member when the voters left could not form a reachable quorum', async () => {
    const leader = await cluster.leader();
    const [down, target] = (await cluster.followers()).filter((handle) => handle.running);
    const downId = down!.replica.status().raftId;
    await down!.stop();
    try {
      await eventually(async () => {
        const { members } = await leader.listMembers();
        expect(members.find((member) => member.raftId === downId)?.status?.reachability).toBe(RaftMemberStatus_Reachability.UNREACHABLE);
      });
      // Three voters, one down: without the target, one reachable voter of two is no quorum.
      const refused = target!.leave(target!.replica.status().raftId);
      await expect(refused).rejects.toSatisfy(withCode(ErrorCode.FailedPrecondition));
      await expect(refused).rejects.toThrow('raft: member cannot be removed, because removing it may result in loss of quorum');
      expect(leader.replica.status().voters).toHaveLength(3);
    } finally {
      await down!.start();
    }
  });

  it('removes the leader by handing leadership to another voter first', async () => {
    const leader = await cluster.leader();
    const raftId = leader.replica.status().raftId;
    await leader.leave(raftId);

    const successor = await eventually(async () => {
      const next = await cluster.leader();
      expect(next).not.toBe(leader);
      return next;
    });
    expect(leader.logs.raw.some((line) => line.includes('"msg":"transferring raft leadership before removing this member"'))).toBe(true);
    await eventually(() => expect(leader.replica.status().state).toBe('removed'));
    expect(successor.replica.status().voters).not.toContain(raftId);
    expect(successor.replica.status().voters).toHaveLength(2);
    const version = await successor.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('after-leader', 'after-leader') }] });
    expect(version).toBeGreaterThan(0n);
  });
});
