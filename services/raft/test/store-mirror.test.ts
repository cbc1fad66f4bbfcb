import { ErrorCode } from '@shoal/errors';
import { captureLogs } from '@shoal/runtime/testing';
import { MemoryStore, type Commit } from '@shoal/store';
import { holdLease, LocalClusterState, StoreMirror, type Leadership } from '@shoal/store-client';
import { describe, expect, it } from 'vitest';
import { startStoreApi } from './support/harness.js';
import { network, service } from './support/objects.js';

const quietLog = () => captureLogs({ level: 'warn' }).log;

describe('StoreMirror', () => {
  it('starts from a snapshot, follows every later commit, and answers a commit once its view shows it', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const mirror = new StoreMirror(client, quietLog());
    const stop = new AbortController();
    let ready = false;
    const following = mirror.run(stop.signal, () => (ready = true));
    await expect.poll(() => ready).toBe(true);
    expect(mirror.view((tx) => tx.get('network', 'net-1')?.spec?.annotations?.name)).toBe('one');

    const seen: Commit[] = [];
    const unsubscribe = mirror.subscribe((commit) => seen.push(commit));
    const version = await mirror.commit({ changes: [{ action: 'create', kind: 'service', object: service('svc-1', 'web') }] });
    // The commit resolved: the view already holds the write, at the version the store gave it.
    expect(mirror.view((tx) => tx.get('service', 'svc-1')?.meta?.version?.index)).toBe(version);
    // Another client's write arrives through the watch.
    await api.client().commit({ changes: [{ action: 'create', kind: 'network', object: network('net-2', 'two') }] });
    await expect.poll(() => mirror.view((tx) => tx.get('network', 'net-2')) !== undefined).toBe(true);
    expect(seen.map((commit) => commit.events.map((event) => event.object.id))).toEqual([['svc-1'], ['net-2']]);
    unsubscribe();
    stop.abort();
    await following;
  });

  it('follow() resolves once the first snapshot is in, and the view answers from then on', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const mirror = new StoreMirror(client, quietLog());
    const stop = new AbortController();
    const { following, snapshotTaken } = mirror.follow(stop.signal);
    await snapshotTaken;
    expect(mirror.view((tx) => tx.list('network').map((object) => object.id))).toEqual(['net-1']);
    stop.abort();
    await following;
  });

  it('refuses reads before its first snapshot, naming why', () => {
    const mirror = new StoreMirror({} as never, quietLog());
    expect(() => mirror.view((tx) => tx.list('node'))).toThrow(expect.objectContaining({ code: ErrorCode.Unavailable }));
  });
});

describe('LocalClusterState', () => {
  it('commits with the Store API\'s preconditions: a stale version fails and changes nothing', async () => {
    const state = new LocalClusterState(new MemoryStore());
    await state.commit({ changes: [{ action: 'create', kind: 'service', object: service('svc-1', 'web') }] });
    const read = state.view((tx) => tx.get('service', 'svc-1'))!;
    await state.commit({ changes: [{ action: 'update', kind: 'service', object: service('svc-1', 'api', { meta: read.meta }) }] });
    await expect(
      state.commit({ changes: [{ action: 'update', kind: 'service', object: service('svc-1', 'stale', { meta: read.meta }) }] }),
    ).rejects.toMatchObject({ code: ErrorCode.Conflict });
    expect(state.view((tx) => tx.get('service', 'svc-1')?.spec?.annotations?.name)).toBe('api');
  });
});

describe('holdLease', () => {
  it('lets one holder lead at a time, hands over on stop, and fences the deposed holder\'s writes', async () => {
    await using api = await startStoreApi();
    const leaders: string[] = [];
    const leaderships = new Map<string, Leadership>();
    const run = (holder: string, stop: AbortSignal) =>
      holdLease({ api: api.client(), name: 'orchestrator', holder, ttlMs: 3_000, log: quietLog() }, stop, async (leadership) => {
        leaders.push(holder);
        leaderships.set(holder, leadership);
        await new Promise((resolve) => leadership.lost.addEventListener('abort', resolve, { once: true }));
      });
    const stopA = new AbortController();
    const stopB = new AbortController();
    const a = run('a', stopA.signal);
    await expect.poll(() => leaders).toEqual(['a']);
    const b = run('b', stopB.signal);
    // B stands by while A holds the lease.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(leaders).toEqual(['a']);
    const fenceOfA = leaderships.get('a')!.fence;
    stopA.abort();
    await a;
    await expect.poll(() => leaders, { timeout: 10_000 }).toEqual(['a', 'b']);
    const client = api.client();
    await expect(
      client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-a', 'from-a') }], preconditions: [fenceOfA] }),
    ).rejects.toMatchObject({ code: ErrorCode.Conflict });
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-b', 'from-b') }], preconditions: [leaderships.get('b')!.fence] });
    stopB.abort();
    await b;
  });
});
