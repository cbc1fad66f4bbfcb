import { createInbox } from '@nats-io/transport-node';
import { ErrorCode, hasCode } from '@shoal/errors';
import { Supervisor } from '@shoal/runtime';
import { captureLogs } from '@shoal/runtime/testing';
import { startNatsServer, type NatsServer } from '@shoal/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { busComponent, connectBus, subjects, type BusConnection } from '../src/index.js';

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

const opened: BusConnection[] = [];
async function open(name: string, url = server.url): Promise<BusConnection> {
  const connection = await connectBus({ url, name, log: captureLogs().log });
  opened.push(connection);
  return connection;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe('connectBus', () => {
  it('delivers a message published on one connection to a subscriber on another', async () => {
    const [publisher, subscriber] = [await open('publisher'), await open('subscriber')];
    const subject = createInbox('test');
    const subscription = subscriber.nc.subscribe(subject, { max: 1 });
    await subscriber.nc.flush();

    publisher.nc.publish(subject, 'hello');
    for await (const message of subscription) expect(text(message.data)).toBe('hello');
    expect(subscription.getReceived()).toBe(1);
  });

  it('on close, still delivers the messages the server had already sent to this subscriber', async () => {
    const [publisher, subscriber] = [await open('publisher'), await open('subscriber')];
    const subject = createInbox('test');
    const subscription = subscriber.nc.subscribe(subject);
    await subscriber.nc.flush();
    let handled = 0;
    const consuming = (async () => {
      for await (const _ of subscription) handled += 1;
    })();

    // Once the publisher's flush returns, the server has routed every message towards the subscriber;
    // most are still on the wire or in socket buffers when close() is called.
    const payload = new Uint8Array(1024);
    for (let i = 0; i < 5_000; i++) publisher.nc.publish(subject, payload);
    await publisher.nc.flush();
    await subscriber.close();
    await consuming;
    expect(handled).toBe(5_000);
    expect(subscriber.nc.isClosed()).toBe(true);
  });

  it('on close, sends everything published just before it to the server', async () => {
    const [publisher, subscriber] = [await open('publisher'), await open('subscriber')];
    const subject = createInbox('test');
    const subscription = subscriber.nc.subscribe(subject, { max: 500 });
    await subscriber.nc.flush();

    for (let i = 0; i < 500; i++) publisher.nc.publish(subject, String(i));
    await publisher.close();
    const received: string[] = [];
    for await (const message of subscription) received.push(text(message.data));
    expect(received).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  });

  it('fails with UNAVAILABLE when no server answers', async () => {
    const gone = await startNatsServer();
    await gone.stop();
    await expect(open('lonely', gone.url)).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
  });

  it('still closes, without draining, when its server is gone', async () => {
    const doomed = await startNatsServer();
    const logs = captureLogs();
    const connection = await connectBus({ url: doomed.url, name: 'orphan', log: logs.log });
    opened.push(connection);
    connection.nc.subscribe(createInbox('test'));
    await doomed.stop();
    await expect.poll(() => logs.entries.map((e) => e.state)).toContain('disconnected');

    await connection.close();
    expect(connection.nc.isClosed()).toBe(true);
    expect(logs.entries).toContainEqual(expect.objectContaining({ level: 'warn', state: 'closing' }));
  });

  it('closes once however often close is called', async () => {
    const connection = await open('twice');
    await Promise.all([connection.close(), connection.close()]);
    expect(connection.nc.isClosed()).toBe(true);
  });
});

describe('busComponent', () => {
  it('is ready once connected, serves later components, and drains when the supervisor stops', async () => {
    const logs = captureLogs();
    const bus = busComponent({ url: server.url, name: 'scheduler' });
    expect(() => bus.connection).toThrow(/not connected yet/);
    const supervisor = new Supervisor({ log: logs.log, components: [bus], shutdownGraceMs: 5_000 });
    await supervisor.start();

    const listener = await open('listener');
    const received = listener.nc.subscribe(subjects.storeCommit, { max: 1 });
    await listener.nc.flush();
    bus.connection.nc.publish(subjects.storeCommit);
    for await (const message of received) expect(message.subject).toBe('shoal.v1.store.commit');

    expect(await supervisor.stop()).toEqual({ ok: true, failures: [], timedOut: [] });
    expect(bus.connection.nc.isClosed()).toBe(true);
    expect(logs.entries).toContainEqual(expect.objectContaining({ component: 'bus', state: 'connected', server: expect.stringContaining(String(server.port)) }));
  });

  it('fails, stopping the process, when the connection closes without being asked to', async () => {
    const logs = captureLogs();
    const bus = busComponent({ url: server.url, name: 'scheduler' });
    const supervisor = new Supervisor({ log: logs.log, components: [bus], shutdownGraceMs: 5_000 });
    await supervisor.start();

    await bus.connection.nc.close();
    const result = await supervisor.done;
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual([{ component: 'bus', error: expect.objectContaining({ code: ErrorCode.Unavailable }) }]);
  });
});

describe('reconnection', () => {
  it('logs the loss of its server and the reconnection to another one', async () => {
    const [first, second] = [await startNatsServer(), await startNatsServer()];
    const logs = captureLogs();
    const connection = await connectBus({ url: [first.url, second.url], name: 'survivor', log: logs.log });
    opened.push(connection);
    const [current, other] = connection.nc.getServer().endsWith(`:${first.port}`) ? [first, second] : [second, first];
    try {
      await current.stop();
      // The client waits its reconnect interval (2 s) before trying the next server.
      await expect.poll(() => logs.entries.filter((e) => e.state === 'reconnected').map((e) => e.server), { timeout: 10_000 }).toEqual([`127.0.0.1:${other.port}`]);
      expect(logs.entries).toContainEqual(expect.objectContaining({ state: 'disconnected', server: `127.0.0.1:${current.port}` }));
      expect(connection.nc.isClosed()).toBe(false);
    } finally {
      await connection.close();
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
