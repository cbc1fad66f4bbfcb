import type { Task } from './gen/shoal/v1/objects.js';

/** The task fields its name derives from. */
export type NamedTask = Pick<Task, 'id' | 'slot' | 'nodeId' | 'annotations' | 'serviceAnnotations'>;

/**
 * Returns a task's name, as swarmkit's `naming.Task`: the task's own annotations name if it has
 * one, otherwise `<service name>.<slot>.<task id>`, or `<service name>.<node id>.<task id>` for a
 * global task (slot 0). The engine names the task's container after it, and the store indexes
 * tasks by it.
 */
export function taskName(task: NamedTask): string {
  const ownName = task.annotations?.name ?? '';
  if (ownName !== '') return ownName;
  const serviceName = task.serviceAnnotations?.name ?? '';
  const slotOrNode = task.slot === 0n ? task.nodeId : task.slot.toString();
  return `${serviceName}.${slotOrNode}.${task.id}`;
}
