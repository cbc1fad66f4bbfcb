import { isRetryable, toShoalError } from '@shoal/errors';
import { TaskState, TaskStatus, taskName, taskStateName, type Task } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { TaskController, TaskExit } from './executor.js';
import { Notifier } from './notifier.js';

/**
 * How one step of the state machine ended: the task moved on, it must wait for a new desired state
 * (a "pause" state, or a terminal one), or the step hit a temporary error and is retried later.
 */
export type StepOutcome = 'progressed' | 'waiting' | 'retry';

export interface StepResult {
  readonly status: TaskStatus;
  readonly outcome: StepOutcome;
}

/** The status a task starts from when the manager sent none. */
const NEW_STATUS = TaskStatus.fromPartial({ state: TaskState.NEW });

/** A task's status, NEW when the manager sent none. */
export function statusOf(task: Pick<Task, 'status'>): TaskStatus {
  return task.status ?? NEW_STATUS;
}

/**
 * Moves a task one step towards its desired state with its controller: swarmkit's `exec.Do`.
 *
 * | current state (desired)                     | action        | next state (message)   |
 * |---------------------------------------------|---------------|------------------------|
 * | < COMPLETE (desired ≥ SHUTDOWN)             | `shutdown()`  | SHUTDOWN ("shutdown")  |
 * | > desired                                   | none          | waiting                |
 * | PREPARING                                   | `prepare()`   | READY ("prepared")     |
 * | STARTING                                    | `start()`     | RUNNING ("started")    |
 * | RUNNING                                     | `wait()`      | COMPLETE ("finished")  |
 * | NEW, PENDING, ASSIGNED (< desired)          | none          | ACCEPTED ("accepted")  |
 * | ACCEPTED (< desired)                        | none          | PREPARING ("preparing")|
 * | READY (< desired)                           | none          | STARTING ("starting")  |
 *
 * The last three are "pause" transitions, taken only while the desired state is beyond the current
 * one: that is how desired READY holds a task prepared (image pulled, container created) until the
 * orchestrator raises it to RUNNING. A failed step is REJECTED before STARTING and FAILED from
 * STARTING on, with the error's message as `status.err`; a non-zero exit is FAILED with moby's
 * `task: non-zero exit (<code>)`. A temporary error (UNAVAILABLE, DEADLINE_EXCEEDED, CONFLICT) keeps
 * the state, notes the error, and asks for a retry; so does a step cancelled through `signal`.
 */
export async function advanceTask(task: Task, controller: TaskController, signal: AbortSignal): Promise<StepResult> {
  const status = statusOf(task);
  const transition = (state: TaskState, message: string, container = status.container): StepResult => ({
    status: { ...status, state, message, err: '', container, timestamp: new Date() },
    outcome: 'progressed',
  });
  const waiting: StepResult = { status, outcome: 'waiting' };
  const fatal = (err: unknown): StepResult => {
    if (signal.aborted) return { status, outcome: 'retry' };
    const { message } = toShoalError(err);
    if (isRetryable(err)) return { status: message === status.err ? status : { ...status, err: message, timestamp: new Date() }, outcome: 'retry' };
    const state = status.state < TaskState.STARTING ? TaskState.REJECTED : TaskState.FAILED;
    return { status: { ...status, state, err: message, timestamp: new Date() }, outcome: 'progressed' };
  };

  try {
    if (task.desiredState >= TaskState.SHUTDOWN) {
      if (status.state >= TaskState.COMPLETE) return waiting;
      await controller.shutdown(signal);
      return transition(TaskState.SHUTDOWN, 'shutdown');
    }
    if (status.state > task.desiredState) return waiting;
    switch (status.state) {
      case TaskState.PREPARING:
        await controller.prepare(signal);
        return transition(TaskState.READY, 'prepared');
      case TaskState.STARTING: {
        await controller.start(signal);
        const observed = await controller.inspect(signal);
        // A process that ended at once is reported RUNNING all the same; the next step collects its exit.
        const container =
          observed.state === 'absent' ? status.container : { containerId: observed.containerId, pid: observed.state === 'running' ? observed.pid : 0, exitCode: 0 };
        return transition(TaskState.RUNNING, 'started', container);
      }
      case TaskState.RUNNING:
        return exited(status, await controller.wait(signal));
    }
    if (status.state >= task.desiredState) return waiting;
    switch (status.state) {
      case TaskState.NEW:
      case TaskState.PENDING:
      case TaskState.ASSIGNED:
        return transition(TaskState.ACCEPTED, 'accepted');
      case TaskState.ACCEPTED:
        return transition(TaskState.PREPARING, 'preparing');
      case TaskState.READY:
        return transition(TaskState.STARTING, 'starting');
      default:
        return waiting;
    }
  } catch (err) {
    return fatal(err);
  }
}

/** The status after the task's process ended: COMPLETE for exit 0, FAILED with moby's text otherwise. */
function exited(status: TaskStatus, exit: TaskExit): StepResult {
  const container = { containerId: status.container?.containerId ?? '', pid: 0, exitCode: exit.exitCode };
  if (exit.exitCode === 0 && exit.error === undefined) {
    return { status: { ...status, state: TaskState.COMPLETE, message: 'finished', err: '', container, timestamp: new Date() }, outcome: 'progressed' };
  }
  return { status: { ...status, state: TaskState.FAILED, err: exitError(exit), container, timestamp: new Date() }, outcome: 'progressed' };
}

/** moby's `exitError` text (daemon/cluster/executor/container/controller.go). */
function exitError(exit: TaskExit): string {
  if (exit.exitCode === 0) return exit.error ?? '';
  const text = `task: non-zero exit (${exit.exitCode})`;
  return exit.error === undefined ? text : `${text}: ${exit.error}`;
}

/**
 * The status a task resumes from when this agent finds it for the first time while the manager says
 * it already got past ASSIGNED: after an agent restart its container may be running, exited, created
 * or gone. A running container is adopted as RUNNING (and waited on, never restarted); an exited one
 * reports its exit; a created one resumes where the manager's status says (prepare and start are
 * idempotent). A container that is gone while the manager thinks it started fails the task with the
 * error moby's executor gives then (its `ContainerWait` on the task's container name answers "No such
 * container"). A task being shut down resumes as is: shutting down a stopped or missing container
 * succeeds. A container still running for a task the manager already counts as ended is stopped.
 */
export async function adoptedStatus(task: Task, controller: TaskController, signal: AbortSignal): Promise<TaskStatus> {
  const status = statusOf(task);
  const observed = await controller.inspect(signal);
  const ended = status.state >= TaskState.COMPLETE;
  const stopping = task.desiredState >= TaskState.SHUTDOWN;
  switch (observed.state) {
    case 'running':
      if (ended) {
        await controller.shutdown(signal);
        return status;
      }
      return { ...status, state: TaskState.RUNNING, message: 'started', err: '', container: { containerId: observed.containerId, pid: observed.pid, exitCode: 0 }, timestamp: new Date() };
    case 'exited':
      if (ended || stopping) return status;
      return exited({ ...status, container: { containerId: observed.containerId, pid: 0, exitCode: 0 } }, { exitCode: observed.exitCode }).status;
    case 'created':
      return status;
    case 'absent':
      if (ended || stopping || status.state < TaskState.STARTING) return status;
      return { ...status, state: TaskState.FAILED, err: `No such container: ${taskName(task)}`, timestamp: new Date() };
  }
}

export interface TaskManagerOptions {
  /** The task as assigned, with the status to start from. */
  readonly task: Task;
  readonly controller: TaskController;
  /** Where every status change goes (the status reporter). */
  readonly report: (status: TaskStatus) => void;
  /** Inspect the task's container before the first step (see {@link adoptedStatus}). */
  readonly adopt: boolean;
  readonly log: Logger;
  /**
   * Pause before retrying a step that hit a temporary error (swarmkit's task manager waits 1 s).
   * @default 1000
   */
  readonly retryDelayMs?: number;
}

/**
 * Runs one task through its states (swarmkit's `taskManager`): steps are serialized, each status
 * change is reported, and a step that must wait sleeps until the desired state changes. A desired
 * state lower than the current one is ignored (desired state only ever rises). Raising the desired
 * state to SHUTDOWN or beyond cancels the step in flight (a wait on a running container, a pull),
 * since that step's outcome no longer matters; any other raise lets it finish.
 */
export class TaskManager {
  #task: Task;
  readonly #controller: TaskController;
  readonly #options: TaskManagerOptions;
  readonly #log: Logger;
  readonly #desiredChanged = new Notifier();
  readonly #closed = new AbortController();
  #step: AbortController | undefined;
  readonly #running: Promise<void>;

  constructor(options: TaskManagerOptions) {
    this.#options = options;
    this.#task = options.task;
    this.#controller = options.controller;
    this.#log = options.log.child({ taskId: options.task.id, serviceId: options.task.serviceId });
    this.#running = this.#run();
  }

  /** The task as this agent knows it: the latest assignment with the agent's own status. */
  get task(): Task {
    return this.#task;
  }

  get controller(): TaskController {
    return this.#controller;
  }

  /** Takes a new version of the task from the dispatcher; its status is ignored (the agent's own is canonical). */
  update(task: Task): void {
    const current = this.#task;
    if (task.desiredState < current.desiredState) {
      this.#log.warn({ state: taskStateName(task.desiredState) }, 'ignoring a task update that lowers its desired state');
      return;
    }
    this.#task = { ...task, status: current.status };
    if (task.desiredState === current.desiredState) return;
    if (task.desiredState >= TaskState.SHUTDOWN) this.#step?.abort();
    this.#desiredChanged.notify();
  }

  /** Stops driving the task (its container is left as it is) and resolves once the step in flight has ended. */
  async close(): Promise<void> {
    this.#closed.abort();
    this.#step?.abort();
    await this.#running;
  }

  async #run(): Promise<void> {
    const closed = this.#closed.signal;
    if (this.#options.adopt) {
      try {
        this.#setStatus(await adoptedStatus(this.#task, this.#controller, closed));
      } catch (err) {
        if (closed.aborted) return;
        this.#log.warn({ err }, 'could not inspect the task before adopting it; resuming from the manager status');
      }
    }
    while (!closed.aborted) {
      const step = new AbortController();
      this.#step = step;
      const result = await advanceTask(this.#task, this.#controller, step.signal);
      this.#step = undefined;
      this.#setStatus(result.status);
      if (closed.aborted) return;
      if (step.signal.aborted || result.outcome === 'progressed') continue;
      if (result.outcome === 'waiting') await this.#desiredChanged.wait(closed);
      else await this.#desiredChanged.wait(closed, this.#options.retryDelayMs ?? 1_000);
    }
  }

  #setStatus(status: TaskStatus): void {
    if (status === this.#task.status) return;
    this.#task = { ...this.#task, status };
    this.#log.debug({ state: taskStateName(status.state), reason: status.err || status.message }, 'task state changed');
    this.#options.report(status);
  }
}
