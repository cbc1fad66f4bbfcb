import { describe, expect, it } from 'vitest';
import { Entry, HardState, SnapshotMetadata } from '@shoal/proto';
import { generateUnlockKey, RaftStorage } from '../src/index.js';
import { useStorageHarness } from './harness.js';

const harness = useStorageHarness();

describe('the README example', () => {
  it('runs as written', async () => {
    const dataDir = await harness.dataDir();
    const storeSnapshotBytes = [Buffer.from('encoded RaftSnapshot…')];
    const applied: Buffer[] = [];

    // --- README example ---
    const unlockKey = generateUnlockKey(); // SWMKEY-1-…; keep it in the cluster, never on this disk
    const { storage, recovered, notes } = await RaftStorage.open({ dataDir, unlockKey });
    // recovered = { hardState, snapshot, entries }: hand it to raft; log `notes` (crash repairs)

    // For each Ready: persist first, then send messages, then apply committed entries.
    await storage.save({
      hardState: HardState.fromPartial({ term: 2n, vote: 1n, commit: 1n }),
      entries: [Entry.fromPartial({ index: 1n, term: 2n, data: Buffer.from('a StoreTransaction') })],
    });

    // Every SnapshotInterval entries: stream the store into a snapshot, then compact the log to it.
    const metadata = SnapshotMetadata.fromPartial({ index: 1n, term: 2n, confState: { voters: [1n] } });
    await storage.writeSnapshot(metadata, storeSnapshotBytes); // any (async) iterable of Uint8Array
    await storage.compact(metadata);

    // A follower that fell behind is sent the latest snapshot, chunk by chunk.
    for await (const chunk of await storage.openSnapshot()) applied.push(chunk);

    await storage.setUnlockKey(undefined); // disable autolock (or pass a new key to rotate it)
    await storage.close();
    // --- end ---

    expect(recovered.entries).toEqual([]);
    expect(notes).toEqual([]);
    expect(Buffer.concat(applied).toString()).toBe('encoded RaftSnapshot…');
    const reopened = await harness.open({ dataDir });
    expect(reopened.recovered.snapshot).toEqual(metadata);
  });
});
