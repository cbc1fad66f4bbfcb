import { ErrorCode, hasCode } from '@shoal/errors';
import { ObjectKind, StoreService } from '@shoal/proto';
import { serverStreamCall } from '@shoal/rpc';
import type { WatchOptions } from '@shoal/store';
import { describe, expect, it, vi } from 'vitest';
import { LocalConsensus } from '../src/store-api/index.js';
import { startStoreApi } from './support/harness.js';
import { network, secret, service, summary, take, task } from './support/objects.js';

describe('watch', () => {
  it('first sends an empty message at the current version, then one message per committed transaction, in order', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    const before = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-0', 'zero') }] });
    const watch = client.watch();
    expect(await take(watch, 1)).toEqual([{ version: before, events: [] }]);

    const created = await client.commit({
      changes: [
        { action: 'create', kind: 'service', object: service('svc1', 'web') },
        { action: 'create', kind: 'task', object: task('t1', 'svc1') },
      ],
    });
    const read = await client.get('task', 't1');
    const updated = await client.commit({ changes: [{ action: 'update', kind: 'task', object: { ...read, nodeId: 'n1' } }] });
    const deleted = await client.commit({ changes: [{ action: 'delete', kind: 'service', id: 'svc1' }] });

    const commits = await take(watch, 3);
    expect(commits.map((commit) => commit.version)).toEqual([created, updated, deleted]);
    expect(commits.map(summary)).toEqual([['create service svc1', 'create task t1'], ['update task t1'], ['delete service svc1']]);
    expect(commits[1]?.events[0]?.object).toMatchObject({ id: 't1', nodeId: 'n1', meta: { version: { index: updated } } });
    await watch.return();
  });

  it('delivers only the changes its filters select, by kind, action and selector, with old objects when asked', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    const watch = client.watch({
      filters: [{ kind: 'task', actions: ['update'], selectors: [{ serviceId: 'svc1' }] }],
      includeOld: true,
    });
    await take(watch, 1);

    await client.commit({
      changes: [
        { action: 'create', kind: 'service', object: service('svc1', 'web') },
        { action: 'create', kind: 'task', object: task('t1', 'svc1') },
        { action: 'create', kind: 'task', object: task('t2', 'svc2') },
      ],
    });
    const other = await client.get('task', 't2');
    await client.commit({ changes: [{ action: 'update', kind: 'task', object: { ...other, nodeId: 'n2' } }] });
    const mine = await client.get('task', 't1');
    const version = await client.commit({ changes: [{ action: 'update', kind: 'task', object: { ...mine, nodeId: 'n1' } }] });

    const [commit] = await take(watch, 1);
    expect(commit?.version).toBe(version);
    expect(commit?.events).toHaveLength(1);
    expect(commit?.events[0]).toMatchObject({ kind: 'task', action: 'update', object: { id: 't1', nodeId: 'n1' }, old: { id: 't1', nodeId: '' } });
    await watch.return();
  });

  it('leaves old objects out unless asked for them', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const watch = client.watch({ filters: [{ kind: 'network' }] });
    await take(watch, 1);
    const read = await client.get('network', 'net-1');
    await client.commit({ changes: [{ action: 'update', kind: 'network', object: { ...read, spec: { ...read.spec!, ipv6Enabled: true } } }] });
    const [commit] = await take(watch, 1);
    expect(commit?.events[0]).not.toHaveProperty('old');
    await watch.return();
  });

  it('replays every commit after resume_from, then continues live', async () => {
    await using api = await startStoreApi();
    const client = api.client();
    const first = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-1', 'one') }] });
    const second = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-2', 'two') }] });
    const third = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-3', 'three') }] });

    const watch = client.watch({ fromVersion: first });
    const replayed = await take(watch, 3);
    expect(replayed.map((commit) => commit.version)).toEqual([first, second, third]);
    expect(replayed[0]?.events).toEqual([]);
    expect(replayed.slice(1).map(summary)).toEqual([['create network net-2'], ['create network net-3']]);

    const live = await client.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-4', 'four') }] });
    expect((await take(watch, 1))[0]?.version).toBe(live);
    await watch.return();
  });

  it('fails with COMPACTED, saying to resync from a snapshot, when resume_from is older than the history kept', async () => {
    await using api = await startStoreApi({ consensus: new LocalConsensus({ retainedCommits: 2 }) });
    const client = api.client();
    for (const n of [1, 2, 3, 4]) {
      await client.commit({ changes: [{ action: 'create', kind: 'network', object: network(`net-${n}`, `net-${n}`) }] });
    }
    const watching = take(api.client().watch({ fromVersion: 1n }), 1);
    await expect(watching).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Compacted));
    await expect(watching).rejects.toThrow('cannot watch from version 1: changes up to version 2 were compacted; resync from a snapshot');
  });

  it('refuses a malformed watch with INVALID_ARGUMENT', async () => {
    await using api = await startStoreApi();
    const badSelector = take(api.client().watch({ filters: [{ kind: 'network', selectors: [{ slot: { serviceId: 'svc1', slot: 1n } }] }] }), 1);
    await expect(badSelector).rejects.toThrow('does not apply to network objects');
    await expect(badSelector).rejects.toSatisfy((err) => hasCode(err, ErrorCode.InvalidArgument));

    const request = { entries: [{ kind: ObjectKind.TASK, actionMask: 8, selectors: [] }], resumeFrom: undefined, includeOldObject: false };
    const badMask = serverStreamCall(api.rawClient(), StoreService.watch, request).next();
    await expect(badMask).rejects.toThrow('watch action mask 8 has bits that are no action');
  });

  it('closes the store watch behind a stream the client stops reading', async () => {
    await using api = await startStoreApi();
    const storeWatch = vi.spyOn(api.consensus.store, 'watch');
    const watch = api.client().watch();
    await take(watch, 1);
    const [options] = storeWatch.mock.calls[0] as [WatchOptions];
    expect(options.signal?.aborted).toBe(false);

    await watch.return();
    await expect.poll(() => options.signal?.aborted).toBe(true);
  });

  it('ends the watch of a client that stops reading with RESOURCE_EXHAUSTED instead of queueing commits without bound', async () => {
    await using api = await startStoreApi({ limits: { maxWatchBacklog: 3 } });
    const client = api.client();
    const watch = client.watch();
    await take(watch, 1);
    // Enough data that grpc-js's buffers and HTTP/2 flow control fill well before the commits run out.
    const commits = 60;
    for (let n = 0; n < commits; n++) {
      await client.commit({ changes: [{ action: 'create', kind: 'secret', object: secret(`s${n}`, `s${n}`, Buffer.alloc(200_000, n)) }] });
    }

    let received = 0;
    const reading = (async () => {
      for await (const _commit of watch) received += 1;
    })();
    await expect(reading).rejects.toSatisfy((err) => hasCode(err, ErrorCode.ResourceExhausted));
    expect(received).toBeLessThan(commits);
  });

  it('ends open watches with UNAVAILABLE when the component stops, closes their store watches, and stops cleanly', async () => {
    const api = await startStoreApi();
    const storeWatch = vi.spyOn(api.consensus.store, 'watch');
    const watch = api.client().watch();
    await take(watch, 1);
    const [options] = storeWatch.mock.calls[0] as [WatchOptions];
    const outcome = take(watch, 1).catch((err: unknown) => err);

    expect(await api.stop()).toEqual({ ok: true, failures: [], timedOut: [] });
    expect(options.signal?.aborted).toBe(true);
    const ending = await outcome;
    expect(ending).toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
    expect(ending).toHaveProperty('message', expect.stringContaining('shutting down; watch again, from the last version read, on another replica'));
  });
});
