import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, errors, ShoalError } from '@shoal/errors';
import { DOCKER, runDocker, TEST_IMAGE } from '@shoal/testkit';
import { startAgentHosts, stopAgentHosts, type AgentHost } from './agent-hosts.js';
import { ManagerHost, type CpuProfiles } from './manager-host.js';
import { UsageWindow, type ProcessUsage } from './proc.js';
import { shareOut } from './share-out.js';
import { SwarmWatch, TASK_MILESTONES } from './swarm-watch.js';
import { format } from './table.js';

/** What the bench is asked to do. */
export interface Workload {
  readonly nodes: number;
  readonly agentProcesses: number;
  /** Replicated services created, `replicas / services` tasks each. */
  readonly services: number;
  readonly replicas: number;
  readonly idleSeconds: number;
  /** Services to profile; their profiles are written when the run stops them. */
  readonly cpuProfiles?: CpuProfiles;
}

/** The CPU and memory of every process over one phase of the run. */
export interface PhaseUsage {
  readonly phase: string;
  readonly seconds: number;
  readonly usage: readonly ProcessUsage[];
}

/** How many tasks had reached each of {@link TASK_MILESTONES} at a moment of the create phase. */
export interface TimelinePoint {
  readonly atMs: number;
  readonly counts: readonly number[];
  /** Tasks the nodes' executors ran then, as the agent processes last reported (once a second). */
  readonly runningOnNodes: number;
}

/** A moment of the run: how long something took from the start of its phase, or why it has no time. */
export interface Milestone {
  readonly name: string;
  readonly ms?: number;
  /** What stands in for the time when there is none (how far it got). */
  readonly note?: string;
}

/**
 * What a run measured, filled in as it goes, so that a run that fails still shows everything up to
 * the failure.
 */
export class RunRecord {
  readonly milestones: Milestone[] = [];
  /** The create phase, sampled every second. */
  readonly timeline: TimelinePoint[] = [];
  readonly phases: PhaseUsage[] = [];
  /** Warnings and errors the manager services and the agent processes logged, by process. */
  warnings: ReadonlyMap<string, readonly string[]> = new Map();
}

/** How long the nodes may take to join and become READY. */
const NODES_TIMEOUT_MS = 300_000;
/** The create phase fails when no task has moved on for this long. */
const STALL_MS = 60_000;
/** Settled: no node or task written for this long (the allocator attaching nodes to ingress, the dispatcher's batches). */
const QUIET_MS = 2_000;
const SETTLE_TIMEOUT_MS = 60_000;
const POLL_MS = 50;
/** How often the create phase's progress is sampled for the timeline. */
const TIMELINE_INTERVAL_MS = 1_000;

/** Reports progress while the run goes (each phase takes from seconds to minutes). */
export type ProgressLog = (line: string) => void;

/**
 * One run of the bench: starts the manager host, initialises the swarm with the docker CLI through
 * its API, starts the agent processes (every node joins with the worker token and opens its session),
 * waits until every node is READY and the swarm is quiet, measures it idle, creates the services and
 * times their tasks to RUNNING, and measures it idle again with every task running. Fills `record` as
 * it goes; a phase that fails is recorded as far as it got before the error is thrown. Everything it
 * started is stopped before it returns or throws; `root` is the caller's to remove.
 */
export async function runBench(workload: Workload, root: string, signal: AbortSignal, record: RunRecord, progress: ProgressLog): Promise<void> {
  const runStartedAt = performance.now();
  const manager = await ManagerHost.start(root, workload.cpuProfiles);
  const milestone = (name: string, ms: number) => {
    record.milestones.push({ name, ms });
    progress(`${name}: ${seconds(ms)} s`);
  };
  milestone('manager services ready (from their start)', performance.now() - runStartedAt);
  let watch: SwarmWatch | undefined;
  let agentHosts: AgentHost[] = [];
  /** The phase being measured; recorded when it ends, or as far as it got when the run fails. */
  let current: { readonly phase: string; readonly window: UsageWindow; readonly startedAt: number } | undefined;
  const startPhase = (phase: string, pids: ReadonlyMap<string, number>) => {
    current = { phase, window: new UsageWindow(pids), startedAt: performance.now() };
    return current;
  };
  const endPhase = (phase: string) => {
    if (current === undefined) return;
    record.phases.push({ phase, seconds: (performance.now() - current.startedAt) / 1000, usage: current.window.close() });
    current = undefined;
  };
  let createStartedAt: number | undefined;
  try {
    const configDir = join(root, 'docker-config');
    mkdirSync(configDir, { recursive: true });
    const docker = async (args: readonly string[]) => {
      const result = await runDocker(DOCKER, manager.dockerHost, args, { configDir });
      if (result.code !== 0) throw errors.internal(`docker ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}${result.stdout.trim()}`);
      return result.stdout;
    };
    // A /22 per network: the allocator gives every node an address on ingress, and the default /24 holds 254.
    await docker(['swarm', 'init', '--default-addr-pool', '10.0.0.0/8', '--default-addr-pool-mask-length', '22']);
    const joinToken = (await docker(['swarm', 'join-token', '-q', 'worker'])).trim();
    watch = await SwarmWatch.start(manager.store);
    const following = watch;
    const assertGoing = () => {
      if (signal.aborted) throw new ShoalError(ErrorCode.Cancelled, 'interrupted');
      manager.assertRunning();
      following.assertFollowing();
      for (const host of agentHosts) {
        const exit = host.process.unexpectedExit;
        if (exit !== undefined) throw errors.internal(exit);
      }
    };
    const nodes = format(workload.nodes);

    const joining = startPhase(`join ${nodes} nodes`, new Map([...manager.pids, ['bench', process.pid]]));
    agentHosts = await startAgentHosts({ nodes: workload.nodes, processes: workload.agentProcesses, managerAddr: manager.managerAddr, joinToken, logDir: root });
    for (const host of agentHosts) joining.window.addStartedProcess(host.process.name, host.process.pid);
    const pids = new Map<string, number>([...manager.pids, ...agentHosts.map((host): [string, number] => [host.process.name, host.process.pid]), ['bench', process.pid]]);
    const joined = await waitUntil(() => following.workersJoined >= workload.nodes, joining.startedAt, NODES_TIMEOUT_MS, 'every node joined', assertGoing);
    milestone(`${nodes} nodes joined (from the agent processes' start)`, joined);
    const ready = await waitUntil(() => following.workersReady >= workload.nodes, joining.startedAt, NODES_TIMEOUT_MS, 'every node READY', assertGoing);
    milestone(`${nodes} nodes READY (from the same start)`, ready);
    endPhase(joining.phase);

    await settle(following, assertGoing);
    const idleWithoutTasks = startPhase(`idle: ${nodes} nodes, no tasks`, pids);
    await idleFor(idleWithoutTasks.startedAt, workload.idleSeconds, assertGoing);
    endPhase(idleWithoutTasks.phase);

    following.expectTasks(workload.replicas);
    const create = startPhase(`create → ${format(workload.replicas)} tasks RUNNING`, pids);
    createStartedAt = create.startedAt;
    for (const [index, replicas] of shareOut(workload.replicas, workload.services).entries()) {
      await docker(['service', 'create', '--detach', '--no-resolve-image', '--name', `bench-nodes-${index + 1}`, '--replicas', String(replicas), TEST_IMAGE, 'sleep', '3600']);
    }
    milestone('`docker service create` returned (from its start, as the task milestones below)', performance.now() - create.startedAt);
    const runningOnNodes = () => agentHosts.reduce((sum, host) => sum + host.runningTasks, 0);
    await followTasks(following, runningOnNodes, create.startedAt, record.timeline, assertGoing, progress);
    endPhase(create.phase);

    await settle(following, assertGoing);
    const idleWithTasks = startPhase(`idle: ${nodes} nodes, ${format(workload.replicas)} tasks running`, pids);
    await idleFor(idleWithTasks.startedAt, workload.idleSeconds, assertGoing);
    endPhase(idleWithTasks.phase);
  } finally {
    if (current !== undefined) endPhase(`${current.phase}: failed after ${seconds(performance.now() - current.startedAt)} s`);
    if (watch !== undefined && createStartedAt !== undefined) recordTaskMilestones(record, watch, createStartedAt, workload.replicas);
    record.warnings = new Map<string, readonly string[]>([
      ...manager.warnings(),
      ...agentHosts.map((host): [string, string[]] => [host.process.name, host.process.warnings()]),
    ]);
    await stopAgentHosts(agentHosts);
    await watch?.stop();
    await manager.stop();
  }
}

/** When the first and the last task reached each of {@link TASK_MILESTONES}, from the create; how many did, for one not reached. */
function recordTaskMilestones(record: RunRecord, watch: SwarmWatch, createStartedAt: number, expected: number): void {
  watch.milestoneTimes().forEach(({ firstAt, allAt, count }, index) => {
    const { name } = TASK_MILESTONES[index]!;
    record.milestones.push({ name: `first task ${name}`, ms: firstAt === undefined ? undefined : firstAt - createStartedAt });
    record.milestones.push(
      allAt === undefined ? { name: `all tasks ${name}`, note: `${format(count)} of ${format(expected)} only` } : { name: `all tasks ${name}`, ms: allAt - createStartedAt },
    );
  });
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

/** Polls `done` until it holds; resolves with the ms since `since`. DEADLINE_EXCEEDED naming `what` after `timeoutMs`. */
async function waitUntil(done: () => boolean, since: number, timeoutMs: number, what: string, assertGoing: () => void): Promise<number> {
  for (;;) {
    assertGoing();
    const elapsed = performance.now() - since;
    if (done()) return elapsed;
    if (elapsed > timeoutMs) throw new ShoalError(ErrorCode.DeadlineExceeded, `not ${what} within ${timeoutMs / 1000} s`);
    await sleep(POLL_MS);
  }
}

/** Waits until no node or task has been written for {@link QUIET_MS}: what the measurement after it sees is the swarm at rest. */
async function settle(watch: SwarmWatch, assertGoing: () => void): Promise<void> {
  await waitUntil(() => performance.now() - watch.lastChangeAt >= QUIET_MS, performance.now(), SETTLE_TIMEOUT_MS, 'settled (nodes and tasks unchanged for 2 s)', assertGoing);
}

/** Waits until `idleSeconds` after `since`, doing nothing but check that everything still runs. */
async function idleFor(since: number, idleSeconds: number, assertGoing: () => void): Promise<void> {
  const until = since + idleSeconds * 1000;
  while (performance.now() < until) {
    assertGoing();
    await sleep(Math.min(1_000, until - performance.now()));
  }
}

/**
 * Follows the tasks from the create until every expected one is RUNNING, adding to `timeline` how
 * many have reached each milestone in the store, and how many the nodes run, every second (and at
 * the end). Fails if no task moved on in the store for {@link STALL_MS}.
 */
async function followTasks(
  watch: SwarmWatch,
  runningOnNodes: () => number,
  since: number,
  timeline: TimelinePoint[],
  assertGoing: () => void,
  progress: ProgressLog,
): Promise<void> {
  const running = watch.milestoneTimes()[TASK_MILESTONES.length - 1]!;
  const describe = (counts: readonly number[]) =>
    `${TASK_MILESTONES.map(({ name }, index) => `${format(counts[index])} ${name}`).join(', ')}; ${format(runningOnNodes())} running on the nodes`;
  let lastCounts = '';
  let lastMoveAt = performance.now();
  let nextSampleAt = since + TIMELINE_INTERVAL_MS;
  for (;;) {
    assertGoing();
    const now = performance.now();
    const counts = watch.taskCounts();
    if (counts.join() !== lastCounts) {
      lastCounts = counts.join();
      lastMoveAt = now;
    }
    if (running.allAt !== undefined) {
      timeline.push({ atMs: running.allAt - since, counts, runningOnNodes: runningOnNodes() });
      return;
    }
    if (now >= nextSampleAt) {
      timeline.push({ atMs: now - since, counts, runningOnNodes: runningOnNodes() });
      progress(`  ${seconds(now - since)} s: ${describe(counts)}`);
      nextSampleAt += TIMELINE_INTERVAL_MS;
    }
    if (now - lastMoveAt > STALL_MS) throw new ShoalError(ErrorCode.DeadlineExceeded, `no task moved on for ${STALL_MS / 1000} s: ${describe(counts)}`);
    await sleep(POLL_MS);
  }
}
