/**
 * Benchmark of the real dispatcher at issue 6's scale: 1,000 simulated nodes (real agents with a fake
 * executor, many per process, each joined with the worker token over its own mTLS session) and 10,000
 * tasks, with raft, orchestrator, allocator, scheduler, dispatcher and api as processes. Times create
 * → all RUNNING, and measures every process's CPU and memory while the swarm idles with its nodes
 * connected. Prints tables; bench/nodes/README.md says what each number means. Not a test: nothing
 * here asserts.
 *
 * `node dist/main.js [--nodes=1000] [--agent-processes=4] [--services=1] [--replicas=10000] [--idle-seconds=30]
 * [--cpu-prof=DIR --cpu-prof-service=NAME[,NAME…]]`: with `--cpu-prof`, the named manager services write a
 * V8 CPU profile into DIR when they stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MANAGER_SERVICES, type ManagerService } from './manager-host.js';
import { cpuPressure } from './proc.js';
import { RunRecord, runBench, type Workload } from './run.js';
import { TASK_MILESTONES } from './swarm-watch.js';
import { format, markdownTable, warningNotes } from './table.js';

type Counts = Omit<Workload, 'cpuProfiles'>;

/** The report's timeline shows one sample in this many (one every 5 s). */
const TIMELINE_ROWS_EVERY = 5;

const DEFAULT_COUNTS: Counts = { nodes: 1_000, agentProcesses: 4, services: 1, replicas: 10_000, idleSeconds: 30 };
const COUNT_OPTIONS: Record<string, keyof Counts> = {
  nodes: 'nodes',
  'agent-processes': 'agentProcesses',
  services: 'services',
  replicas: 'replicas',
  'idle-seconds': 'idleSeconds',
};
const USAGE = `node dist/main.js ${Object.keys(COUNT_OPTIONS).map((name) => `[--${name}=N]`).join(' ')} [--cpu-prof=DIR --cpu-prof-service=NAME[,NAME…]]`;

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: ${USAGE}\n`);
  process.exit(2);
}

function parseArguments(args: readonly string[]): Workload {
  const counts: Record<keyof Counts, number> = { ...DEFAULT_COUNTS };
  let profileDir: string | undefined;
  let profiled: ManagerService[] | undefined;
  for (const arg of args) {
    const [, name, value] = /^--([a-z-]+)=(.+)$/.exec(arg) ?? usage(`unknown argument ${arg}`);
    if (name === 'cpu-prof') profileDir = resolve(value!);
    else if (name === 'cpu-prof-service') {
      profiled = value!.split(',') as ManagerService[];
      if (profiled.some((service) => !MANAGER_SERVICES.includes(service))) usage(`--cpu-prof-service takes names from ${MANAGER_SERVICES.join(', ')}`);
    } else {
      const key = COUNT_OPTIONS[name!] ?? usage(`unknown option --${name}`);
      if (!/^\d+$/.test(value!) || Number(value) < 1) usage(`--${name} takes a positive whole number`);
      counts[key] = Number(value);
    }
  }
  if (counts.services > counts.replicas) usage('--services cannot exceed --replicas');
  if (counts.agentProcesses > counts.nodes) usage('--agent-processes cannot exceed --nodes');
  if ((profileDir === undefined) !== (profiled === undefined)) usage('--cpu-prof and --cpu-prof-service go together');
  return { ...counts, cpuProfiles: profileDir === undefined ? undefined : { dir: profileDir, services: profiled! } };
}

const seconds = (ms: number | undefined) => format(ms === undefined ? undefined : ms / 1000, 2);

/** The run as Markdown: milestones, the create phase over time, every process's CPU and memory by phase. */
function report(record: RunRecord): string {
  const { milestones, timeline, phases } = record;
  const milestoneRows = milestones.map(({ name, ms, note }) => [name, note ?? seconds(ms)]);
  // Every fifth sample (the progress lines had them all), and the last.
  const timelineRows = timeline
    .filter((_, index) => index % TIMELINE_ROWS_EVERY === TIMELINE_ROWS_EVERY - 1 || index === timeline.length - 1)
    .map(({ atMs, counts, runningOnNodes }) => [seconds(atMs), ...counts.map((count) => format(count)), format(runningOnNodes)]);
  const processRows = (phases.at(-1)?.usage ?? []).map(({ name, rssMiB, peakRssMiB }) => [
    name,
    ...phases.map(({ usage }) => {
      const used = usage.find((process) => process.name === name);
      return used === undefined ? '' : `${format(used.cpuSeconds, 1)} (${format(used.cpuPercent, 1)}%)`;
    }),
    format(rssMiB),
    format(peakRssMiB),
  ]);
  const notes = warningNotes(record.warnings);
  const timelineHeader = ['s', ...TASK_MILESTONES.map(({ name }) => name), 'running on the nodes (agents)'];
  return [
    markdownTable(['milestone', 's'], milestoneRows),
    ...(timelineRows.length === 0
      ? []
      : [`Tasks by furthest state in the store, and running on the nodes, from the create (every 5 s):\n\n${markdownTable(timelineHeader, timelineRows)}`]),
    `CPU seconds (share of one core) per phase, and memory at the end of the last one:\n\n${markdownTable(
      ['process', ...phases.map(({ phase, seconds: length }) => `${phase} (${format(length, 1)} s)`), 'RSS, MiB', 'peak RSS, MiB'],
      processRows,
    )}`,
    ...(notes.length > 0 ? [`Notes:\n${notes.join('\n')}`] : []),
  ].join('\n\n');
}

const workload = parseArguments(process.argv.slice(2));

// Interrupted: the run stops at its next check and everything it started is stopped before the bench
// exits. A second signal exits at once (the services stop by themselves when their IPC channel closes).
const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupt.abort();
    process.once(signal, () => process.exit(130));
  });
}

const machine = () => `load average ${loadavg().map((load) => load.toFixed(1)).join(' / ')}, CPU pressure (some avg60) ${format(cpuPressure(), 1)}%`;
process.stdout.write(
  `nodes benchmark: ${format(workload.nodes)} simulated nodes in ${workload.agentProcesses} processes, ${format(workload.replicas)} replicas in ${workload.services} ` +
    `service(s), ${workload.idleSeconds} s idle windows; node ${process.version}, ${availableParallelism()} CPUs, ${machine()}\n`,
);
const root = mkdtempSync(join(tmpdir(), 'shoal-bench-nodes-'));
const record = new RunRecord();
let failure: string | undefined;
try {
  await runBench(workload, root, interrupt.signal, record, (line) => process.stdout.write(`${line}\n`));
} catch (err) {
  failure = err instanceof Error ? err.message : String(err);
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.stdout.write(`\n${new Date().toISOString()}, ${machine()} at the end\n\n${report(record)}\n`);
if (failure !== undefined) {
  process.stdout.write(`\nFailed: ${failure}\n`);
  process.exitCode = interrupt.signal.aborted ? 130 : 1;
}
