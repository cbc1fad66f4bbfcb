/**
 * Benchmark of services/raft as it runs: real replica processes on loopback, mutual TLS, the WAL
 * fdatasynced before every acknowledgement. Prints a table; bench/raft/README.md says what each number
 * means. Not a test: nothing here asserts.
 *
 * `node dist/main.js [throughput] [failover] [snapshot] [disk]`: the named measurements only (all by default).
 */
import { closeAllClusters } from './cluster.js';
import { measureSyncLatency } from './disk.js';
import { measureFailover } from './failover.js';
import { Report } from './report.js';
import { measureSnapshotTransfer } from './snapshot-transfer.js';
import { measureThroughput, THROUGHPUT_WORKLOAD } from './throughput.js';

/** The raft tick for the second failover measurement: fast enough for the 3 s aim. */
const FAST_TICK_MS = 100;

const report = new Report();

const measurements: Record<string, () => Promise<void>> = {
  disk: async () => {
    const { p50Ms, p99Ms } = await measureSyncLatency();
    report.record('disk: 4 KiB append + fdatasync, p50', p50Ms, 'ms', 2);
    report.record('disk: 4 KiB append + fdatasync, p99', p99Ms, 'ms', 2);
  },
  throughput: () => measureThroughput(report),
  failover: async () => {
    await measureFailover(report, 1_000);
    await measureFailover(report, FAST_TICK_MS);
  },
  snapshot: () => measureSnapshotTransfer(report),
};

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(name in measurements));
if (unknown.length > 0) {
  process.stderr.write(`unknown measurement ${unknown.join(', ')}; choose from ${Object.keys(measurements).join(', ')}\n`);
  process.exit(2);
}

// Interrupted: the replicas and their directories go too (the replicas also stop when their IPC channel closes).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void closeAllClusters().finally(() => process.exit(130)));
}

process.stdout.write(`services/raft benchmark: 3 replicas on loopback, fsync on; ${THROUGHPUT_WORKLOAD}\n`);
for (const [name, measure] of Object.entries(measurements)) {
  if (requested.length > 0 && !requested.includes(name)) continue;
  process.stdout.write(`${name}:\n`);
  try {
    await measure();
  } catch (err) {
    report.fail(name, err);
  }
}
report.print();
process.exitCode = report.failed ? 1 : 0;
