import { TaskState, type Task } from '@shoal/proto';
import { byServiceId, type ReadTx } from '@shoal/store';
import { placeOf } from './places.js';
import type { Plan } from './plan.js';
import { isJobMode, serviceModeOf } from './service-mode.js';
import { groupBy, statusTimeMs } from './tasks.js';

/** Tasks kept per slot (or per node) when the cluster sets no limit: swarmkit's `defaultTaskHistoryRetentionLimit`. */
export const DEFAULT_TASK_HISTORY_RETENTION_LIMIT = 5;

/** The cluster's task history retention limit; a negative limit keeps every task. */
export function taskHistoryRetentionLimit(tx: ReadTx): number {
  const limit = tx.list('cluster')[0]?.spec?.orchestration?.taskHistoryRetentionLimit;
  return limit === undefined ? DEFAULT_TASK_HISTORY_RETENTION_LIMIT : Number(limit);
}

/** A task removed by a scale-down or a service delete that has stopped, or never reached a node: nothing is left to stop. */
function isStoppedRemoval(task: Task): boolean {
  const state = task.status?.state ?? TaskState.NEW;
  return task.desiredState === TaskState.REMOVE && (state < TaskState.ASSIGNED || state >= TaskState.COMPLETE);
}

/** A task that is history: it stopped, or it will never run (shut down before reaching a node). */
function isHistory(task: Task): boolean {
  const state = task.status?.state ?? TaskState.NEW;
  return state > TaskState.RUNNING || (state < TaskState.ASSIGNED && task.desiredState > TaskState.RUNNING);
}

/**
 * Plans the task reaper's deletes for one service's tasks (swarmkit's `taskreaper`), or for the tasks
 * of no service when `serviceId` is `''`:
 * - a task removed by a scale-down or service delete, once it has stopped (or never reached a node);
 * - a task whose service is gone once the dispatcher has given up on it (ORPHANED);
 * - beyond the retention limit per slot (per node for a global service), the oldest history: only
 *   tasks that stopped or will never run, so a running task is never deleted. The limit is raised to
 *   the restart policy's `max_attempts + 1` so the restart history it counts survives. Jobs keep all
 *   their tasks, as in swarmkit: a job's completed task is what says its slot is done.
 */
export function reapTasks(plan: Plan, serviceId: string): void {
  const service = serviceId === '' ? undefined : plan.tx.get('service', serviceId);
  const kept: Task[] = [];
  for (const task of plan.tx.find('task', byServiceId(serviceId))) {
    if (isStoppedRemoval(task) || (service === undefined && task.status?.state === TaskState.ORPHANED)) plan.delete(task);
    else kept.push(task);
  }
  const mode = service === undefined ? undefined : serviceModeOf(service);
  if (service === undefined || mode === undefined || isJobMode(mode)) return;
  const retention = taskHistoryRetentionLimit(plan.tx);
  if (retention < 0) return;
  const maxAttempts = Number(service.spec?.task?.restart?.maxAttempts ?? 0n);
  const limit = maxAttempts > 0 ? Math.max(retention, maxAttempts + 1) : retention;
  for (const place of groupBy(kept, (task) => placeOf(task, mode)).values()) {
    if (place.length <= limit) continue;
    const oldestFirst = place.filter(isHistory).sort((a, b) => statusTimeMs(a) - statusTimeMs(b));
    for (const task of oldestFirst.slice(0, place.length - limit)) plan.delete(task);
  }
}
