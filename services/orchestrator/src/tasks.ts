import type { Service, Task } from '@shoal/proto';

/** Groups `items` by `keyOf`, keeping their order within each group and the groups in order of first appearance. */
export function groupBy<K, T>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

/**
 * When the task's status was last observed, in epoch milliseconds: the manager's `appliedAt` when set
 * (manager clocks are trusted over agents'), else the status timestamp; -Infinity when neither is.
 */
export function statusTimeMs(task: Task): number {
  return (task.status?.appliedAt ?? task.status?.timestamp)?.getTime() ?? Number.NEGATIVE_INFINITY;
}

/** When the store committed the task's creation, in epoch milliseconds; +Infinity for a task not committed yet (newer than any that is). */
export function createdAtMs(task: Task): number {
  return task.meta?.createdAt?.getTime() ?? Number.POSITIVE_INFINITY;
}

/** The newest observation among `tasks` (by {@link statusTimeMs}); undefined for none. */
export function newestByStatusTime(tasks: readonly Task[]): Task | undefined {
  return tasks.reduce<Task | undefined>((newest, task) => (newest === undefined || statusTimeMs(task) > statusTimeMs(newest) ? task : newest), undefined);
}

/**
 * Whether the task was made from another spec than the service's current one: its spec version
 * differs, or `docker service update --force` bumped the force-update counter since.
 */
export function isOutdated(task: Task, service: Service): boolean {
  return task.specVersion?.index !== service.specVersion?.index || (task.spec?.forceUpdate ?? 0n) !== (service.spec?.task?.forceUpdate ?? 0n);
}
