// The RawNode contract: what a Ready holds and when, what advance() accepts, restarts from storage,
// refused input, and messages that survive the wire unchanged.
import { ErrorCode } from '@shoal/errors';
import { Message, MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, RawNode } from '../src/index.js';
import { TestCluster, ids, msg } from './support/cluster.js';
import { persist } from './support/ready.js';

const { MSG_VOTE, MSG_VOTE_RESP, MSG_HUP, MSG_PROP, MSG_APP, MSG_SNAP } = MessageType;

describe('Ready', () => {
  it('holds a vote and the answer that reveals it together, so the vote is persisted before the answer is sent', () => {
    const cluster = TestCluster.of(ids(3));
    const { node } = cluster.member(1n);
    node.step(msg({ type: MSG_VOTE, from: 2n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));

    const ready = node.ready();
    expect(ready.hardState).toEqual({ term: 2n, vote: 2n, commit: 1n });
    expect(ready.mustSync).toBe(true);
    expect(ready.messages).toMatchObject([{ type: MSG_VOTE_RESP, to: 2n, reject: false }]);
    node.advance(ready);
  });

  it('holds new entries with the messages that replicate them, and hands out committed entries once', () => {
    const cluster = TestCluster.of(ids(1));
    cluster.elect(1n);
    const { node, storage } = cluster.member(1n);
    node.propose(Buffer.from('a'));

    const ready = node.ready();
    expect(ready.entries).toMatchObject([{ index: 3n, data: Buffer.from('a') }]);
    expect(ready.committedEntries).toMatchObject([{ index: 3n }]);
    persist(storage, ready);
    node.advance(ready);
    expect(node.hasReady()).toBe(false);
    expect(node.status()).toMatchObject({ applied: 3n, commit: 3n });
  });

  it('reports a change of leader or role only when it happens', () => {
    const cluster = TestCluster.of(ids(1));
    const { node, storage } = cluster.member(1n);
    node.campaign();
    const first = node.ready();
    expect(first.softState).toEqual({ leader: 1n, role: 'leader' });
    persist(storage, first);
    node.advance(first);

    node.propose(Buffer.from('a'));
    const second = node.ready();
    expect(second.softState).toBeUndefined();
    node.advance(second);
  });

  it('hands out again entries a new leader replaced while the Ready that held the old ones was out', () => {
    const cluster = TestCluster.of(ids(3));
    const { node, storage } = cluster.member(2n);
    const entry = (term: bigint, data: string) => ({ index: 2n, term, data: Buffer.from(data) });
    node.step(msg({ type: MSG_APP, from: 1n, to: 2n, term: 2n, index: 1n, logTerm: 1n, entries: [entry(2n, 'old')] }));
    const ready = node.ready();
    expect(ready.entries).toMatchObject([entry(2n, 'old')]);

    node.step(msg({ type: MSG_APP, from: 3n, to: 2n, term: 3n, index: 1n, logTerm: 1n, entries: [entry(3n, 'new')] }));
    persist(storage, ready);
    node.advance(ready);
    const next = node.ready();
    expect(next.entries).toMatchObject([entry(3n, 'new')]);
    persist(storage, next);
    node.advance(next);
    expect(storage.entries(2n, 3n, Infinity)).toMatchObject([entry(3n, 'new')]);
  });

  it('refuses a second ready() before advance(), and an advance() of another Ready', () => {
    const cluster = TestCluster.of(ids(1));
    const { node } = cluster.member(1n);
    node.campaign();
    const ready = node.ready();
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(expect.objectContaining({ code: ErrorCode.FailedPrecondition }));
    expect(() => node.advance({ ...ready })).toThrow(expect.objectContaining({ code: ErrorCode.FailedPrecondition }));
    node.advance(ready);
  });

  it('hands committed entries out in batches of at most maxCommittedSizePerReady', () => {
    const cluster = TestCluster.of(ids(1), { maxCommittedSizePerReady: 0 });
    cluster.elect(1n);
    const { node } = cluster.member(1n);
    for (const text of ['a', 'b', 'c']) node.propose(Buffer.from(text));

    const batches: number[] = [];
    while (node.hasReady()) {
      const ready = node.ready();
      batches.push(ready.committedEntries.length);
      persist(cluster.member(1n).storage, ready);
      node.advance(ready);
    }
    expect(batches).toEqual([1, 1, 1]);
  });
});

describe('restarting', () => {
  it('keeps its term, vote and log, and re-applies the committed entries after its snapshot', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    for (const text of ['a', 'b', 'c']) cluster.propose(1n, text);

    const restarted = cluster.restart(2n);
    expect(restarted.node.status()).toMatchObject({ role: 'follower', term: 2n, vote: 1n, commit: 5n, applied: 1n, lastIndex: 5n });
    restarted.drain();
    expect(restarted.applied).toEqual(['a', 'b', 'c']);
  });

  it('loses what it had not persisted', () => {
    const cluster = TestCluster.of(ids(1));
    cluster.elect(1n);
    cluster.node(1n).propose(Buffer.from('lost')); // never handed to the caller, so never stored

    const restarted = cluster.restart(1n);
    expect(restarted.node.status().lastIndex).toBe(2n);
  });

  it('refuses storage whose commit index points past its log', () => {
    const storage = MemoryStorage.bootstrapped({ voters: [1n], learners: [] });
    storage.setHardState({ term: 1n, vote: 0n, commit: 5n });
    expect(() => new RawNode({ id: 1n, storage })).toThrow(
      expect.objectContaining({ code: ErrorCode.Internal, message: expect.stringContaining('lost or truncated') }),
    );
  });
});

describe('refused input', () => {
  const node = () => TestCluster.of(ids(3)).node(1n);

  it.each([
    { name: 'a message for another member', message: msg({ type: MSG_APP, from: 2n, to: 3n, term: 1n }) },
    { name: 'a local event type', message: msg({ type: MSG_HUP, from: 2n, to: 1n, term: 1n }) },
    { name: 'a forwarded proposal', message: msg({ type: MSG_PROP, from: 2n, to: 1n, term: 1n }) },
    { name: 'a message without a term', message: msg({ type: MSG_APP, from: 2n, to: 1n }) },
    {
      name: 'entries that do not follow the index in order',
      message: msg({ type: MSG_APP, from: 2n, to: 1n, term: 1n, index: 1n, logTerm: 1n, entries: [{ index: 3n, term: 1n }] }),
    },
  ])('step() refuses $name with INVALID_ARGUMENT', ({ message }) => {
    expect(() => node().step(message)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });

  it('refuses a proposal on a follower, naming the leader, and with no leader as unavailable', () => {
    const cluster = TestCluster.of(ids(3));
    expect(() => cluster.node(2n).propose(Buffer.from('x'))).toThrow(expect.objectContaining({ code: ErrorCode.Unavailable }));
    cluster.elect(1n);
    expect(() => cluster.node(2n).propose(Buffer.from('x'))).toThrow(
      expect.objectContaining({ code: ErrorCode.FailedPrecondition, details: { leader: 1n } }),
    );
  });

  it.each([
    { name: 'raft ID 0', config: { id: 0n } },
    { name: 'a raft ID above uint64', config: { id: 1n << 64n } },
    { name: 'an election tick not above the heartbeat tick', config: { electionTick: 2, heartbeatTick: 2 } },
    { name: 'a zero heartbeat tick', config: { heartbeatTick: 0 } },
    { name: 'a zero inflight window', config: { maxInflightMsgs: 0 } },
    { name: 'a negative message size', config: { maxSizePerMsg: -1 } },
  ])('refuses a config with $name', ({ config }) => {
    const storage = MemoryStorage.bootstrapped({ voters: [1n], learners: [] });
    expect(() => new RawNode({ id: 1n, storage, ...config })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });
});

describe('on the wire', () => {
  it('exchanges messages that survive a protobuf round trip unchanged, snapshots included', () => {
    const cluster = TestCluster.of(ids(3), {}, true);
    cluster.elect(1n);
    cluster.isolate(3n);
    for (const text of ['a', 'b']) cluster.propose(1n, text);
    cluster.member(1n).compact();
    cluster.heal();
    cluster.tickAll(2);
    cluster.propose(1n, 'c');

    expect(cluster.member(3n).applied).toEqual(['a', 'b', 'c']);
    expect(cluster.sent.some((m) => m.type === MSG_SNAP)).toBe(true);
    for (const message of cluster.sent) expect(Message.decode(Message.encode(message).finish())).toEqual(message);
  });
});
