// How a leader replicates to each follower: probing until it finds where their logs match, then
// pipelining appends within a flow-control window (maxInflightMsgs) and a message size bound
// (maxSizePerMsg), with etcd's fast log backtracking (an optimisation §5.3 sketches).
import { MessageType, type Message } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { TestCluster, ids, msg, storageWithLog } from './support/cluster.js';

const { MSG_APP, MSG_APP_RESP, MSG_HEARTBEAT } = MessageType;

/** The messages of `type` to `to` that `cluster` sent after `since` messages. */
function sentTo(cluster: TestCluster, to: bigint, type: MessageType, since = 0): Message[] {
  return cluster.sent.slice(since).filter((m) => m.to === to && m.type === type);
}

describe('flow control', () => {
  it('pipelines up to maxInflightMsgs appends to a replicating follower, then waits for acknowledgements', () => {
    const cluster = TestCluster.of(ids(2), { maxInflightMsgs: 3 });
    cluster.elect(1n);
    expect(cluster.node(1n).status().progress.get(2n)?.state).toBe('replicate');

    cluster.dropIf((m) => m.type === MSG_APP_RESP); // the follower stores everything; its answers are lost
    const since = cluster.sent.length;
    for (const text of ['a', 'b', 'c', 'd', 'e']) cluster.propose(1n, text);
    expect(sentTo(cluster, 2n, MSG_APP, since).map((m) => m.entries.length)).toEqual([1, 1, 1]);

    cluster.dropIf(undefined);
    cluster.tickAll(2); // heartbeats: their answers reopen the window
    expect(cluster.member(1n).applied).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(cluster.member(2n).applied).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('probes a follower it knows nothing about with one append at a time', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.isolate(3n);
    cluster.elect(1n);
    for (const text of ['a', 'b', 'c']) cluster.propose(1n, text);
    // Only the new leader's first probe was sent; the proposals waited for an answer that never came.
    expect(sentTo(cluster, 3n, MSG_APP)).toHaveLength(1);
    expect(cluster.node(1n).status().progress.get(3n)?.state).toBe('probe');

    cluster.heal();
    cluster.tickAll(1);
    expect(cluster.node(1n).status().progress.get(3n)?.state).toBe('replicate');
    expect(cluster.member(3n).applied).toEqual(['a', 'b', 'c']);
  });

  it.each([
    { maxSizePerMsg: 0, perMessage: [1, 1, 1, 1] },
    { maxSizePerMsg: 1 << 20, perMessage: [4] },
  ])('with maxSizePerMsg $maxSizePerMsg, sends a lagging follower $perMessage entries per append', ({ maxSizePerMsg, perMessage }) => {
    const cluster = TestCluster.of(ids(3), { maxSizePerMsg });
    cluster.elect(1n);
    cluster.isolate(3n);
    for (const text of ['a', 'b', 'c', 'd']) cluster.propose(1n, text);

    cluster.heal();
    const since = cluster.sent.length;
    cluster.tickAll(1);
    const withEntries = sentTo(cluster, 3n, MSG_APP, since).filter((m) => m.entries.length > 0);
    expect(withEntries.map((m) => m.entries.length)).toEqual(perMessage);
    expect(cluster.member(3n).applied).toEqual(['a', 'b', 'c', 'd']);
  });

  it('still sends an entry larger than maxSizePerMsg, alone', () => {
    const cluster = TestCluster.of(ids(2), { maxSizePerMsg: 100 });
    cluster.elect(1n);
    const since = cluster.sent.length;
    cluster.propose(1n, 'x'.repeat(1000));
    expect(sentTo(cluster, 2n, MSG_APP, since)[0]?.entries).toHaveLength(1);
    expect(cluster.member(2n).applied).toEqual(['x'.repeat(1000)]);
  });

  it('ignores a rejection that answers an append other than its latest probe', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.propose(1n, 'a');
    const leader = cluster.node(1n);
    leader.reportUnreachable(3n); // probing again, from after the last entry it matched
    const { next } = leader.status().progress.get(3n) ?? {};
    expect(next).toBe(4n);

    leader.step(msg({ type: MSG_APP_RESP, from: 3n, to: 1n, term: 2n, index: 9n, reject: true, rejectHint: 9n }));
    expect(leader.status().progress.get(3n)).toMatchObject({ state: 'probe', next });
  });

  it('moves a replicating follower back to probing when the transport reports it unreachable', () => {
    const cluster = TestCluster.of(ids(2));
    cluster.elect(1n);
    cluster.node(1n).reportUnreachable(2n);
    expect(cluster.node(1n).status().progress.get(2n)?.state).toBe('probe');
  });
});

describe('log backtracking', () => {
  it('§5.3 brings a follower with a long divergent tail in line in two round trips, not one per entry', () => {
    const voters = ids(3);
    const leaderLog = [1, ...Array<number>(50).fill(3)];
    const cluster = new TestCluster();
    cluster.add(1n, storageWithLog(voters, leaderLog));
    cluster.add(2n, storageWithLog(voters, [1, ...Array<number>(100).fill(2)]));
    cluster.add(3n, storageWithLog(voters, leaderLog));

    cluster.elect(1n);
    const rejections = cluster.sent.filter((m) => m.type === MSG_APP_RESP && m.from === 2n && m.reject);
    expect(rejections).toHaveLength(1);
    expect(cluster.member(2n).storage.lastIndex()).toBe(52n);
    expect(cluster.member(2n).storage.term(51n)).toBe(3n);
  });

  it('§5.3 never tells a follower a commit index beyond what it has been shown to match', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.propose(1n, 'a');
    cluster.isolate(3n);
    cluster.propose(1n, 'b');
    cluster.propose(1n, 'c');
    cluster.heal();

    const leader = cluster.node(1n).status();
    expect(leader.commit).toBe(5n);
    cluster.tick(1n);
    const heartbeat = cluster.pending(MSG_HEARTBEAT).find((m) => m.to === 3n);
    expect(heartbeat?.commit).toBe(leader.progress.get(3n)?.match);
    expect(heartbeat?.commit).toBe(3n);
  });
});
