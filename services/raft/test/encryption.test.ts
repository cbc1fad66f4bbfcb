import { ErrorCode, hasCode } from '@shoal/errors';
import { generateUnlockKey, INVALID_UNLOCK_KEY_MESSAGE, LOCKED_MESSAGE, parseUnlockKey } from '@shoal/raft-storage';
import { autolockedCluster, filesContaining, filesUnder } from './support/encryption.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, TestCluster, type ReplicaHandle } from './support/cluster.js';
import { network, secret } from './support/objects.js';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);

describe('encryption at rest and autolock', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    // A small snapshot interval puts the secret in snapshots as well as in the log.
    cluster = await TestCluster.start(3, { snapshotInterval: 5 });
    await eventually(() => expect(cluster.replicas[0]!.replica.status().voters).toHaveLength(3));
  }, 60_000);
  afterAll(() => cluster?.close());

  it("keeps a secret's plaintext out of every replica's data directory, in the log and in snapshots", async () => {
    const plaintext = Buffer.from('db-password: correct horse battery staple 7f3a');
    const client = cluster.replicas[1]!.client();
    await client.commit({ changes: [{ action: 'create', kind: 'secret', object: secret('sec-plain', 'db-pass', plaintext) }] });
    for (let i = 0; i < 6; i++) await client.commit({ changes: [{ action: 'create', kind: 'network', object: network(`pad-${i}`, `pad-${i}`) }] });
    await eventually(() => {
      for (const handle of cluster.replicas) expect(handle.replica.status().snapshotIndex).toBeGreaterThan(1n);
    });

    expect((await cluster.replicas[2]!.client().get('secret', 'sec-plain')).spec?.data).toEqual(plaintext);
    expect(filesUnder(cluster.root).some((path) => path.endsWith('.snap'))).toBe(true);
    expect(filesContaining(filesUnder(cluster.root), plaintext)).toEqual([]);
  });

  describe('a replica restarted after the cluster turned autolock on', () => {
    const unlockKey = generateUnlockKey();
    let locked: ReplicaHandle;
    beforeAll(async () => {
      const leader = await cluster.leader();
      await leader.client().commit({ changes: [{ action: 'create', kind: 'cluster', object: autolockedCluster(unlockKey) }] });
      locked = (await cluster.followers())[0]!;
      // Each replica re-wraps its keys once it applies the cluster object.
      await eventually(() => expect(locked.logs.entries.some((entry) => entry.msg.includes('key-encryption key') && entry.autolock === true)).toBe(true));
      await locked.stop();
      await locked.start();
    }, 30_000);

    it('comes up LOCKED and refuses the Store API with Docker\'s message', async () => {
      expect(locked.replica.status().state).toBe('locked');
      const client = locked.client();
      for (const call of [
        () => client.get('network', 'pad-0', { consistency: 'stale' }),
        () => client.list('secret'),
        () => client.commit({ changes: [{ action: 'create', kind: 'network', object: network('while-locked', 'while-locked') }] }),
      ]) {
        const refused = call();
        await expect(refused).rejects.toSatisfy(withCode(ErrorCode.FailedPrecondition));
        await expect(refused).rejects.toThrow(LOCKED_MESSAGE);
      }
      await expect(client.watch({ filters: [{ kind: 'network' }] }).next()).rejects.toThrow(LOCKED_MESSAGE);
    });

    it("refuses a wrong unlock key with Docker's invalid key message and stays locked", async () => {
      const refused = locked.unlock(generateUnlockKey());
      await expect(refused).rejects.toSatisfy(withCode(ErrorCode.Unauthenticated));
      await expect(refused).rejects.toThrow(INVALID_UNLOCK_KEY_MESSAGE);
      expect(locked.replica.status().state).toBe('locked');
    });

    it('unlocks with the right key, then catches up and serves', async () => {
      await locked.unlock(unlockKey);
      await eventually(() => expect(locked.replica.status().state).toBe('running'));
      expect((await locked.client().get('secret', 'sec-plain')).id).toBe('sec-plain');
      await expect(locked.unlock(unlockKey)).rejects.toThrow('swarm is not locked');
    });

    it('never writes the unlock key to any data directory, as text or as key bytes', () => {
      expect(filesContaining(filesUnder(cluster.root), Buffer.from(unlockKey))).toEqual([]);
      expect(filesContaining(filesUnder(cluster.root), parseUnlockKey(unlockKey))).toEqual([]);
    });
  });
});
