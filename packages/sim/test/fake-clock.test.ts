import { RestartPolicy_RestartCondition, TaskState } from '@shoal/proto';
import { durationOfMs } from '@shoal/store-client';
import { FakeClock } from '@shoal/testkit';
import { describe, expect, it } from 'vitest';
import type { ControlPlane } from '../src/control-plane.js';
import { desiredRunning, replicatedSpec, running, simulate, stateOf } from './support.js';

const RESTART_DELAY_MS = 10_000;
/** How far the fake clock moves per step: past the scheduler's debounce, well under the restart delay. */
const STEP_MS = 50;

/** Moves fake time on in steps, letting the fake agents (on real time) report after each, until `check` passes. */
async function advanceUntil(clock: FakeClock, check: () => void, limitMs = 60_000): Promise<void> {
  for (let elapsed = 0; ; elapsed += STEP_MS) {
    try {
      return check();
    } catch (err) {
      if (elapsed >= limitMs) throw err;
    }
    await clock.advanceAsync(STEP_MS);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const onlyTask = (plane: ControlPlane, serviceId: string) => {
  const [task] = running(plane.tasks(serviceId));
  expect(task).toBeDefined();
  return task!;
};

describe('a control plane on a fake clock', () => {
  it('starts the replacement of a task that failed only once its restart delay has passed in fake time', async () => {
    const clock = new FakeClock({ startMs: Date.parse('2026-01-01T00:00:00Z') });
    const { plane } = await simulate({ clock, agents: { batchMs: 0 } });
    await plane.addNodes(2);
    await plane.start();
    const { id } = await plane.createService(replicatedSpec('web', 1, { task: { restart: { condition: RestartPolicy_RestartCondition.ANY, delay: durationOfMs(RESTART_DELAY_MS) } } }));
    await advanceUntil(clock, () => onlyTask(plane, id));
    const failing = onlyTask(plane, id);

    await plane.exit(failing.id, 1);
    const failedAt = clock.now();
    await advanceUntil(clock, () => expect(plane.tasks(id).filter((task) => task.desiredState === TaskState.READY)).toHaveLength(1));
    const replacement = plane.tasks(id).find((task) => task.desiredState === TaskState.READY)!;
    expect(replacement.slot).toBe(failing.slot);

    await advanceUntil(clock, () => expect(clock.now() - failedAt).toBeGreaterThanOrEqual(RESTART_DELAY_MS - STEP_MS));
    expect(desiredRunning(plane.tasks(id))).toEqual([]);
    await advanceUntil(clock, () => expect(onlyTask(plane, id).id).toBe(replacement.id));
    expect(clock.now() - failedAt).toBeGreaterThanOrEqual(RESTART_DELAY_MS);
    expect(stateOf(plane.tasks(id).find((task) => task.id === failing.id)!)).toBe(TaskState.FAILED);
  });
});
