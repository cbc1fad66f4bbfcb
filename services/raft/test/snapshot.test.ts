import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, TestCluster } from './support/cluster.js';
import { secret } from './support/objects.js';

const SNAPSHOT_INTERVAL = 20;
const CHUNK_BYTES = 4 * 1024;

describe('snapshots and log compaction', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(3, { snapshotInterval: SNAPSHOT_INTERVAL, logEntriesForSlowFollowers: 5, snapshotChunkBytes: CHUNK_BYTES });
    await eventually(() => expect(cluster.replicas[0]!.replica.status().voters).toHaveLength(3));
  }, 60_000);
  afterAll(() => cluster?.close());

  it('catches up a follower that fell behind the compacted log with a snapshot streamed in several chunks', async () => {
    const leader = await cluster.leader();
    const [behind] = await cluster.followers();
    const behindId = behind!.replica.status().raftId;
    await behind!.stop();

    // Each secret carries 2 KiB, so the store's snapshot spans many 4 KiB chunks.
    const client = leader.client();
    for (let i = 0; i < 3 * SNAPSHOT_INTERVAL; i++) {
      await client.commit({ changes: [{ action: 'create', kind: 'secret', object: secret(`sec-${i}`, `sec-${i}`, Buffer.alloc(2048, i)) }] });
    }
    await eventually(() => expect(leader.replica.status().snapshotIndex).toBeGreaterThan(BigInt(2 * SNAPSHOT_INTERVAL)));

    await behind!.start();
    await eventually(() => expect(behind!.replica.status().applied).toBeGreaterThanOrEqual(leader.replica.status().snapshotIndex));
    // The last snapshot sent to it (it got the founding one when it joined). JSON.parse rounds 64-bit
    // raft IDs, so raw log lines are matched.
    const sent = leader.logs.raw.filter((line) => line.includes('"msg":"snapshot sent"') && line.includes(`"to":${behindId}`)).at(-1);
    expect(JSON.parse(sent ?? '{}').chunks).toBeGreaterThan(10);
    expect(behind!.logs.entries.some((entry) => entry.msg === 'snapshot received')).toBe(true);

    const { objects } = await behind!.client().list('secret');
    expect(objects.map((object) => object.id).sort()).toEqual(Array.from({ length: 3 * SNAPSHOT_INTERVAL }, (_, i) => `sec-${i}`).sort());
    expect(objects.find((object) => object.id === 'sec-7')?.spec?.data).toEqual(Buffer.alloc(2048, 7));
  });

  it('restarts from its latest snapshot plus the log after it, with the store as it was', async () => {
    const [follower] = await cluster.followers();
    const before = follower!.replica.store.snapshot();
    const { snapshotIndex } = follower!.replica.status();
    expect(snapshotIndex).toBeGreaterThan(0n);
    await follower!.stop();
    await follower!.start();
    // What the restarted replica holds before it hears from anyone: its own snapshot and log, replayed.
    expect(follower!.replica.status().snapshotIndex).toBeGreaterThanOrEqual(snapshotIndex);
    expect(follower!.replica.store.snapshot()).toEqual(before);
  });
});
