import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { FakeClock } from '../src/fake-clock.js';
import { SeededRandom } from '../src/seeded-random.js';
import { type Envelope, type LinkConditions, SimNetwork } from '../src/sim-network.js';

const invalidArgument = expect.objectContaining({ code: ErrorCode.InvalidArgument });

/** A network of nodes that record every copy they receive. */
function recordingNetwork(seed: string, nodes: string[], conditions: Partial<LinkConditions> = {}) {
  const clock = new FakeClock();
  const network = new SimNetwork<string>({ clock, random: new SeededRandom(seed), conditions });
  const received: Envelope<string>[] = [];
  for (const node of nodes) network.addNode(node, (_message, envelope) => received.push(envelope));
  const messages = () => received.map((envelope) => envelope.message);
  return { clock, network, received, messages };
}

describe('SimNetwork', () => {
  it('delivers in send order after the configured delay when the network is reliable', () => {
    const { clock, network, messages } = recordingNetwork('s', ['a', 'b'], { minDelayMs: 5, maxDelayMs: 5 });
    network.send('a', 'b', 'm1');
    network.send('a', 'b', 'm2');

    clock.advance(4);
    expect(messages()).toEqual([]);
    expect(network.inFlight).toBe(2);
    clock.advance(1);
    expect(messages()).toEqual(['m1', 'm2']);
    expect(network.stats).toEqual({ sent: 2, delivered: 2, dropped: 0, duplicated: 0 });
  });

  it('loses about the configured fraction of messages and counts every loss', () => {
    const { network, received } = recordingNetwork('drops', ['a', 'b'], { dropRate: 0.3 });
    for (let i = 0; i < 2_000; i++) network.send('a', 'b', `m${i}`);
    network.deliverAll();

    const { sent, delivered, dropped } = network.stats;
    expect(delivered + dropped).toBe(sent);
    expect(received).toHaveLength(delivered);
    expect(dropped).toBeGreaterThan(500);
    expect(dropped).toBeLessThan(700);
  });

  it('delivers about the configured fraction of messages twice, marking the extra copy', () => {
    const { network, received } = recordingNetwork('dups', ['a', 'b'], { duplicateRate: 0.2, maxDelayMs: 20 });
    for (let i = 0; i < 1_000; i++) network.send('a', 'b', `m${i}`);
    network.deliverAll();

    const { sent, delivered, duplicated } = network.stats;
    expect(delivered).toBe(sent + duplicated);
    expect(duplicated).toBeGreaterThan(150);
    expect(duplicated).toBeLessThan(250);
    expect(received.filter((envelope) => envelope.duplicate)).toHaveLength(duplicated);
  });

  it('reorders messages when delays vary, delivering each copy at its own arrival time', () => {
    const { clock, network, received, messages } = recordingNetwork('reorder', ['a', 'b'], { minDelayMs: 1, maxDelayMs: 50 });
    const sentOrder = Array.from({ length: 100 }, (_, i) => `m${i}`);
    for (const message of sentOrder) network.send('a', 'b', message);
    const arrivals: number[] = [];
    while (network.step() !== undefined) arrivals.push(clock.now());

    expect(messages()).not.toEqual(sentOrder);
    expect([...messages()].sort()).toEqual([...sentOrder].sort());
    expect(arrivals).toEqual(received.map((envelope) => envelope.deliverAt));
    expect(arrivals).toEqual([...arrivals].sort((x, y) => x - y));
  });

  it('a partition stops traffic between the groups both ways but not within a group, until healed', () => {
    const { network, received } = recordingNetwork('p', ['a', 'b', 'c']);
    network.partition(['a'], ['b', 'c']);
    network.send('a', 'b', 'a→b');
    network.send('b', 'a', 'b→a');
    network.send('b', 'c', 'b→c');
    network.deliverAll();
    expect(received.map((envelope) => envelope.message)).toEqual(['b→c']);
    expect(network.stats.dropped).toBe(2);

    network.heal();
    network.send('a', 'b', 'healed');
    network.deliverAll();
    expect(received.map((envelope) => envelope.message)).toEqual(['b→c', 'healed']);
  });

  it('a partition also loses the messages already in flight across it', () => {
    const { clock, network, messages } = recordingNetwork('p', ['a', 'b'], { minDelayMs: 10, maxDelayMs: 10 });
    network.send('a', 'b', 'in flight');
    clock.advance(5);
    network.partition(['a'], ['b']);
    clock.advance(10);

    expect(messages()).toEqual([]);
    expect(network.stats).toMatchObject({ delivered: 0, dropped: 1 });
    expect(network.inFlight).toBe(0);
  });

  it('isolate cuts a node off from every other node, including nodes added later', () => {
    const { network, messages } = recordingNetwork('i', ['a', 'b']);
    network.isolate('a');
    network.addNode('late', () => {});
    expect(network.canReach('a', 'late')).toBe(false);
    expect(network.canReach('late', 'b')).toBe(true);

    network.send('a', 'b', 'from isolated');
    network.send('b', 'a', 'to isolated');
    network.deliverAll();
    expect(messages()).toEqual([]);
  });

  it('link conditions override the defaults in one direction only', () => {
    const { network, messages } = recordingNetwork('l', ['a', 'b']);
    network.setLinkConditions('a', 'b', { dropRate: 1 });
    network.send('a', 'b', 'a→b');
    network.send('b', 'a', 'b→a');
    network.deliverAll();
    expect(messages()).toEqual(['b→a']);
  });

  it('drops copies that arrive at a node removed while they were in flight', () => {
    const { clock, network, messages } = recordingNetwork('r', ['a', 'b']);
    network.send('a', 'b', 'lost');
    network.removeNode('b');
    clock.advance(10);
    expect(messages()).toEqual([]);
    expect(network.stats.dropped).toBe(1);
    expect(network.nodes).toEqual(['a']);
  });

  it('replays exactly the same run from the same seed, and a different one from another seed', () => {
    /** Three nodes gossip each message on to a random peer for a few hops over a lossy, noisy network. */
    const run = (seed: string) => {
      const clock = new FakeClock();
      const random = new SeededRandom(seed);
      const network = new SimNetwork<{ id: number; hops: number }>({
        clock,
        random: random.fork('network'),
        conditions: { dropRate: 0.1, duplicateRate: 0.1, minDelayMs: 1, maxDelayMs: 30 },
      });
      const gossip = random.fork('gossip');
      const nodes = ['n1', 'n2', 'n3'];
      const log: string[] = [];
      for (const node of nodes) {
        network.addNode(node, (message, envelope) => {
          log.push(`${clock.now()} ${envelope.from}→${node} #${message.id}/${message.hops}${envelope.duplicate ? ' dup' : ''}`);
          if (message.hops < 4) network.send(node, gossip.pick(nodes.filter((peer) => peer !== node)), { ...message, hops: message.hops + 1 });
        });
      }
      for (let id = 0; id < 50; id++) network.send(gossip.pick(nodes), gossip.pick(nodes), { id, hops: 0 });
      network.deliverAll();
      return { log, stats: network.stats };
    };

    const first = run('seed-1');
    expect(first.log.length).toBeGreaterThan(100);
    expect(first.stats.dropped).toBeGreaterThan(0);
    expect(first.stats.duplicated).toBeGreaterThan(0);
    expect(run('seed-1')).toEqual(first);
    expect(run('seed-2').log).not.toEqual(first.log);
  });

  it('step delivers one message at a time, firing the timers due before it on the way', () => {
    const { clock, network } = recordingNetwork('s', ['a', 'b'], { minDelayMs: 10, maxDelayMs: 10 });
    const events: string[] = [];
    clock.setTimeout(() => events.push(`timer@${clock.now()}`), 5);
    network.send('a', 'b', 'first');
    network.send('a', 'b', 'second');

    const delivered = network.step();
    events.push(`${delivered?.message}@${clock.now()}`);
    expect(events).toEqual(['timer@5', 'first@10']);
    expect(network.step()?.message).toBe('second');
    expect(network.step()).toBeUndefined();
  });

  it('deliverAll gives up with RESOURCE_EXHAUSTED on traffic that never settles', () => {
    const clock = new FakeClock();
    const network = new SimNetwork<string>({ clock, random: new SeededRandom('ping') });
    network.addNode('a', () => network.send('a', 'b', 'ping'));
    network.addNode('b', () => network.send('b', 'a', 'pong'));
    network.send('a', 'b', 'ping');

    expect(() => network.deliverAll(1_000)).toThrow(expect.objectContaining({ code: ErrorCode.ResourceExhausted }));
  });

  it('rejects a node added twice and impossible link conditions', () => {
    const { network } = recordingNetwork('v', ['a']);
    expect(() => network.addNode('a', () => {})).toThrow(expect.objectContaining({ code: ErrorCode.AlreadyExists }));
    expect(() => network.removeNode('ghost')).toThrow(expect.objectContaining({ code: ErrorCode.NotFound }));
    expect(() => network.setConditions({ dropRate: 2 })).toThrow(invalidArgument);
    expect(() => network.setConditions({ minDelayMs: 9, maxDelayMs: 3 })).toThrow(invalidArgument);
    expect(() => network.setLinkConditions('a', 'b', { maxDelayMs: 0.5 })).toThrow(invalidArgument);
  });
});
