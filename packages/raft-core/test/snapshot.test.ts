// Log compaction and snapshot install (§7 of the Raft paper): a follower that needs entries the
// leader has compacted away gets the leader's snapshot instead, then ordinary appends.
import { MessageType, Snapshot } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { TestCluster, ids, msg, storageWithLog } from './support/cluster.js';

const { MSG_APP, MSG_APP_RESP, MSG_SNAP } = MessageType;

/** A 3-member cluster whose member 3 missed entries a..e, which the leader then compacted away. */
function followerBehindCompaction(options = {}): TestCluster {
  const cluster = TestCluster.of(ids(3), options);
  cluster.elect(1n);
  cluster.isolate(3n);
  for (const text of ['a', 'b', 'c', 'd', 'e']) cluster.propose(1n, text);
  cluster.member(1n).compact();
  return cluster;
}

describe('snapshots', () => {
  it('§7 sends a follower that needs compacted entries the snapshot, after which it catches up with appends', () => {
    const cluster = followerBehindCompaction();
    const leader = cluster.member(1n);
    expect(leader.storage.firstIndex()).toBe(8n);

    cluster.heal();
    cluster.tickAll(1);
    cluster.propose(1n, 'f');
    const snapshots = cluster.sent.filter((m) => m.type === MSG_SNAP);
    expect(snapshots.map((m) => [m.to, m.snapshot?.metadata?.index])).toEqual([[3n, 7n]]);
    const follower = cluster.member(3n);
    expect(follower.storage.snapshot().metadata?.index).toBe(7n);
    expect(follower.applied).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(cluster.node(1n).status().progress.get(3n)?.state).toBe('replicate');
  });

  it('§7 sends nothing else while a snapshot is on its way, and sends it again after a reported failure', () => {
    const cluster = followerBehindCompaction();
    cluster.heal();
    cluster.dropIf((m) => m.type === MSG_SNAP); // the transfer fails
    cluster.tick(1n);
    cluster.stabilize();
    expect(cluster.node(1n).status().progress.get(3n)?.state).toBe('snapshot');

    const since = cluster.sent.length;
    cluster.propose(1n, 'f');
    expect(cluster.sent.slice(since).filter((m) => m.to === 3n && m.type === MSG_APP)).toEqual([]);

    cluster.node(1n).reportSnapshot(3n, 'failed');
    expect(cluster.node(1n).status().progress.get(3n)?.state).toBe('probe');
    cluster.dropIf(undefined);
    cluster.tickAll(1);
    expect(cluster.sent.slice(since).filter((m) => m.type === MSG_SNAP)).toHaveLength(1);
    expect(cluster.member(3n).applied).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('§7 with check-quorum, waits until an inactive follower answers before sending it a snapshot', () => {
    const cluster = followerBehindCompaction({ checkQuorum: true, preVote: true });
    cluster.tickAll(20); // two check-quorum rounds without hearing from member 3
    expect(cluster.node(1n).status().progress.get(3n)?.recentActive).toBe(false);
    cluster.propose(1n, 'f');
    expect(cluster.sent.filter((m) => m.type === MSG_SNAP)).toEqual([]);

    cluster.heal();
    cluster.tickAll(2);
    expect(cluster.sent.filter((m) => m.type === MSG_SNAP)).toHaveLength(1);
    expect(cluster.member(3n).applied).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('§7 only fast-forwards the commit index when the log already holds what the snapshot covers', () => {
    const cluster = new TestCluster();
    const member = cluster.add(1n, storageWithLog(ids(3), [1, 2, 2, 2]));
    const snapshot = Snapshot.fromPartial({ data: Buffer.from('[]'), metadata: { index: 3n, term: 2n, confState: { voters: ids(3) } } });
    member.node.step(msg({ type: MSG_SNAP, from: 2n, to: 1n, term: 2n, snapshot }));

    expect(member.drain()).toMatchObject([{ type: MSG_APP_RESP, to: 2n, index: 3n, reject: false }]);
    expect(member.node.status()).toMatchObject({ commit: 3n, lastIndex: 4n });
    expect(member.storage.snapshot().metadata?.index).toBe(1n);
  });

  it('§7 ignores a snapshot older than its commit index and answers with the commit index', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.propose(1n, 'a');
    const member = cluster.member(2n);
    const stale = Snapshot.fromPartial({ data: Buffer.from('[]'), metadata: { index: 2n, term: 2n, confState: { voters: ids(3) } } });
    member.node.step(msg({ type: MSG_SNAP, from: 1n, to: 2n, term: 2n, snapshot: stale }));

    expect(member.drain()).toMatchObject([{ type: MSG_APP_RESP, to: 1n, index: 3n }]);
    expect(member.applied).toEqual(['a']);
  });

  it('§7 a member restarted from a snapshot and the entries after it resumes where it stopped', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    for (const text of ['a', 'b']) cluster.propose(1n, text);
    cluster.member(2n).compact(1n);
    cluster.propose(1n, 'c');

    const restarted = cluster.restart(2n);
    // The state machine comes back from the snapshot; the entries after it are applied again.
    restarted.applied = JSON.parse(restarted.storage.snapshot().data.toString()) as string[];
    restarted.drain();
    expect(restarted.applied).toEqual(['a', 'b', 'c']);
    expect(restarted.node.status()).toMatchObject({ applied: 5n, commit: 5n, term: 2n });
  });
});
