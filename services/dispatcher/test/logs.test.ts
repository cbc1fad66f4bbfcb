import { connectBus, subjects, type BusConnection, type LogPublication, type LogSubscription, type LogSubscriptionEnd } from '@shoal/bus';
import { ErrorCode } from '@shoal/errors';
import { LogStream, type LogMessage } from '@shoal/proto';
import { startNatsServer, type NatsServer } from '@shoal/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningDispatcher } from '../src/index.js';
import { createSwarm, quietLog, serve, type TestSwarm } from './support/swarm.js';
import { joinedWorker, rejection, StreamReader, type TestNode } from './support/test-node.js';

let nats: NatsServer;
let bus: BusConnection;
let swarm: TestSwarm;
let dispatcher: RunningDispatcher;
let node: TestNode;
let sessionId: string;

beforeAll(async () => {
  nats = await startNatsServer();
  bus = await connectBus({ url: nats.url, name: 'dispatcher-test', log: quietLog });
});

afterAll(async () => {
  await bus.close();
  await nats.stop();
});

beforeEach(async () => {
  swarm = await createSwarm();
  dispatcher = await serve(swarm, { bus });
  node = await joinedWorker(swarm, dispatcher.address);
  ({ sessionId } = await node.register());
});

function subscription(id: string, options: Partial<LogSubscription> = {}): LogSubscription {
  return { id, nodeIds: [node.id], serviceIds: ['service-1'], taskIds: ['task-1'], follow: false, stdout: true, stderr: true, ...options };
}

/** What a log reader (services/api) receives on the subscription's subject. */
function reader(id: string): StreamReader<LogPublication> {
  const inbox = bus.nc.subscribe(subjects.logStream(id));
  return new StreamReader<LogPublication>((signal) => {
    signal.addEventListener('abort', () => inbox.unsubscribe(), { once: true });
    return (async function* () {
      for await (const message of inbox) yield message.json<LogPublication>();
    })();
  });
}

function line(text: string, context: Partial<LogMessage['context']> = {}): LogMessage {
  return {
    context: { serviceId: 'service-1', nodeId: node.id, taskId: 'task-1', ...context },
    timestamp: new Date('2026-03-01T12:00:00.123Z'),
    stream: LogStream.STDERR,
    data: Buffer.from(`${text}\n`),
    attrs: [],
  };
}

/**
 * Publishes on the api's subject once the node's ListenSubscriptions call (opened just before) has
 * reached the dispatcher: a later call on the same connection coming back proves it has.
 */
async function publishOnceListening(payload: LogSubscription | LogSubscriptionEnd): Promise<void> {
  await node.heartbeat(sessionId);
  bus.nc.publish(subjects.logSubscribe, JSON.stringify(payload));
}

describe('log relay', () => {
  it("asks the node for the reader's tasks and publishes its lines, tagged, then its end", async () => {
    const listening = node.listenSubscriptions(sessionId);
    const lines = reader('sub-1');
    await publishOnceListening(subscription('sub-1', { nodeIds: [node.id, 'node-elsewhere'], stdout: false, tail: 10 }));

    const asked = await listening.next();
    await node.publishLogs([{ subscriptionId: 'sub-1', messages: [line('hello')], close: true }]);

    expect(asked).toMatchObject({
      id: 'sub-1',
      close: false,
      selector: { taskIds: ['task-1'], serviceIds: [], nodeIds: [] },
      options: { streams: [LogStream.STDERR], follow: false, tail: 10n, since: undefined },
    });
    expect(await lines.next()).toEqual({ nodeId: node.id, serviceId: 'service-1', taskId: 'task-1', stream: 'stderr', time: '2026-03-01T12:00:00.123Z', line: 'hello' });
    expect(await lines.next()).toEqual({ nodeId: node.id, done: true });
    lines.close();
  });

  it('refuses lines that claim another node, and a subscription the node was not asked for', async () => {
    const listening = node.listenSubscriptions(sessionId);
    await publishOnceListening(subscription('sub-2'));
    await listening.next();

    const impostor = await rejection(node.publishLogs([{ subscriptionId: 'sub-2', messages: [line('forged', { nodeId: 'someone-else' })], close: false }]));
    const unknown = await rejection(node.publishLogs([{ subscriptionId: 'never-asked', messages: [line('stray')], close: false }]));

    expect(impostor.code).toBe(ErrorCode.PermissionDenied);
    expect(unknown).toMatchObject({ code: ErrorCode.NotFound, message: 'unknown subscription ID never-asked' });
  });

  it('relays a following subscription to a node that starts listening later, and its end when the reader goes', async () => {
    const early = await joinedWorker(swarm, dispatcher.address);
    const earlySession = (await early.register()).sessionId;
    const earlyListening = early.listenSubscriptions(earlySession);
    await early.heartbeat(earlySession);
    bus.nc.publish(subjects.logSubscribe, JSON.stringify(subscription('sub-3', { follow: true, nodeIds: [early.id, node.id] })));
    // Once the node already listening has it, the dispatcher holds the subscription.
    await earlyListening.next();

    const listening = node.listenSubscriptions(sessionId);
    const asked = await listening.next();
    await publishOnceListening({ id: 'sub-3', close: true });
    const closed = await listening.next();

    expect(asked).toMatchObject({ id: 'sub-3', close: false, options: { follow: true, tail: -1n } });
    expect(closed).toMatchObject({ id: 'sub-3', close: true });
  });
});
