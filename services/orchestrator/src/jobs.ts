import { NodeStatus_State, TaskState, type Node, type Service, type Task } from '@shoal/proto';
import { byServiceId } from '@shoal/store';
import { meetsConstraints } from './constraints.js';
import { isDrained, isPaused } from './nodes.js';
import { constraintsOf, lowestFreeSlots, occupiedPlaces, restartStopped } from './places.js';
import type { Plan } from './plan.js';
import type { RestartSupervisor } from './restart.js';
import type { ServiceMode } from './service-mode.js';
import { newTask } from './task-factory.js';

/*
 * Jobs (swarmkit's jobs orchestrator) run tasks to completion, once per job run: the API bumps the
 * service's job iteration to run it again. Each task carries the iteration it belongs to.
 */

function jobIterationOf(service: Service): bigint {
  return service.jobStatus?.jobIteration?.index ?? 0n;
}

/**
 * Plans the end of the tasks of earlier runs that have not finished (desired REMOVE), and returns
 * the tasks of the current run.
 */
function currentRun(plan: Plan, service: Service, tasks: readonly Task[]): Task[] {
  const iteration = jobIterationOf(service);
  const current: Task[] = [];
  for (const task of tasks) {
    if ((task.jobIteration?.index ?? 0n) === iteration) current.push(task);
    else if ((task.status?.state ?? TaskState.NEW) <= TaskState.RUNNING) plan.setDesiredState(task, TaskState.REMOVE);
  }
  return current;
}

/** The job's tasks of the current run, as the plan leaves them, by the places they occupy. */
function planRun(plan: Plan, service: Service, mode: ServiceMode, restarts: RestartSupervisor): Map<bigint | string, Task[]> {
  const tasks = plan.tx.find('task', byServiceId(service.id));
  const current = currentRun(plan, service, tasks);
  restartStopped(plan, service, mode, current, restarts);
  restarts.startDue(plan, service, mode, tasks);
  return occupiedPlaces(plan.tasksAfter(current), service, mode);
}

/**
 * Reconciles a replicated job: runs at most `maxConcurrent` tasks at once until `totalCompletions`
 * have completed (0 meaning `maxConcurrent`), each in its own slot from 1, so a failed task is
 * restarted in its slot under the restart policy. A slot whose task stopped for good (the policy
 * gives up on it) is not run again in the same job run.
 */
export function reconcileReplicatedJob(plan: Plan, service: Service, restarts: RestartSupervisor): void {
  const { maxConcurrent, totalCompletions } = service.spec?.replicatedJob ?? { maxConcurrent: 0n, totalCompletions: 0n };
  const total = Number(totalCompletions === 0n ? maxConcurrent : totalCompletions);
  const occupied = planRun(plan, service, 'replicated-job', restarts);
  const running = [...occupied.values()].filter(
    (place) => !place.some((task) => task.status?.state === TaskState.COMPLETE) && place.some((task) => task.desiredState <= TaskState.COMPLETE),
  ).length;
  const wanted = Math.min(Number(maxConcurrent) - running, total - occupied.size);
  for (const slot of lowestFreeSlots(occupied.keys(), Math.max(0, wanted))) plan.create(newTask(service, slot, '', plan.now));
}

/**
 * Whether a global job runs on the node: it is active, ready and meets the constraints, and it
 * existed when the job run started (a node joining later does not run it; as in swarmkit this is a
 * best-effort comparison of creation times).
 */
function runsJob(node: Node, constraints: readonly string[], runStartedMs: number): boolean {
  return (
    !isDrained(node) &&
    !isPaused(node) &&
    node.status?.state === NodeStatus_State.READY &&
    meetsConstraints(node, constraints) &&
    (node.meta?.createdAt?.getTime() ?? Number.POSITIVE_INFINITY) < runStartedMs
  );
}

/** Reconciles a global job: one task per eligible node (see {@link runsJob}) in each job run, restarted on its node under the restart policy. */
export function reconcileGlobalJob(plan: Plan, service: Service, restarts: RestartSupervisor): void {
  const occupied = planRun(plan, service, 'global-job', restarts);
  const constraints = constraintsOf(service);
  const runStartedMs = (service.jobStatus?.lastExecution ?? service.meta?.createdAt)?.getTime() ?? Number.NEGATIVE_INFINITY;
  for (const node of plan.tx.list('node')) {
    if (!occupied.has(node.id) && runsJob(node, constraints, runStartedMs)) plan.create(newTask(service, 0n, node.id, plan.now));
  }
}
