// Membership changes one server at a time (Ongaro's thesis §4.1), with new members joining as
// non-voting learners until they have caught up (thesis §4.2.1), and the leader removing itself
// (thesis §4.2.2). As in etcd, a change takes effect on each member when it applies the entry.
import { ErrorCode } from '@shoal/errors';
import { ConfChange, ConfChangeType, MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, RawNode } from '../src/index.js';
import { TestCluster, ids } from './support/cluster.js';

const { ADD_LEARNER_NODE, ADD_NODE, REMOVE_NODE, UPDATE_NODE } = ConfChangeType;
const change = (type: ConfChangeType, nodeId: bigint) => ConfChange.fromPartial({ type, nodeId });

/** A 3-member cluster led by member 1, with member 4 started on empty storage and added as a learner. */
function clusterWithLearner(): TestCluster {
  const cluster = TestCluster.of(ids(3));
  cluster.elect(1n);
  cluster.propose(1n, 'a');
  cluster.add(4n);
  cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 4n));
  cluster.stabilize();
  cluster.tickAll(1);
  return cluster;
}

describe('learners', () => {
  it('thesis §4.2.1 a new member joins as a learner: it learns the membership from a snapshot and receives the log', () => {
    const cluster = clusterWithLearner();
    const learner = cluster.member(4n);
    expect(cluster.sent.filter((m) => m.type === MessageType.MSG_SNAP && m.to === 4n)).toHaveLength(1);
    expect(learner.node.status().confState).toEqual({ voters: ids(3), learners: [4n] });
    cluster.propose(1n, 'b');
    expect(learner.applied).toEqual(['a', 'b']);
  });

  it('thesis §4.2.1 a learner neither counts toward a commit nor campaigns', () => {
    const cluster = clusterWithLearner();
    cluster.isolate(2n);
    cluster.isolate(3n);
    cluster.propose(1n, 'b');
    expect(cluster.member(4n).storage.lastIndex()).toBe(cluster.member(1n).storage.lastIndex());
    expect(cluster.member(1n).applied).toEqual(['a']);

    cluster.isolate(1n);
    cluster.tickAll(50);
    expect(cluster.sent.filter((m) => m.from === 4n && (m.type === MessageType.MSG_VOTE || m.type === MessageType.MSG_PRE_VOTE))).toEqual([]);
    expect(cluster.member(4n).role).toBe('follower');
  });

  it('thesis §4.2.1 the leader shows how far a learner has caught up; promoted, it votes and counts', () => {
    const cluster = clusterWithLearner();
    const leader = cluster.node(1n).status();
    expect(leader.progress.get(4n)).toMatchObject({ isLearner: true, match: leader.commit });

    cluster.node(1n).proposeConfChange(change(ADD_NODE, 4n));
    cluster.stabilize();
    expect(cluster.member(4n).confState).toEqual({ voters: ids(4), learners: [] });
    // Four voters need three: member 4 now makes the difference.
    cluster.isolate(3n);
    cluster.propose(1n, 'b');
    expect(cluster.member(1n).applied).toEqual(['a', 'b']);
    cluster.isolate(4n);
    cluster.propose(1n, 'c');
    expect(cluster.member(1n).applied).toEqual(['a', 'b']);
  });
});

describe('proposing membership changes', () => {
  it.each([
    { name: 'promoting a member that is not a learner', proposed: change(ADD_NODE, 9n), code: ErrorCode.FailedPrecondition },
    { name: 'promoting a voter', proposed: change(ADD_NODE, 2n), code: ErrorCode.AlreadyExists },
    { name: 'adding a voter as a learner', proposed: change(ADD_LEARNER_NODE, 2n), code: ErrorCode.AlreadyExists },
    { name: 'removing a stranger', proposed: change(REMOVE_NODE, 9n), code: ErrorCode.NotFound },
    { name: 'updating a stranger', proposed: change(UPDATE_NODE, 9n), code: ErrorCode.NotFound },
    { name: 'naming raft ID 0', proposed: change(ADD_LEARNER_NODE, 0n), code: ErrorCode.InvalidArgument },
    { name: 'an unknown type', proposed: change(ConfChangeType.UNRECOGNIZED, 9n), code: ErrorCode.InvalidArgument },
  ])('refuses $name with $code', ({ proposed, code }) => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    expect(() => cluster.node(1n).proposeConfChange(proposed)).toThrow(expect.objectContaining({ code }));
  });

  it('refuses to remove the last voter', () => {
    const cluster = TestCluster.of(ids(1));
    cluster.elect(1n);
    expect(() => cluster.node(1n).proposeConfChange(change(REMOVE_NODE, 1n))).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition, message: expect.stringContaining('last voter') }),
    );
  });

  it('thesis §4.1 refuses a second change until the first is applied', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 4n));
    expect(() => cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 5n))).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition }),
    );
    cluster.stabilize();
    cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 5n));
    cluster.stabilize();
    expect(cluster.member(1n).confState.learners).toEqual([4n, 5n]);
  });

  it('thesis §4.1 a new leader proposes no change until it has applied an entry of its own term', () => {
    // The single-server change bug (raft-dev, 2015): a leader must commit an entry of its own term first.
    const cluster = TestCluster.of(ids(3));
    cluster.node(1n).campaign();
    cluster.deliver(); // the vote requests
    cluster.deliver(); // the votes: member 1 now leads, but nothing of its term is committed
    expect(cluster.member(1n).role).toBe('leader');
    expect(() => cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 4n))).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition }),
    );
    cluster.stabilize();
    expect(() => cluster.node(1n).proposeConfChange(change(ADD_LEARNER_NODE, 4n))).not.toThrow();
  });
});

describe('removing members', () => {
  it('thesis §4.1 a removed member no longer counts or receives entries, and never campaigns', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).proposeConfChange(change(REMOVE_NODE, 3n));
    cluster.stabilize();
    cluster.tickAll(1);
    expect(cluster.member(3n).confState).toEqual({ voters: [1n, 2n], learners: [] });

    const stored = cluster.member(3n).storage.lastIndex();
    cluster.propose(1n, 'a');
    expect(cluster.member(3n).storage.lastIndex()).toBe(stored);
    cluster.isolate(1n);
    cluster.tickAll(50);
    expect(cluster.sent.filter((m) => m.from === 3n && m.type === MessageType.MSG_VOTE)).toEqual([]);
  });

  it('thesis §4.2.2 a leader that removes itself steps down once the removal is committed, and the others elect a new leader', () => {
    const cluster = TestCluster.of(ids(3), { random: { int: (min, max) => (min + max) >> 1 } });
    // Distinct election timeouts, so members 2 and 3 do not split the vote forever.
    cluster.restart(3n, { random: { int: (_min, max) => max } });
    cluster.elect(1n);
    cluster.node(1n).proposeConfChange(change(REMOVE_NODE, 1n));
    cluster.stabilize();
    expect(cluster.member(1n).role).toBe('follower');
    expect(cluster.member(2n).confState.voters).toEqual([2n, 3n]);

    cluster.tickAll(30);
    expect(cluster.member(2n).role).toBe('leader');
    cluster.propose(2n, 'a');
    expect(cluster.member(3n).applied).toEqual(['a']);
    expect(cluster.member(1n).applied).toEqual([]);
  });
});

describe('applying membership changes', () => {
  it('is idempotent: a change applied twice (after a snapshot that includes it) changes nothing more', () => {
    const node = new RawNode({ id: 1n, storage: MemoryStorage.bootstrapped({ voters: [1n], learners: [] }) });
    node.applyConfChange(change(ADD_LEARNER_NODE, 2n));
    expect(node.applyConfChange(change(ADD_LEARNER_NODE, 2n))).toEqual({ voters: [1n], learners: [2n] });
    node.applyConfChange(change(REMOVE_NODE, 2n));
    expect(node.applyConfChange(change(REMOVE_NODE, 2n))).toEqual({ voters: [1n], learners: [] });
  });

  it('treats a committed change that leaves no voter as a broken invariant', () => {
    const node = new RawNode({ id: 1n, storage: MemoryStorage.bootstrapped({ voters: [1n], learners: [] }) });
    expect(() => node.applyConfChange(change(REMOVE_NODE, 1n))).toThrow(expect.objectContaining({ code: ErrorCode.Internal }));
  });
});
