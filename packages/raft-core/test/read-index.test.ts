// Linearizable reads with ReadIndex (Ongaro's thesis §6.4; the Raft paper §8): the read index is the
// leader's commit index, valid once a heartbeat round confirms no newer leader exists, and only after
// the leader has committed an entry of its own term.
import { ErrorCode } from '@shoal/errors';
import { MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { TestCluster, ids } from './support/cluster.js';

const { MSG_HEARTBEAT, MSG_READ_INDEX } = MessageType;
const context = (text: string) => Buffer.from(text);

describe('ReadIndex', () => {
  it('§6.4 the leader answers with its commit index once a heartbeat round confirms it still leads', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.propose(1n, 'a');
    cluster.node(1n).readIndex(context('r1'));

    expect(cluster.pending(MSG_HEARTBEAT).map((m) => [m.to, m.context.toString()])).toEqual([
      [2n, 'r1'],
      [3n, 'r1'],
    ]);
    cluster.collect();
    expect(cluster.member(1n).readStates).toEqual([]);
    cluster.stabilize();
    expect(cluster.member(1n).readStates).toEqual([{ index: 3n, context: context('r1') }]);
  });

  it('§6.4 a leader cut off from the majority answers no read', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.isolate(1n);
    cluster.node(1n).readIndex(context('r1'));
    cluster.tickAll(5);
    expect(cluster.member(1n).readStates).toEqual([]);
  });

  it('§6.4 a new leader holds reads until it has committed an entry of its own term', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.node(1n).campaign();
    cluster.deliver(); // the vote requests
    cluster.deliver(); // the votes: member 1 leads, its empty entry is not committed yet
    cluster.node(1n).readIndex(context('r1'));
    expect(cluster.pending(MSG_HEARTBEAT).filter((m) => m.context.length > 0)).toEqual([]);

    cluster.stabilize();
    expect(cluster.member(1n).readStates).toEqual([{ index: 2n, context: context('r1') }]);
  });

  it('§6.4 a confirmation of a later read also confirms the reads before it', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.node(1n).readIndex(context('r1'));
    cluster.node(1n).readIndex(context('r2'));
    cluster.dropIf((m) => m.context.equals(context('r1')));
    cluster.stabilize();
    expect(cluster.member(1n).readStates.map((r) => r.context.toString())).toEqual(['r1', 'r2']);
  });

  it('§6.4 a follower forwards the read to the leader and gets the answer back', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    cluster.propose(1n, 'a');
    cluster.node(2n).readIndex(context('f1'));
    expect(cluster.pending(MSG_READ_INDEX)).toMatchObject([{ from: 2n, to: 1n, term: 0n }]);

    cluster.stabilize();
    expect(cluster.member(2n).readStates).toEqual([{ index: 3n, context: context('f1') }]);
    expect(cluster.member(1n).readStates).toEqual([]);
  });

  it('§6.4 a leader that is the only voter answers at once', () => {
    const cluster = TestCluster.of(ids(1));
    cluster.elect(1n);
    cluster.node(1n).readIndex(context('r1'));
    cluster.collect();
    expect(cluster.member(1n).readStates).toEqual([{ index: 2n, context: context('r1') }]);
  });

  it('refuses a read when no leader is known, and a read without a context', () => {
    const cluster = TestCluster.of(ids(3));
    expect(() => cluster.node(1n).readIndex(context('r1'))).toThrow(expect.objectContaining({ code: ErrorCode.Unavailable }));
    cluster.elect(1n);
    expect(() => cluster.node(1n).readIndex(new Uint8Array())).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });
});
