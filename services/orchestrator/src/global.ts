import type { Service, Task } from '@shoal/proto';
import { byServiceId } from '@shoal/store';
import { meetsConstraints } from './constraints.js';
import { isPaused, isUnavailable } from './nodes.js';
import { constraintsOf, occupiedPlaces, requestUpdate, restartStopped, shutDown } from './places.js';
import type { Plan } from './plan.js';
import type { RestartSupervisor } from './restart.js';
import { newTask } from './task-factory.js';

const mode = 'global';

/**
 * Reconciles a global service (swarmkit's global orchestrator): one task on every node that is not
 * down or drained and meets the service's constraints, created with the node preset. Tasks on a node
 * that is down, drained or no longer matching are shut down (not moved: another node has its own); a
 * paused node gets no new task and keeps the ones it has; the tasks of a node that is gone are
 * deleted, as no agent will ever report on them again. The nodes it keeps go to the updater when
 * they run an outdated spec.
 */
export function reconcileGlobal(plan: Plan, service: Service, restarts: RestartSupervisor): void {
  const tasks = plan.tx.find('task', byServiceId(service.id));
  restartStopped(plan, service, mode, tasks, restarts);
  restarts.startDue(plan, service, mode, tasks);

  const after = plan.tasksAfter(tasks);
  const occupied = occupiedPlaces(after, service, mode);
  const constraints = constraintsOf(service);
  const nodes = plan.tx.list('node');
  const kept: Task[][] = [];
  for (const node of nodes) {
    const occupants = occupied.get(node.id) ?? [];
    if (isUnavailable(node) || !meetsConstraints(node, constraints)) shutDown(plan, occupants);
    else if (isPaused(node)) continue;
    else if (occupants.length === 0) plan.create(newTask(service, 0n, node.id, plan.now));
    else kept.push(occupants);
  }
  const nodeIds = new Set(nodes.map((node) => node.id));
  for (const task of after) if (!nodeIds.has(task.nodeId)) plan.delete(task);
  requestUpdate(plan, service, kept);
}
