import { isDeepStrictEqual } from 'node:util';
import {
  NodeStatus_State,
  ServiceSpec,
  TaskState,
  taskStateName,
  UpdateConfig_FailureAction,
  UpdateConfig_UpdateOrder,
  UpdateStatus_UpdateState,
  type Service,
  type Task,
} from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { byNodeId, bySlot, versionOf, type Change, type Commit, type Precondition, type ReadTx } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { isPerNodeMode, serviceModeOf } from '../service-mode.js';
import { ClusterSession } from './cluster-session.js';
import { isSlotDirty, isTaskDirty } from './dirty.js';
import { exceedsFailureRatio, finalMonitorMs, isRollingBack, rolloutPolicyOf, type RolloutPolicy } from './policy.js';
import { completeUpdate, pauseUpdate, rollBackUpdate, startUpdate, statusMessages, type ServiceTransition } from './status.js';

/** Makes a task of `service` for `slot` (on `nodeId` when not empty), desired RUNNING, not yet stored. */
export type NewTask = (service: Service, slot: bigint, nodeId: string, now: Date) => Task;

/** Waits `ms`, or less if `signal` aborts; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** What every rollout of an updater shares. */
export interface RolloutContext {
  readonly state: ClusterState;
  readonly fence: Precondition | undefined;
  readonly clock: () => Date;
  readonly sleep: Sleep;
  readonly log: Logger;
  readonly newTask: NewTask;
}

/**
 * How long stop-first waits for an old task to stop before starting its replacement anyway
 * (swarmkit's `defaultOldTaskTimeout`): an agent that never reports must not stall the rollout.
 */
const oldTaskStopTimeoutMs = 60_000;

const canonicalServiceSpec = (service: Service) => ServiceSpec.toJSON(ServiceSpec.fromPartial(service.spec ?? {}));

/** Whether the service's slots are nodes (global services), not replica numbers. */
function isPerNode(service: Service): boolean {
  const mode = serviceModeOf(service);
  return mode !== undefined && isPerNodeMode(mode);
}

const shutDown = (task: Task): Task => ({ ...task, desiredState: TaskState.SHUTDOWN });

const taskUpdate = (object: Task): Change => ({ action: 'update', kind: 'task', object });

/** The tasks among `tasks` that are still meant to run, as stored now. */
function stillLive(tx: ReadTx, tasks: readonly Task[]): Task[] {
  return tasks.flatMap((task) => {
    const current = tx.get('task', task.id);
    return current !== undefined && current.desiredState <= TaskState.RUNNING ? [current] : [];
  });
}

/**
 * Whether an old task no longer holds what its replacement needs (ports, volumes): it ended, it
 * never reached a node, it is gone, or its node is.
 */
function hasStopped(tx: ReadTx, task: Task): boolean {
  const current = tx.get('task', task.id);
  if (current === undefined) return true;
  const state = current.status?.state ?? TaskState.NEW;
  if (state > TaskState.RUNNING || state < TaskState.ASSIGNED) return true;
  const node = tx.get('node', current.nodeId);
  return node === undefined || node.status?.state === NodeStatus_State.DOWN;
}

/**
 * One rolling update (or rollback) of one service towards the spec it was created with: swarmkit's
 * `update.Updater.Run`. It replaces the dirty slots, `parallelism` at a time, waiting `delay` after
 * each; watches the replacements it created and applies the failure action once too many of them fail
 * before running or within the monitor period after; keeps watching for one more monitor period
 * after the last slot; and reports its progress in the service's `updateStatus`.
 *
 * Every write is conditional on what was read, and fenced. A write that fails for good ends the
 * rollout with that error; whatever it already did stays (the next rollout picks up from there).
 */
export class Rollout {
  /** The service as it was when the rollout was asked for: the goal. */
  readonly #service: Service;
  readonly #slots: readonly (readonly Task[])[];
  readonly #context: RolloutContext;
  readonly #log: Logger;
  readonly #policy: RolloutPolicy;
  /** Aborted by {@link cancel} or a write that failed for good: everything stops, replacements under way included. */
  readonly #halt = new AbortController();
  /** Aborted once no further slot may start (halted, or the failure action taken); replacements under way finish. */
  readonly #noMoreSlots = new AbortController();
  /** The replacements this rollout created, with when each was first seen running. */
  readonly #replacements = new Map<string, Date | undefined>();
  /** Replacements that failed or ended early enough to count against the rollout. */
  readonly #failures = new Set<string>();
  #dirtySlotCount = 0;
  #failureAction: Promise<void> | undefined;
  #error: unknown;
  readonly #session: ClusterSession;

  constructor(service: Service, slots: readonly (readonly Task[])[], context: RolloutContext) {
    this.#service = service;
    this.#slots = slots;
    this.#context = context;
    this.#log = context.log.child({ serviceId: service.id });
    this.#policy = rolloutPolicyOf(service);
    this.#session = new ClusterSession(context.state, context.fence, (commit) => this.#watchReplacements(commit));
  }

  /** Whether this rollout, still going, already works towards `service`'s spec. */
  pursues(service: Service): boolean {
    return (
      !this.#halt.signal.aborted &&
      service.specVersion?.index === this.#service.specVersion?.index &&
      isDeepStrictEqual(canonicalServiceSpec(service), canonicalServiceSpec(this.#service))
    );
  }

  /** Stops the rollout as soon as it can; it writes nothing more. */
  cancel(): void {
    this.#halt.abort();
    this.#noMoreSlots.abort();
  }

  /** Runs the rollout to its end (completed, paused, rolled back or cancelled). Rejects with a write that failed for good. */
  async run(): Promise<void> {
    try {
      await this.#roll();
    } finally {
      this.#session.close();
    }
    if (this.#error !== undefined) throw this.#error;
  }

  async #roll(): Promise<void> {
    const status = this.#service.updateStatus?.state;
    // A paused rollout stays paused until the next spec update clears the status.
    if (this.#halt.signal.aborted || status === UpdateStatus_UpdateState.PAUSED || status === UpdateStatus_UpdateState.ROLLBACK_PAUSED) return;

    const dirtySlots = this.#session.read((tx) => this.#slots.map((slot) => this.#liveTasksOf(tx, slot))).filter((slot) => isSlotDirty(this.#service, slot));
    this.#dirtySlotCount = dirtySlots.length;
    if (dirtySlots.length === 0) {
      if (status === UpdateStatus_UpdateState.UPDATING || status === UpdateStatus_UpdateState.ROLLBACK_STARTED) {
        await this.#transition(completeUpdate(this.#context.clock()));
      }
      return;
    }

    await this.#transition(startUpdate(this.#context.clock()));
    this.#log.info({ state: isRollingBack(this.#service) ? 'rolling back' : 'updating', slots: dirtySlots.length }, 'rollout started');
    const queue = dirtySlots.values();
    const workers = this.#policy.parallelism === 0 ? dirtySlots.length : Math.min(this.#policy.parallelism, dirtySlots.length);
    await Promise.all(Array.from({ length: workers }, () => this.#work(queue)));

    if (!this.#noMoreSlots.signal.aborted) await this.#context.sleep(finalMonitorMs(this.#policy), this.#noMoreSlots.signal);
    if (this.#failureAction !== undefined) await this.#failureAction;
    else if (!this.#halt.signal.aborted) {
      await this.#transition(completeUpdate(this.#context.clock()));
      this.#log.info({ state: 'completed' }, 'rollout completed');
    }
  }

  /**
   * The slot's tasks that are meant to run, as stored now: a rollout that waited for a cancelled one
   * must not act on tasks that one has since replaced.
   */
  #liveTasksOf(tx: ReadTx, slot: readonly Task[]): Task[] {
    const [first] = slot;
    if (first === undefined) return [];
    const occupants = isPerNode(this.#service)
      ? tx.find('task', byNodeId(first.nodeId)).filter((task) => task.serviceId === this.#service.id && task.slot === first.slot)
      : tx.find('task', bySlot(this.#service.id, first.slot));
    return occupants.filter((task) => task.desiredState <= TaskState.RUNNING);
  }

  /** One worker: takes slots from the shared queue until it is empty or no further slot may start. */
  async #work(queue: Iterator<readonly Task[]>): Promise<void> {
    for (;;) {
      if (this.#noMoreSlots.signal.aborted) return;
      const next = queue.next();
      if (next.done === true) return;
      try {
        await this.#updateSlot(next.value);
      } catch (err) {
        this.#fail(err);
        return;
      }
      if (this.#policy.delayMs > 0) await this.#context.sleep(this.#policy.delayMs, this.#noMoreSlots.signal);
    }
  }

  /** Brings one slot to the goal: keeps a task already made from it, or replaces the slot's tasks. */
  async #updateSlot(slot: readonly Task[]): Promise<void> {
    const clean = slot.filter((task) => !isTaskDirty(this.#service, task));
    const keep = clean.find((task) => task.desiredState === TaskState.RUNNING) ?? clean.filter((task) => task.desiredState < TaskState.RUNNING).at(-1);
    if (keep !== undefined) return this.#keep(slot, keep);
    return this.#policy.order === UpdateConfig_UpdateOrder.START_FIRST ? this.#startFirst(slot) : this.#stopFirst(slot);
  }

  /** A slot that already has a task made from the goal (an interrupted replacement): shut the others down and make sure it runs. */
  async #keep(slot: readonly Task[], keep: Task): Promise<void> {
    const stopping = await this.#shutDown(slot.filter((task) => task.id !== keep.id));
    if (keep.desiredState === TaskState.RUNNING) return;
    await this.#untilStopped(stopping);
    await this.#start(keep.id);
  }

  /**
   * Stop-first: in one write, shut the slot's tasks down and create the replacement desired READY (so
   * its agent prepares it but does not start it); start it once the old tasks have stopped; wait
   * until it runs or fails.
   */
  async #stopFirst(slot: readonly Task[]): Promise<void> {
    const replacement = this.#newReplacement(slot, TaskState.READY);
    let stopping: Task[] = [];
    const created = await this.#session.write((tx) => {
      const service = this.#serviceAsRead(tx);
      if (service === undefined) return undefined;
      stopping = stillLive(tx, slot).map(shutDown);
      // Someone else shut the slot's tasks down since they were read (a restart, a scale-down): the slot is theirs now.
      if (stopping.length === 0) return undefined;
      return { changes: [...stopping.map(taskUpdate), { action: 'create', kind: 'task', object: replacement }], preconditions: [service] };
    }, this.#halt.signal);
    if (!created) return this.#forget(replacement);
    await this.#untilStopped(stopping);
    await this.#start(replacement.id);
    await this.#untilUp(replacement.id);
  }

  /** Start-first: create the replacement desired RUNNING, and shut the slot's tasks down once it runs. */
  async #startFirst(slot: readonly Task[]): Promise<void> {
    const replacement = this.#newReplacement(slot, TaskState.RUNNING);
    const created = await this.#session.write((tx) => {
      const service = this.#serviceAsRead(tx);
      return service && { changes: [{ action: 'create', kind: 'task', object: replacement }], preconditions: [service] };
    }, this.#halt.signal);
    if (!created) return this.#forget(replacement);
    // A replacement that failed leaves the old tasks running.
    if ((await this.#untilUp(replacement.id)) === true) await this.#shutDown(slot);
  }

  /** A replacement for the slot, registered as this rollout's before it is written so that none of its events is missed. */
  #newReplacement(slot: readonly Task[], desiredState: TaskState): Task {
    const [first] = slot as [Task, ...Task[]];
    const nodeId = isPerNode(this.#service) ? first.nodeId : '';
    const task = { ...this.#context.newTask(this.#service, first.slot, nodeId, this.#context.clock()), desiredState };
    this.#replacements.set(task.id, undefined);
    return task;
  }

  #forget(replacement: Task): void {
    this.#replacements.delete(replacement.id);
  }

  /** The precondition that the service still exists as read: nothing is created for a service deleted meanwhile. */
  #serviceAsRead(tx: ReadTx): Precondition | undefined {
    const stored = tx.get('service', this.#service.id);
    return stored && { kind: 'service', id: stored.id, version: versionOf(stored) };
  }

  /** Sets desired SHUTDOWN on those of `tasks` still meant to run; resolves with them. */
  async #shutDown(tasks: readonly Task[]): Promise<Task[]> {
    if (tasks.length === 0) return [];
    let stopping: Task[] = [];
    const written = await this.#session.write((tx) => {
      stopping = stillLive(tx, tasks).map(shutDown);
      return stopping.length === 0 ? undefined : { changes: stopping.map(taskUpdate) };
    }, this.#halt.signal);
    return written ? stopping : [];
  }

  /** Raises a task's desired state to RUNNING, unless someone already moved it on. */
  async #start(taskId: string): Promise<void> {
    await this.#session.write((tx) => {
      const task = tx.get('task', taskId);
      return task !== undefined && task.desiredState < TaskState.RUNNING ? { changes: [taskUpdate({ ...task, desiredState: TaskState.RUNNING })] } : undefined;
    }, this.#halt.signal);
  }

  /** Waits until every task in `tasks` has stopped, or the old-task timeout passes. */
  async #untilStopped(tasks: readonly Task[]): Promise<void> {
    if (tasks.length === 0) return;
    const done = new AbortController();
    const signal = AbortSignal.any([this.#halt.signal, done.signal]);
    const stopped = await Promise.race([
      this.#session.until((tx) => (tasks.every((task) => hasStopped(tx, task)) ? true : undefined), signal),
      this.#context.sleep(oldTaskStopTimeoutMs, signal).then(() => false),
    ]);
    done.abort();
    if (stopped === false && !this.#halt.signal.aborted) {
      this.#log.warn({ taskId: tasks[0]!.id }, 'old task did not stop in time; starting its replacement anyway');
    }
  }

  /**
   * Waits until a replacement has come up or ended: true once it runs, false if it ended, was
   * deleted or was shut down by someone else before running; undefined if the rollout halted.
   */
  #untilUp(taskId: string): Promise<boolean | undefined> {
    return this.#session.until((tx) => {
      const task = tx.get('task', taskId);
      if (task === undefined) return false;
      const state = task.status?.state ?? TaskState.NEW;
      if (state >= TaskState.RUNNING) return state === TaskState.RUNNING;
      return task.desiredState > TaskState.RUNNING ? false : undefined;
    }, this.#halt.signal);
  }

  /**
   * Follows this rollout's replacements through each commit: notes when each first runs, and counts
   * one that ends (fails, completes, is shut down) before running or within the monitor period after
   * as a failure. A commit without events (the view resynced) re-reads them all.
   */
  #watchReplacements(commit: Commit): void {
    if (this.#policy.failureAction === UpdateConfig_FailureAction.CONTINUE || this.#replacements.size === 0) return;
    const replacements =
      commit.events.length === 0
        ? this.#session.read((tx) => [...this.#replacements.keys()].flatMap((id) => tx.get('task', id) ?? []))
        : commit.events.flatMap((event) => (event.kind === 'task' && event.action !== 'delete' && this.#replacements.has(event.object.id) ? [event.object] : []));
    for (const task of replacements) this.#observe(task);
  }

  #observe(task: Task): void {
    const state = task.status?.state ?? TaskState.NEW;
    if (state < TaskState.RUNNING) return;
    const now = this.#context.clock();
    const runningSince = this.#replacements.get(task.id) ?? now;
    this.#replacements.set(task.id, runningSince);
    if (state === TaskState.RUNNING || this.#failures.has(task.id)) return;
    if (now.getTime() - runningSince.getTime() > this.#policy.monitorMs) return;
    this.#failures.add(task.id);
    this.#log.warn({ taskId: task.id, state: taskStateName(state), failures: this.#failures.size }, 'replacement task ended early');
    if (this.#failureAction === undefined && exceedsFailureRatio(this.#failures.size, this.#dirtySlotCount, this.#policy)) {
      this.#noMoreSlots.abort();
      this.#failureAction = this.#transition(this.#failureTransition(task.id)).then(
        () => undefined,
        (err: unknown) => this.#fail(err),
      );
    }
  }

  /** What too many failures lead to: a pause, or a rollback (a failing rollback only pauses: a rollback is never rolled back). */
  #failureTransition(taskId: string): ServiceTransition {
    if (this.#policy.failureAction !== UpdateConfig_FailureAction.ROLLBACK) return pauseUpdate(statusMessages.updatePaused(taskId));
    if (isRollingBack(this.#service)) return pauseUpdate(statusMessages.rollbackPaused(taskId));
    return rollBackUpdate(taskId);
  }

  /**
   * Rewrites the stored service's status, unless the service is gone or has a spec other than this
   * rollout's goal: then the status is no longer this rollout's to report.
   */
  #transition(transition: ServiceTransition): Promise<boolean> {
    const { id, specVersion } = this.#service;
    return this.#session.write((tx) => {
      const stored = tx.get('service', id);
      if (stored === undefined || stored.specVersion?.index !== specVersion?.index) return undefined;
      const rewritten = transition(stored);
      return rewritten && { changes: [{ action: 'update', kind: 'service', object: rewritten }] };
    }, this.#halt.signal);
  }

  /** Halts the rollout over an error; the first one is what {@link run} rejects with. A cancelled rollout's errors are moot. */
  #fail(err: unknown): void {
    if (this.#halt.signal.aborted) return;
    this.#error = err;
    this.cancel();
  }
}
