import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '@shoal/errors';
import { Cluster, isReachableVoter } from './cluster.js';
import type { ReplicaProcess } from './replica-process.js';
import { format, type Report } from './report.js';
import { commitConfig, FAILED_WRITE_PAUSE_MS, SMALL_WRITE_BYTES, uniqueConfig } from './writes.js';

/** Leader kills per tick setting; each election timeout is random, so one would say little. */
const RUNS = 5;

/** Election timeout in ticks: the service's default (swarmkit's), randomized by raft to [10, 20). */
const ELECTION_TICKS = 10;

/** Acknowledged writes before the kill, so the kill lands in a steady write load. */
const WRITES_BEFORE_KILL = 20;

/** Bound on the wait for a new leader and a write through it; 20 election timeouts at the slowest setting. */
const FAILOVER_TIMEOUT_MS = 120_000;

/** Bound on the restarted replica's return, so the next run starts from three voters. */
const REJOIN_TIMEOUT_MS = 120_000;

/** Bound on one write attempt. A write waits on a replica that knows of no leader yet, which is part of the failover. */
const ATTEMPT_DEADLINE_MS = 60_000;

/** Times from the SIGKILL of the leader, in ms. */
interface FailoverSample {
  /** Until a survivor reports a new leader (ListMembers, polled). */
  readonly electedMs: number;
  /** Until the first write that started after the kill is acknowledged through a survivor. */
  readonly firstWriteMs: number;
}

/**
 * Failover at a raft tick of `tickMs` (election timeout {@link ELECTION_TICKS} ticks): {@link RUNS}
 * times, under a light write load (one commit in flight), the leader is killed with SIGKILL, the time
 * to a new leader and to the first acknowledged write is taken, and the killed replica is restarted
 * on its data directory before the next run.
 */
export async function measureFailover(report: Report, tickMs: number): Promise<void> {
  const cluster = await Cluster.start(`failover-${tickMs}ms`, 3, { tickMs });
  const samples: FailoverSample[] = [];
  try {
    for (let run = 0; run < RUNS; run++) samples.push(await killLeaderOnce(cluster));
  } finally {
    await cluster.close();
  }
  const setting = `tick ${tickMs} ms, election ${ELECTION_TICKS} ticks`;
  const summary = (pick: (sample: FailoverSample) => number) => {
    const ms = samples.map(pick).sort((a, b) => a - b);
    return { median: ms[Math.floor(ms.length / 2)]!, list: ms.map((value) => format(value / 1000, 2)).join(', ') };
  };
  const write = summary((sample) => sample.firstWriteMs);
  const elected = summary((sample) => sample.electedMs);
  report.record(`failover (${setting}): kill -9 of the leader → first write acknowledged, median of ${RUNS}`, write.median / 1000, 's', 2);
  report.recordText(`failover (${setting}): each run, first write`, write.list, 's');
  report.recordText(`failover (${setting}): each run, new leader reported`, elected.list, 's');
}

async function killLeaderOnce(cluster: Cluster): Promise<FailoverSample> {
  const { replica: leader, raftId: oldLeader } = await cluster.leader();
  const survivors = cluster.replicas.filter((replica) => replica !== leader);
  const load = new LightLoad(cluster, [leader]);
  const unlessLoadFails = <T>(waiting: Promise<T>) => Promise.race([waiting, load.failure]);
  try {
    await unlessLoadFails(
      cluster.waitFor(`${WRITES_BEFORE_KILL} writes before the kill`, FAILOVER_TIMEOUT_MS, async () =>
        load.acknowledged >= WRITES_BEFORE_KILL ? true : undefined,
      ),
    );
    const killedAt = load.switchTo(survivors);
    await leader.kill();
    const [electedAt, firstWriteAt] = await unlessLoadFails(
      Promise.all([
        cluster.waitFor('a new leader', FAILOVER_TIMEOUT_MS, async () => {
          const { raftId } = await cluster.leader(survivors[0]);
          return raftId !== oldLeader ? performance.now() : undefined;
        }),
        cluster.waitFor('the first write after the kill', FAILOVER_TIMEOUT_MS, async () => load.firstAcknowledgedAfterSwitch),
      ]),
    );
    return { electedMs: electedAt - killedAt, firstWriteMs: firstWriteAt - killedAt };
  } finally {
    await load.stop();
    cluster.forgetClient(leader);
    await leader.start();
    await cluster.waitFor('the killed replica to vote again', REJOIN_TIMEOUT_MS, async () => {
      const { members } = await cluster.listMembers(leader);
      return members.every(isReachableVoter) ? true : undefined;
    });
  }
}

/**
 * One small write at a time through the given replicas in turn, retrying what can be retried (a
 * write to a replica whose leader just died fails with UNAVAILABLE), until stopped or a write fails
 * for another reason.
 */
class LightLoad {
  acknowledged = 0;
  /** When the first write that started after {@link switchTo} was acknowledged (`performance.now()`). */
  firstAcknowledgedAfterSwitch: number | undefined;
  /** Rejects with the error of a write that cannot be retried; never resolves. */
  readonly failure: Promise<never>;
  #through: readonly ReplicaProcess[];
  #switchedAt = Number.POSITIVE_INFINITY;
  #stopping = false;
  readonly #writing: Promise<void>;

  constructor(
    private readonly cluster: Cluster,
    through: readonly ReplicaProcess[],
  ) {
    this.#through = through;
    this.#writing = this.write();
    this.failure = this.#writing.then(() => new Promise<never>(() => {}));
    // Whoever races `failure` reports it; a failure nobody waits on must not end the process.
    this.failure.catch(() => {});
  }

  /** From now on writes go through `through`; returns the time of the switch. */
  switchTo(through: readonly ReplicaProcess[]): number {
    this.#through = through;
    this.#switchedAt = performance.now();
    return this.#switchedAt;
  }

  /** Stops after the write in flight; a failure was already reported through {@link failure}. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#writing.catch(() => {});
  }

  private async write(): Promise<void> {
    for (let attempt = 0; !this.#stopping; attempt++) {
      const through = this.#through[attempt % this.#through.length]!;
      const started = performance.now();
      try {
        await commitConfig(this.cluster.client(through), uniqueConfig(SMALL_WRITE_BYTES), ATTEMPT_DEADLINE_MS);
        this.acknowledged++;
        if (started >= this.#switchedAt) this.firstAcknowledgedAfterSwitch ??= performance.now();
      } catch (err) {
        if (!isRetryable(err)) throw err;
        await sleep(FAILED_WRITE_PAUSE_MS);
      }
    }
  }
}
