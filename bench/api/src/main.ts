/**
 * Benchmark of services/api's reads at swarm scale: a real nats-server, raft-store replica and api
 * process, 1,000 services and 100,000 tasks in the store, and keep-alive HTTP clients in closed loops
 * against the requests the docker CLI polls. Prints tables; bench/api/README.md says what each number
 * means. Not a test: nothing here asserts.
 *
 * `node dist/main.js [--cpu-prof=DIR] [request ...]`: only the named requests (all by default); with
 * `--cpu-prof`, the api process writes a V8 CPU profile into DIR when it stops.
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '@shoal/errors';
import { DockerClient, filtersQuery } from './docker-client.js';
import { BenchHost, stopAllHosts } from './host.js';
import { percentile, runLoad } from './load.js';
import { measureCpu, residentMemoryOf } from './proc.js';
import { format, Report } from './report.js';
import { NODE_COUNT, SERVICE_COUNT, STACK_COUNT, STACK_LABEL, TASKS_PER_SERVICE, seedCluster, serviceName, stackName, type SeededCluster } from './seed.js';

/** Concurrent clients at each level: one CLI polling, and several at once on a two-core machine. */
const CONCURRENCY_LEVELS = [1, 8] as const;
const WARMUP_MS = 2_000;
const MEASURE_MS = 10_000;
/**
 * The window of a request that takes seconds: 10 s would hold a handful of answers at one client and
 * none at eight, where each round of eight takes longer than that.
 */
const SLOW_MEASURE_MS = 60_000;

/** A request the CLI sends, how to vary it from call to call, and what a correct answer holds. */
interface MeasuredRequest {
  /** What the CLI does with it. */
  readonly purpose: string;
  /** The `n`th request of a run. */
  readonly path: (n: number) => string;
  /** What the answer must hold, said for a failure message. */
  readonly expected: string;
  /** Whether `json` is a right answer to the `n`th request. */
  readonly answers: (json: unknown, n: number) => boolean;
  /** How long each level is measured, after the warm-up. */
  readonly measureMs: number;
}

const isList = (length: number) => (json: unknown) => Array.isArray(json) && json.length === length;

/** The requests measured, in the order they run; the bench's arguments may name some of them. */
const REQUEST_NAMES = ['services-status', 'tasks-service', 'tasks-progress', 'tasks-stack', 'service-inspect'] as const;
type RequestName = (typeof REQUEST_NAMES)[number];

function measuredRequests(cluster: SeededCluster): Record<RequestName, MeasuredRequest> {
  const serviceId = (n: number) => cluster.serviceIds[n % SERVICE_COUNT]!;
  return {
    'services-status': {
      purpose: '`docker service ls`: every service with its running/desired count',
      path: () => '/v1.41/services?status=true',
      expected: `${SERVICE_COUNT} services, the first ${TASKS_PER_SERVICE}/${TASKS_PER_SERVICE} running`,
      answers: (json) => {
        const first = (json as { ServiceStatus?: { RunningTasks?: number; DesiredTasks?: number } }[])[0]?.ServiceStatus;
        return isList(SERVICE_COUNT)(json) && first?.RunningTasks === TASKS_PER_SERVICE && first.DesiredTasks === TASKS_PER_SERVICE;
      },
      measureMs: MEASURE_MS,
    },
    'tasks-service': {
      purpose: '`docker service ps <service>`: one service\'s tasks, services in turn',
      path: (n) => `/v1.41/tasks?${filtersQuery({ service: { [serviceId(n)]: true } })}`,
      expected: `${TASKS_PER_SERVICE} tasks`,
      answers: isList(TASKS_PER_SERVICE),
      measureMs: MEASURE_MS,
    },
    'tasks-progress': {
      purpose: 'CLI 28\'s progress loop after `service create`/`update`: up-to-date tasks of one service',
      path: (n) => `/v1.41/tasks?${filtersQuery({ '_up-to-date': { true: true }, service: { [serviceId(n)]: true } })}`,
      expected: `${TASKS_PER_SERVICE} tasks`,
      answers: isList(TASKS_PER_SERVICE),
      measureMs: MEASURE_MS,
    },
    'tasks-stack': {
      purpose: '`docker stack rm`\'s wait loop: every task of one stack, stacks in turn',
      path: (n) => `/v1.41/tasks?${filtersQuery({ label: { [`${STACK_LABEL}=${stackName(n % STACK_COUNT)}`]: true } })}`,
      expected: `${(SERVICE_COUNT / STACK_COUNT) * TASKS_PER_SERVICE} tasks`,
      answers: isList((SERVICE_COUNT / STACK_COUNT) * TASKS_PER_SERVICE),
      measureMs: SLOW_MEASURE_MS,
    },
    'service-inspect': {
      purpose: 'the progress loop\'s other call: one service by name, services in turn',
      path: (n) => `/v1.41/services/${serviceName(n % SERVICE_COUNT)}?insertDefaults=false`,
      expected: 'the service named',
      answers: (json, n) => (json as { ID?: string }).ID === serviceId(n),
      measureMs: MEASURE_MS,
    },
  };
}

/** Runs `request` at every concurrency level, after checking that the api answers it correctly. */
async function measureRequest(report: Report, host: BenchHost, name: string, request: MeasuredRequest): Promise<void> {
  const probe = new DockerClient(host.apiUrl, 1);
  try {
    const json = await probe.json('GET', request.path(0));
    if (!request.answers(json, 0)) throw errors.internal(`GET ${request.path(0)} did not answer ${request.expected}`);
  } finally {
    probe.close();
  }
  for (const concurrency of CONCURRENCY_LEVELS) {
    const client = new DockerClient(host.apiUrl, concurrency);
    const cpuInWindow = async () => {
      await sleep(WARMUP_MS);
      const shares = measureCpu([host.apiPid, process.pid]);
      await sleep(request.measureMs);
      return shares();
    };
    try {
      const [run, [apiCpu = Number.NaN, benchCpu = Number.NaN]] = await Promise.all([runLoad(client, request.path, concurrency, WARMUP_MS, request.measureMs), cpuInWindow()]);
      host.assertRunning();
      report.load([
        name,
        String(concurrency),
        format(run.answered),
        format(run.answered / run.seconds, 1),
        format(percentile(run.latenciesMs, 0.5), 2),
        format(percentile(run.latenciesMs, 0.99), 2),
        format(run.latenciesMs.at(-1) ?? Number.NaN, 2),
        format(run.meanBytes / 1024, 1),
        format(apiCpu),
        // Contention on a shared machine stretches latencies but hardly the CPU each request costs.
        format((apiCpu * 10 * run.seconds) / run.answered, 1),
        format(benchCpu),
        format([...run.failures.values()].reduce((sum, count) => sum + count, 0)),
      ]);
      if (run.failures.size > 0) {
        const counts = [...run.failures].map(([status, count]) => `${count} × ${status === 0 ? 'no response' : `status ${status}`}`).join(', ');
        report.note(`${name} at ${concurrency} clients: ${counts}; the first: ${run.firstFailure ?? ''}`);
      }
    } finally {
      client.close();
    }
  }
}

const args = process.argv.slice(2);
const profileArg = args.find((arg) => arg.startsWith('--cpu-prof='));
const requested = args.filter((arg) => arg !== profileArg);
const unknown = requested.filter((name) => !(REQUEST_NAMES as readonly string[]).includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown request ${unknown.join(', ')}; choose from ${REQUEST_NAMES.join(', ')}\n`);
  process.exit(2);
}

// Interrupted: the processes and the temporary directory go too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAllHosts().finally(() => process.exit(130)));
}

const report = new Report();
const host = await BenchHost.start({ apiCpuProfileDir: profileArg === undefined ? undefined : resolve(profileArg.slice('--cpu-prof='.length)) });
try {
  process.stdout.write(
    `services/api benchmark: nats-server, raft-store and api processes on loopback; ${WARMUP_MS / 1000} s warm-up, then ${MEASURE_MS / 1000} s measured ` +
      `(${SLOW_MEASURE_MS / 1000} s for tasks-stack), per request and level\nset-up:\n`,
  );
  const setup = new DockerClient(host.apiUrl, 1);
  const cluster = await seedCluster(setup, host.store).finally(() => setup.close());
  report.fact(`seed: swarm init, ${STACK_COUNT} networks, ${NODE_COUNT} nodes, ${format(SERVICE_COUNT)} services, ${format(SERVICE_COUNT * TASKS_PER_SERVICE)} tasks`, cluster.seedSeconds, 's', 1);
  report.fact('api copy caught up, after the last commit', cluster.catchUpSeconds, 's', 2);
  report.fact('api resident memory, caught up', residentMemoryOf(host.apiPid).nowMiB, 'MiB');

  const requests = measuredRequests(cluster);
  for (const name of REQUEST_NAMES) {
    if (requested.length > 0 && !requested.includes(name)) continue;
    process.stdout.write(`${name}: ${requests[name].purpose}\n`);
    try {
      await measureRequest(report, host, name, requests[name]);
    } catch (err) {
      report.fail(name, err);
    }
  }
  report.fact('api resident memory, peak', residentMemoryOf(host.apiPid).peakMiB, 'MiB');
} catch (err) {
  report.fail('set-up', err);
} finally {
  await host.stop();
}
report.print();
process.exitCode = report.failed ? 1 : 0;
