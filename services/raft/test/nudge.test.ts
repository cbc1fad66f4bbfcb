import { connectBus, subjects, type BusConnection } from '@shoal/bus';
import { captureLogs } from '@shoal/runtime/testing';
import { startNatsServer, type NatsServer } from '@shoal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStoreApi } from './support/harness.js';
import { network } from './support/objects.js';

describe('commit nudges', () => {
  let nats: NatsServer;
  let publisher: BusConnection;
  let listener: BusConnection;
  beforeAll(async () => {
    nats = await startNatsServer();
    const { log } = captureLogs({ level: 'warn' });
    publisher = await connectBus({ url: nats.url, name: 'raft', log });
    listener = await connectBus({ url: nats.url, name: 'listener', log });
  });
  afterAll(async () => {
    await Promise.all([publisher.close(), listener.close()]);
    await nats.stop();
  });

  it('publishes the version of every commit, including lease changes, on the store commit subject', async () => {
    const nudges = listener.nc.subscribe(subjects.storeCommit, { max: 2 });
    await listener.nc.flush();
    await using api = await startStoreApi({ bus: publisher.nc });
    const client = api.client();

    const committed = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const lease = await client.acquireLease('orchestrator', 'instance-a', 10_000);

    const received: string[] = [];
    for await (const message of nudges) received.push(message.string());
    expect(received).toEqual([committed.toString(), lease.meta?.version?.index.toString()]);
  });

  it('still commits when the nudge cannot be published, and says so in the log', async () => {
    const closed = await connectBus({ url: nats.url, name: 'closed', log: captureLogs({ level: 'warn' }).log });
    await closed.close();
    await using api = await startStoreApi({ bus: closed.nc });

    const version = await api.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('net-2', 'two') }] });
    expect(version).toBe(api.consensus.store.version);
    const warning = expect.objectContaining({ level: 'warn', msg: expect.stringContaining('could not publish a commit nudge') });
    expect(api.logs.entries).toContainEqual(warning);
  });
});
