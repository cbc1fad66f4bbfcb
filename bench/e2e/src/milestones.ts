import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError } from '@shoal/errors';
import type { EngineContainer, EngineTask } from './engine-client.js';

/**
 * Pause between the end of one poll and the start of the next. Each poll asks the system's API for
 * the service's tasks and dockerd for its running containers, at once; a milestone is timed when the
 * first poll showing it answers, so it is late by up to this plus one poll.
 */
export const POLL_INTERVAL_MS = 50;

/** What one poll saw of a service. */
export interface Observation {
  /** Its tasks as the system's API lists them. */
  readonly tasks: readonly EngineTask[];
  /** Its running containers as dockerd lists them. */
  readonly containers: readonly EngineContainer[];
}

/** A named condition on what a poll saw; reached once it holds (and not unreached if it stops holding). */
export interface Milestone {
  readonly name: string;
  reached(observation: Observation): boolean;
}

/** How long a milestone may take before the run is given up, and what stops it early. */
export interface PollLimits {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Throws to give up at once (a process of the system died). */
  readonly assertGoing: () => void;
}

/** Docker's task states in the order a task passes them on its way to running (`docker service ps`'s names). */
const STATES_TO_RUNNING = ['new', 'pending', 'allocated', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'];

/** Tasks the system reports at `state` or further on the way to running (a task that failed or stopped counts for none). */
export function tasksAtLeast(observation: Observation, state: string): EngineTask[] {
  const rank = STATES_TO_RUNNING.indexOf(state);
  return observation.tasks.filter((task) => STATES_TO_RUNNING.indexOf(task.Status.State) >= rank);
}

/** Tasks the system reports running, and wants running. */
export function runningTasks(observation: Observation): EngineTask[] {
  return observation.tasks.filter((task) => task.Status.State === 'running' && task.DesiredState === 'running');
}

/**
 * Polls `observe` until every milestone has been reached, and says when each was, in ms since
 * `startedAt` (a `performance.now()`). Fails DEADLINE_EXCEEDED, naming the milestones not reached and
 * what the last poll saw, if that takes longer than `limits.timeoutMs`; CANCELLED once the signal aborts.
 */
export async function timeMilestones(
  observe: () => Promise<Observation>,
  milestones: readonly Milestone[],
  startedAt: number,
  limits: PollLimits,
): Promise<ReadonlyMap<string, number>> {
  const times = new Map<string, number>();
  for (;;) {
    if (limits.signal.aborted) throw new ShoalError(ErrorCode.Cancelled, 'interrupted');
    limits.assertGoing();
    const last = await observe();
    const elapsedMs = performance.now() - startedAt;
    for (const milestone of milestones) if (!times.has(milestone.name) && milestone.reached(last)) times.set(milestone.name, elapsedMs);
    if (times.size === milestones.length) return times;
    if (elapsedMs > limits.timeoutMs) {
      const missing = milestones.filter((milestone) => !times.has(milestone.name)).map((milestone) => milestone.name);
      throw new ShoalError(
        ErrorCode.DeadlineExceeded,
        `not reached within ${limits.timeoutMs / 1000} s: ${missing.join(', ')} (last poll: ${runningTasks(last).length} tasks running of ${last.tasks.length}, ` +
          `${last.containers.length} containers running)`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
