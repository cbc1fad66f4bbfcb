import { TaskState, type Service } from '@shoal/proto';

/** How a service turns into tasks: the `mode` oneof of its spec. */
export type ServiceMode = 'replicated' | 'global' | 'replicated-job' | 'global-job';

/** The service's mode; undefined for a spec that sets none (nothing is orchestrated for it). */
export function serviceModeOf(service: Service): ServiceMode | undefined {
  const spec = service.spec;
  if (spec?.replicated !== undefined) return 'replicated';
  if (spec?.global !== undefined) return 'global';
  if (spec?.replicatedJob !== undefined) return 'replicated-job';
  if (spec?.globalJob !== undefined) return 'global-job';
  return undefined;
}

/** Jobs run their tasks to completion instead of keeping them running. */
export function isJobMode(mode: ServiceMode): boolean {
  return mode === 'replicated-job' || mode === 'global-job';
}

/**
 * Whether the mode places one task per node (slot 0, node preset at creation), so a task's place is
 * its node; otherwise it is its slot number.
 */
export function isPerNodeMode(mode: ServiceMode): boolean {
  return mode === 'global' || mode === 'global-job';
}

/** The desired state of a started task: RUNNING for services, COMPLETE for jobs. */
export function startedStateOf(mode: ServiceMode): TaskState {
  return isJobMode(mode) ? TaskState.COMPLETE : TaskState.RUNNING;
}
