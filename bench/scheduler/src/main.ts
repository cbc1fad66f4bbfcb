/**
 * Benchmark of the scheduler's placement core (@shoal/scheduler/core) at swarm scale: how fast it
 * places PENDING tasks, and how fast it takes in nodes. Prints a table; bench/scheduler/README.md
 * says what each number means. Not a test: it checks that every task was placed and spread evenly,
 * so that a fast wrong answer cannot pass for a result, but asserts nothing about time.
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Node, NodeRole, NodeStatus_State, Task, TaskState } from '@shoal/proto';
import { Scheduler } from '@shoal/scheduler/core';

/** Each measurement is repeated this many times; the table shows the median and the range. */
const runs = 5;

const nodeId = (n: number) => `node${String(n).padStart(6, '0')}`;

/** A node as an agent reports it: 4 cores, 8 GiB, linux/x86_64, READY; every third one labelled tier=db. */
function makeNode(n: number): Node {
  return Node.fromPartial({
    id: nodeId(n),
    role: NodeRole.WORKER,
    status: { state: NodeStatus_State.READY, addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` },
    spec: { annotations: { name: `worker-${n}`, labels: { tier: n % 3 === 0 ? 'db' : 'web', rack: `r${n % 20}` } } },
    description: {
      hostname: `worker-${n}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 4_000_000_000n, memoryBytes: 8n << 30n },
      engine: { engineVersion: '27.5.1', labels: { provider: 'bench' } },
    },
  });
}

interface TaskShape {
  /** Tasks are dealt round-robin over this many services. */
  readonly services: number;
  /** Every task requires `node.labels.tier==db`, which one node in three has. */
  readonly constrained: boolean;
  /** Tasks carry no spec version, so each is placed alone (swarmkit's own benchmark tasks are like this). */
  readonly oneOff: boolean;
}

/** A PENDING task as the allocator leaves it: a container reserving 0.01 CPU and 16 MiB, desired RUNNING. */
function makeTask(t: number, shape: TaskShape): Task {
  const service = t % shape.services;
  return Task.fromPartial({
    id: `task${String(t).padStart(7, '0')}`,
    serviceId: `service${service}`,
    specVersion: shape.oneOff ? undefined : { index: 1n },
    slot: BigInt(Math.floor(t / shape.services) + 1),
    desiredState: TaskState.RUNNING,
    serviceAnnotations: { name: `app-${service}` },
    status: { state: TaskState.PENDING, message: 'pending task scheduling' },
    spec: {
      container: { image: `registry.example/app-${service}:1.0` },
      resources: { reservations: { nanoCpus: 10_000_000n, memoryBytes: 16n << 20n } },
      placement: shape.constrained ? { constraints: ['node.labels.tier==db'] } : undefined,
    },
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.();

/** Seconds `work` took on the wall clock and in CPU time (user + system, every thread of the process). */
function timed(work: () => void): { wall: number; cpu: number } {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  work();
  const wall = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpuBefore);
  return { wall, cpu: (user + system) / 1e6 };
}

/**
 * Fails the run unless every task was placed on a node that may take it, and each service's tasks
 * are spread evenly over those nodes (at most one apart).
 */
function checkPlacement(tasks: readonly Task[], nodeCount: number, shape: TaskShape, placedOn: Map<string, string>): void {
  if (placedOn.size !== tasks.length) throw new Error(`placed ${placedOn.size} of ${tasks.length} tasks`);
  const eligible = shape.constrained ? Math.ceil(nodeCount / 3) : nodeCount;
  const perServiceNode = new Map<string, number>();
  for (const task of tasks) {
    const node = Number((placedOn.get(task.id) ?? '').slice('node'.length));
    if (shape.constrained && node % 3 !== 0) throw new Error(`task ${task.id} went to node ${node}, which is not tier=db`);
    const key = `${task.serviceId}/${node}`;
    perServiceNode.set(key, (perServiceNode.get(key) ?? 0) + 1);
  }
  if (shape.oneOff) return; // one-off tasks are spread task by task, over every service at once
  for (const [key, count] of perServiceNode) {
    const service = Number(key.slice('service'.length, key.indexOf('/')));
    const total = Math.floor(tasks.length / shape.services) + (service < tasks.length % shape.services ? 1 : 0);
    const most = Math.ceil(total / eligible);
    if (count > most) throw new Error(`service ${service} has ${count} tasks on one node, more than ${most}`);
  }
}

type Row = readonly string[];

const format = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const range = (values: readonly number[], digits = 0) => `${format(Math.min(...values), digits)}–${format(Math.max(...values), digits)}`;

const placementTitles: Row = ['scenario', 'tasks/s', `tasks/s, range of ${runs}`, 's to place all', 'tasks per CPU-second', 'aim'];
const placementRows: Row[] = [];
const nodeTitles: Row = ['scenario', 's', `range of ${runs}`, 'CPU-s', 'aim'];
const nodeRows: Row[] = [];

/** Places `taskCount` tasks on `nodeCount` nodes `runs` times, each time in a new scheduler holding only the nodes. */
function measurePlacement(label: string, nodeCount: number, taskCount: number, shape: TaskShape, aim: string): void {
  const nodes = Array.from({ length: nodeCount }, (_, n) => makeNode(n));
  const tasks = Array.from({ length: taskCount }, (_, t) => makeTask(t, shape));
  const samples: { wall: number; cpu: number }[] = [];
  for (let run = 0; run < runs; run++) {
    const scheduler = new Scheduler();
    for (const node of nodes) scheduler.addNode(node);
    collectGarbage();
    let placedOn = new Map<string, string>();
    samples.push(
      timed(() => {
        placedOn = new Map(scheduler.schedule(tasks).assigned.map(({ task, nodeId }) => [task.id, nodeId]));
      }),
    );
    checkPlacement(tasks, nodeCount, shape, placedOn);
  }
  const rates = samples.map(({ wall }) => taskCount / wall);
  const row = [label, format(median(rates)), range(rates), format(median(samples.map(({ wall }) => wall)), 3), format(median(samples.map(({ cpu }) => taskCount / cpu))), aim];
  placementRows.push(row);
  process.stdout.write(`  ${row.join(' | ')}\n`);
}

/** Adds `nodeCount` nodes to a new scheduler `runs` times. */
function measureTakingInNodes(nodeCount: number, aim: string): void {
  const nodes = Array.from({ length: nodeCount }, (_, n) => makeNode(n));
  const samples: { wall: number; cpu: number }[] = [];
  for (let run = 0; run < runs; run++) {
    collectGarbage();
    samples.push(
      timed(() => {
        const scheduler = new Scheduler();
        for (const node of nodes) scheduler.addNode(node);
      }),
    );
  }
  const walls = samples.map(({ wall }) => wall);
  const row = [`take in ${format(nodeCount)} nodes (addNode each)`, format(median(walls), 3), range(walls, 3), format(median(samples.map(({ cpu }) => cpu)), 3), aim];
  nodeRows.push(row);
  process.stdout.write(`  ${row.join(' | ')}\n`);
}

/** A markdown table; every column but the first and last is a number, aligned right. */
function table(titles: Row, rows: readonly Row[]): string {
  const widths = titles.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const numeric = (i: number) => i > 0 && i < titles.length - 1;
  const line = (row: Row) => `| ${row.map((cell, i) => (numeric(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => '-'.repeat(width + 1) + (numeric(i) ? ':' : '-')).join('|')}|`;
  return [line(titles), rule, ...rows.map(line)].join('\n');
}

const one = { services: 1, constrained: false, oneOff: false };
const loadAtStart = loadavg();
process.stdout.write(`@shoal/scheduler placement core benchmark, ${runs} runs each\n`);
measurePlacement('1k nodes, 1k tasks of one service', 1_000, 1_000, one, '≥ 20,000 tasks/s');
measurePlacement('1k nodes, 10k tasks of one service', 1_000, 10_000, one, '≥ 20,000 tasks/s');
measurePlacement('1k nodes, 100k tasks of one service', 1_000, 100_000, one, '≥ 20,000 tasks/s, ≤ 5 s');
measurePlacement('5k nodes, 100k tasks constrained to 1/3 of the nodes', 5_000, 100_000, { ...one, constrained: true }, '≤ 10 s');
measurePlacement('1k nodes, 100k tasks over 1,000 services', 1_000, 100_000, { ...one, services: 1_000 }, '');
measurePlacement('1k nodes, 10k one-off tasks (no spec version)', 1_000, 10_000, { ...one, services: 100, oneOff: true }, '');
measurePlacement('100k nodes, 100k tasks of one service', 100_000, 100_000, one, '');
measureTakingInNodes(100_000, '≤ 2 s');
const peakRss = process.resourceUsage().maxRSS / 1024;

const loadAtEnd = loadavg();
process.stdout.write(
  `\nnode ${process.version}, ${availableParallelism()} CPUs, ${new Date().toISOString()}, ` +
    `load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')} at end, ` +
    `peak RSS ${format(peakRss)} MiB\n\n${table(placementTitles, placementRows)}\n\n${table(nodeTitles, nodeRows)}\n`,
);
