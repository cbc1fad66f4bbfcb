import { RestartPolicy_RestartCondition, TaskState, UpdateStatus_UpdateState, type Service, type Task } from '@shoal/proto';
import type { ReadTx } from '@shoal/store';
import { msOfDuration } from '@shoal/store-client';
import { isDown, isDrained } from './nodes.js';
import type { Plan } from './plan.js';
import { isJobMode, isPerNodeMode, startedStateOf, type ServiceMode } from './service-mode.js';
import { newTask } from './task-factory.js';
import { createdAtMs, newestByStatusTime, statusTimeMs } from './tasks.js';
import type { Timers } from './timers.js';

/** swarmkit's default restart delay (`api/defaults`), used when a task's restart policy names none. */
export const DEFAULT_RESTART_DELAY_MS = 5_000;

/**
 * How long a delayed replacement waits, after its delay, for the task it replaces to stop running
 * before it starts anyway (swarmkit's `defaultOldTaskTimeout`): an agent that never reports back
 * must not hold the slot forever.
 */
export const OLD_TASK_TIMEOUT_MS = 60_000;

/** The restart condition that applies to the task: ANY when its spec has no restart policy; for a job, ANY acts as ON_FAILURE. */
export function restartConditionOf(task: Task, mode: ServiceMode): RestartPolicy_RestartCondition {
  const condition = task.spec?.restart === undefined ? RestartPolicy_RestartCondition.ANY : task.spec.restart.condition;
  // Rerunning a job task that completed would count its completion twice.
  return isJobMode(mode) && condition === RestartPolicy_RestartCondition.ANY ? RestartPolicy_RestartCondition.ON_FAILURE : condition;
}

/** The pause between a task stopping and its replacement starting. */
export function restartDelayMs(task: Task): number {
  const delay = task.spec?.restart?.delay;
  return delay === undefined ? DEFAULT_RESTART_DELAY_MS : msOfDuration(delay);
}

/**
 * When each restart in the task's place happened (creation times, oldest first). swarmkit keeps this
 * history in memory and rebuilds it from the store on failover; here it is always read from the
 * store: among the place's tasks made from the same spec (and job run), the first is the original
 * and every later one replaced a predecessor. Tasks being removed (scale-down) are not part of it.
 */
function restartTimesMs(task: Task, place: readonly Task[]): number[] {
  const sameSpec = place.filter(
    (other) =>
      other.desiredState !== TaskState.REMOVE &&
      other.specVersion?.index === task.specVersion?.index &&
      other.jobIteration?.index === task.jobIteration?.index,
  );
  return sameSpec
    .map(createdAtMs)
    .sort((a, b) => a - b)
    .slice(1);
}

/**
 * Whether the restart policy calls for replacing the stopped `task`, given every task of its place
 * (its slot, or its node for a per-node mode). `max_attempts` counts the restarts made for the
 * task's spec, all of them or, with a window, those made in the window before the task stopped.
 */
export function shouldRestart(task: Task, place: readonly Task[], mode: ServiceMode): boolean {
  const condition = restartConditionOf(task, mode);
  if (condition === RestartPolicy_RestartCondition.NONE) return false;
  if (condition === RestartPolicy_RestartCondition.ON_FAILURE && task.status?.state === TaskState.COMPLETE) return false;
  const policy = task.spec?.restart;
  const maxAttempts = policy?.maxAttempts ?? 0n;
  if (maxAttempts === 0n) return true;
  const restarts = restartTimesMs(task, place);
  const windowMs = policy?.window === undefined ? 0 : msOfDuration(policy.window);
  const stoppedAt = statusTimeMs(task);
  if (windowMs === 0 || !Number.isFinite(stoppedAt)) return BigInt(restarts.length) < maxAttempts;
  const inWindow = restarts.filter((at) => at > stoppedAt - windowMs && at < stoppedAt);
  return BigInt(inWindow.length) < maxAttempts;
}

/**
 * The tasks of a place (slot or node) the orchestrator counts as its occupant and the updater may
 * replace (swarmkit's `UpdatableTasksInSlot`): those still meant to run, or, when none is, the newest
 * task if the restart policy leaves it stopped. An empty result means the place is free.
 */
export function updatableTasksInPlace(place: readonly Task[], service: Service, mode: ServiceMode): Task[] {
  const started = startedStateOf(mode);
  const runnable = place.filter((task) => task.desiredState <= started);
  if (runnable.length > 0) return runnable;
  // A rollback must converge on the old spec even where the new one's tasks stopped for good.
  if (service.updateStatus?.state === UpdateStatus_UpdateState.ROLLBACK_STARTED) return [];
  const newest = newestByStatusTime(place);
  return newest !== undefined && !shouldRestart(newest, place, mode) ? [newest] : [];
}

/** A replacement task held at desired READY until its restart delay is over and the task it replaces has stopped. */
export interface DelayedStart {
  readonly taskId: string;
  readonly serviceId: string;
  /** When the restart delay ends, in epoch milliseconds. */
  readonly startAt: number;
  /** The task being replaced, when the start also waits for it to stop running. */
  readonly replacing?: string | undefined;
  /** When to stop waiting for the replaced task, in epoch milliseconds. */
  readonly giveUpAt: number;
}

interface PendingStart {
  readonly start: DelayedStart;
  wakeAt?: number;
  timer?: unknown;
}

export interface RestartSupervisorOptions {
  readonly clock: () => Date;
  readonly timers: Timers;
  /** Called when a delayed start of the service may be due: reconcile the service. */
  readonly onDue: (serviceId: string) => void;
}

/** Whether the task is still running on a live node: assigned, not stopped, and its node not down or gone. */
function isStillRunning(tx: ReadTx, taskId: string): boolean {
  const task = tx.get('task', taskId);
  const state = task?.status?.state ?? TaskState.NEW;
  if (task === undefined || state < TaskState.ASSIGNED || state > TaskState.RUNNING) return false;
  const node = tx.get('node', task.nodeId);
  return node !== undefined && !isDown(node);
}

/**
 * The restart supervisor (swarmkit's `restart.Supervisor`): replaces stopped tasks as their restart
 * policy says, and holds each replacement at desired READY until its delay is over. Every decision
 * is made from the store; the only memory is the timers of pending delayed starts, which a new
 * instance takes over from the READY tasks it finds ({@link RestartSupervisor.adopt}).
 */
export class RestartSupervisor {
  readonly #clock: () => Date;
  readonly #timers: Timers;
  readonly #onDue: (serviceId: string) => void;
  readonly #pending = new Map<string, PendingStart>();

  constructor(options: RestartSupervisorOptions) {
    this.#clock = options.clock;
    this.#timers = options.timers;
    this.#onDue = options.onDue;
  }

  /**
   * Whether the task is a replacement still inside its restart delay. Restarting it again before the
   * delay is over would make a tight restart loop (an image that does not exist fails at once), so
   * its own restart waits for the delay, as in swarmkit.
   */
  isDelayed(taskId: string, now: Date): boolean {
    const pending = this.#pending.get(taskId);
    return pending !== undefined && now.getTime() < pending.start.startAt;
  }

  /**
   * Plans the restart of `task`, which stopped or sits on a node that is down or drained: its desired
   * state becomes SHUTDOWN and, if the policy says so, a replacement is created in the same slot (or
   * on the same node, for a per-node mode). The replacement starts after the restart delay (none when
   * leaving a drained node) and once the old task has stopped; with nothing to wait for it is created
   * started, otherwise at desired READY with a delayed start.
   */
  restart(plan: Plan, service: Service, mode: ServiceMode, task: Task, place: readonly Task[]): void {
    plan.setDesiredState(task, TaskState.SHUTDOWN);
    if (!shouldRestart(task, place, mode)) return;
    const perNode = isPerNodeMode(mode);
    const replacement = newTask(service, perNode ? 0n : task.slot, perNode ? task.nodeId : '', plan.now);
    const node = task.nodeId === '' ? undefined : plan.tx.get('node', task.nodeId);
    const delayMs = node !== undefined && isDrained(node) ? 0 : restartDelayMs(task);
    const waitForStop = node !== undefined && !isDown(node) && (task.status?.state ?? TaskState.NEW) <= TaskState.RUNNING;
    if (delayMs === 0 && !waitForStop) {
      plan.create(replacement);
      return;
    }
    plan.create({ ...replacement, desiredState: TaskState.READY });
    const startAt = plan.now.getTime() + delayMs;
    const replacing = waitForStop ? task.id : undefined;
    plan.delayedStarts.set(replacement.id, { taskId: replacement.id, serviceId: service.id, startAt, replacing, giveUpAt: startAt + OLD_TASK_TIMEOUT_MS });
  }

  /** Plans the start of the service's delayed replacements that are due, and drops the ones that are no longer waiting. */
  startDue(plan: Plan, service: Service, mode: ServiceMode, tasks: readonly Task[]): void {
    const now = plan.now.getTime();
    const tasksById = new Map(tasks.map((task) => [task.id, task]));
    for (const pending of this.#pending.values()) {
      const { start } = pending;
      if (start.serviceId !== service.id) continue;
      const task = tasksById.get(start.taskId);
      if (task === undefined || plan.current(task).desiredState !== TaskState.READY) {
        this.#forget(pending);
      } else if (now < start.startAt) {
        continue;
      } else if (start.replacing !== undefined && now < start.giveUpAt && isStillRunning(plan.tx, start.replacing)) {
        this.#wakeAt(pending, start.giveUpAt);
      } else {
        plan.setDesiredState(task, startedStateOf(mode));
      }
    }
  }

  /** Starts timing a delayed start a plan decided on, once its task is committed. */
  schedule(start: DelayedStart): void {
    const pending: PendingStart = { start };
    this.#pending.set(start.taskId, pending);
    this.#wakeAt(pending, start.startAt);
  }

  /**
   * Takes over the start of a task a previous instance left at desired READY, as swarmkit's
   * `CheckTasks` does: it starts once its restart delay, counted from its creation, is over, without
   * waiting for the task it replaced (which a new instance cannot know).
   */
  adopt(task: Task, now: Date): void {
    if (this.#pending.has(task.id)) return;
    const startAt = Math.min(createdAtMs(task), now.getTime()) + restartDelayMs(task);
    this.schedule({ taskId: task.id, serviceId: task.serviceId, startAt, giveUpAt: startAt });
  }

  /** Drops the delayed starts of a service that is gone. */
  forgetService(serviceId: string): void {
    for (const pending of this.#pending.values()) if (pending.start.serviceId === serviceId) this.#forget(pending);
  }

  /** Cancels every timer. */
  stop(): void {
    for (const pending of this.#pending.values()) this.#forget(pending);
  }

  #wakeAt(pending: PendingStart, at: number): void {
    if (pending.wakeAt === at) return;
    if (pending.timer !== undefined) this.#timers.clearTimeout(pending.timer);
    pending.wakeAt = at;
    pending.timer = this.#timers.setTimeout(() => {
      pending.timer = undefined;
      this.#onDue(pending.start.serviceId);
    }, Math.max(0, at - this.#clock().getTime()));
  }

  #forget(pending: PendingStart): void {
    if (pending.timer !== undefined) this.#timers.clearTimeout(pending.timer);
    this.#pending.delete(pending.start.taskId);
  }
}

