import { TaskState, type Service, type Task } from '@shoal/proto';
import { meetsConstraints } from './constraints.js';
import { isPaused, isUnavailable } from './nodes.js';
import type { Plan } from './plan.js';
import { updatableTasksInPlace, type RestartSupervisor } from './restart.js';
import { isPerNodeMode, startedStateOf, type ServiceMode } from './service-mode.js';
import { groupBy, isOutdated } from './tasks.js';

/*
 * A task's place in its service is where it stands in for one instance: its slot number for a
 * replicated service or job, its node for a global one. A restart replaces a task in the same place,
 * and the restart history and the task history the reaper keeps are counted per place.
 */

/** The key of the task's place: its slot, or its node for a per-node mode. */
export function placeOf(task: Task, mode: ServiceMode): bigint | string {
  return isPerNodeMode(mode) ? task.nodeId : task.slot;
}

/** The service's placement constraints. */
export function constraintsOf(service: Service): readonly string[] {
  return service.spec?.task?.placement?.constraints ?? [];
}

/**
 * The places the service occupies and each one's occupants (see `updatableTasksInPlace`). Tasks being
 * removed (desired REMOVE) are leaving and occupy nothing.
 */
export function occupiedPlaces(tasks: readonly Task[], service: Service, mode: ServiceMode): Map<bigint | string, Task[]> {
  const staying = tasks.filter((task) => task.desiredState !== TaskState.REMOVE);
  const occupied = new Map<bigint | string, Task[]>();
  for (const [place, placeTasks] of groupBy(staying, (task) => placeOf(task, mode))) {
    const occupants = updatableTasksInPlace(placeTasks, service, mode);
    if (occupants.length > 0) occupied.set(place, occupants);
  }
  return occupied;
}

/** The `count` lowest slot numbers (from 1) that are not `taken`. */
export function lowestFreeSlots(taken: Iterable<bigint | string>, count: number): bigint[] {
  const takenSlots = new Set(taken);
  const free: bigint[] = [];
  for (let slot = 1n; free.length < count; slot++) if (!takenSlots.has(slot)) free.push(slot);
  return free;
}

/**
 * Plans the restart of every task of the service that is meant to run but stopped (or, for a job,
 * stopped without completing), or that sits on a node that is gone, down or drained: a slot's task
 * is replaced in its slot, to be placed elsewhere. A per-node task is only replaced on its own node
 * while the node may run it; on a paused or no longer matching node it is shut down, and on an
 * unavailable one it is left for the reconcile to shut down with the node's other tasks.
 */
export function restartStopped(plan: Plan, service: Service, mode: ServiceMode, tasks: readonly Task[], restarts: RestartSupervisor): void {
  const started = startedStateOf(mode);
  const places = groupBy(tasks, (task) => placeOf(task, mode));
  for (const task of tasks) {
    if (task.desiredState > started || restarts.isDelayed(task.id, plan.now)) continue;
    const state = task.status?.state ?? TaskState.NEW;
    const node = task.nodeId === '' ? undefined : plan.tx.get('node', task.nodeId);
    const stopped = state > started;
    if (isPerNodeMode(mode)) {
      if (!stopped || node === undefined || isUnavailable(node)) continue;
      if (isPaused(node) || !meetsConstraints(node, constraintsOf(service))) {
        plan.setDesiredState(task, TaskState.SHUTDOWN);
        continue;
      }
    } else if (!stopped && !(task.nodeId !== '' && state < TaskState.COMPLETE && isUnavailable(node))) {
      continue;
    }
    restarts.restart(plan, service, mode, task, places.get(placeOf(task, mode)) ?? []);
  }
}

/** Raises the desired state of each task to SHUTDOWN. */
export function shutDown(plan: Plan, tasks: readonly Task[]): void {
  for (const task of tasks) plan.setDesiredState(task, TaskState.SHUTDOWN);
}

/** Hands the service's kept places to the rolling updater once the plan commits, if any of them runs an outdated task. */
export function requestUpdate(plan: Plan, service: Service, places: Task[][]): void {
  if (places.some((place) => place.some((task) => isOutdated(task, service)))) plan.updates.push({ service, slots: places });
}
