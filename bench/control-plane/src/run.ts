import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectBus, subjects, type BusConnection } from '@shoal/bus';
import { ErrorCode, ShoalError } from '@shoal/errors';
import { TaskState } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { FakeAgents } from '@shoal/sim';
import { byServiceId, type Change } from '@shoal/store';
import { StoreMirror } from '@shoal/store-client';
import { ControlPlane, SERVICE_NAMES, type ControlPlaneOptions } from './control-plane.js';
import { cpuPressure, measureCpu, type GroupCpu } from './proc.js';
import { MILESTONES, Progress, WRITERS } from './progress.js';
import { format, type Report } from './report.js';
import { seedCluster, workloadServices, type Workload } from './seed.js';

/** How long the control plane may take to settle on the seeded cluster before the measurement starts. */
const SETTLE_TIMEOUT_MS = 120_000;
/** Settled means, among other things, no commit but lease renewals for this long. */
const QUIET_MS = 1_000;
const SETTLE_POLL_MS = 50;
/** A run fails when no task has moved on for this long. */
const STALL_MS = 60_000;
/** The schedulers' heartbeat period (`SHOAL_SCHEDULER_HEARTBEAT`'s default). */
const SCHEDULER_HEARTBEAT_MS = 1_000;
/** How many of the warnings a service logged are quoted in the notes. */
const QUOTED_WARNINGS = 3;

/** One measured run: a workload on a control plane with a number of schedulers. */
export interface RunSpec extends ControlPlaneOptions {
  readonly title: string;
  readonly workload: Workload;
}

/**
 * Starts a fresh control plane, seeds the cluster, waits until every control loop is idle on it, then
 * creates the workload's services in one commit and times the way of their tasks to RUNNING, with
 * fake agents reporting each assigned task running. Records the run's column of the report. Fails
 * CANCELLED soon after `interrupt` aborts; the control plane is stopped whatever happens.
 */
export async function measureRun(report: Report, run: RunSpec, log: Logger, interrupt: AbortSignal): Promise<void> {
  report.beginRun(run.title);
  const plane = await ControlPlane.start(run);
  const assertGoing = () => {
    if (interrupt.aborted) throw new ShoalError(ErrorCode.Cancelled, 'interrupted');
    plane.assertRunning();
  };
  // The agents stop before the mirror: their last write resolves only once the mirror shows it.
  const stopAgents = new AbortController();
  const stopMirror = new AbortController();
  const mirror = new StoreMirror(plane.store, log.child({ module: 'mirror' }));
  let mirroring: Promise<void> = Promise.resolve();
  let agentsRunning: Promise<void> = Promise.resolve();
  let bus: BusConnection | undefined;
  try {
    assertGoing();
    await new Promise<void>((resolve) => {
      mirroring = mirror.run(stopMirror.signal, resolve);
    });
    bus = await connectBus({ url: plane.natsUrl, name: 'bench-control-plane', log });
    const schedulers = schedulersHeard(bus);
    const { network, nodeIds } = await seedCluster(plane.store);
    await settle(mirror, nodeIds.length, run.schedulers, schedulers, assertGoing);

    agentsRunning = new FakeAgents(mirror).run(stopAgents.signal);
    const services = workloadServices(run.workload, network);
    const expected = run.workload.services * run.workload.replicas;
    const cpu = measureCpu([
      ...SERVICE_NAMES.map((name) => ({ name, pids: plane.processesOf(name).map((service) => service.pid) })),
      { name: 'bench (mirror, fake agents)', pids: [process.pid] },
    ]);
    const progress = new Progress(mirror, services.map((service) => service.id), expected);
    const loadAtCreate = loadavg()[0];
    await plane.store.commit({ changes: services.map((object): Change => ({ action: 'create', kind: 'service', object })) });
    const acknowledgedMs = progress.elapsedMs();
    try {
      await progress.allRunning(STALL_MS, assertGoing);
    } finally {
      progress.stop();
      recordProgress(report, run.title, progress, acknowledgedMs, expected);
    }
    recordCpu(report, run.title, cpu(), progress.elapsedMs() / 1000, expected);
    // Other work on the shared machine slows every figure above, so each run says how busy it was.
    report.record(run.title, 'machine: load average (1 min) at the create', loadAtCreate, '', 1);
    report.record(run.title, 'machine: CPU pressure (some avg60) at all RUNNING', cpuPressure(), '%', 1);
    recordStoreCheck(report, run.title, mirror, services.map((service) => service.id));
    stopAgents.abort();
    await agentsRunning;
  } finally {
    // After a failure the agents' last write may fail too; the first failure is the one reported.
    stopAgents.abort();
    await Promise.allSettled([agentsRunning]);
    stopMirror.abort();
    await Promise.allSettled([mirroring]);
    await bus?.close();
    for (const service of plane.services) {
      const warnings = service.warnings();
      if (warnings.length === 0) continue;
      const quoted = [...new Set(warnings)].slice(0, QUOTED_WARNINGS).map((warning) => `"${warning}"`).join('; ');
      report.note(`${run.title}: ${service.name} logged ${warnings.length} warnings or errors, e.g. ${quoted}`);
    }
    await plane.stop();
  }
}

/** The scheduler instances heard on NATS so far (their heartbeats name them). */
function schedulersHeard(bus: BusConnection): ReadonlySet<string> {
  const heard = new Set<string>();
  bus.nc.subscribe(subjects.schedulerMembers, {
    callback: (err, message) => {
      if (err !== null) return;
      const { instanceId, leaving } = message.json<{ instanceId?: string; leaving?: boolean }>();
      if (typeof instanceId === 'string' && leaving !== true) heard.add(instanceId);
    },
  });
  return heard;
}

/**
 * Waits until the control plane has nothing left to do on the seeded cluster, so that the measurement
 * sees only the work the services cause: the orchestrator and the allocator hold their leases, the
 * allocator has given every node its ingress address, every scheduler has been heard (then one more
 * heartbeat, so each has heard the others and they share the services), and nothing but lease
 * renewals has been committed for {@link QUIET_MS}. `assertGoing` throws to give up (a crash, an interrupt).
 */
async function settle(mirror: StoreMirror, nodes: number, schedulers: number, heard: ReadonlySet<string>, assertGoing: () => void): Promise<void> {
  let lastWriteAt = performance.now();
  const unsubscribe = mirror.subscribe((commit) => {
    if (commit.events.some((event) => event.kind !== 'lease')) lastWriteAt = performance.now();
  });
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let schedulersAllHeardAt: number | undefined;
  try {
    for (;;) {
      assertGoing();
      const now = performance.now();
      const state = mirror.view((tx) => ({
        leases: new Set(tx.list('lease').filter((lease) => lease.holder !== '' && (lease.expiry?.getTime() ?? 0) > Date.now()).map((lease) => lease.name)),
        attachedNodes: tx.list('node').filter((node) => node.attachments.length > 0).length,
      }));
      if (heard.size >= schedulers) schedulersAllHeardAt ??= now;
      const settled =
        state.leases.has('orchestrator') &&
        state.leases.has('allocator') &&
        state.attachedNodes === nodes &&
        schedulersAllHeardAt !== undefined &&
        now - schedulersAllHeardAt >= SCHEDULER_HEARTBEAT_MS &&
        now - lastWriteAt >= QUIET_MS;
      if (settled) return;
      if (now > deadline) {
        throw new ShoalError(
          ErrorCode.DeadlineExceeded,
          `the control plane did not settle within ${SETTLE_TIMEOUT_MS / 1000} s: leases held ${[...state.leases].join(', ') || 'none'}, ` +
            `${state.attachedNodes} of ${nodes} nodes with an ingress address, ${heard.size} of ${schedulers} schedulers heard`,
        );
      }
      await sleep(SETTLE_POLL_MS);
    }
  } finally {
    unsubscribe();
  }
}

/** The run's milestones and the commits seen, by writer. */
function recordProgress(report: Report, run: string, progress: Progress, acknowledgedMs: number, expected: number): void {
  report.record(run, 'create commit acknowledged', acknowledgedMs, 'ms', 1);
  progress.milestones().forEach(({ firstMs, allMs, reached }, index) => {
    const { name } = MILESTONES[index]!;
    report.record(run, `first task ${name}`, firstMs === undefined ? undefined : firstMs / 1000, 's', 2);
    if (allMs === undefined) report.recordText(run, `all tasks ${name}`, `${format(reached)} of ${format(expected)} only`, 's');
    else report.record(run, `all tasks ${name}`, allMs / 1000, 's', 2);
  });
  const seconds = progress.lastCommitMs / 1000;
  const writers = [...progress.writers()];
  const commits = writers.reduce((sum, [, count]) => sum + count.commits, 0);
  const changes = writers.reduce((sum, [, count]) => sum + count.changes, 0);
  report.record(run, 'commits seen, create to last', commits, 'commits');
  report.record(run, 'commits/s', commits / seconds, 'commits/s');
  report.record(run, 'objects written/s', changes / seconds, 'objects/s');
  for (const writer of WRITERS) {
    const count = progress.writers().get(writer)!;
    if (count.commits > 0) report.recordText(run, `commits (objects): ${writer}`, `${format(count.commits)} (${format(count.changes)})`, 'commits (objects)');
  }
}

/** What the store holds once the run says all is RUNNING: a check that nothing was duplicated or lost. */
function recordStoreCheck(report: Report, run: string, mirror: StoreMirror, serviceIds: readonly string[]): void {
  const { tasks, running } = mirror.view((tx) => {
    const all = serviceIds.flatMap((id) => tx.find('task', byServiceId(id)));
    return { tasks: all.length, running: all.filter((task) => task.status?.state === TaskState.RUNNING && task.desiredState === TaskState.RUNNING).length };
  });
  report.recordText(run, 'tasks in the store at the end (RUNNING)', `${format(tasks)} (${format(running)})`, 'tasks');
}

/** Each group's CPU seconds over the run's window and as a share of one core, then the total and what it comes to per task. */
function recordCpu(report: Report, run: string, groups: readonly GroupCpu[], windowSeconds: number, tasks: number): void {
  const share = (seconds: number) => `${format((seconds / windowSeconds) * 100)}%`;
  for (const { name, seconds } of groups) {
    report.recordText(run, `CPU: ${name}`, `${seconds.map((each) => format(each, 1)).join(' + ')} (${seconds.map(share).join(' + ')})`, 's (% of a core)');
  }
  const total = groups.reduce((sum, { seconds }) => sum + seconds.reduce((groupSum, each) => groupSum + each, 0), 0);
  report.recordText(run, 'CPU: all of the above', `${format(total, 1)} (${share(total)})`, 's (% of a core)');
  report.record(run, 'CPU per task, all of the above', (total * 1000) / tasks, 'ms', 2);
}
