import { errors } from '@shoal/errors';
import {
  NodeStatus_State,
  PortConfig_PublishMode,
  TaskState,
  type PortConfig,
  type ServiceSpec,
  type Task,
  newService,
  serviceRolledBack,
  serviceWithSpec,
  type Service,
} from '@shoal/proto';
import { byServiceId, type ReadTx } from '@shoal/store';
import { commit, createNamed, managerRead, requireManager, type ApiContext } from '../cluster/context.js';
import { resolve } from '../cluster/resolve.js';
import { serviceSpecFromDocker, serviceToDocker } from '../convert/service.js';
import { validateServiceSpec, validateServiceSpecUpdate } from '../convert/service-validation.js';
import { parseFilters } from '../http/filters.js';
import { ReplyCache } from '../http/reply-cache.js';
import type { Router } from '../http/router.js';
import { queryFlag, requireCurrent, requiredBody, requiredVersion } from './request-rules.js';

const serviceFilterKeys = ['id', 'label', 'mode', 'name'] as const;

/** Docker's name for a service's mode, as the `mode` filter takes it. */
function modeName(spec: ServiceSpec | undefined): string {
  if (spec?.global !== undefined) return 'global';
  if (spec?.replicatedJob !== undefined) return 'replicated-job';
  if (spec?.globalJob !== undefined) return 'global-job';
  return 'replicated';
}

/**
 * The spec as stored: network targets given by name (as `stack deploy` sends them) resolved to IDs,
 * and every referenced secret and config checked to exist.
 */
function resolveReferences(tx: ReadTx, spec: ServiceSpec): ServiceSpec {
  const task = spec.task;
  if (task === undefined) return spec;
  const networks = task.networks.map((attachment) => ({ ...attachment, target: resolve(tx, 'network', attachment.target).id }));
  const container = task.container;
  for (const reference of container?.secrets ?? []) {
    if (tx.get('secret', reference.secretId) === undefined) throw errors.invalidArgument(`secret ${reference.secretName || reference.secretId} not found`);
  }
  for (const reference of container?.configs ?? []) {
    if (tx.get('config', reference.configId) === undefined) throw errors.invalidArgument(`config ${reference.configName || reference.configId} not found`);
  }
  return { ...spec, task: { ...task, networks } };
}

const protocolKey = (port: PortConfig) => `${port.publishedPort}/${port.protocol}`;

/** Refuses ingress ports another service publishes, with swarmkit's message. */
function requirePortsFree(tx: ReadTx, spec: ServiceSpec, self: string | undefined): void {
  const wanted = new Map(
    (spec.endpoint?.ports ?? [])
      .filter((port) => port.publishMode === PortConfig_PublishMode.INGRESS && port.publishedPort !== 0)
      .map((port) => [protocolKey(port), port]),
  );
  if (wanted.size === 0) return;
  for (const other of tx.list('service')) {
    if (other.id === self) continue;
    const held = [...(other.spec?.endpoint?.ports ?? []), ...(other.endpoint?.ports ?? [])];
    const clash = held.find((port) => port.publishMode === PortConfig_PublishMode.INGRESS && wanted.has(protocolKey(port)));
    if (clash !== undefined) {
      throw errors.invalidArgument(`port '${clash.publishedPort}' is already in use by service '${other.spec?.annotations?.name ?? ''}' (${other.id}) as an ingress port`);
    }
  }
}

/** What `service ls` shows as REPLICAS, counted as dockerd does: running tasks on nodes that are not down. */
function serviceStatus(service: Service, tasks: readonly Task[], downNodes: ReadonlySet<string>): { running: number; desired: number; completed: number } {
  const onLiveNode = (task: Task) => task.nodeId !== '' && !downNodes.has(task.nodeId);
  const running = tasks.filter((task) => onLiveNode(task) && task.status?.state === TaskState.RUNNING).length;
  const completed = tasks.filter((task) => task.status?.state === TaskState.COMPLETE).length;
  const spec = service.spec;
  let desired: number;
  if (spec?.replicated !== undefined) desired = Number(spec.replicated.replicas);
  else if (spec?.replicatedJob !== undefined) {
    const total = Number(spec.replicatedJob.totalCompletions || spec.replicatedJob.maxConcurrent);
    desired = Math.min(Number(spec.replicatedJob.maxConcurrent), Math.max(0, total - completed));
  } else {
    // Global services want one task per live node: those the orchestrator wants running (or, for a global job, completed).
    const wanted = spec?.globalJob !== undefined ? TaskState.COMPLETE : TaskState.RUNNING;
    desired = tasks.filter((task) => onLiveNode(task) && task.desiredState === wanted).length;
  }
  return { running, desired, completed };
}

/**
 * The tasks of each service: through the service index for a few services, in one pass over all
 * tasks for many (1,000 index lookups cost far more than one walk over 100,000 tasks).
 */
function tasksByService(tx: ReadTx, serviceIds: readonly string[]): Map<string, Task[]> {
  const grouped = new Map<string, Task[]>(serviceIds.map((id) => [id, []]));
  if (serviceIds.length <= 16) {
    for (const id of serviceIds) grouped.set(id, tx.find('task', byServiceId(id)));
    return grouped;
  }
  for (const task of tx.list('task')) grouped.get(task.serviceId)?.push(task);
  return grouped;
}

function downNodesIn(tx: ReadTx): Set<string> {
  return new Set(tx.list('node').filter((node) => node.status?.state === NodeStatus_State.DOWN).map((node) => node.id));
}

const nameConflict = (name: string) => errors.alreadyExists(`name conflicts with an existing object: service ${name} already exists`);

/** `/services`: create with defaults, list (with `status`), inspect (with `insertDefaults`), update and rollback, remove. */
export function serviceRoutes(router: Router, context: ApiContext): void {
  router.on('POST', '/services/create', async ({ body }) => {
    const { cache } = await requireManager(context);
    const requested = serviceSpecFromDocker(requiredBody(body));
    validateServiceSpec(requested);
    const name = requested.annotations?.name ?? '';
    const service = await cache.read((tx) => {
      const spec = resolveReferences(tx, requested);
      requirePortsFree(tx, spec, undefined);
      return newService(spec, new Date());
    });
    await createNamed(context, { action: 'create', kind: 'service', object: service }, () => nameConflict(name));
    return { status: 201, json: { ID: service.id } };
  });

  const replies = new ReplyCache();
  router.on('GET', '/services', async ({ query }) => {
    const rawQuery = query.toString();
    const filters = parseFilters(query.get('filters'));
    filters.validateKeys(serviceFilterKeys);
    const withStatus = queryFlag(query, 'status');
    const serializedJson = await managerRead(context, (tx) =>
      replies.serialized(rawQuery, tx.version, () => {
        const selected = tx.list('service').filter(
          (service) =>
            filters.matchesPrefix('id', service.id) &&
            filters.matchesPrefix('name', service.spec?.annotations?.name ?? '') &&
            filters.matchesLabels('label', service.spec?.annotations?.labels ?? {}) &&
            filters.matchesExact('mode', modeName(service.spec)),
        );
        if (!withStatus) return selected.map((service) => serviceToDocker(service, { insertDefaults: false }));
        const downNodes = downNodesIn(tx);
        const tasks = tasksByService(tx, selected.map((service) => service.id));
        return selected.map((service) =>
          serviceToDocker(service, { insertDefaults: false, serviceStatus: serviceStatus(service, tasks.get(service.id) ?? [], downNodes) }),
        );
      }),
    );
    return { status: 200, serializedJson };
  });

  router.on('GET', '/services/{id}', async ({ params, query }) => {
    const service = await managerRead(context, (tx) => resolve(tx, 'service', params.id!));
    return { status: 200, json: serviceToDocker(service, { insertDefaults: queryFlag(query, 'insertDefaults') }) };
  });

  router.on('POST', '/services/{id}/update', async ({ params, query, body }) => {
    const { cache } = await requireManager(context);
    const version = requiredVersion(query, 'service');
    const rollback = query.get('rollback') === 'previous';
    const requested = rollback ? undefined : serviceSpecFromDocker(requiredBody(body));
    if (requested !== undefined) validateServiceSpec(requested);
    const updated = await cache.read((tx) => {
      const service = resolve(tx, 'service', params.id!);
      requireCurrent('service', service.id, service.meta?.version?.index, version);
      if (rollback) {
        if (service.previousSpec === undefined) throw errors.failedPrecondition(`service ${service.id} does not have a previous spec`);
        return serviceRolledBack({ ...service, previousSpec: service.previousSpec }, new Date());
      }
      const spec = resolveReferences(tx, requested!);
      if (service.spec !== undefined) validateServiceSpecUpdate(service.spec, spec);
      requirePortsFree(tx, spec, service.id);
      return serviceWithSpec(service, spec, new Date());
    });
    await commit(context, [{ action: 'update', kind: 'service', object: updated }]);
    return { status: 200, json: { Warnings: null } };
  });

  router.on('DELETE', '/services/{id}', async ({ params }) => {
    const service = await managerRead(context, (tx) => resolve(tx, 'service', params.id!));
    await commit(context, [{ action: 'delete', kind: 'service', id: service.id }]);
    return { status: 200 };
  });
}
