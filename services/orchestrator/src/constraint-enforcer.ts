import { TaskState, TaskStatus, type Task } from '@shoal/proto';
import { byNodeId, versionOf } from '@shoal/store';
import { meetsConstraints } from './constraints.js';
import { isDrained, isPaused } from './nodes.js';
import type { Plan } from './plan.js';
import { createdAtMs } from './tasks.js';

/** The status message of a task the constraint enforcer rejects (swarmkit's). */
export const REJECTED_MESSAGE = 'task rejected by constraint enforcer';
/** The status error of a task the constraint enforcer rejects (swarmkit's). */
export const REJECTED_ERR = 'assigned node no longer meets constraints';

/**
 * Plans the constraint enforcer's rejections for one node (swarmkit's `constraintenforcer`): when an
 * active node no longer meets a task's placement constraints, or its resources no longer cover the
 * reservations of the tasks meant to run there, the task's status becomes REJECTED, and the
 * orchestrator replaces it like any task that stopped. Desired state stays the orchestrator's.
 * Reservations are counted oldest task first, so the newest tasks are the ones rejected. Drained
 * nodes are left to the orchestrators, which stop all their tasks, and paused ones keep theirs.
 */
export function enforceConstraints(plan: Plan, nodeId: string): void {
  const node = plan.tx.get('node', nodeId);
  if (node === undefined || isDrained(node) || isPaused(node)) return;
  // A rejection cannot be taken back: it must be decided on the node as it still is when committed.
  plan.preconditions.push({ kind: 'node', id: node.id, version: versionOf(node) });
  let memory = node.description?.resources?.memoryBytes ?? 0n;
  let nanoCpus = node.description?.resources?.nanoCpus ?? 0n;
  const tasks = plan.tx
    .find('task', byNodeId(node.id))
    .filter(isMeantToRun)
    .sort((a, b) => createdAtMs(a) - createdAtMs(b));
  for (const task of tasks) {
    const reserved = task.spec?.resources?.reservations;
    const fits = reserved === undefined || (reserved.memoryBytes <= memory && reserved.nanoCpus <= nanoCpus);
    if (!fits || !meetsConstraints(node, task.spec?.placement?.constraints ?? [])) {
      const status = { ...task.status, state: TaskState.REJECTED, message: REJECTED_MESSAGE, err: REJECTED_ERR, timestamp: plan.now };
      plan.setStatus(task, TaskStatus.fromPartial(status));
      continue;
    }
    memory -= reserved?.memoryBytes ?? 0n;
    nanoCpus -= reserved?.nanoCpus ?? 0n;
  }
}

/** A task the orchestrator wants on its node (desired READY or RUNNING) that has not stopped yet: one a rejection can still stop. */
function isMeantToRun(task: Task): boolean {
  const state = task.status?.state ?? TaskState.NEW;
  return task.desiredState >= TaskState.ASSIGNED && task.desiredState <= TaskState.RUNNING && state <= TaskState.RUNNING;
}
