import { toShoalError } from '@shoal/errors';
import {
  AssignmentChange_AssignmentAction,
  TaskState,
  type AssignmentChange,
  type Config,
  type Secret,
  type Task,
} from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Executor, TaskController, TaskDependencies } from './executor.js';
import type { StatusReporter } from './status-reporter.js';
import { TaskManager, statusOf } from './task-manager.js';

/** A task the worker runs, with its controller (for its logs). */
export interface RunningTask {
  readonly task: Task;
  readonly controller: TaskController;
}

export interface WorkerOptions {
  readonly executor: Executor;
  readonly reporter: StatusReporter;
  readonly log: Logger;
  /** Passed to each {@link TaskManager}. */
  readonly retryDelayMs?: number;
}

/**
 * The node's set of assignments and the tasks it runs (swarmkit's `worker`). A COMPLETE set replaces
 * everything: tasks not in it are shut down and removed, and containers an earlier run of the agent
 * left for tasks no longer assigned are removed too. An INCREMENTAL set updates and removes what it
 * names. Secrets and configs are taken before the tasks of the same message, and each task's
 * controller gets exactly the ones its spec references. Sets are applied one at a time, in order.
 */
export class Worker {
  readonly #executor: Executor;
  readonly #reporter: StatusReporter;
  readonly #log: Logger;
  readonly #retryDelayMs: number | undefined;
  readonly #tasks = new Map<string, TaskManager>();
  /** Assigned tasks the executor refused (no controller): their REJECTED status is all there is of them. */
  readonly #refused = new Set<string>();
  readonly #secrets = new Map<string, Secret>();
  readonly #configs = new Map<string, Config>();
  readonly #removals = new Set<Promise<void>>();
  readonly #newTaskListeners = new Set<(task: RunningTask) => void>();
  /** Aborts removals still in flight when the worker closes. */
  readonly #closing = new AbortController();
  #applying: Promise<void> = Promise.resolve();

  constructor(options: WorkerOptions) {
    this.#executor = options.executor;
    this.#reporter = options.reporter;
    this.#log = options.log;
    this.#retryDelayMs = options.retryDelayMs;
  }

  /** Applies a set of assignment changes: the whole set when `complete`, else changes to the current one. */
  apply(changes: readonly AssignmentChange[], complete: boolean): Promise<void> {
    const applied = this.#applying.then(() => this.#apply(changes, complete));
    this.#applying = applied.catch(() => undefined);
    return applied;
  }

  /** The tasks running now. */
  runningTasks(): RunningTask[] {
    return [...this.#tasks.values()].map((manager) => ({ task: manager.task, controller: manager.controller }));
  }

  /** Calls `listener` for every task the worker starts running from now on; returns how to stop. */
  onNewTask(listener: (task: RunningTask) => void): () => void {
    this.#newTaskListeners.add(listener);
    return () => this.#newTaskListeners.delete(listener);
  }

  /**
   * Stops driving the tasks and leaves their containers as they are, for the next run of the agent to
   * adopt. Removals in flight are abandoned (the next COMPLETE set finds their containers again).
   */
  async close(): Promise<void> {
    this.#closing.abort();
    await Promise.all([...this.#tasks.values()].map((manager) => manager.close()));
    await Promise.all(this.#removals);
    this.#tasks.clear();
  }

  /** Shuts down and removes every task, and whatever an earlier run left: the node leaves the swarm. */
  async removeAll(signal: AbortSignal): Promise<void> {
    await this.#applying;
    const managers = [...this.#tasks.values()];
    this.#tasks.clear();
    await Promise.all(managers.map((manager) => this.#remove(manager, signal)));
    await Promise.all(this.#removals);
    await this.#removeLeftovers(await this.#executor.residentTasks(signal), signal);
    this.#secrets.clear();
    this.#configs.clear();
  }

  async #apply(changes: readonly AssignmentChange[], complete: boolean): Promise<void> {
    const updates: Task[] = [];
    const removals: string[] = [];
    if (complete) {
      this.#secrets.clear();
      this.#configs.clear();
    }
    for (const { assignment, action } of changes) {
      const remove = action === AssignmentChange_AssignmentAction.REMOVE;
      if (assignment?.secret !== undefined) this.#take(this.#secrets, assignment.secret, remove);
      else if (assignment?.config !== undefined) this.#take(this.#configs, assignment.config, remove);
      else if (assignment?.task !== undefined) {
        if (remove) removals.push(assignment.task.id);
        else updates.push(assignment.task);
      }
    }
    const assigned = new Set(updates.map((task) => task.id));
    // Ask what an earlier run left before starting anything, so that only its containers are in the answer.
    const residents = new Set(complete ? await this.#executor.residentTasks(this.#closing.signal) : []);
    for (const task of updates) this.#assign(task, residents.has(task.id));
    const unassigned = new Set(complete ? [...this.#tasks.keys(), ...this.#refused].filter((id) => !assigned.has(id)) : removals);
    for (const taskId of unassigned) this.#unassign(taskId);
    const leftovers = [...residents].filter((taskId) => !assigned.has(taskId) && !unassigned.has(taskId));
    if (leftovers.length > 0) this.#track(this.#removeLeftovers(leftovers, this.#closing.signal));
  }

  #take<T extends { id: string }>(items: Map<string, T>, item: T, remove: boolean): void {
    if (remove) items.delete(item.id);
    else items.set(item.id, item);
  }

  #assign(task: Task, resident: boolean): void {
    const running = this.#tasks.get(task.id);
    if (running !== undefined) {
      running.update(task);
      return;
    }
    let controller: TaskController;
    try {
      controller = this.#executor.controller(task, this.#dependenciesOf(task));
    } catch (err) {
      this.#refuse(task, err);
      return;
    }
    const manager = new TaskManager({
      task,
      controller,
      report: (status) => this.#reporter.report(task.id, status),
      // A task past ASSIGNED was handled by an earlier run of this agent: see what is left of it.
      adopt: resident || statusOf(task).state > TaskState.ASSIGNED,
      log: this.#log,
      retryDelayMs: this.#retryDelayMs,
    });
    this.#tasks.set(task.id, manager);
    for (const listener of this.#newTaskListeners) listener({ task: manager.task, controller });
  }

  /** swarmkit's `exec.Resolve` failing: REJECTED before STARTING, FAILED after. */
  #refuse(task: Task, err: unknown): void {
    if (this.#refused.has(task.id)) return;
    this.#refused.add(task.id);
    const status = statusOf(task);
    const state = status.state < TaskState.STARTING ? TaskState.REJECTED : TaskState.FAILED;
    this.#log.warn({ taskId: task.id, err }, 'the executor cannot run this task');
    this.#reporter.report(task.id, { ...status, state, err: toShoalError(err).message, timestamp: new Date() });
  }

  #unassign(taskId: string): void {
    if (this.#refused.delete(taskId)) {
      this.#reporter.forget(taskId);
      return;
    }
    const manager = this.#tasks.get(taskId);
    if (manager === undefined) return;
    this.#tasks.delete(taskId);
    this.#track(this.#remove(manager, this.#closing.signal));
  }

  /** Stops driving a task no longer assigned, stops its container if it still runs, and removes what it left. */
  async #remove(manager: TaskManager, signal: AbortSignal): Promise<void> {
    await manager.close();
    const { task, controller } = manager;
    this.#reporter.forget(task.id);
    try {
      if (statusOf(task).state < TaskState.COMPLETE) await controller.shutdown(signal);
      await controller.remove(signal);
    } catch (err) {
      // Best effort, as in swarmkit: the container is found again among the residents of the next COMPLETE set.
      if (!signal.aborted) this.#log.warn({ taskId: task.id, err }, 'removing an unassigned task failed');
    }
  }

  /** Removes what an earlier run of the agent left for tasks this worker does not run. */
  async #removeLeftovers(taskIds: readonly string[], signal: AbortSignal): Promise<void> {
    for (const taskId of taskIds) {
      if (this.#tasks.has(taskId)) continue;
      try {
        await this.#executor.removeResidentTask(taskId, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn({ taskId, err }, 'removing what an earlier run left for an unassigned task failed');
      }
    }
  }

  #track(removal: Promise<void>): void {
    this.#removals.add(removal);
    void removal.finally(() => this.#removals.delete(removal));
  }

  #dependenciesOf(task: Task): TaskDependencies {
    const container = task.spec?.container;
    const pick = <T>(items: ReadonlyMap<string, T>, ids: readonly string[]) =>
      new Map(ids.flatMap((id) => {
        const item = items.get(id);
        return item === undefined ? [] : [[id, item] as const];
      }));
    return {
      secrets: pick(this.#secrets, container?.secrets.map((reference) => reference.secretId) ?? []),
      configs: pick(this.#configs, container?.configs.map((reference) => reference.configId) ?? []),
    };
  }
}
