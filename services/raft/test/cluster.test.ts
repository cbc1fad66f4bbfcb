import { ErrorCode, hasCode } from '@shoal/errors';
import { RaftMemberStatus_Reachability } from '@shoal/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_LEADER_MESSAGE } from '../src/replica/index.js';
import { eventually, TestCluster, type ReplicaHandle } from './support/cluster.js';
import { network, service } from './support/objects.js';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);

/** Waits until every running replica counts all of them as voters (joiners start as learners). */
async function allVoters(cluster: TestCluster): Promise<void> {
  await eventually(() => {
    for (const handle of cluster.replicas.filter((h) => h.running)) expect(handle.replica.status().voters).toHaveLength(cluster.replicas.length);
  });
}

describe('a three-replica cluster over gRPC with mutual TLS', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(3);
    await allVoters(cluster);
  }, 60_000);
  afterAll(() => cluster?.close());

  it('accepts a write through any replica (followers forward it) and serves it linearizably from every replica', async () => {
    for (const [i, writer] of cluster.replicas.entries()) {
      const version = await writer.client().commit({ changes: [{ action: 'create', kind: 'network', object: network(`net-via-${i}`, `via-${i}`) }] });
      for (const reader of cluster.replicas) {
        const read = await reader.client().get('network', `net-via-${i}`);
        expect(read.meta?.version?.index).toBe(version);
      }
    }
  });

  it('makes a follower wait at the ReadIndex barrier, so a read right after a write through the leader sees it', async () => {
    const leader = await cluster.leader();
    const [follower] = await cluster.followers();
    const writes = leader.client();
    const reads = follower!.client();
    for (let i = 0; i < 20; i++) {
      const version = await writes.commit({ changes: [{ action: 'create', kind: 'network', object: network(`barrier-${i}`, `barrier-${i}`) }] });
      const { objects, version: readAt } = await reads.list('network');
      expect(readAt).toBeGreaterThanOrEqual(version);
      expect(objects.map((object) => object.id)).toContain(`barrier-${i}`);
    }
  });

  it('refuses a stale write sent through a follower with a conflict naming the object and both versions', async () => {
    const [first, second] = await cluster.followers();
    await first!.client().commit({ changes: [{ action: 'create', kind: 'service', object: service('stale-svc', 'stale') }] });
    const read = await first!.client().get('service', 'stale-svc');
    await second!.client().commit({ changes: [{ action: 'update', kind: 'service', object: { ...read, spec: { ...read.spec!, replicated: { replicas: 2n } } } }] });
    const current = await second!.client().get('service', 'stale-svc');

    const stale = first!.client().commit({ changes: [{ action: 'update', kind: 'service', object: { ...read, spec: { ...read.spec!, replicated: { replicas: 9n } } } }] });

    await expect(stale).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    await expect(stale).rejects.toThrow(`service stale-svc has version ${current.meta?.version?.index}, write expected ${read.meta?.version?.index}`);
    expect(await first!.client().get('service', 'stale-svc')).toEqual(current);
  });

  it('lists every member, with its node ID, address, the leader, and reachability, from any replica', async () => {
    const leader = await cluster.leader();
    for (const asked of cluster.replicas) {
      const { members, leader: leaderId } = await asked.listMembers();
      expect(leaderId).toBe(leader.replica.status().raftId);
      expect(members.map((member) => [member.nodeId, member.addr]).sort()).toEqual(cluster.replicas.map((handle) => [handle.nodeId, handle.address]).sort());
      for (const member of members) {
        expect(member.status?.leader).toBe(member.raftId === leaderId);
        expect(member.status?.reachability).toBe(RaftMemberStatus_Reachability.REACHABLE);
      }
    }
  });

  it('reports a stopped member as unreachable while the other two keep accepting writes', async () => {
    const [stopped, survivor] = await cluster.followers();
    const stoppedId = stopped!.replica.status().raftId;
    await stopped!.stop();
    try {
      await survivor!.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('while-one-down', 'while-one-down') }] });
      await eventually(async () => {
        const { members } = await survivor!.listMembers();
        for (const member of members) {
          const expected = member.raftId === stoppedId ? RaftMemberStatus_Reachability.UNREACHABLE : RaftMemberStatus_Reachability.REACHABLE;
          expect(member.status?.reachability).toBe(expected);
        }
      });
    } finally {
      await stopped!.start();
    }
    expect((await stopped!.client().get('network', 'while-one-down')).id).toBe('while-one-down');
  });

  it('restarts every replica from its data directory with every acknowledged write intact', async () => {
    const written = await cluster.replicas[0]!.client().list('network');
    await Promise.all(cluster.replicas.map((handle) => handle.stop()));
    await Promise.all(cluster.replicas.map((handle) => handle.start()));
    for (const handle of cluster.replicas) {
      const restarted = await handle.client().list('network');
      expect(restarted.objects).toEqual(written.objects);
    }
    const after = await cluster.replicas[2]!.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('after-restart', 'after-restart') }] });
    expect(after).toBeGreaterThan(written.version);
  });

  it("fails writes and reads fast with Docker's no-leader message once a quorum is lost", async () => {
    const survivor: ReplicaHandle = cluster.replicas[0]!;
    await Promise.all(cluster.replicas.slice(1).map((handle) => handle.stop()));
    const client = survivor.client();
    const write = () => client.commit({ changes: [{ action: 'create', kind: 'network', object: network('no-quorum', 'no-quorum') }] });
    // The first attempts may meet a leader that has not noticed yet (it steps down within an election timeout).
    await eventually(async () => {
      const err: unknown = await write().then(() => new Error('a write without quorum was accepted'), (rejected: unknown) => rejected);
      expect(err).toSatisfy(withCode(ErrorCode.Unavailable));
      expect((err as Error).message).toBe(NO_LEADER_MESSAGE);
    }, 15_000);
    await expect(client.get('network', 'net-via-0')).rejects.toThrow(NO_LEADER_MESSAGE);
    await expect(survivor.listMembers()).rejects.toThrow(NO_LEADER_MESSAGE);
  });
});
