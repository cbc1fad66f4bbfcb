import type { Service, Task, TaskState, TaskStatus } from '@shoal/proto';
import { versionOf, type Change, type Precondition, type ReadTx } from '@shoal/store';
import type { DelayedStart } from './restart.js';

/** A request for the rolling updater: the service and the slots it may update. */
export interface UpdateRequest {
  readonly service: Service;
  readonly slots: Task[][];
}

/**
 * The writes one reconcile pass decides on, against one consistent read of the store, and what to do
 * once they are committed. Each task appears in the result once, as this pass leaves it, so several
 * decisions about the same task (shut down by a restart, then removed by a scale-down) merge into
 * one write made against the version that was read.
 */
export class Plan {
  /** Conditions the commit must hold besides the versions of the tasks it updates. */
  readonly preconditions: Precondition[] = [];
  /** Starts to delay, by the ID of the task they start (which this plan creates). */
  readonly delayedStarts = new Map<string, DelayedStart>();
  /** Services to hand to the rolling updater once the plan is committed. */
  readonly updates: UpdateRequest[] = [];
  readonly #created = new Map<string, Task>();
  readonly #updated = new Map<string, Task>();
  readonly #deleted = new Map<string, Task>();

  constructor(
    /** The read the plan is made against; valid only while the plan is being built. */
    readonly tx: ReadTx,
    /** The time the pass runs at. */
    readonly now: Date,
  ) {}

  /** The task as this plan leaves it. */
  current(task: Task): Task {
    return this.#created.get(task.id) ?? this.#updated.get(task.id) ?? task;
  }

  create(task: Task): void {
    this.#created.set(task.id, task);
  }

  /** Raises the task's desired state to `state`. Desired state never moves backwards, so a lower `state` changes nothing. */
  setDesiredState(task: Task, state: TaskState): void {
    const current = this.current(task);
    if (current.desiredState < state) this.#write({ ...current, desiredState: state });
  }

  /** Replaces the task's observed status (only the constraint enforcer does, to reject a task). */
  setStatus(task: Task, status: TaskStatus): void {
    this.#write({ ...this.current(task), status });
  }

  delete(task: Task): void {
    if (this.#created.delete(task.id)) return;
    this.#updated.delete(task.id);
    this.#deleted.set(task.id, task);
  }

  /** `tasks`, as read, as this plan leaves them: without the deleted ones, and with every task the plan creates. */
  tasksAfter(tasks: readonly Task[]): Task[] {
    const kept = tasks.filter((task) => !this.#deleted.has(task.id)).map((task) => this.current(task));
    return [...kept, ...this.#created.values()];
  }

  /**
   * The writes, stopping ones first: deletes, then updates, then creates. A plan too big for one
   * transaction is committed in several, and in this order a crash between them can leave a slot
   * with no runnable task (which the next pass fills) but never with two.
   */
  changes(): Change[] {
    return [
      ...[...this.#deleted.values()].map((task): Change => ({ action: 'delete', kind: 'task', id: task.id, version: versionOf(task) })),
      ...[...this.#updated.values()].map((task): Change => ({ action: 'update', kind: 'task', object: task })),
      ...[...this.#created.values()].map((task): Change => ({ action: 'create', kind: 'task', object: task })),
    ];
  }

  #write(task: Task): void {
    if (this.#deleted.has(task.id)) return;
    if (this.#created.has(task.id)) this.#created.set(task.id, task);
    else this.#updated.set(task.id, task);
  }
}
