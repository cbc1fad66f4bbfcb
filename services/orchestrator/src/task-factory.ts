import { newId, Task, TaskState, type Service } from '@shoal/proto';
import { isJobMode, serviceModeOf, startedStateOf } from './service-mode.js';

/**
 * A new task of `service`, as swarmkit's `orchestrator.NewTask` makes one: the service's current task
 * spec and spec version, its annotations, status NEW ("created" at `now`), and desired state RUNNING
 * (COMPLETE, with the service's current job iteration, for a job).
 *
 * @param slot The replica slot (from 1) of a replicated service or job; 0 for a global one.
 * @param nodeId The node a global task is preset to; `''` for a replicated one, which the scheduler places.
 */
export function newTask(service: Service, slot: bigint, nodeId: string, now: Date): Task {
  const mode = serviceModeOf(service);
  const job = mode !== undefined && isJobMode(mode);
  return Task.fromPartial({
    id: newId(),
    serviceId: service.id,
    slot,
    nodeId,
    spec: service.spec?.task,
    specVersion: service.specVersion,
    serviceAnnotations: service.spec?.annotations,
    annotations: { name: '' },
    status: { state: TaskState.NEW, message: 'created', timestamp: now },
    desiredState: mode === undefined ? TaskState.RUNNING : startedStateOf(mode),
    jobIteration: job ? (service.jobStatus?.jobIteration ?? { index: 0n }) : undefined,
  });
}
