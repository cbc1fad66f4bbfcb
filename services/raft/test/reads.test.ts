import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '@shoal/proto';
import { snapshotParts, type StoreApiClient } from '@shoal/store-client';
import { GatedConsensus, Gate, startStoreApi, type StoreApiHarness } from './support/harness.js';
import { network } from './support/objects.js';

describe('read consistency', () => {
  let consensus: GatedConsensus;
  let api: StoreApiHarness;
  let client: StoreApiClient;
  beforeEach(async () => {
    consensus = new GatedConsensus();
    api = await startStoreApi({ consensus });
    client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-a', 'a') }] });
    consensus.readGate = new Gate();
  });
  afterEach(() => api.stop());

  /** A write the replica applies while a read waits at the barrier, as a commit from another client would arrive. */
  const applyConcurrentWrite = () => consensus.store.update((tx) => tx.create('network', network('net-b', 'b')));

  it.each([
    ['get', () => client.get('network', 'net-b').then((object) => [object.id])],
    ['list', () => client.list('network').then(({ objects }) => objects.map((object) => object.id))],
    ['snapshot', () => client.snapshot().then(({ networks }) => networks.map((object) => object.id))],
  ])('%s is linearizable by default: it waits for the read barrier and sees every write applied before it passed', async (_call, read) => {
    const reading = read();
    await expect.poll(() => consensus.barrierSignals.length).toBe(1);
    applyConcurrentWrite();
    consensus.readGate?.open();
    expect(await reading).toContain('net-b');
  });

  it('answers a stale read from the local replica without waiting for the barrier', async () => {
    const { objects, version } = await client.list('network', [], { consistency: 'stale' });
    expect(objects.map((object) => object.id)).toEqual(['net-a']);
    expect(version).toBe(consensus.store.version);
    expect(await client.get('network', 'net-a', { consistency: 'stale' })).toMatchObject({ id: 'net-a' });
    expect((await client.snapshot({ consistency: 'stale' })).version?.index).toBe(consensus.store.version);
    expect(consensus.barrierSignals).toEqual([]);
  });

  it('stops waiting at the barrier when the client cancels its read', async () => {
    const cancel = new AbortController();
    const reading = client.get('network', 'net-a', { signal: cancel.signal }).catch((err: unknown) => err);
    await expect.poll(() => consensus.barrierSignals.length).toBe(1);
    cancel.abort();
    await expect.poll(() => consensus.barrierSignals[0]?.aborted).toBe(true);
    expect(await reading).toMatchObject({ code: 'CANCELLED' });
  });
});

describe('snapshot', () => {
  it('holds every object of every kind at the version of the last commit', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const version = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-2', 'two') }] });
    const snapshot = await client.snapshot();
    expect(snapshot.version?.index).toBe(version);
    expect(snapshot.networks.map((object) => object.id).sort()).toEqual(['net-1', 'net-2']);
    expect(snapshot).toEqual(api.consensus.store.snapshot());
  });
});

describe('a snapshot larger than a gRPC message', () => {
  it('arrives whole, streamed in parts under the message size limit', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    const secretData = Buffer.alloc(400 * 1024, 7);
    // 16 secrets of 400 KiB: 6.4 MiB, beyond the 4 MiB a single message may carry.
    for (let i = 0; i < 16; i++) {
      api.consensus.store.update((tx) =>
        tx.create('secret', Secret.fromPartial({ id: `secret-${i}`, spec: { annotations: { name: `s${i}` }, data: secretData } })),
      );
    }
    const parts = [...snapshotParts(api.consensus.store.snapshot())];
    expect(parts.length).toBeGreaterThan(4);
    const snapshot = await client.snapshot();
    expect(snapshot.version).toEqual(api.consensus.store.snapshot().version);
    const received = snapshot.secrets.map((secret) => [secret.id, Buffer.from(secret.spec!.data).equals(secretData)]);
    expect(received.sort()).toEqual(
      Array.from({ length: 16 }, (_, i) => [`secret-${i}`, true]).sort(),
    );
  });
});
