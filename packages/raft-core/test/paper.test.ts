// Tests of the claims the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm", 2014) makes, one claim per test, named by the section that makes it. Each test builds
// members in a known state (TestCluster, or storage holding a given log), acts by stepping messages,
// ticking or proposing, and checks the member's state and the messages it sends. Members run the plain
// algorithm of the paper (no pre-vote, no check-quorum) with an election timeout of exactly 10 ticks,
// unless a test says otherwise.
import { MessageType } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import type { RandomSource } from '../src/index.js';
import { TestCluster, ids, logTerms, msg, storageWithLog } from './support/cluster.js';

const { MSG_APP, MSG_APP_RESP, MSG_HEARTBEAT, MSG_VOTE, MSG_VOTE_RESP } = MessageType;

describe('§5.1 terms', () => {
  it.each(['follower', 'pre-candidate', 'candidate', 'leader'] as const)(
    '§5.1 a %s that sees a higher term in a message adopts it and becomes a follower',
    (role) => {
      const cluster = TestCluster.of(ids(3), { preVote: role === 'pre-candidate' });
      const member = cluster.member(1n);
      if (role === 'leader') cluster.elect(1n);
      else if (role !== 'follower') member.node.campaign();
      expect(member.role).toBe(role);

      const higher = member.term + 1n;
      member.node.step(msg({ type: MSG_HEARTBEAT, from: 2n, to: 1n, term: higher }));
      expect(member.node.status()).toMatchObject({ role: 'follower', term: higher, leader: 2n });
    },
  );

  it('§5.1 a member ignores a request from an earlier term', () => {
    const cluster = TestCluster.of(ids(3));
    const member = cluster.member(1n);
    member.node.step(msg({ type: MSG_HEARTBEAT, from: 2n, to: 1n, term: 3n }));
    member.drain();

    member.node.step(msg({ type: MSG_APP, from: 3n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));
    expect(member.node.status()).toMatchObject({ term: 3n, leader: 2n });
    expect(member.drain()).toEqual([]);
  });

  it('§5.1 with check-quorum, a member tells a leader of an earlier term the current term instead', () => {
    // With check-quorum the stale leader may never see a vote request of the new term, so it is told.
    const cluster = TestCluster.of(ids(3), { checkQuorum: true });
    const member = cluster.member(1n);
    member.node.step(msg({ type: MSG_HEARTBEAT, from: 2n, to: 1n, term: 3n }));
    member.drain();

    member.node.step(msg({ type: MSG_APP, from: 3n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));
    expect(member.drain()).toMatchObject([{ type: MSG_APP_RESP, to: 3n, term: 3n }]);
  });
});

describe('§5.2 leader election', () => {
  it('§5.2 every member starts as a follower with no leader', () => {
    const cluster = TestCluster.of(ids(3));
    for (const member of cluster.members.values()) {
      expect(member.node.status()).toMatchObject({ role: 'follower', leader: 0n, term: 1n });
    }
  });

  it('§5.2 a leader sends a heartbeat to every follower each heartbeat timeout', () => {
    const cluster = TestCluster.of(ids(3), { heartbeatTick: 2 });
    cluster.elect(1n);

    cluster.tick(1n);
    expect(cluster.pending(MSG_HEARTBEAT)).toEqual([]);
    cluster.tick(1n);
    expect(cluster.pending(MSG_HEARTBEAT)).toMatchObject([
      { from: 1n, to: 2n, term: 2n },
      { from: 1n, to: 3n, term: 2n },
    ]);
  });

  it('§5.2 a follower that hears from the leader within each election timeout stays a follower', () => {
    const cluster = TestCluster.of(ids(3));
    const member = cluster.member(2n);
    for (let round = 0; round < 5; round++) {
      cluster.tick(2n, 9);
      member.node.step(msg({ type: MSG_HEARTBEAT, from: 1n, to: 2n, term: 1n }));
    }
    expect(member.role).toBe('follower');
  });

  it('§5.2 a follower that hears nothing for an election timeout becomes a candidate, votes for itself and asks every voter', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.tick(1n, 9);
    expect(cluster.member(1n).role).toBe('follower');

    cluster.tick(1n);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'candidate', term: 2n, vote: 1n });
    expect(cluster.pending(MSG_VOTE)).toMatchObject([
      { from: 1n, to: 2n, term: 2n, index: 1n, logTerm: 1n },
      { from: 1n, to: 3n, term: 2n, index: 1n, logTerm: 1n },
    ]);
  });

  it('§5.2 a candidate whose election times out starts another in the next term', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.node(1n).campaign();
    expect(cluster.member(1n).term).toBe(2n);

    cluster.tick(1n, 10);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'candidate', term: 3n, vote: 1n });
  });

  it('§5.2 election timeouts are drawn at random from [electionTick, 2 × electionTick)', () => {
    const draws: [number, number][] = [];
    const longest: RandomSource = {
      int: (min, max) => {
        draws.push([min, max]);
        return max;
      },
    };
    const cluster = TestCluster.of(ids(3), { electionTick: 10, random: longest });
    expect(draws.length).toBeGreaterThan(0);
    expect(new Set(draws.map((draw) => draw.join('..')))).toEqual(new Set(['10..19']));

    cluster.tick(1n, 18);
    expect(cluster.member(1n).role).toBe('follower');
    cluster.tick(1n);
    expect(cluster.member(1n).role).toBe('candidate');
  });

  it.each([
    { size: 1, votes: {}, role: 'leader' },
    { size: 3, votes: { 2: true }, role: 'leader' },
    { size: 3, votes: { 2: true, 3: true }, role: 'leader' },
    { size: 3, votes: { 2: false }, role: 'candidate' },
    { size: 3, votes: { 2: false, 3: false }, role: 'follower' },
    { size: 5, votes: { 2: true }, role: 'candidate' },
    { size: 5, votes: { 2: true, 3: true }, role: 'leader' },
    { size: 5, votes: { 2: true, 3: false, 4: false }, role: 'candidate' },
    { size: 5, votes: { 2: false, 3: false, 4: false }, role: 'follower' },
  ])('§5.2 a candidate of $size voters with votes $votes ends up $role', ({ size, votes, role }) => {
    const cluster = TestCluster.of(ids(size));
    const member = cluster.member(1n);
    member.node.campaign();
    for (const [from, granted] of Object.entries(votes)) {
      member.node.step(msg({ type: MSG_VOTE_RESP, from: BigInt(from), to: 1n, term: 2n, reject: !granted }));
    }
    expect(member.role).toBe(role);
  });

  it('§5.2 a member grants at most one vote per term, first come first served', () => {
    const cluster = TestCluster.of(ids(3));
    const member = cluster.member(1n);
    const voteRequest = (from: bigint) => msg({ type: MSG_VOTE, from, to: 1n, term: 2n, index: 1n, logTerm: 1n });

    member.node.step(voteRequest(2n));
    member.node.step(voteRequest(3n));
    member.node.step(voteRequest(2n)); // a retransmission is answered the same way
    expect(member.drain().map((m) => [m.to, m.reject])).toEqual([
      [2n, false],
      [3n, true],
      [2n, false],
    ]);
    expect(member.node.status().vote).toBe(2n);
  });

  it('§5.2 a candidate that hears from a leader of its own term returns to being a follower', () => {
    const cluster = TestCluster.of(ids(3));
    const member = cluster.member(1n);
    member.node.campaign();

    member.node.step(msg({ type: MSG_APP, from: 2n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));
    expect(member.node.status()).toMatchObject({ role: 'follower', term: 2n, leader: 2n });
  });
});

describe('§5.3 log replication', () => {
  it('§5.3 a leader appends a proposal to its log and sends it to every follower', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);

    const position = cluster.node(1n).propose(Buffer.from('x'));
    expect(position).toEqual({ index: 3n, term: 2n });
    const appends = cluster.pending(MSG_APP);
    expect(appends.map((m) => m.to)).toEqual([2n, 3n]);
    for (const append of appends) {
      expect(append.entries).toMatchObject([{ index: 3n, term: 2n, data: Buffer.from('x') }]);
    }
  });

  it('§5.3 an entry is committed once a majority stores it, and then every follower that stores it applies it', () => {
    const cluster = TestCluster.of(ids(5));
    cluster.elect(1n);
    cluster.isolate(4n);
    cluster.isolate(5n);

    cluster.propose(1n, 'x');
    for (const id of [1n, 2n, 3n]) expect(cluster.member(id).applied).toEqual(['x']);
    for (const id of [4n, 5n]) expect(cluster.member(id).applied).toEqual([]);
  });

  it('§5.3 an entry stored by a minority only is not committed', () => {
    const cluster = TestCluster.of(ids(5));
    cluster.elect(1n);
    for (const id of [3n, 4n, 5n]) cluster.isolate(id);

    cluster.propose(1n, 'x');
    expect(cluster.member(2n).storage.lastIndex()).toBe(3n);
    expect(cluster.node(1n).status().commit).toBe(2n);
    expect(cluster.member(1n).applied).toEqual([]);
  });

  it.each([
    { index: 1n, logTerm: 1n, accepted: true, answer: 1n },
    { index: 3n, logTerm: 2n, accepted: true, answer: 3n },
    // Our entry 3 has term 2: the leader should next try the last entry of a term no higher than 3.
    { index: 3n, logTerm: 3n, accepted: false, hint: [3n, 2n] },
    // We have no entry 4: the leader should probe from our last entry.
    { index: 4n, logTerm: 2n, accepted: false, hint: [3n, 2n] },
  ])(
    '§5.3 a follower with log 1,2,2 answers an append after entry $index of term $logTerm: accepted $accepted',
    ({ index, logTerm, accepted, answer, hint }) => {
      const cluster = new TestCluster();
      const member = cluster.add(1n, storageWithLog(ids(3), [1, 2, 2]));
      member.node.step(msg({ type: MSG_APP, from: 2n, to: 1n, term: 2n, index, logTerm }));
      const [response] = member.drain();
      expect(response).toMatchObject({ type: MSG_APP_RESP, to: 2n, reject: !accepted });
      if (accepted) expect(response?.index).toBe(answer);
      else expect([response?.rejectHint, response?.logTerm]).toEqual(hint);
    },
  );

  it.each([
    { after: [2n, 2n], entries: [3, 3], log: [1, 2, 3, 3] },
    { after: [1n, 1n], entries: [3], log: [1, 3] },
    // Entries the log already holds change nothing, and what follows them stays.
    { after: [1n, 1n], entries: [2], log: [1, 2, 2] },
  ])(
    '§5.3 a follower with log 1,2,2 given entries of terms $entries after $after deletes what conflicts and ends with $log',
    ({ after, entries, log }) => {
      const cluster = new TestCluster();
      const member = cluster.add(1n, storageWithLog(ids(3), [1, 2, 2]));
      const [index, logTerm] = after as [bigint, bigint];
      member.node.step(
        msg({
          type: MSG_APP,
          from: 2n,
          to: 1n,
          term: 3n,
          index,
          logTerm,
          entries: entries.map((term, i) => ({ term: BigInt(term), index: index + 1n + BigInt(i) })),
        }),
      );
      member.drain();
      expect(logTerms(member.storage)).toEqual(log);
    },
  );

  // Figure 7: the leader of term 8 and six followers whose logs differ from it in every way possible.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  it.each([
    { name: '(a) missing an entry', log: [1, 1, 1, 4, 4, 5, 5, 6, 6] },
    { name: '(b) missing many entries', log: [1, 1, 1, 4] },
    { name: '(c) with an extra entry of term 6', log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6] },
    { name: '(d) with extra entries of term 7', log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7] },
    { name: '(e) missing entries and with extra ones of term 4', log: [1, 1, 1, 4, 4, 4, 4] },
    { name: '(f) with extra entries of terms 2 and 3', log: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3] },
  ])('§5.3 a leader brings the log of the follower of Figure 7 $name in line with its own', ({ log }) => {
    const voters = ids(3);
    const cluster = new TestCluster();
    cluster.add(1n, storageWithLog(voters, leaderLog, 7));
    cluster.add(2n, storageWithLog(voters, log, Math.max(7, ...log)));
    // Member 3 holds the leader's log, so the leader can win and commit whatever member 2's log is.
    cluster.add(3n, storageWithLog(voters, leaderLog, 7));

    cluster.elect(1n);
    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', term: 8n });
    expect(logTerms(cluster.member(2n).storage)).toEqual([...leaderLog, 8]);
  });
});

describe('§5.4 safety', () => {
  it.each([
    { lastIndex: 2n, lastTerm: 2n, granted: true, why: 'the same last entry' },
    { lastIndex: 3n, lastTerm: 2n, granted: true, why: 'a longer log of the same last term' },
    { lastIndex: 1n, lastTerm: 2n, granted: false, why: 'a shorter log of the same last term' },
    { lastIndex: 1n, lastTerm: 3n, granted: true, why: 'a higher last term, even if shorter' },
    { lastIndex: 5n, lastTerm: 1n, granted: false, why: 'a lower last term, even if longer' },
  ])('§5.4.1 a member with log 1,2 grants its vote to a candidate with $why: $granted', ({ lastIndex, lastTerm, granted }) => {
    const cluster = new TestCluster();
    const member = cluster.add(1n, storageWithLog(ids(3), [1, 2]));
    member.node.step(msg({ type: MSG_VOTE, from: 2n, to: 1n, term: 3n, index: lastIndex, logTerm: lastTerm }));
    expect(member.drain()).toMatchObject([{ type: MSG_VOTE_RESP, to: 2n, term: 3n, reject: !granted }]);
  });

  /**
   * Figure 8 (c): member 1, leader of term 4, holds entry 2 of term 2 (also on member 2). It replicates
   * entry 2 to member 3, so a majority stores it, but its own entry 3 of term 4 reaches nobody.
   */
  function figure8(): TestCluster {
    const voters = ids(3);
    const cluster = new TestCluster();
    cluster.add(1n, storageWithLog(voters, [1, 2], 3), { maxSizePerMsg: 0 });
    cluster.add(2n, storageWithLog(voters, [1, 2], 3));
    cluster.add(3n, storageWithLog(voters, [1], 3));
    const member3 = cluster.member(3n);
    cluster.dropIf(
      (m) => m.type === MSG_APP && (m.to === 2n || (m.to === 3n && member3.storage.lastIndex() >= 2n && m.entries.length > 0)),
    );
    cluster.elect(1n);
    return cluster;
  }

  it('§5.4.2 a leader never commits an entry of an earlier term by counting the replicas that store it', () => {
    const cluster = figure8();
    expect(cluster.node(1n).status()).toMatchObject({ role: 'leader', term: 4n });
    for (const id of ids(3)) expect(cluster.member(id).storage.term(2n)).toBe(2n);
    expect(cluster.node(1n).status().progress.get(3n)?.match).toBe(2n);
    expect(cluster.node(1n).status().commit).toBe(1n);
  });

  it('§5.4.2 entries of earlier terms commit together with the first entry of the leader term', () => {
    const cluster = figure8();
    cluster.dropIf(undefined);
    cluster.tick(1n);
    cluster.stabilize();
    expect(cluster.node(1n).status().commit).toBe(3n);
    for (const id of ids(3)) expect(cluster.member(id).applied).toEqual(['2@2']);
  });
});

describe('§8 client interaction', () => {
  it('§8 a new leader appends an empty entry of its term, so it learns which entries are committed', () => {
    const cluster = TestCluster.of(ids(3));
    cluster.elect(1n);
    const { storage } = cluster.member(1n);
    expect(storage.lastIndex()).toBe(2n);
    expect(storage.entries(2n, 3n, Infinity)).toMatchObject([{ term: 2n, data: Buffer.alloc(0) }]);
    expect(cluster.node(1n).status().commit).toBe(2n);
  });
});
