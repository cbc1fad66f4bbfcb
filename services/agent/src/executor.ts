import type { Config, NodeDescription, Secret, Task } from '@shoal/proto';

/**
 * What runs a node's tasks: the agent core drives tasks through their states (swarmkit's `exec.Do`)
 * and an executor does the work for one kind of runtime. `services/agent/src/docker` runs real
 * containers on the local dockerd; `FakeExecutor` runs nothing, for simulations and benchmarks of
 * many nodes in one process (swarmkit's `agent/exec.Executor` and `Controller`).
 */
export interface Executor {
  /** What this host offers, reported to the dispatcher on every registration. */
  describe(signal: AbortSignal): Promise<NodeDescription>;
  /**
   * The controller of one task. Throws a ShoalError when the task cannot run here at all (an
   * unsupported runtime, a bad spec): the task is then REJECTED with that error's message.
   */
  controller(task: Task, dependencies: TaskDependencies): TaskController;
  /**
   * IDs of the tasks this executor still holds runtime objects for (containers left by an earlier run
   * of the agent), so that a restarted agent can adopt the ones still assigned and remove the rest.
   */
  residentTasks(signal: AbortSignal): Promise<string[]>;
  /**
   * Removes everything an earlier run left for a task that is no longer assigned (its container, its
   * secrets and configs), knowing only the task's ID: the task itself is gone from the swarm, so no
   * controller can be made for it. Idempotent; resolves when nothing of the task is left.
   */
  removeResidentTask(taskId: string, signal: AbortSignal): Promise<void>;
}

/** The secrets and configs a task references, as the dispatcher delivered them (by ID). */
export interface TaskDependencies {
  readonly secrets: ReadonlyMap<string, Secret>;
  readonly configs: ReadonlyMap<string, Config>;
}

/** What the executor finds of a task's container, for adoption after an agent restart. */
export type ObservedTask =
  | { readonly state: 'absent' }
  | { readonly state: 'created'; readonly containerId: string }
  | { readonly state: 'running'; readonly containerId: string; readonly pid: number }
  | { readonly state: 'exited'; readonly containerId: string; readonly exitCode: number };

/** How a task's process ended. */
export interface TaskExit {
  readonly exitCode: number;
  /** Set when the runtime, not the process, ended it (e.g. "task: unhealthy container"). */
  readonly error?: string;
}

/** Where a task's log lines go and which ones are wanted (a log subscription, for one task). */
export interface TaskLogOptions {
  readonly follow: boolean;
  /** Only lines at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
  /** Only the last `tail` lines before following. */
  readonly tail?: number;
  readonly stdout: boolean;
  readonly stderr: boolean;
}

/** One line a task wrote. */
export interface TaskLogLine {
  readonly stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds, as the runtime stamped the line. */
  readonly time: string;
  /** The line without its newline. */
  readonly line: string;
}

/**
 * One task's runtime object (a container). Every step is idempotent, so the core can retry it or
 * resume it after an agent restart. A step that fails throws a ShoalError whose message becomes the
 * task's `status.err`; the core decides REJECTED (before STARTING) or FAILED (from STARTING on).
 */
export interface TaskController {
  /** The container (if any) as it is now: lets a restarted agent adopt a running task instead of restarting it. */
  inspect(signal: AbortSignal): Promise<ObservedTask>;
  /** Makes the task ready to start: the image (pulled if absent), secrets and configs, the container created. */
  prepare(signal: AbortSignal): Promise<void>;
  /** Starts the container; resolves once it runs and, when a healthcheck is defined, once it is healthy. */
  start(signal: AbortSignal): Promise<void>;
  /** Resolves when the task's process has ended. */
  wait(signal: AbortSignal): Promise<TaskExit>;
  /** Stops the process with the task's stop signal and grace period; a stopped task stays inspectable. */
  shutdown(signal: AbortSignal): Promise<void>;
  /** Removes everything the task left on the host: its container and its secrets and configs. */
  remove(signal: AbortSignal): Promise<void>;
  /** The task's log lines, oldest first; with `follow`, until `signal` aborts or the task's logs end. */
  logs(options: TaskLogOptions, signal: AbortSignal): AsyncIterable<TaskLogLine>;
}
