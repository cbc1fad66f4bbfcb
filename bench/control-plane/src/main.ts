/**
 * Benchmark of the whole control plane (issue 5): a real nats-server, raft-store replica,
 * orchestrator, allocator and one or two schedulers, each its own process, with fake agents in the
 * bench reporting every assigned task RUNNING. It times 10,000 replicas on 1,000 nodes from the
 * create commit until the store shows them all RUNNING. Prints a table; bench/control-plane/README.md
 * says what each number means. Not a test: nothing here asserts.
 *
 * `node dist/main.js [one-service] [hundred-services] [--schedulers=1,2] [--cpu-prof=DIR --cpu-prof-service=NAME[,NAME…]]`:
 * the named workloads only (both by default), with these scheduler counts; with `--cpu-prof`, the
 * named service processes (raft, orchestrator, allocator, scheduler: the first one) of every run
 * write a V8 CPU profile into DIR when they stop.
 */
import { resolve } from 'node:path';
import { createLogger } from '@shoal/runtime';
import { SERVICE_NAMES, stopAllControlPlanes, type ServiceName } from './control-plane.js';
import { format, Report } from './report.js';
import { measureRun, type RunSpec } from './run.js';
import { NODE_COUNT, type Workload } from './seed.js';

/** Issue 5's workload, 10,000 replicas, as one service and spread over a hundred. */
const WORKLOADS: Record<string, Workload> = {
  'one-service': { services: 1, replicas: 10_000 },
  'hundred-services': { services: 100, replicas: 100 },
};

function usage(problem: string): never {
  process.stderr.write(
    `${problem}\nusage: node dist/main.js [${Object.keys(WORKLOADS).join('] [')}] [--schedulers=1,2] [--cpu-prof=DIR --cpu-prof-service=NAME[,NAME…]]\n`,
  );
  process.exit(2);
}

function parseArguments(args: readonly string[]): RunSpec[] {
  const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const named = args.filter((arg) => !arg.startsWith('--'));
  const unknown = [...named.filter((name) => !(name in WORKLOADS)), ...args.filter((arg) => arg.startsWith('--') && !/^--(schedulers|cpu-prof|cpu-prof-service)=/.test(arg))];
  if (unknown.length > 0) usage(`unknown argument ${unknown.join(', ')}`);
  const schedulerCounts = (option('schedulers') ?? '1,2').split(',').map(Number);
  if (schedulerCounts.some((count) => !Number.isInteger(count) || count < 1)) usage('--schedulers takes positive whole numbers, e.g. 1,2');
  const profileDir = option('cpu-prof');
  const profiled = option('cpu-prof-service')?.split(',');
  if ((profileDir === undefined) !== (profiled === undefined)) usage('--cpu-prof and --cpu-prof-service go together');
  if (profiled?.some((name) => !(SERVICE_NAMES as readonly string[]).includes(name))) usage(`--cpu-prof-service takes names from ${SERVICE_NAMES.join(', ')}`);
  const cpuProfile = profileDir === undefined ? undefined : { services: profiled as ServiceName[], dir: resolve(profileDir) };
  const workloads = named.length > 0 ? named : Object.keys(WORKLOADS);
  return workloads.flatMap((name) => {
    const workload = WORKLOADS[name]!;
    return schedulerCounts.map((schedulers) => ({
      title: `${workload.services} × ${format(workload.replicas)}, ${schedulers} scheduler${schedulers === 1 ? '' : 's'}`,
      workload,
      schedulers,
      cpuProfile,
    }));
  });
}

const runs = parseArguments(process.argv.slice(2));

// Interrupted: the run stops, and its processes and temporary directory go, before the table is
// printed. A second signal stops the processes at once and exits.
const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupt.abort();
    process.once(signal, () => void stopAllControlPlanes().finally(() => process.exit(130)));
  });
}

const log = createLogger({ service: 'bench-control-plane', level: 'warn' });
const report = new Report();
process.stdout.write(
  `control-plane benchmark: nats-server, raft-store, orchestrator, allocator and scheduler processes on loopback, ${format(NODE_COUNT)} nodes, ` +
    `fake agents in the bench; a fresh control plane per run\n`,
);
for (const run of runs) {
  if (interrupt.signal.aborted) break;
  try {
    await measureRun(report, run, log, interrupt.signal);
  } catch (err) {
    report.fail(run.title, err);
  }
}
report.print();
const profiles = runs[0]?.cpuProfile;
if (profiles !== undefined) process.stdout.write(`\nCPU profiles of ${profiles.services.join(', ')} in ${profiles.dir}\n`);
process.exitCode = interrupt.signal.aborted ? 130 : report.failed ? 1 : 0;
