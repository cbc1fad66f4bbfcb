import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '@shoal/errors';
import { TEST_IMAGE, TEST_LABEL } from '@shoal/testkit';
import type { EngineClient, EngineContainer } from './engine-client.js';
import { runningTasks, tasksAtLeast, timeMilestones, type Milestone, type Observation, type PollLimits } from './milestones.js';
import type { Results } from './results.js';
import { BENCH_LABEL, type DockerCli, type SwarmUnderTest } from './swarms.js';

/** How long 50 tasks may take to run, or a replacement to run, before the run is given up. */
const MILESTONE_TIMEOUT_MS = 120_000;
/** A pause after each recovery, so that the next one starts from a settled service (the reaper, the old task's clean-up). */
const SETTLE_MS = 2_000;
/** Docker's label naming a task's service on its container; Shoal's agent sets it too. */
const SERVICE_NAME_LABEL = 'com.docker.swarm.service.name';
const TASK_ID_LABEL = 'com.docker.swarm.task.id';

/** What each system is asked to do. */
export interface Workload {
  readonly replicas: number;
  /** Services created on each system (one after another, each removed before the next). */
  readonly runs: number;
  /** `docker rm -f` samples in each run. */
  readonly recoveries: number;
}

/** Names of the metrics recorded, in the order they are reported. */
export const METRICS = {
  cliReturned: 'create: `docker service create --detach` returned',
  firstAssigned: 'create: first task assigned to the node (API)',
  allAssigned: 'create: all tasks assigned to the node (API)',
  firstRunning: 'create: first task running (API)',
  allRunning: 'create: all tasks running (API)',
  allContainers: 'create: all containers running (dockerd)',
  removedEnded: 'recovery: removed task seen not running (API)',
  replacementRunning: 'recovery: replacement task running (API)',
  replacementContainer: 'recovery: replacement container running (dockerd)',
} as const;

/** What a run on one system reads from, what it may do, and where its samples go. */
export interface SystemMeasurement {
  readonly swarm: SwarmUnderTest;
  /** The machine's dockerd: the containers of both systems live there, and `docker rm -f` goes there. */
  readonly dockerd: EngineClient;
  readonly localDocker: DockerCli;
  /** Labels the bench's services and containers (`shoal.bench`, `shoal.test`). */
  readonly runId: string;
  readonly workload: Workload;
  readonly results: Results;
  /** Aborts the measurement (CANCELLED) at the next poll. */
  readonly signal: AbortSignal;
}

interface RunContext extends SystemMeasurement {
  readonly limits: PollLimits;
}

/**
 * One run on one system: creates a service of `replicas` tasks of the test image (`sleep 3600`,
 * restart delay 0) with the docker CLI and times it to all running, then `docker rm -f`s one of its
 * containers `recoveries` times and times each replacement, then removes the service and waits until
 * its containers are gone. Records every sample in `results` under the system's name. Fails if a
 * milestone is not reached in time, saying which.
 */
export async function measureRun(measurement: SystemMeasurement, run: number): Promise<void> {
  const { swarm, workload, signal } = measurement;
  const limits: PollLimits = { timeoutMs: MILESTONE_TIMEOUT_MS, signal, assertGoing: () => swarm.assertRunning() };
  const context: RunContext = { ...measurement, limits };
  // Named per system too: both systems' containers live in the same dockerd, under the same run ID.
  const service = `bench-e2e-${swarm.name.toLowerCase()}-${run}`;
  const containers = containersOf(context, service);
  const observe = async (): Promise<Observation> => {
    const [tasks, running] = await Promise.all([swarm.api.tasksOf(service), containers()]);
    return { tasks, containers: running };
  };
  await measureCreate(context, service, observe);
  for (let sample = 1; sample <= workload.recoveries; sample++) {
    await sleep(SETTLE_MS, undefined, { signal });
    await measureRecovery(context, observe);
  }
  await swarm.docker(['service', 'rm', service]);
  // The service is gone from the API now, so only dockerd is asked, until the system has removed every
  // container of the service (stopped ones too): the next run, and the clean-up, start from none.
  const containersLeft = async (): Promise<Observation> => ({ tasks: [], containers: await containers({ all: true }) });
  await timeMilestones(containersLeft, [{ name: 'containers removed', reached: (seen) => seen.containers.length === 0 }], performance.now(), limits);
}

/** The service's containers in dockerd (the running ones unless `all`): those labelled with the run ID and the service's name. */
function containersOf({ dockerd, runId }: RunContext, service: string): (options?: { all?: boolean }) => Promise<EngineContainer[]> {
  const labels = [`${TEST_LABEL}=${runId}`, `${SERVICE_NAME_LABEL}=${service}`];
  return (options) => dockerd.containers(labels, options);
}

async function measureCreate({ swarm, runId, workload, limits, results }: RunContext, service: string, observe: () => Promise<Observation>): Promise<void> {
  const { replicas } = workload;
  // --no-resolve-image: the CLI would otherwise ask a registry (none is reachable here) for the image's digest first.
  const command = ['service', 'create', '--detach', '--no-resolve-image', '--name', service, '--replicas', String(replicas), '--restart-delay', '0s'];
  const labels = ['--label', `${BENCH_LABEL}=${runId}`, '--container-label', `${TEST_LABEL}=${runId}`];
  const startedAt = performance.now();
  await swarm.docker([...command, ...labels, TEST_IMAGE, 'sleep', '3600']);
  results.record(swarm.name, METRICS.cliReturned, performance.now() - startedAt);
  const milestones: Milestone[] = [
    { name: METRICS.firstAssigned, reached: (seen) => tasksAtLeast(seen, 'assigned').length > 0 },
    { name: METRICS.allAssigned, reached: (seen) => tasksAtLeast(seen, 'assigned').length === replicas },
    { name: METRICS.firstRunning, reached: (seen) => runningTasks(seen).length > 0 },
    { name: METRICS.allRunning, reached: (seen) => runningTasks(seen).length === replicas },
    { name: METRICS.allContainers, reached: ({ containers }) => containers.length === replicas },
  ];
  for (const [metric, ms] of await timeMilestones(observe, milestones, startedAt, limits)) results.record(swarm.name, metric, ms);
}

/**
 * `docker rm -f` of one running container of the service, timed from just before the CLI starts to
 * the system reporting a task that was not running before as running (all replicas running again),
 * and to dockerd running a new container in its place.
 */
async function measureRecovery({ swarm, localDocker, workload, limits, results }: RunContext, observe: () => Promise<Observation>): Promise<void> {
  const before = await observe();
  const victim = before.containers[0];
  const victimTaskId = victim?.Labels[TASK_ID_LABEL];
  if (victim === undefined || victimTaskId === undefined) throw errors.internal(`no running container of the service carries ${TASK_ID_LABEL}`);
  const runningBefore = new Set(runningTasks(before).map((task) => task.ID));
  const containersBefore = new Set(before.containers.map((container) => container.Id));
  const milestones: Milestone[] = [
    { name: METRICS.removedEnded, reached: (seen) => !runningTasks(seen).some((task) => task.ID === victimTaskId) },
    {
      name: METRICS.replacementRunning,
      reached: (seen) => {
        const running = runningTasks(seen);
        return running.length === workload.replicas && running.some((task) => !runningBefore.has(task.ID));
      },
    },
    {
      name: METRICS.replacementContainer,
      reached: ({ containers }) => containers.length === workload.replicas && containers.some((container) => !containersBefore.has(container.Id)),
    },
  ];
  const startedAt = performance.now();
  await localDocker(['rm', '-f', victim.Id]);
  for (const [metric, ms] of await timeMilestones(observe, milestones, startedAt, limits)) results.record(swarm.name, metric, ms);
}
