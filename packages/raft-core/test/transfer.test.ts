// Leadership transfer (Ongaro's thesis §3.10): the leader brings the target up to date, stops taking
// proposals, and tells the target to campaign at once; the transfer is abandoned after an election timeout.
import { ErrorCode } from '@shoal/errors';
import { ConfChange, ConfChangeType, MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { TestCluster, ids } from './support/cluster.js';

const { MSG_APP, MSG_TIMEOUT_NOW } = MessageType;

describe('leadership transfer', () => {
  it('thesis §3.10 hands leadership to an up-to-date voter at once', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).transferLeadership(2n);
    expect(cluster.pending(MSG_TIMEOUT_NOW)).toMatchObject([{ from: 1n, to: 2n }]);

    cluster.stabilize();
    expect(cluster.node(2n).status()).toMatchObject({ role: 'leader', term: 3n });
    expect(cluster.node(1n).status()).toMatchObject({ role: 'follower', leader: 2n });
  });

  it('thesis §3.10 first brings a lagging target up to date', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.isolate(3n);
    cluster.propose(1n, 'a');
    cluster.heal();

    cluster.node(1n).transferLeadership(3n);
    expect(cluster.pending(MSG_TIMEOUT_NOW)).toEqual([]);
    expect(cluster.pending(MSG_APP).filter((m) => m.to === 3n)).not.toEqual([]);
    cluster.stabilize();
    expect(cluster.member(3n).role).toBe('leader');
    expect(cluster.member(3n).applied).toEqual(['a']);
  });

  it('thesis §3.10 refuses proposals while the transfer is under way', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.isolate(2n);
    cluster.node(1n).transferLeadership(2n);
    expect(cluster.node(1n).status().leadTransferee).toBe(2n);
    expect(() => cluster.node(1n).propose(Buffer.from('x'))).toThrow(
      expect.objectContaining({ code: ErrorCode.Unavailable, details: { transferee: 2n } }),
    );
  });

  it('thesis §3.10 abandons a transfer that has not finished within an election timeout', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.isolate(2n);
    cluster.node(1n).transferLeadership(2n);
    cluster.tick(1n, 10);

    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', leadTransferee: 0n });
    expect(() => cluster.node(1n).propose(Buffer.from('x'))).not.toThrow();
  });

  it("thesis §3.10 the target's vote request gets past the other members' leader lease", () => {
    const cluster = TestCluster.of(ids(3), { checkQuorum: true, preVote: true });
    cluster.elect(1n);
    cluster.node(1n).transferLeadership(3n);
    cluster.stabilize();
    expect(cluster.node(3n).status()).toMatchObject({ role: 'leader', term: 3n });
  });

  it('abandons a transfer to a member that is removed meanwhile', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.isolate(3n);
    cluster.node(1n).transferLeadership(3n);
    cluster.node(1n).applyConfChange(ConfChange.fromPartial({ type: ConfChangeType.REMOVE_NODE, nodeId: 3n }));
    expect(cluster.node(1n).status().leadTransferee).toBe(0n);
  });

  it('refuses to transfer to a learner or a stranger, or from a follower', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).proposeConfChange(ConfChange.fromPartial({ type: ConfChangeType.ADD_LEARNER_NODE, nodeId: 4n }));
    cluster.stabilize();

    for (const target of [4n, 9n]) {
      expect(() => cluster.node(1n).transferLeadership(target)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    }
    expect(() => cluster.node(2n).transferLeadership(3n)).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition, details: { leader: 1n } }),
    );
  });

  it('does nothing when asked to transfer to the leader itself', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).transferLeadership(1n);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', leadTransferee: 0n });
    expect(cluster.pending(MSG_TIMEOUT_NOW)).toEqual([]);
  });
});
