import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from './cluster.js';
import { measureCpu } from './cpu.js';
import type { ReplicaProcess } from './replica-process.js';
import { format, type Report } from './report.js';
import { percentile, runWrites, SMALL_WRITE_BYTES } from './writes.js';

/** In-flight commits at each level, as the issue asks (etcd's benchmark uses 1 and 1,000 clients). */
const CONCURRENCY_LEVELS = [1, 16, 256] as const;

/** Each level writes into a steady state before its measured window: at 256 clients one round of commits takes seconds here. */
const WARMUP_MS = 3_000;
const MEASURE_MS = 10_000;

/**
 * Committed small writes per second and commit latency at each concurrency level, through the
 * leader, then one client through a follower (which forwards to the leader): a 3-replica cluster at
 * the service's default settings.
 */
export async function measureThroughput(report: Report): Promise<void> {
  const cluster = await Cluster.start('throughput', 3, { tickMs: 1_000 });
  try {
    const { replica: leader } = await cluster.leader();
    const roles = { leader, followers: cluster.replicas.filter((replica) => replica !== leader) };
    for (const concurrency of CONCURRENCY_LEVELS) await measureLevel(report, cluster, roles, leader, concurrency, 'the leader');
    await measureLevel(report, cluster, roles, roles.followers[0]!, 1, 'a follower');
  } finally {
    await cluster.close();
  }
}

interface Roles {
  readonly leader: ReplicaProcess;
  readonly followers: readonly ReplicaProcess[];
}

async function measureLevel(report: Report, cluster: Cluster, roles: Roles, through: ReplicaProcess, concurrency: number, throughName: string): Promise<void> {
  const pids = [roles.leader, ...roles.followers].map((replica) => replica.pid!).concat(process.pid);
  const cpuInWindow = async () => {
    await sleep(WARMUP_MS);
    const shares = measureCpu(pids);
    await sleep(MEASURE_MS);
    return shares();
  };
  const [run, shares] = await Promise.all([runWrites(cluster.client(through), concurrency, WARMUP_MS, MEASURE_MS), cpuInWindow()]);
  cluster.assertNoCrash();

  const level = `${concurrency} client${concurrency === 1 ? '' : 's'} via ${throughName}`;
  report.record(`${level}: committed writes/s`, run.committed / run.seconds, 'writes/s');
  report.record(`${level}: commit latency p50`, percentile(run.latenciesMs, 0.5), 'ms', 2);
  report.record(`${level}: commit latency p99`, percentile(run.latenciesMs, 0.99), 'ms', 2);
  report.recordText(`${level}: CPU, leader / follower / follower / bench`, shares.map((share) => format(share)).join(' / '), '% of one core');
  if (run.failures.size > 0) {
    const counts = [...run.failures].map(([code, count]) => `${count} ${code}`).join(', ');
    report.recordText(`${level}: failed commits`, counts, `first: ${run.firstFailure ?? ''}`);
  }
}

/** The workload of each level, for the bench's heading. */
export const THROUGHPUT_WORKLOAD = `one Config create per transaction, ${SMALL_WRITE_BYTES} bytes of data; ${WARMUP_MS / 1000} s warm-up, then ${MEASURE_MS / 1000} s measured, per level`;
