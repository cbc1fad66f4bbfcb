/**
 * Benchmark of @shoal/store at swarm scale: 100,000 tasks over 1,000 services. Prints a table;
 * bench/store/README.md says what each number means. Not a test: nothing here asserts.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Service, Task, TaskState } from '@shoal/proto';
import { byServiceId, MemoryStore, type Watch } from '@shoal/store';

const serviceCount = 1_000;
const tasksPerService = 100;
const taskCount = serviceCount * tasksPerService;
const lookupCount = 10_000;
const watcherCount = 10;
const fanOutLatencyCommits = 2_000;
const fanOutThroughputCommits = 10_000;

const serviceId = (s: number) => `service${String(s).padStart(4, '0')}`;
const taskId = (t: number) => `task${String(t).padStart(6, '0')}`;

/** A service shaped like one `docker service create` makes: a container template, a network, labels. */
function makeService(s: number): Service {
  return Service.fromPartial({
    id: serviceId(s),
    spec: {
      annotations: { name: `app-${s}`, labels: { 'com.example.stack': `stack-${s % 50}` } },
      task: {
        container: { image: `registry.example/app-${s}:1.${s % 10}`, env: ['MODE=production', `INSTANCE=${s}`] },
        networks: [{ target: 'network0001' }],
      },
      replicated: { replicas: BigInt(tasksPerService) },
    },
  });
}

/** A task as the orchestrator creates it: a copy of the service's template, in one slot, NEW. */
function makeTask(t: number): Task {
  const s = t % serviceCount;
  return Task.fromPartial({
    id: taskId(t),
    serviceId: serviceId(s),
    slot: BigInt(Math.floor(t / serviceCount) + 1),
    desiredState: TaskState.RUNNING,
    serviceAnnotations: { name: `app-${s}` },
    spec: {
      container: { image: `registry.example/app-${s}:1.${s % 10}`, env: ['MODE=production', `INSTANCE=${s}`] },
      networks: [{ target: 'network0001' }],
    },
    status: { state: TaskState.NEW, message: 'created', timestamp: new Date() },
  });
}

function percentile(sortedMs: readonly number[], fraction: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length))] ?? Number.NaN;
}

/** Sets `nodeId` on one task, as the scheduler does when it assigns a task. */
function assign(store: MemoryStore, id: string, nodeId: string): void {
  store.update((tx) => {
    const current = tx.get('task', id);
    if (current === undefined) throw new Error(`task ${id} vanished`);
    tx.update('task', { ...current, nodeId });
  });
}

/** Starts `count` watchers of task updates; `onCommit(version)` runs when the last of them has read it. */
function startWatchers(store: MemoryStore, count: number, onCommit: (version: bigint) => void): Watch[] {
  const receivedBy = new Map<bigint, number>();
  const watches = Array.from({ length: count }, () => store.watch({ filters: [{ kind: 'task', actions: ['update'] }] }));
  for (const watch of watches) {
    void (async () => {
      for await (const commit of watch) {
        const received = (receivedBy.get(commit.version) ?? 0) + 1;
        if (received < count) {
          receivedBy.set(commit.version, received);
        } else {
          receivedBy.delete(commit.version);
          onCommit(commit.version);
        }
      }
    })();
  }
  return watches;
}

/** Creates every task through `batch`, in a store of its own that is garbage once this returns. */
function measureBatchCreate(): void {
  const store = new MemoryStore();
  const started = performance.now();
  const versions = store.batch((batch) => {
    for (let t = 0; t < taskCount; t++) batch.update((tx) => tx.create('task', makeTask(t)));
  });
  const seconds = (performance.now() - started) / 1000;
  record(`create via batch (${format(taskCount / versions.length)} tasks per transaction)`, taskCount / seconds, 'tasks/s');
}

interface Row {
  readonly metric: string;
  readonly value: string;
  readonly unit: string;
}

const rows: Row[] = [];
const format = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
function record(metric: string, value: number, unit: string, digits = 0): void {
  rows.push({ metric, value: format(value, digits), unit });
  process.stdout.write(`  ${metric}: ${format(value, digits)} ${unit}\n`);
}

async function main(): Promise<void> {
  process.stdout.write(`@shoal/store benchmark: ${format(taskCount)} tasks over ${format(serviceCount)} services\n`);
  measureBatchCreate();

  const store = new MemoryStore();
  store.batch((batch) => {
    for (let s = 0; s < serviceCount; s++) batch.update((tx) => tx.create('service', makeService(s)));
  });

  let started = performance.now();
  for (let t = 0; t < taskCount; t++) {
    store.update((tx) => tx.create('task', makeTask(t)));
  }
  record('create, one task per transaction', taskCount / ((performance.now() - started) / 1000), 'transactions/s');

  const updates = taskCount;
  started = performance.now();
  for (let u = 0; u < updates; u++) assign(store, taskId((u * 7919) % taskCount), `node${u % 100}`);
  record('update one field (nodeId), one task per transaction', updates / ((performance.now() - started) / 1000), 'transactions/s');

  const lookupMs: number[] = [];
  for (let l = 0; l < lookupCount; l++) {
    const service = serviceId((l * 389) % serviceCount);
    const begin = performance.now();
    const found = store.view((tx) => tx.find('task', byServiceId(service)));
    lookupMs.push(performance.now() - begin);
    if (found.length !== tasksPerService) throw new Error(`found ${found.length} tasks of ${service}`);
  }
  lookupMs.sort((a, b) => a - b);
  record(`find tasks by service (${tasksPerService} each), p50`, percentile(lookupMs, 0.5) * 1000, 'µs');
  record(`find tasks by service (${tasksPerService} each), p99`, percentile(lookupMs, 0.99) * 1000, 'µs');

  let waiting: { version: bigint; resolve: () => void } | undefined;
  const latencyWatches = startWatchers(store, watcherCount, (version) => {
    if (waiting?.version === version) waiting.resolve();
  });
  const fanOutMs: number[] = [];
  for (let c = 0; c < fanOutLatencyCommits; c++) {
    const allReceived = new Promise<void>((resolve) => {
      waiting = { version: store.version + 1n, resolve };
    });
    const begin = performance.now();
    assign(store, taskId(c), `node${c % 100}`);
    await allReceived;
    fanOutMs.push(performance.now() - begin);
  }
  latencyWatches.forEach((watch) => watch.close());
  fanOutMs.sort((a, b) => a - b);
  record(`fan-out to ${watcherCount} watchers, commit until all received, p50`, percentile(fanOutMs, 0.5) * 1000, 'µs');
  record(`fan-out to ${watcherCount} watchers, commit until all received, p99`, percentile(fanOutMs, 0.99) * 1000, 'µs');

  const lastVersion = store.version + BigInt(fanOutThroughputCommits);
  const allDelivered = new Promise<void>((resolve) => {
    const throughputWatches = startWatchers(store, watcherCount, (version) => {
      if (version !== lastVersion) return;
      throughputWatches.forEach((watch) => watch.close());
      resolve();
    });
  });
  started = performance.now();
  for (let c = 0; c < fanOutThroughputCommits; c++) assign(store, taskId(c), `node${(c + 1) % 100}`);
  await allDelivered;
  const fanOutSeconds = (performance.now() - started) / 1000;
  record(`fan-out to ${watcherCount} watchers, throughput`, fanOutThroughputCommits / fanOutSeconds, 'commits/s delivered to all');

  (globalThis as { gc?: () => void }).gc?.();
  const heldTasks = store.view((tx) => tx.list('task').length);
  record(`heap in use after GC, holding the store (${format(heldTasks)} tasks)`, process.memoryUsage().heapUsed / 2 ** 20, 'MiB');
  record('peak RSS', process.resourceUsage().maxRSS / 1024, 'MiB');

  const width = (column: keyof Row, title: string) => Math.max(title.length, ...rows.map((row) => row[column].length));
  const [metricWidth, valueWidth, unitWidth] = [width('metric', 'metric'), width('value', 'value'), width('unit', 'unit')];
  const line = (metric: string, value: string, unit: string) =>
    `| ${metric.padEnd(metricWidth)} | ${value.padStart(valueWidth)} | ${unit.padEnd(unitWidth)} |`;
  process.stdout.write(
    `\nnode ${process.version}, ${availableParallelism()} CPUs, ${new Date().toISOString()}\n\n` +
      [
        line('metric', 'value', 'unit'),
        `|${'-'.repeat(metricWidth + 2)}|${'-'.repeat(valueWidth + 1)}:|${'-'.repeat(unitWidth + 2)}|`,
        ...rows.map((row) => line(row.metric, row.value, row.unit)),
      ].join('\n') +
      '\n',
  );
}

await main();
