import { parseTaskState, taskName, TaskState, type Service, type Task } from '@shoal/proto';
import { byDesiredState, byNodeId, byServiceId, type ReadTx } from '@shoal/store';
import { managerRead, type ApiContext } from '../cluster/context.js';
import { resolve } from '../cluster/resolve.js';
import { taskToDocker } from '../convert/task.js';
import { parseFilters, type Filters } from '../http/filters.js';
import { ReplyCache } from '../http/reply-cache.js';
import type { Router } from '../http/router.js';

const taskFilterKeys = ['_up-to-date', 'desired-state', 'id', 'label', 'name', 'node', 'service'] as const;

/**
 * The tasks a filter can narrow down through an index before the rest are checked one by one:
 * by service (the CLI's progress loop), by node (`node ps`), or by desired state; else all.
 */
function candidates(tx: ReadTx, serviceIds: readonly string[], nodeIds: readonly string[], desired: readonly TaskState[]): Task[] {
  if (serviceIds.length > 0) return serviceIds.flatMap((id) => tx.find('task', byServiceId(id)));
  if (nodeIds.length > 0) return nodeIds.flatMap((id) => tx.find('task', byNodeId(id)));
  if (desired.length > 0) return desired.flatMap((state) => tx.find('task', byDesiredState(state)));
  return tx.list('task');
}

/** A task made from its service's current spec (`_up-to-date`): it carries the service's spec version. */
function isUpToDate(task: Task, service: Service | undefined): boolean {
  return service !== undefined && task.specVersion?.index === service.specVersion?.index;
}

/** Tasks as `GET /tasks?filters=` selects them, with dockerd's name resolution for `service` and `node`. */
function selectTasks(tx: ReadTx, filters: Filters): Task[] {
  // dockerd resolves each service and node filter value as a path would (ID, name or prefix) and 404s on none.
  const serviceIds = filters.values('service').map((input) => resolve(tx, 'service', input).id);
  const nodeIds = filters.values('node').map((input) => resolve(tx, 'node', input).id);
  // `accepted` is what dockerd's filter calls the desired state of tasks being prepared.
  const desired = filters.values('desired-state').map((name) => (name === 'accepted' ? TaskState.ACCEPTED : parseTaskState(name)));
  const upToDate = filters.has('_up-to-date') ? filters.boolean('_up-to-date') : undefined;
  const services = new Map<string, Service | undefined>();
  const serviceOf = (id: string) => {
    if (!services.has(id)) services.set(id, tx.get('service', id));
    return services.get(id);
  };
  const wantedServices = new Set(serviceIds);
  const wantedNodes = new Set(nodeIds);
  return candidates(tx, serviceIds, nodeIds, desired).filter(
    (task) =>
      (wantedServices.size === 0 || wantedServices.has(task.serviceId)) &&
      (wantedNodes.size === 0 || wantedNodes.has(task.nodeId)) &&
      (desired.length === 0 || desired.includes(task.desiredState)) &&
      filters.matchesPrefix('id', task.id) &&
      (!filters.has('name') || filters.matchesPrefix('name', taskName(task))) &&
      // A task's labels filter is its service's labels, as they were when the task was made (the service may be gone).
      filters.matchesLabels('label', task.serviceAnnotations?.labels ?? serviceOf(task.serviceId)?.spec?.annotations?.labels ?? {}) &&
      (upToDate === undefined || isUpToDate(task, serviceOf(task.serviceId)) === upToDate),
  );
}

/** `/tasks`: list with every filter the CLI sends, inspect by ID or unique prefix. */
export function taskRoutes(router: Router, context: ApiContext): void {
  const replies = new ReplyCache();
  router.on('GET', '/tasks', async ({ query }) => {
    const filters = parseFilters(query.get('filters'));
    filters.validateKeys(taskFilterKeys);
    const serializedJson = await managerRead(context, (tx) =>
      replies.serialized(query.toString(), tx.version, () => selectTasks(tx, filters).map(taskToDocker)),
    );
    return { status: 200, serializedJson };
  });

  router.on('GET', '/tasks/{id}', async ({ params }) => {
    const task = await managerRead(context, (tx) => resolve(tx, 'task', params.id!));
    return { status: 200, json: taskToDocker(task) };
  });
}
