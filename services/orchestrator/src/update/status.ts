import { UpdateStatus, UpdateStatus_UpdateState, type Service } from '@shoal/proto';

/**
 * How a rollout moves a service's `updateStatus`, with swarmkit's exact messages (the docker CLI shows
 * them). Each transition takes the service as stored and returns it rewritten, or `undefined` when
 * the transition no longer applies, in which case nothing is written.
 *
 * The states run: (none) → UPDATING → COMPLETED or PAUSED, or ROLLBACK_STARTED (the updater's own
 * rollback, or the api's "manually requested rollback") → ROLLBACK_COMPLETED or ROLLBACK_PAUSED.
 * The api clears the status on every spec update, which is how a paused rollout resumes.
 */
export const statusMessages = {
  updating: 'update in progress',
  completed: 'update completed',
  rollbackCompleted: 'rollback completed',
  updatePaused: (taskId: string) => `update paused due to failure or early termination of task ${taskId}`,
  rollbackPaused: (taskId: string) => `rollback paused due to failure or early termination of task ${taskId}`,
  rolledBack: (taskId: string) => `update rolled back due to failure or early termination of task ${taskId}`,
} as const;

/** A rewrite of a stored service, or `undefined` to write nothing. */
export type ServiceTransition = (stored: Service) => Service | undefined;

const withStatus = (stored: Service, status: Partial<UpdateStatus>): Service => ({
  ...stored,
  updateStatus: UpdateStatus.fromPartial({ ...stored.updateStatus, ...status }),
});

/** Marks a rollout started, unless one already reports its progress (a rollback, or one resumed after a failover). */
export const startUpdate =
  (now: Date): ServiceTransition =>
  (stored) =>
    stored.updateStatus === undefined
      ? withStatus(stored, { state: UpdateStatus_UpdateState.UPDATING, startedAt: now, message: statusMessages.updating })
      : undefined;

/** Stops the rollout where it is: PAUSED, or ROLLBACK_PAUSED for a rollback. It stays so until the next spec update. */
export const pauseUpdate =
  (message: string): ServiceTransition =>
  (stored) => {
    if (stored.updateStatus === undefined) return undefined;
    const rollingBack = stored.updateStatus.state === UpdateStatus_UpdateState.ROLLBACK_STARTED;
    return withStatus(stored, { state: rollingBack ? UpdateStatus_UpdateState.ROLLBACK_PAUSED : UpdateStatus_UpdateState.PAUSED, message });
  };

/**
 * Starts rolling back to the previous spec: the spec and its version become the previous ones, which
 * are cleared (so a rollback is never rolled back in turn), and the orchestrator's next pass runs the
 * rollout again with the rollback config. A service with no previous spec cannot roll back and is
 * paused instead (swarmkit then writes nothing at all and leaves the update "in progress" for good).
 */
export const rollBackUpdate =
  (taskId: string): ServiceTransition =>
  (stored) => {
    if (stored.updateStatus === undefined) return undefined;
    if (stored.previousSpec === undefined) return pauseUpdate(statusMessages.updatePaused(taskId))(stored);
    return {
      ...withStatus(stored, { state: UpdateStatus_UpdateState.ROLLBACK_STARTED, message: statusMessages.rolledBack(taskId) }),
      spec: stored.previousSpec,
      specVersion: stored.previousSpecVersion,
      previousSpec: undefined,
      previousSpecVersion: undefined,
    };
  };

/** Marks the rollout finished: COMPLETED, or ROLLBACK_COMPLETED for a rollback. */
export const completeUpdate =
  (now: Date): ServiceTransition =>
  (stored) => {
    if (stored.updateStatus === undefined) return undefined;
    const rollingBack = stored.updateStatus.state === UpdateStatus_UpdateState.ROLLBACK_STARTED;
    return withStatus(stored, {
      state: rollingBack ? UpdateStatus_UpdateState.ROLLBACK_COMPLETED : UpdateStatus_UpdateState.COMPLETED,
      message: rollingBack ? statusMessages.rollbackCompleted : statusMessages.completed,
      completedAt: now,
    });
  };
