import { Service } from './gen/shoal/v1/objects.js';
import { UpdateStatus_UpdateState, type JobStatus } from './gen/shoal/v1/types.js';
import type { ServiceSpec } from './gen/shoal/v1/specs.js';
import { newId } from './identity.js';

/*
 * How a user's spec change is recorded on a Service: what the api writes, and what simulations
 * write in its place. The control loops rely on these rules (spec versions are never reused;
 * previousSpec is what a rollback returns to; a job's update is a new run).
 */

/** A job's run record as swarmkit starts it; none for a service that is not a job. */
function jobStatusOf(spec: ServiceSpec, iteration: bigint, now: Date): JobStatus | undefined {
  if (spec.replicatedJob === undefined && spec.globalJob === undefined) return undefined;
  return { jobIteration: { index: iteration }, lastExecution: now };
}

/**
 * The version a new spec gets: above both the current and the previous one. The highest version a
 * service ever had is always one of those two (an update keeps the old spec as previous, a rollback
 * swaps them), so a version is never reused, even after a rollback: the updater takes equal versions
 * to mean equal specs.
 */
function nextSpecVersion(service: Service): bigint {
  const current = service.specVersion?.index ?? 0n;
  const previous = service.previousSpecVersion?.index ?? 0n;
  return (current > previous ? current : previous) + 1n;
}

/** A new service with `spec`: spec version 1 and, for a job, its first run. */
export function newService(spec: ServiceSpec, now: Date): Service {
  return Service.fromPartial({ id: newId(), spec, specVersion: { index: 1n }, jobStatus: jobStatusOf(spec, 0n, now) });
}

/**
 * `service` with a new `spec`: a new spec version, the old spec kept as the previous one, the update
 * status cleared (the orchestrator reports the new rollout's progress) and, for a job, a new run.
 */
export function serviceWithSpec(service: Service, spec: ServiceSpec, now: Date): Service {
  return Service.fromPartial({
    ...service,
    spec,
    specVersion: { index: nextSpecVersion(service) },
    previousSpec: service.spec,
    previousSpecVersion: service.specVersion,
    updateStatus: undefined,
    jobStatus: jobStatusOf(spec, (service.jobStatus?.jobIteration?.index ?? 0n) + 1n, now),
  });
}

/** `service` rolled back (`docker service rollback`): current and previous spec swapped, the rollback started. */
export function serviceRolledBack(service: Service & { previousSpec: ServiceSpec }, now: Date): Service {
  return Service.fromPartial({
    ...service,
    spec: service.previousSpec,
    specVersion: service.previousSpecVersion,
    previousSpec: service.spec,
    previousSpecVersion: service.specVersion,
    updateStatus: { state: UpdateStatus_UpdateState.ROLLBACK_STARTED, startedAt: now, message: 'manually requested rollback' },
  });
}
