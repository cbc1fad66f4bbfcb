import { RestartPolicy_RestartCondition, TaskState, UpdateConfig_FailureAction, UpdateStatus_UpdateState, type Task } from '@shoal/proto';
import { durationOfMs } from '@shoal/store-client';
import { describe, expect, it } from 'vitest';
import type { TaskOutcome } from '../src/fake-agents.js';
import { expectConverged, imageOf, replicatedSpec, running, simulate, stateOf, withImage } from './support.js';

/** The agents fail every task of the new image at once, and run the old one. */
const failsOnApp2 = (task: Task): TaskOutcome => (imageOf(task) === 'app:2' ? { state: 'failed', exitCode: 1 } : { state: 'running' });

const REPLICAS = 6;

/**
 * Six replicas of `app:1` updating two at a time with a short monitor period, restarted at once but
 * only once (so a failing slot comes to rest instead of failing again and again), then updated to
 * `app:2`, which fails.
 */
async function failingUpdate(failureAction: UpdateConfig_FailureAction) {
  const { plane } = await simulate({ agents: { outcome: failsOnApp2 } });
  await plane.addNodes(5);
  await plane.start();
  const rollout = { parallelism: 2n, monitor: durationOfMs(100), failureAction };
  const { id } = await plane.createService(
    replicatedSpec('web', REPLICAS, {
      task: { restart: { condition: RestartPolicy_RestartCondition.ANY, delay: durationOfMs(0), maxAttempts: 1n } },
      spec: { update: rollout, rollback: { ...rollout, failureAction: UpdateConfig_FailureAction.PAUSE } },
    }),
  );
  await plane.until(() => expectConverged(plane.tasks(id), REPLICAS));
  await plane.updateService(id, (spec) => withImage(spec, 'app:2'));
  return { plane, id };
}

describe('a rolling update whose new tasks fail', () => {
  it("pauses with swarmkit's message naming a failed new task, leaving the slots it had not reached on the old image", async () => {
    const { plane, id } = await failingUpdate(UpdateConfig_FailureAction.PAUSE);

    await plane.until(() => expect(plane.service(id).updateStatus?.state).toBe(UpdateStatus_UpdateState.PAUSED));
    const { message } = plane.service(id).updateStatus!;
    const failedId = /^update paused due to failure or early termination of task (\S+)$/.exec(message)?.[1];
    const failed = plane.tasks(id).find((task) => task.id === failedId);
    expect(failed && [imageOf(failed), stateOf(failed)], message).toEqual(['app:2', TaskState.FAILED]);
    // Two workers took a slot each and stopped at the first failure: four slots never saw app:2.
    expect(running(plane.tasks(id)).filter((task) => imageOf(task) === 'app:1')).toHaveLength(REPLICAS - 2);
  });

  it('rolls back to the previous spec, completes the rollback and runs every replica on the old image again', async () => {
    const { plane, id } = await failingUpdate(UpdateConfig_FailureAction.ROLLBACK);

    await plane.until(() => expect(plane.service(id).updateStatus?.state).toBe(UpdateStatus_UpdateState.ROLLBACK_COMPLETED));
    const service = plane.service(id);
    expect(service.updateStatus?.message).toBe('rollback completed');
    expect([service.spec?.task?.container?.image, service.specVersion?.index, service.previousSpec]).toEqual(['app:1', 1n, undefined]);
    await plane.until(() => expectConverged(plane.tasks(id), REPLICAS));
    expect(running(plane.tasks(id)).map((task) => [imageOf(task), task.specVersion?.index])).toEqual(Array(REPLICAS).fill(['app:1', 1n]));
  });
});
