import { TaskState, type Service, type Task } from '@shoal/proto';
import { byServiceId } from '@shoal/store';
import { lowestFreeSlots, occupiedPlaces, placeOf, requestUpdate, restartStopped } from './places.js';
import type { Plan } from './plan.js';
import type { RestartSupervisor } from './restart.js';
import { newTask } from './task-factory.js';
import { groupBy } from './tasks.js';

const mode = 'replicated';

/**
 * The order to keep a service's slots in when it scales down: the surplus is taken from the end.
 * As in swarmkit, a slot is ranked by how many of the service's slots on its node come before it
 * (so nodes with the most replicas lose them first); among equals, slots running a task come first
 * (so non-running ones go first), and then lower slot numbers (so the highest go first). A slot that
 * is not one task on a known node ranks last.
 */
function keepOrder(slots: ReadonlyMap<bigint, Task[]>): bigint[] {
  const isRunning = (tasks: readonly Task[]) => tasks.some((task) => task.status?.state === TaskState.RUNNING);
  const bySlot = [...slots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const runningFirst = bySlot.sort(([, a], [, b]) => Number(isRunning(b)) - Number(isRunning(a)));
  const slotsOnNode = new Map<string, number>();
  const ranked = runningFirst.map(([slot, tasks]) => {
    const only = tasks.length === 1 ? tasks[0] : undefined;
    if (only === undefined || only.nodeId === '') return { slot, rank: Number.POSITIVE_INFINITY };
    const rank = (slotsOnNode.get(only.nodeId) ?? 0) + 1;
    slotsOnNode.set(only.nodeId, rank);
    return { slot, rank };
  });
  return ranked.sort((a, b) => a.rank - b.rank).map(({ slot }) => slot);
}

/**
 * Reconciles a replicated service (swarmkit's replicated orchestrator): restarts its stopped tasks,
 * starts delayed replacements that are due, then keeps exactly `replicas` slots occupied. Scaling up
 * creates tasks in the lowest free slots; scaling down sets desired REMOVE on every task of the
 * surplus slots (the agent stops them and the reaper deletes them). The slots it keeps go to the
 * updater when they run an outdated spec.
 */
export function reconcileReplicated(plan: Plan, service: Service, restarts: RestartSupervisor): void {
  const tasks = plan.tx.find('task', byServiceId(service.id));
  restartStopped(plan, service, mode, tasks, restarts);
  restarts.startDue(plan, service, mode, tasks);

  const after = plan.tasksAfter(tasks);
  const occupied = occupiedPlaces(after, service, mode) as Map<bigint, Task[]>;
  const replicas = Number(service.spec?.replicated?.replicas ?? 0n);
  if (occupied.size <= replicas) {
    for (const slot of lowestFreeSlots(occupied.keys(), replicas - occupied.size)) plan.create(newTask(service, slot, '', plan.now));
    requestUpdate(plan, service, [...occupied.values()]);
    return;
  }
  const order = keepOrder(occupied);
  const tasksBySlot = groupBy(after, (task) => placeOf(task, mode));
  for (const slot of order.slice(replicas)) {
    for (const task of tasksBySlot.get(slot) ?? []) plan.setDesiredState(task, TaskState.REMOVE);
  }
  requestUpdate(
    plan,
    service,
    order.slice(0, replicas).map((slot) => occupied.get(slot) ?? []),
  );
}
