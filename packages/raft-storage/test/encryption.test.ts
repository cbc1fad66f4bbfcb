import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Entry } from '@shoal/proto';
import { ErrorCode } from '@shoal/errors';
import { generateUnlockKey, INVALID_UNLOCK_KEY_MESSAGE, LOCKED_MESSAGE, parseUnlockKey } from '../src/index.js';
import { entries, expectedLog, filesUnder, logOf, namesIn, readAll, snapshotAt, useStorageHarness } from './harness.js';

const harness = useStorageHarness();

/** What keys.json says, for the claims about key handling. */
async function keyFile(dataDir: string): Promise<{ keyEncryptionKey: { source: string }; activeDataKey: number; dataKeys: Array<{ id: number }> }> {
  return JSON.parse(await readFile(join(dataDir, 'raft', 'keys.json'), 'utf8'));
}

/** Every file under `dataDir` that contains `needle` as raw bytes. */
async function filesContaining(dataDir: string, needle: Buffer): Promise<string[]> {
  return (await filesUnder(dataDir)).filter((file) => file.bytes.includes(needle)).map((file) => file.path);
}

describe('encryption at rest', () => {
  it('no file under the data directory holds the plaintext of an entry or a snapshot, in any common encoding', async () => {
    const dataDir = await harness.dataDir();
    const secret = 'db-password=correct-horse-battery-staple-41f7';
    const { storage } = await harness.open({ dataDir, segmentBytes: 2048 });
    for (let index = 1; index <= 40; index++) {
      await storage.save({ entries: [Entry.fromPartial({ index: BigInt(index), term: 1n, data: Buffer.from(`secret #${index}: ${secret}`) })] });
    }
    await storage.writeSnapshot(snapshotAt(30, 1), [Buffer.from(`store snapshot with ${secret} inside`)]);
    await storage.compact(snapshotAt(30, 1));
    await storage.close();

    const reopened = await harness.open({ dataDir, segmentBytes: 2048 });
    // The data is really there, readable through the API...
    expect(reopened.recovered.entries.map((entry) => entry.data.toString())).toContain(`secret #40: ${secret}`);
    expect((await readAll(await reopened.storage.openSnapshot())).toString()).toContain(secret);
    // ...and in no file, whether as raw bytes, base64 or hex.
    const files = await filesUnder(dataDir);
    expect(files.map((file) => file.path)).toEqual(expect.arrayContaining([expect.stringMatching(/\.wal$/), expect.stringMatching(/\.snap$/)]));
    for (const encoding of ['utf8', 'base64', 'hex'] as const) {
      expect(await filesContaining(dataDir, Buffer.from(Buffer.from(secret).toString(encoding)))).toEqual([]);
    }
  });

  it('seals the same entry differently each time it is written (fresh nonces and per-file keys)', async () => {
    const first = await harness.dataDir();
    const second = await harness.dataDir();
    for (const dataDir of [first, second]) {
      const { storage } = await harness.open({ dataDir });
      await storage.save({ entries: entries(1, 1, 1) });
      await storage.close();
    }
    const [segmentOne] = await filesUnder(join(first, 'raft', 'wal'));
    const [segmentTwo] = await filesUnder(join(second, 'raft', 'wal'));
    expect(segmentOne?.bytes.length).toBe(segmentTwo?.bytes.length);
    expect(segmentOne?.bytes.subarray(40).equals(segmentTwo?.bytes.subarray(40) ?? Buffer.alloc(0))).toBe(false);
  });
});

describe('autolock', () => {
  it("a storage created with an unlock key refuses to open without it, with Docker's message", async () => {
    const dataDir = await harness.dataDir();
    const unlockKey = generateUnlockKey();
    const { storage } = await harness.open({ dataDir, unlockKey });
    expect(storage.autolocked).toBe(true);
    await storage.save({ entries: entries(1, 3, 1) });
    await storage.close();

    await expect(harness.open({ dataDir })).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition, message: LOCKED_MESSAGE });
    const { recovered } = await harness.open({ dataDir, unlockKey });
    expect(logOf(recovered)).toEqual(expectedLog(1, 3, 1));
  });

  it('refuses a wrong unlock key', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir, unlockKey: generateUnlockKey() });
    await storage.close();
    await expect(harness.open({ dataDir, unlockKey: generateUnlockKey() })).rejects.toMatchObject({
      code: ErrorCode.Unauthenticated,
      message: INVALID_UNLOCK_KEY_MESSAGE,
    });
  });

  it('never writes the unlock key, in text or as bytes, to any file', async () => {
    const dataDir = await harness.dataDir();
    const unlockKey = generateUnlockKey();
    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(1, 3, 1) });
    await storage.setUnlockKey(unlockKey);
    await storage.save({ entries: entries(4, 6, 1) });
    await storage.close();

    expect((await keyFile(dataDir)).keyEncryptionKey.source).toBe('unlock-key');
    expect(await filesContaining(dataDir, Buffer.from(unlockKey))).toEqual([]);
    expect(await filesContaining(dataDir, Buffer.from(unlockKey.slice('SWMKEY-1-'.length)))).toEqual([]);
    expect(await filesContaining(dataDir, parseUnlockKey(unlockKey))).toEqual([]);
  });

  it('enabling, rotating and disabling autolock each take effect at the next open', async () => {
    const dataDir = await harness.dataDir();
    const firstKey = generateUnlockKey();
    const secondKey = generateUnlockKey();

    const unlocked = await harness.open({ dataDir });
    await unlocked.storage.save({ entries: entries(1, 2, 1) });
    await unlocked.storage.setUnlockKey(firstKey);
    await unlocked.storage.close();
    await expect(harness.open({ dataDir })).rejects.toMatchObject({ code: ErrorCode.FailedPrecondition });

    const locked = await harness.open({ dataDir, unlockKey: firstKey });
    await locked.storage.setUnlockKey(secondKey);
    await locked.storage.close();
    await expect(harness.open({ dataDir, unlockKey: firstKey })).rejects.toMatchObject({ message: INVALID_UNLOCK_KEY_MESSAGE });

    const relocked = await harness.open({ dataDir, unlockKey: secondKey });
    expect(logOf(relocked.recovered)).toEqual(expectedLog(1, 2, 1));
    await relocked.storage.setUnlockKey(undefined);
    expect(relocked.storage.autolocked).toBe(false);
    await relocked.storage.close();

    const { recovered, storage } = await harness.open({ dataDir });
    expect(storage.autolocked).toBe(false);
    expect(logOf(recovered)).toEqual(expectedLog(1, 2, 1));
  });

  it('refuses a malformed new unlock key and stays as it was', async () => {
    const dataDir = await harness.dataDir();
    const { storage } = await harness.open({ dataDir });
    await expect(storage.setUnlockKey('SWMKEY-1-too-short')).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    expect(storage.autolocked).toBe(false);
    expect((await keyFile(dataDir)).keyEncryptionKey.source).toBe('stored');
  });

  it('enabling autolock starts a data-key rotation, since the old data key sat on disk unwrapped', async () => {
    const { storage } = await harness.open({ dataDir: await harness.dataDir() });
    expect(storage.dataKeyRotationPending).toBe(false);
    await storage.setUnlockKey(generateUnlockKey());
    expect(storage.dataKeyRotationPending).toBe(true);
  });
});

describe('unlock keys', () => {
  it('are SWMKEY-1- and the unpadded base64 of 32 random bytes', () => {
    const key = generateUnlockKey();
    expect(key).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(parseUnlockKey(key)).toHaveLength(32);
    expect(generateUnlockKey()).not.toBe(key);
  });

  it('ignore whitespace around them', () => {
    const key = generateUnlockKey();
    expect(parseUnlockKey(`  ${key}\n`).equals(parseUnlockKey(key))).toBe(true);
  });

  it.each([
    ['a missing prefix', 'c29tZSBrZXk', 'must start with SWMKEY-1-'],
    ['a join token', 'SWMTKN-1-abc', 'must start with SWMKEY-1-'],
    ['a short key', 'SWMKEY-1-c2hvcnQ', '43 characters'],
    ['padding', `SWMKEY-1-${Buffer.alloc(32, 7).toString('base64')}`, '43 characters'],
    ['characters outside base64', `SWMKEY-1-${'!'.repeat(43)}`, '43 characters'],
    ['a non-canonical last character', `SWMKEY-1-${Buffer.alloc(32, 7).toString('base64').slice(0, 42)}D`, '43 characters'],
  ])('are refused with a message saying what is wrong when they have %s', (_, text, problem) => {
    expect(() => parseUnlockKey(text)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument, message: expect.stringContaining(problem) }));
  });
});

describe('data-key rotation', () => {
  it('reads records sealed before and after it, and drops the old key once a snapshot covers everything it sealed', async () => {
    const dataDir = await harness.dataDir();
    const options = { dataDir, segmentBytes: 1024, logEntriesForSlowFollowers: 5 };
    const { storage } = await harness.open(options);
    for (let index = 1; index <= 20; index++) await storage.save({ entries: entries(index, index, 1) });
    await storage.writeSnapshot(snapshotAt(10, 1), [Buffer.from('state at 10, old key')]);
    await storage.compact(snapshotAt(10, 1));

    await storage.rotateDataKey();
    expect(storage.dataKeyRotationPending).toBe(true);
    expect((await keyFile(dataDir)).dataKeys.map((key) => key.id)).toEqual([1, 2]);
    for (let index = 21; index <= 30; index++) await storage.save({ entries: entries(index, index, 1) });
    await storage.close();

    const midway = await harness.open(options);
    expect(logOf(midway.recovered)).toEqual(expectedLog(11, 30, 1));
    expect((await readAll(await midway.storage.openSnapshot())).toString()).toBe('state at 10, old key');
    // A snapshot short of index 20 (the last written under key 1) does not finish the rotation.
    await midway.storage.writeSnapshot(snapshotAt(18, 1), [Buffer.from('state at 18')]);
    await midway.storage.compact(snapshotAt(18, 1));
    expect(midway.storage.dataKeyRotationPending).toBe(true);
    await midway.storage.writeSnapshot(snapshotAt(25, 1), [Buffer.from('state at 25, new key')]);
    await midway.storage.compact(snapshotAt(25, 1));
    expect(midway.storage.dataKeyRotationPending).toBe(false);
    expect(await keyFile(dataDir)).toMatchObject({ activeDataKey: 2, dataKeys: [{ id: 2 }] });
    await midway.storage.close();

    const { recovered, storage: finished } = await harness.open(options);
    expect(recovered.snapshot).toEqual(snapshotAt(25, 1));
    expect(logOf(recovered)).toEqual(expectedLog(26, 30, 1));
    expect((await readAll(await finished.openSnapshot())).toString()).toBe('state at 25, new key');
  });
});

describe('key file updates', () => {
  it('a half-written temporary key file left by a crash is ignored and removed; the committed one still opens', async () => {
    const dataDir = await harness.dataDir();
    const unlockKey = generateUnlockKey();
    const { storage } = await harness.open({ dataDir, unlockKey });
    await storage.save({ entries: entries(1, 2, 1) });
    await storage.close();
    const leftover = join(dataDir, 'raft', 'keys.json.9f8e7d6c5b4a.tmp');
    await writeFile(leftover, '{"version":1,"keyEncryptionKey":{"source":"unlock-key","sa');

    const { recovered, notes } = await harness.open({ dataDir, unlockKey });
    expect(logOf(recovered)).toEqual(expectedLog(1, 2, 1));
    expect(notes).toEqual([{ kind: 'temp-file-removed', file: leftover }]);
  });

  it('a crash between a data-key rotation and the segment roll after it leaves new records under the new key', async () => {
    const dataDir = await harness.dataDir();
    const walDir = join(dataDir, 'raft', 'wal');
    const backup = join(await harness.dataDir(), 'wal');
    const first = await harness.open({ dataDir });
    await first.storage.save({ entries: entries(1, 2, 1) });
    await first.storage.close();
    await cp(walDir, backup, { recursive: true });
    const rotating = await harness.open({ dataDir });
    await rotating.storage.rotateDataKey();
    await rotating.storage.close();
    // Put the WAL back as it was before the roll: the key file names key 2 active, the segment is under key 1.
    await rm(walDir, { recursive: true });
    await cp(backup, walDir, { recursive: true });

    const { storage } = await harness.open({ dataDir });
    await storage.save({ entries: entries(3, 4, 1) });
    await storage.close();
    expect(await namesIn(dataDir, 'wal')).toEqual(['0000000000000001-0000000000000001.wal', '0000000000000002-0000000000000003.wal']);
    const reopened = await harness.open({ dataDir });
    expect(logOf(reopened.recovered)).toEqual(expectedLog(1, 4, 1));
    expect(reopened.storage.dataKeyRotationPending).toBe(true);
  });

  it('a crash after the old files are released but before the old key is dropped drops it at the next open', async () => {
    const dataDir = await harness.dataDir();
    const keysPath = join(dataDir, 'raft', 'keys.json');
    const { storage } = await harness.open({ dataDir, logEntriesForSlowFollowers: 0 });
    await storage.save({ entries: entries(1, 5, 1) });
    await storage.rotateDataKey();
    await storage.save({ entries: entries(6, 8, 1) });
    const keysBeforeRelease = await readFile(keysPath);
    await storage.writeSnapshot(snapshotAt(8, 1), [Buffer.from('state at 8')]);
    await storage.compact(snapshotAt(8, 1));
    await storage.close();
    await writeFile(keysPath, keysBeforeRelease);
    expect((await keyFile(dataDir)).dataKeys).toHaveLength(2);

    const reopened = await harness.open({ dataDir });
    expect(reopened.storage.dataKeyRotationPending).toBe(false);
    expect((await keyFile(dataDir)).dataKeys).toEqual([expect.objectContaining({ id: 2 })]);
    expect(reopened.recovered.snapshot).toEqual(snapshotAt(8, 1));
  });
});
