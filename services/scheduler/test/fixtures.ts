import { Node, NodeStatus_State, Task, TaskState, type GenericResource } from '@shoal/proto';
import type { ScheduleResult } from '../src/core/index.js';

/** What `fromPartial` of a message accepts: any subset of its fields, at any depth. */
type PartialOf<T extends { fromPartial(object: never): unknown }> = Parameters<T['fromPartial']>[0];

/** Half a core and 1 GiB, in the units the proto uses. */
export const HALF_CPU = 500_000_000n;
export const GIB = 1n << 30n;

/** A READY, ACTIVE worker with 4 cores and 8 GiB, unless `overrides` says otherwise. */
export function node(id: string, overrides: PartialOf<typeof Node> = {}): Node {
  return Node.fromPartial({
    id,
    status: { state: NodeStatus_State.READY },
    description: { hostname: `host-${id}`, resources: { nanoCpus: 8n * HALF_CPU, memoryBytes: 8n * GIB } },
    ...overrides,
  });
}

/** One named unit of a generic resource, as a node advertises it and a task holds it. */
export function namedUnit(kind: string, value: string): GenericResource {
  return { namedResourceSpec: { kind, value } };
}

/** A reservation of `value` units of the generic resource `kind`, as a task asks for it. */
export function wantsGeneric(kind: string, value: bigint) {
  return { spec: { resources: { reservations: { generic: [{ discreteResourceSpec: { kind, value } }] } } } };
}

/** A PENDING task of `serviceId` at spec version 1, desired RUNNING, unless `overrides` says otherwise. */
export function task(id: string, serviceId = 'svc', overrides: PartialOf<typeof Task> = {}): Task {
  return Task.fromPartial({
    id,
    serviceId,
    specVersion: { index: 1n },
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.PENDING },
    ...overrides,
  });
}

/** `count` tasks `${prefix}1`… of one service, all alike. */
export function tasks(count: number, prefix: string, serviceId = 'svc', overrides: PartialOf<typeof Task> = {}): Task[] {
  return Array.from({ length: count }, (_, index) => task(`${prefix}${index + 1}`, serviceId, overrides));
}

/** A task as it sits on its node after an earlier placement: ASSIGNED there. */
export function placed(id: string, nodeId: string, serviceId = 'svc', overrides: PartialOf<typeof Task> = {}): Task {
  return task(id, serviceId, { nodeId, status: { state: TaskState.ASSIGNED }, ...overrides });
}

/** Where each task went, by task ID, and why each other one did not: the result in one comparable value. */
export function decisions(result: ScheduleResult): Record<string, string> {
  return Object.fromEntries([
    ...result.assigned.map(({ task, nodeId }) => [task.id, nodeId]),
    ...result.unschedulable.map(({ task, reason }) => [task.id, reason]),
  ]);
}

/** How many of the result's tasks went to each node. */
export function tasksPerNode(result: ScheduleResult): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { nodeId } of result.assigned) counts[nodeId] = (counts[nodeId] ?? 0) + 1;
  return counts;
}

