// Pre-vote (Ongaro's thesis §9.6) and check-quorum with the leader lease (thesis §6.2): the two
// extensions that keep a member which was cut off from disrupting a cluster that works.
import { MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { TestCluster, fixedRandom, ids, msg } from './support/cluster.js';

const { MSG_HEARTBEAT, MSG_PRE_VOTE, MSG_PRE_VOTE_RESP, MSG_VOTE, MSG_VOTE_RESP } = MessageType;

describe('pre-vote', () => {
  it('thesis §9.6 a pre-candidate asks for pre-votes in the next term without raising its own term or casting a vote', () => {
    const cluster = TestCluster.of(ids(3), { preVote: true });
    cluster.node(1n).campaign();

    expect(cluster.node(1n).status()).toMatchObject({ role: 'pre-candidate', term: 1n, vote: 0n });
    expect(cluster.pending(MSG_PRE_VOTE)).toMatchObject([
      { to: 2n, term: 2n, index: 1n, logTerm: 1n },
      { to: 3n, term: 2n, index: 1n, logTerm: 1n },
    ]);
    expect(cluster.pending(MSG_VOTE)).toEqual([]);
  });

  it('thesis §9.6 a member grants a pre-vote without changing its own term or vote', () => {
    const cluster = TestCluster.of(ids(3), { preVote: true });
    const member = cluster.member(1n);
    member.node.step(msg({ type: MSG_PRE_VOTE, from: 2n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));

    expect(member.drain()).toMatchObject([{ type: MSG_PRE_VOTE_RESP, to: 2n, term: 2n, reject: false }]);
    expect(member.node.status()).toMatchObject({ term: 1n, vote: 0n });
  });

  it('thesis §9.6 a pre-candidate that wins a majority of pre-votes campaigns for real and wins', () => {
    const cluster = TestCluster.of(ids(3), { preVote: true });
    cluster.elect(1n);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', term: 2n });
  });

  it('thesis §9.6 a pre-vote that fails leaves the term and vote as they were', () => {
    const cluster = TestCluster.of(ids(3), { preVote: true });
    const member = cluster.member(1n);
    member.node.campaign();
    for (const from of [2n, 3n]) member.node.step(msg({ type: MSG_PRE_VOTE_RESP, from, to: 1n, term: 1n, reject: true }));

    expect(member.node.status()).toMatchObject({ role: 'follower', term: 1n, vote: 0n });
  });

  it.each([
    { preVote: true, disrupts: false },
    { preVote: false, disrupts: true },
  ])('thesis §9.6 a member that rejoins after a partition deposes the leader only without pre-vote (pre-vote $preVote)', ({ preVote, disrupts }) => {
    const cluster = TestCluster.of(ids(3), { preVote });
    cluster.elect(1n);
    cluster.isolate(3n);
    cluster.tickAll(50); // member 3 times out over and over, alone

    cluster.heal();
    cluster.tickAll(12); // long enough for member 3 to campaign again
    const leader = cluster.node(1n).status();
    expect(leader.role === 'leader' && leader.term === 2n).toBe(!disrupts);
  });
});

describe('check-quorum and the leader lease', () => {
  it('thesis §6.2 a leader that hears from no quorum for a whole election timeout steps down', () => {
    const cluster = TestCluster.of(ids(3), { checkQuorum: true });
    cluster.elect(1n);
    cluster.isolate(1n);

    // The first check counts the answers to the election's appends; the next finds no one.
    cluster.tick(1n, 10);
    expect(cluster.member(1n).role).toBe('leader');
    cluster.tick(1n, 10);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'follower', leader: 0n, term: 2n });
  });

  it('thesis §6.2 a leader that keeps hearing from a quorum stays leader', () => {
    const cluster = TestCluster.of(ids(3), { checkQuorum: true });
    cluster.elect(1n);
    cluster.isolate(3n);
    cluster.tickAll(100);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', term: 2n });
  });

  it.each([
    { who: 'a follower that heard from its leader', id: 2n, state: { role: 'follower', term: 2n, leader: 1n } },
    { who: 'a leader that hears from a quorum', id: 1n, state: { role: 'leader', term: 2n } },
  ])('thesis §6.2 within an election timeout, $who ignores a vote request for a higher term', ({ id, state }) => {
    const cluster = TestCluster.of(ids(3), { checkQuorum: true });
    cluster.elect(1n);
    const member = cluster.member(id);

    member.node.step(msg({ type: MSG_VOTE, from: 3n, to: id, term: 5n, index: 9n, logTerm: 9n }));
    expect(member.drain()).toEqual([]);
    expect(member.node.status()).toMatchObject(state);
  });

  it('thesis §6.2 once the lease has run out, a follower answers vote requests again', () => {
    const cluster = TestCluster.of(ids(3), { checkQuorum: true });
    cluster.elect(1n);
    // An election timeout of 15 ticks: the lease (10 ticks) runs out before the member would campaign.
    const member = cluster.restart(2n, { checkQuorum: true, random: fixedRandom(5) });
    cluster.isolate(2n);
    member.node.step(msg({ type: MSG_HEARTBEAT, from: 1n, to: 2n, term: 2n }));
    cluster.tick(2n, 9);

    const voteRequest = msg({ type: MSG_VOTE, from: 3n, to: 2n, term: 3n, index: 2n, logTerm: 2n });
    member.node.step(voteRequest);
    expect(member.drain()).toEqual([]);
    cluster.tick(2n);
    member.node.step(voteRequest);
    expect(member.drain()).toMatchObject([{ type: MSG_VOTE_RESP, to: 3n, term: 3n, reject: false }]);
    expect(member.role).toBe('follower');
  });
});
