import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Entry, EntryType, HardState, SnapshotMetadata } from '@shoal/proto';
import { RaftStorage, type OpenedRaftStorage, type RaftStorageOptions, type RecoveredState, type SnapshotReader } from '../src/index.js';

/**
 * Per-test scratch space: data directories and opened storages, all closed and removed after each
 * test whatever it did.
 */
export function useStorageHarness(): {
  dataDir(): Promise<string>;
  open(options: RaftStorageOptions): Promise<OpenedRaftStorage>;
} {
  const dirs: string[] = [];
  const opened: RaftStorage[] = [];
  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close();
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return {
    async dataDir() {
      const dir = await mkdtemp(join(tmpdir(), 'shoal-raft-storage-'));
      dirs.push(dir);
      return dir;
    },
    async open(options) {
      const result = await RaftStorage.open(options);
      opened.push(result.storage);
      return result;
    },
  };
}

/** The payload every test entry carries, so a reader can tell a right entry from a stale or garbled one. */
export function entryData(index: number, term: number): Buffer {
  return Buffer.from(`entry ${index} of term ${term}`);
}

/** Entries `from`..`to` (inclusive) of `term`. */
export function entries(from: number, to: number, term: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, offset) =>
    Entry.fromPartial({ type: EntryType.NORMAL, index: BigInt(from + offset), term: BigInt(term), data: entryData(from + offset, term) }),
  );
}

export function hardState(term: number, commit: number, vote = 0): HardState {
  return HardState.fromPartial({ term: BigInt(term), commit: BigInt(commit), vote: BigInt(vote) });
}

export function snapshotAt(index: number, term: number, voters: number[] = [1]): SnapshotMetadata {
  return SnapshotMetadata.fromPartial({ index: BigInt(index), term: BigInt(term), confState: { voters: voters.map(BigInt), learners: [] } });
}

/** The recovered log as `[index, term, data]` triples, easy to compare. */
export function logOf(recovered: RecoveredState): Array<[number, number, string]> {
  return recovered.entries.map((entry) => [Number(entry.index), Number(entry.term), entry.data.toString()]);
}

/** The expected `logOf` for entries `from`..`to` of `term`. */
export function expectedLog(from: number, to: number, term: number): Array<[number, number, string]> {
  return entries(from, to, term).map((entry) => [Number(entry.index), Number(entry.term), entry.data.toString()]);
}

/** Reads a whole snapshot (small ones only). */
export async function readAll(reader: SnapshotReader): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of reader) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Every file under `dir`, recursively, with its raw bytes. */
export async function filesUnder(dir: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  const found: Array<{ path: string; bytes: Buffer }> = [];
  for (const item of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!item.isFile()) continue;
    const path = join(item.parentPath, item.name);
    found.push({ path, bytes: await readFile(path) });
  }
  return found;
}

/** The names in one of the storage's directories (`wal` or `snap`), sorted. */
export async function namesIn(dataDir: string, sub: 'wal' | 'snap'): Promise<string[]> {
  return (await readdir(join(dataDir, 'raft', sub))).sort();
}
