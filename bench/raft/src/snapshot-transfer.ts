import { performance } from 'node:perf_hooks';
import type { StoreApiClient } from '@shoal/store-client';
import { Cluster, isReachableVoter, valueOnceResolved } from './cluster.js';
import type { LoggedLine, ReplicaProcess } from './replica-process.js';
import type { Report } from './report.js';
import { commitConfig, SMALL_WRITE_BYTES, uniqueConfig } from './writes.js';

const MIB = 2 ** 20;

/** The store's size before the new member joins: the 200 MB (as MiB). */
const STORE_BYTES = 200 * MIB;

/** Data per large write: 1 MiB, under the store's 1.5 MiB transaction limit (swarmkit's MaxTransactionBytes). */
const LARGE_WRITE_BYTES = MIB;

/** Large writes in flight while the store is filled. */
const FILL_CONCURRENCY = 4;

/** `SHOAL_RAFT_SNAPSHOT_INTERVAL` for this cluster: the first snapshot comes after this many entries. */
const SNAPSHOT_INTERVAL = 1_000;

/**
 * Entries services/raft keeps in memory behind a snapshot (swarmkit's LogEntriesForSlowFollowers): a
 * member missing only those gets the log, not the snapshot.
 */
const ENTRIES_KEPT_BEHIND_SNAPSHOT = 500n;

/** Small writes in flight while the log is pushed past the snapshot interval. */
const PUSH_CONCURRENCY = 16;

/** Bound on every wait of this measurement: the fill, the snapshot, the new member's catch-up. */
const STEP_TIMEOUT_MS = 600_000;

/** Bound on the wait for log lines that must already have been written once the new member has caught up. */
const LOGGED_ALREADY_TIMEOUT_MS = 10_000;

const isMessage = (message: string) => (fields: Record<string, unknown>) => fields.msg === message;
const seconds = (fromMs: number, toMs: number) => (toMs - fromMs) / 1000;

/**
 * The time a new member takes to catch up from a snapshot of a 200 MiB store: three replicas at the
 * default tick are filled with 1 MiB Configs, pushed past a snapshot with small writes until the log
 * no longer holds the large writes, and then a fourth replica joins. Its clock starts when its process
 * is spawned.
 */
export async function measureSnapshotTransfer(report: Report): Promise<void> {
  const cluster = await Cluster.start('snapshot', 3, { tickMs: 1_000, snapshotInterval: SNAPSHOT_INTERVAL });
  try {
    const { replica: leader } = await cluster.leader();
    const client = cluster.client(leader);
    const fill = await fillStore(client);
    const fillSeconds = seconds(fill.startedAt, fill.endedAt);
    report.record(`fill: ${fill.writes} writes of ${LARGE_WRITE_BYTES / MIB} MiB through the leader, ${FILL_CONCURRENCY} in flight`, STORE_BYTES / MIB / fillSeconds, 'MiB/s', 1);
    await pushLogPastSnapshot(cluster, leader, client, fill.lastVersion);
    const lastConfig = uniqueConfig(SMALL_WRITE_BYTES);
    await commitConfig(client, lastConfig);

    const times = await timeNewMember(cluster, leader, lastConfig.id);
    const streamedMiB = Number(times.snapshotSent.fields.bytes) / MIB;
    const streamSeconds = seconds(times.joined.readAt, times.snapshotSent.readAt);
    const sinceSpawn = (at: number) => seconds(times.spawnedAt, at);
    report.record('snapshot streamed to the new member (size the leader logged)', streamedMiB, 'MiB', 1);
    report.record('new member: process spawned → joined as a learner (it logged)', sinceSpawn(times.joined.readAt), 's', 2);
    report.record('new member: joined → leader logged the snapshot sent', streamSeconds, 's', 2);
    report.record('snapshot stream rate (joined → sent)', streamedMiB / streamSeconds, 'MiB/s', 1);
    report.record('new member: process spawned → snapshot received (it logged)', sinceSpawn(times.snapshotReceived.readAt), 's', 2);
    report.record('new member: process spawned → ready', sinceSpawn(times.readyAt), 's', 2);
    report.record('new member: process spawned → linearizable read of the last write succeeds', sinceSpawn(times.readLastWriteAt), 's', 2);
    report.record('new member: process spawned → voter in ListMembers', sinceSpawn(times.voterAt), 's', 2);
  } finally {
    await cluster.close();
  }
}

/** Writes {@link STORE_BYTES} in {@link LARGE_WRITE_BYTES} Configs, {@link FILL_CONCURRENCY} at a time. */
async function fillStore(client: StoreApiClient): Promise<{ writes: number; lastVersion: bigint; startedAt: number; endedAt: number }> {
  const writes = STORE_BYTES / LARGE_WRITE_BYTES;
  const startedAt = performance.now();
  let lastVersion = 0n;
  let issued = 0;
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      while (issued++ < writes) {
        const version = await commitConfig(client, uniqueConfig(LARGE_WRITE_BYTES), STEP_TIMEOUT_MS);
        if (version > lastVersion) lastVersion = version;
      }
    }),
  );
  return { writes, lastVersion, startedAt, endedAt: performance.now() };
}

/**
 * Commits small writes until the leader has taken a snapshot whose compaction drops the entries up to
 * `lastLargeVersion` from the log it keeps: only then must a new member be sent the snapshot.
 */
async function pushLogPastSnapshot(cluster: Cluster, leader: ReplicaProcess, client: StoreApiClient, lastLargeVersion: bigint): Promise<void> {
  const compactedPast = lastLargeVersion + ENTRIES_KEPT_BEHIND_SNAPSHOT;
  const snapshotTaken = leader.nextLogLine((fields) => fields.msg === 'raft snapshot taken' && BigInt(String(fields.index)) > compactedPast);
  let version = lastLargeVersion;
  await Promise.all(
    Array.from({ length: PUSH_CONCURRENCY }, async () => {
      while (version <= compactedPast || version < SNAPSHOT_INTERVAL) {
        const committed = await commitConfig(client, uniqueConfig(SMALL_WRITE_BYTES));
        if (committed > version) version = committed;
      }
    }),
  );
  await cluster.waitFor('the leader to take a snapshot past the large writes', STEP_TIMEOUT_MS, valueOnceResolved(snapshotTaken));
}

/** When each step of a new member's catch-up happened (`performance.now()`), with the log lines that mark some. */
interface NewMemberTimes {
  readonly spawnedAt: number;
  readonly joined: LoggedLine;
  readonly snapshotSent: LoggedLine;
  readonly snapshotReceived: LoggedLine;
  readonly readyAt: number;
  readonly readLastWriteAt: number;
  readonly voterAt: number;
}

/** Starts a new replica that joins through the first one and times its catch-up until it reads `lastConfigId` and votes. */
async function timeNewMember(cluster: Cluster, leader: ReplicaProcess, lastConfigId: string): Promise<NewMemberTimes> {
  const newcomer = await cluster.addReplica();
  const joined = newcomer.nextLogLine(isMessage('joined the raft cluster'));
  const received = newcomer.nextLogLine(isMessage('snapshot received'));
  const sent = leader.nextLogLine(isMessage('snapshot sent'));
  const spawnedAt = performance.now();
  await newcomer.start();
  const readyAt = performance.now();
  const readLastWriteAt = await cluster.waitFor('the new member to read the last write', STEP_TIMEOUT_MS, async () => {
    await cluster.client(newcomer).get('config', lastConfigId);
    return performance.now();
  });
  const voterAt = await cluster.waitFor('the new member to become a voter', STEP_TIMEOUT_MS, async () => {
    const { members } = await cluster.listMembers(leader);
    const member = members.find((candidate) => candidate.nodeId === newcomer.nodeId);
    return member !== undefined && isReachableVoter(member) ? performance.now() : undefined;
  });
  // Written before the member could read the last write; one still missing means the member caught up from the log alone.
  const loggedAlready = (what: string, line: Promise<LoggedLine>) =>
    cluster.waitFor(`${what} (none: the member caught up without a snapshot)`, LOGGED_ALREADY_TIMEOUT_MS, valueOnceResolved(line));
  const [joinedLine, snapshotSent, snapshotReceived] = await Promise.all([
    loggedAlready('the new member to log that it joined', joined),
    loggedAlready('the leader to log the snapshot it sent', sent),
    loggedAlready('the new member to log the snapshot it received', received),
  ]);
  return { spawnedAt, joined: joinedLine, snapshotSent, snapshotReceived, readyAt, readLastWriteAt, voterAt };
}
