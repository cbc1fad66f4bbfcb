import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { ErrorCode, hasCode } from '@shoal/errors';
import type { Network } from '@shoal/proto';
import { generateUnlockKey, INVALID_UNLOCK_KEY_MESSAGE, LOCKED_MESSAGE, parseUnlockKey } from '@shoal/raft-storage';
import { autolockedCluster, filesContaining, filesUnder } from './support/encryption.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/cluster.js';
import { network } from './support/objects.js';
import {
  CLEAN_EXIT,
  ProcessCluster,
  WAL_RECORD_HEADER_BYTES,
  walRecordOffsets,
  WriteLoad,
  writeNetworks,
  writesNotReadBack,
  type ReplicaProcess,
} from './support/processes.js';

const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);
const byId = (a: Network, b: Network) => a.id.localeCompare(b.id);

/** What the replica logs for each repair its storage made at open. */
const REPAIR_LOGGED = 'raft storage repaired what a crash left behind';

// Each test stops and starts processes: seconds each on a loaded machine, more than vitest's default allows.
describe('three replicas as real processes, stopped, crashed, corrupted and locked', { timeout: 60_000 }, () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    cluster = await ProcessCluster.start(3);
  }, 90_000);
  afterAll(() => cluster?.close());

  /** Stops a follower with SIGTERM, expecting a clean exit; the cluster keeps its quorum. */
  const stopAFollower = async (): Promise<ReplicaProcess> => {
    const [follower] = await cluster.followers();
    expect(await follower!.stop()).toEqual(CLEAN_EXIT);
    return follower!;
  };

  it('restarts all three from their data directories after SIGTERM (each exiting 0) with every object at the same version, and reads linearizably again', async () => {
    await writeNetworks(cluster.replicas, 'kept', 9);
    // An update and a delete too, so the state is more than the creates that made it.
    const client = cluster.replicas[0]!.client();
    const updated = await client.get('network', 'kept-0');
    await client.commit({ changes: [{ action: 'update', kind: 'network', object: { ...updated, spec: network('kept-0', 'renamed').spec } }] });
    await client.commit({ changes: [{ action: 'delete', kind: 'network', id: 'kept-1' }] });
    const before = (await client.list('network')).objects.sort(byId);
    expect(before.find((object) => object.id === 'kept-0')?.spec?.annotations?.name).toBe('renamed');

    expect(await Promise.all(cluster.replicas.map((replica) => replica.stop()))).toEqual([CLEAN_EXIT, CLEAN_EXIT, CLEAN_EXIT]);
    await Promise.all(cluster.replicas.map((replica) => replica.start()));

    for (const replica of cluster.replicas) {
      // Linearizable reads wait for a leader; until one is elected they fail with UNAVAILABLE.
      const { objects } = await eventually(() => replica.client().list('network'), 20_000);
      expect(objects.sort(byId)).toEqual(before);
    }
  });

  it('keeps every acknowledged write at its version when all three are killed with SIGKILL at once under write load', async () => {
    const load = new WriteLoad('crash', () => cluster.replicas);
    await load.reach(30);
    await Promise.all(cluster.replicas.map((replica) => replica.kill()));
    await load.stop();

    await Promise.all(cluster.replicas.map((replica) => replica.start()));
    for (const replica of cluster.replicas) {
      expect(await eventually(() => writesNotReadBack(replica, load.acknowledged), 20_000)).toEqual([]);
    }
  });

  /**
   * What a crash can leave at the end of the newest segment: only the record being appended is torn, and
   * nothing has acknowledged it yet. (Cutting a durable record instead would lose entries the leader
   * counts on, which no crash does when writes are fsynced.)
   */
  const tornTails = [
    {
      // Blocks the file system allocated for the append but the crash left unwritten read back as zeros.
      tear: 'zeros after its last record',
      written: 'after-zeros',
      append: () => Buffer.alloc(700),
      problem: 'a record header fails its checksum',
    },
    {
      tear: 'a record cut short after its last one',
      written: 'after-cut',
      // A copy of the last record, half of it written: its header checks out and promises a longer body.
      append: (segment: Buffer) => {
        const last = walRecordOffsets(segment).at(-1)!;
        return segment.subarray(last, last + Math.floor((segment.length - last) / 2));
      },
      problem: expect.stringMatching(/^a \d+-byte record body is cut short by the end of the file$/),
    },
  ];
  it.each(tornTails)(
    'restarts a replica whose newest WAL segment has $tear, logs the cut naming the file, rejoins and catches up',
    async ({ append, written, problem }) => {
      const replica = await stopAFollower();
      const segment = replica.newestWalSegment();
      const intact = readFileSync(segment);
      const torn = append(intact);
      appendFileSync(segment, torn);
      const writtenWhileDown = await writeNetworks(cluster.running, written, 10);

      await replica.start();
      const { note } = await replica.loggedEntry((entry) => entry.msg === REPAIR_LOGGED);
      expect(note).toEqual({
        kind: 'torn-tail-truncated',
        file: segment,
        offset: intact.length,
        discardedBytes: torn.length,
        problem,
      });
      expect(await eventually(() => writesNotReadBack(replica, writtenWhileDown), 20_000)).toEqual([]);
    },
  );

  it('refuses to start a replica whose WAL has a byte flipped inside a record before the last, naming the file and offset, and leaves the file as it was', async () => {
    const replica = await stopAFollower();
    const segment = replica.newestWalSegment();
    const intact = readFileSync(segment);
    const [, damaged, next] = walRecordOffsets(intact);
    expect(next).toBeDefined();
    const corrupt = Buffer.from(intact);
    // In the sealed body, past the record's header: only authentication can notice.
    const flipAt = Math.floor((damaged! + WAL_RECORD_HEADER_BYTES + next!) / 2);
    corrupt[flipAt] = corrupt[flipAt]! ^ 0xff;
    writeFileSync(segment, corrupt);

    await expect(replica.start()).rejects.toThrow('before it was ready');
    expect(replica.lastExit?.code).not.toBe(0);
    expect(replica.lastExit?.code).not.toBeNull();
    expect(replica.runLog().join('\n')).toContain(`raft storage is corrupt: ${segment} at byte ${damaged}: a record fails authentication`);
    expect(replica.runLogEntries().some((entry) => entry.msg === 'raft replica started')).toBe(false);
    expect(readFileSync(segment).equals(corrupt)).toBe(true);

    // Restoring the file is the operator's fix; the replica then rejoins as the member it was.
    writeFileSync(segment, intact);
    const writtenSince = await writeNetworks(cluster.running, 'after-corruption', 5);
    await replica.start();
    expect(await eventually(() => writesNotReadBack(replica, writtenSince), 20_000)).toEqual([]);
  });

  it('exits non-zero, instead of answering every heartbeat with the same error, when its durable log lost entries it had acknowledged', async () => {
    await writeNetworks(cluster.running, 'before-loss', 6);
    const replica = await stopAFollower();
    const segment = replica.newestWalSegment();
    const intact = readFileSync(segment);
    const offsets = walRecordOffsets(intact);
    // Half the records gone: entries the leader counts as stored here vanish, which no crash can do
    // when writes are fsynced (a disk fault, or a hand-edited file). Raft cannot repair that safely.
    writeFileSync(segment, intact.subarray(0, offsets[Math.floor(offsets.length / 2)]));

    await replica.start().catch(() => undefined);
    await expect.poll(() => replica.lastExit, { timeout: 30_000 }).toBeDefined();
    expect(replica.lastExit!.code).not.toBe(0);
    expect(replica.runLog().join('\n')).toMatch(/commit index \d+ is past the last raft log entry \d+/);

    // Restoring the file is the operator's fix; the replica then rejoins as the member it was.
    writeFileSync(segment, intact);
    const writtenSince = await writeNetworks(cluster.running, 'after-loss', 3);
    await replica.start();
    expect(await eventually(() => writesNotReadBack(replica, writtenSince), 20_000)).toEqual([]);
  });

  describe('a replica restarted without its key after the cluster turned autolock on', () => {
    const unlockKey = generateUnlockKey();
    let locked: ReplicaProcess;
    let writtenWhileLocked: Map<string, bigint>;
    beforeAll(async () => {
      await cluster.replicas[0]!.client().commit({ changes: [{ action: 'create', kind: 'cluster', object: autolockedCluster(unlockKey) }] });
      // Each replica re-wraps its keys once it applies the cluster object.
      for (const replica of cluster.replicas) {
        await replica.loggedEntry((entry) => entry.msg.includes('key-encryption key') && entry.autolock === true);
      }
      locked = await stopAFollower();
      await locked.start();
      writtenWhileLocked = await writeNetworks(cluster.replicas.filter((replica) => replica !== locked), 'while-locked', 5);
    }, 60_000);

    it("answers the Store API with FAILED_PRECONDITION and Docker's locked message", async () => {
      const client = locked.client();
      for (const call of [
        () => client.get('network', 'kept-2', { consistency: 'stale' }),
        () => client.list('network'),
        () => client.commit({ changes: [{ action: 'create', kind: 'network', object: network('through-locked', 'through-locked') }] }),
      ]) {
        const refused = call();
        await expect(refused).rejects.toSatisfy(withCode(ErrorCode.FailedPrecondition));
        await expect(refused).rejects.toThrow(LOCKED_MESSAGE);
      }
    });

    it("refuses a wrong unlock key with Docker's invalid key message and stays locked", async () => {
      const refused = locked.unlock(generateUnlockKey());
      await expect(refused).rejects.toSatisfy(withCode(ErrorCode.Unauthenticated));
      await expect(refused).rejects.toThrow(INVALID_UNLOCK_KEY_MESSAGE);
      await expect(locked.client().get('network', 'kept-2', { consistency: 'stale' })).rejects.toThrow(LOCKED_MESSAGE);
    });

    it('unlocks with the right key, then serves and catches up with what was written while it was locked', async () => {
      await locked.unlock(unlockKey);
      expect(await eventually(() => writesNotReadBack(locked, writtenWhileLocked), 20_000)).toEqual([]);
    });

    it('never writes the unlock key to any file under a data directory or to a log file, as text or as key bytes', () => {
      const files = cluster.replicas.flatMap((replica) => [...filesUnder(replica.dataDir), replica.logFile]);
      expect(readFileSync(locked.logFile, 'utf8')).toContain('raft data unlocked');
      expect(filesContaining(files, Buffer.from(unlockKey))).toEqual([]);
      expect(filesContaining(files, parseUnlockKey(unlockKey))).toEqual([]);
    });
  });
});
