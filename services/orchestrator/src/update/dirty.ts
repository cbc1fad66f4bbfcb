import { isDeepStrictEqual } from 'node:util';
import { EndpointSpec, TaskSpec, TaskState, type Service, type Task } from '@shoal/proto';

type Canonical = Record<string, unknown>;

/**
 * Task specs as proto3 JSON, remembered per spec object: specs are never changed in place (the store
 * hands them out frozen and shares them between reads), and the orchestrator asks about the same
 * tasks on every pass. In that form fields at their default value are left out, so two specs that
 * differ only in how they spell "unset" (absent, `undefined`, empty) compare equal, and maps compare
 * regardless of key order.
 */
const canonicalSpecs = { withPullOptions: new WeakMap<TaskSpec, Canonical>(), withoutPullOptions: new WeakMap<TaskSpec, Canonical>() };

function canonicalTaskSpec(spec: TaskSpec | undefined, ignorePullOptions: boolean): Canonical {
  if (spec === undefined) return canonicalOf(undefined, ignorePullOptions);
  const cache = ignorePullOptions ? canonicalSpecs.withoutPullOptions : canonicalSpecs.withPullOptions;
  let canonical = cache.get(spec);
  if (canonical === undefined) cache.set(spec, (canonical = canonicalOf(spec, ignorePullOptions)));
  return canonical;
}

function canonicalOf(spec: TaskSpec | undefined, ignorePullOptions: boolean): Canonical {
  // fromPartial copies deeply, so the copy is ours to change.
  const normalized = TaskSpec.fromPartial(spec ?? {});
  if (ignorePullOptions && normalized.container !== undefined) normalized.container.pullOptions = undefined;
  return TaskSpec.toJSON(normalized) as Canonical;
}

const canonicalEndpointSpec = (spec: EndpointSpec | undefined) => EndpointSpec.toJSON(EndpointSpec.fromPartial(spec ?? {}));

/** A task past pulling its image and not on its way out: a change of registry credentials alone must not replace it. */
function hasPulledImage(task: Task): boolean {
  const state = task.status?.state ?? TaskState.NEW;
  return task.desiredState <= TaskState.RUNNING && state >= TaskState.READY && state <= TaskState.RUNNING;
}

/**
 * Whether `task` no longer matches `service` and must be replaced by a rollout (swarmkit's
 * `orchestrator.IsTaskDirty`). A task made from the service's current spec version is clean. Otherwise
 * it is dirty only if its task spec, or the endpoint spec it was allocated for, differs from the
 * service's: a spec update that leaves the task template alone (scaling, a new update config) replaces
 * nothing, while a bumped `forceUpdate` counter (`docker service update --force`) makes every task
 * dirty. Registry credentials (`pullOptions`) are ignored for a task that already has its image.
 *
 * Unlike swarmkit, a change of placement constraints alone makes the task dirty even when its node
 * still satisfies them: judging that needs the scheduler's constraint matching.
 */
export function isTaskDirty(service: Service, task: Task): boolean {
  const serviceVersion = service.specVersion?.index;
  if (serviceVersion !== undefined && serviceVersion === task.specVersion?.index) return false;

  const ignorePullOptions = hasPulledImage(task);
  if (!isDeepStrictEqual(canonicalTaskSpec(service.spec?.task, ignorePullOptions), canonicalTaskSpec(task.spec, ignorePullOptions))) return true;
  return task.endpoint !== undefined && !isDeepStrictEqual(canonicalEndpointSpec(service.spec?.endpoint), canonicalEndpointSpec(task.endpoint.spec));
}

/**
 * Whether a slot (the live tasks of one replica slot, or of one node for a global service) needs the
 * rollout's attention: it holds more than one task (an interrupted start-first replacement), or its
 * task is dirty.
 */
export function isSlotDirty(service: Service, slot: readonly Task[]): boolean {
  return slot.length > 1 || (slot.length === 1 && isTaskDirty(service, slot[0]!));
}
