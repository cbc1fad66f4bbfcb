import { ErrorCode, errors, hasCode, isRetryable } from '@shoal/errors';
import { Meta, TaskState, TaskStatus, type Node, type Service, type Task } from '@shoal/proto';
import { untilAborted, type Logger } from '@shoal/runtime';
import { byTaskState, type Commit, type StoreAction, type StoreEvent } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { systemClock, type Clock } from './clock.js';
import { Scheduler, type Assignment, type Unschedulable } from './core/index.js';
import { nextTransaction, type TaskWrite } from './transactions.js';

/** The quiet gap after a commit before a pass (swarmkit's `commitDebounceGap`). */
const DEFAULT_DEBOUNCE_MS = 50;
/** The longest a stream of commits can hold a pass back (swarmkit's `maxLatency`). */
const MAX_DEBOUNCE_MS = 1_000;
/** How long to wait before trying again when the store could not be read or written at all. */
const RETRY_AFTER_FAILURE_MS = 1_000;

export interface SchedulingLoopOptions {
  readonly state: ClusterState;
  /**
   * Whether this instance places the PENDING tasks of a service. Every instance still accounts every
   * task on every node, so that it knows what is left of each node whoever placed the tasks there.
   */
  readonly owns: (serviceId: string) => boolean;
  readonly log: Logger;
  /** Timers for the debounce and the time of status updates and failure tracking. */
  readonly clock?: Clock;
  /** How long the loop waits after a commit for more before it places tasks. @default 50 */
  readonly debounceMs?: number;
}

/**
 * The scheduler service: moves PENDING tasks to ASSIGNED, as swarmkit's scheduler does, with the
 * placement core (`./core`) deciding where.
 *
 * It keeps the core's bookkeeping in step with the store: every node, and every task holding a place
 * on one (ASSIGNED up to RUNNING), read once and then followed commit by commit. After a commit that
 * may change a decision (a task became PENDING or gave its place back, a node came or changed), and a
 * short debounce, it runs a pass: the PENDING tasks of the services it {@link SchedulingLoopOptions.owns}
 * are placed, tasks of one service version together, and the decisions are written in transactions
 * of at most 200 changes. A placed task becomes ASSIGNED on its node with swarmkit's message; one no
 * node can take stays PENDING with `no suitable node (…)` as its status error, written only when the
 * explanation changes.
 *
 * Several instances may run at once, even over the same services: each transaction that places tasks
 * on a node also bumps the node's `placementGeneration` at the version the core knew it at, and the
 * task at the version it was read at. Two instances placing on one node, or the same task, conflict
 * instead of over-committing it; the loser gives the places back, waits until its core has seen the
 * winner's write, and decides again.
 */
export class SchedulingLoop {
  readonly #state: ClusterState;
  readonly #owns: (serviceId: string) => boolean;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #debounceMs: number;
  #core: Scheduler;
  /** Every node as fed to the core; its `meta.version` is the one a placement on it must still find. */
  #nodes = new Map<string, Node>();
  /** The core must be rebuilt from the view (at start, and when the state was resynced). */
  #needsResync = true;
  /** The version of the last commit the core took in. */
  #seenVersion = 0n;
  /** A write was lost to a commit at this version: no pass decides before the core has seen it. */
  #catchUpTo = 0n;
  /** A pass is waiting for the core to reach {@link #catchUpTo}. */
  #waitingToCatchUp = false;
  /**
   * Commits that arrived during a pass, taken in once its writes have settled: so giving back the
   * places of a lost transaction can never undo the winner's placement of the same task.
   */
  #held: Commit[] | undefined;
  #passing: Promise<void> | undefined;
  #passAskedWhileBusy = false;
  #timer: unknown;
  #debounceStartedAt = 0;
  #running = false;
  #fail: ((err: unknown) => void) | undefined;

  constructor(options: SchedulingLoopOptions) {
    this.#state = options.state;
    this.#owns = options.owns;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#core = this.#newCore();
  }

  /**
   * Reads the state (before the first await) and schedules until `signal` aborts, then waits for the
   * writes in flight. Rejects if the loop meets an error retrying cannot cure (a bug); the store being
   * unreachable is retried.
   */
  async run(signal: AbortSignal): Promise<void> {
    const failure = new Promise<never>((_, reject) => {
      this.#fail = reject;
    });
    this.#running = true;
    this.#needsResync = true;
    const unsubscribe = this.#state.subscribe((commit) => this.#receive(commit));
    // The first pass reads the state before this returns, so every later commit reaches the core.
    this.#startPass();
    try {
      await Promise.race([untilAborted(signal), failure]);
    } finally {
      this.#running = false;
      this.#fail = undefined;
      unsubscribe();
      this.#cancelTimer();
      await this.#passing;
    }
  }

  /** Asks for a pass because which services this instance owns changed, so that the PENDING tasks of newly owned ones are placed. */
  rebalance(): void {
    this.#requestPass();
  }

  #newCore(): Scheduler {
    return new Scheduler({ now: () => this.#clock.now() });
  }

  #receive(commit: Commit): void {
    try {
      if (this.#held === undefined) this.#takeIn(commit);
      else this.#held.push(commit);
    } catch (err) {
      this.#fail?.(err);
    }
  }

  /** Brings the core up to `commit`, and asks for a pass if the commit may change a decision. */
  #takeIn(commit: Commit): void {
    // A commit without events says the state was replaced wholesale, whatever its version.
    if (commit.events.length === 0) {
      this.#needsResync = true;
      this.#requestPass();
      return;
    }
    // Before a resync every commit is moot: the resync reads a view that already shows it.
    if (this.#needsResync || commit.version <= this.#seenVersion) return;
    let decisionsMayChange = false;
    for (const event of commit.events) if (this.#apply(event)) decisionsMayChange = true;
    this.#seenVersion = commit.version;
    const caughtUp = this.#waitingToCatchUp && this.#seenVersion >= this.#catchUpTo;
    if (caughtUp) this.#waitingToCatchUp = false;
    if (decisionsMayChange || caughtUp) this.#requestPass();
  }

  /** Applies one event to the core; returns whether it may change a decision. */
  #apply(event: StoreEvent): boolean {
    if (event.kind === 'node') return this.#applyNode(event.action, event.object);
    if (event.kind === 'task') return this.#applyTask(event.action, event.object);
    return false;
  }

  #applyNode(action: StoreAction, node: Node): boolean {
    if (action === 'delete') {
      if (this.#nodes.delete(node.id)) this.#core.removeNode(node.id);
      return false;
    }
    if (this.#nodes.has(node.id)) this.#core.updateNode(node);
    else this.#core.addNode(node);
    this.#nodes.set(node.id, node);
    return true;
  }

  #applyTask(action: StoreAction, task: Task): boolean {
    if (action !== 'delete' && holdsPlace(task)) {
      this.#core.addTask(task);
      return false;
    }
    const released = this.#core.removeTask(task.id);
    const state = stateOf(task);
    // A task of a global service (slot 0) was created on its node: the scheduler did not choose it,
    // so its failures say nothing about the node (swarmkit skips them too).
    if (released && action !== 'delete' && (state === TaskState.FAILED || state === TaskState.REJECTED) && task.slot !== 0n) {
      this.#core.recordTaskFailure(task);
    }
    return released || (action !== 'delete' && state === TaskState.PENDING);
  }

  /** Rebuilds the core from the view: every node, and every task holding a place on one. */
  #resync(): void {
    const core = this.#newCore();
    const nodes = new Map<string, Node>();
    const version = this.#state.view((tx) => {
      for (const node of tx.list('node')) {
        core.addNode(node);
        nodes.set(node.id, node);
      }
      for (const task of tx.list('task')) if (holdsPlace(task)) core.addTask(task);
      return tx.version;
    });
    this.#core = core;
    this.#nodes = nodes;
    this.#seenVersion = version;
    this.#needsResync = false;
  }

  /**
   * swarmkit's debounce: a pass runs once no commit asked for one for `debounceMs`, but no later than
   * {@link MAX_DEBOUNCE_MS} after the first that did.
   */
  #requestPass(delayMs = this.#debounceMs): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    if (this.#timer === undefined) this.#debounceStartedAt = now;
    else this.#clock.clearTimeout(this.#timer);
    const dueAt = Math.min(now + delayMs, this.#debounceStartedAt + MAX_DEBOUNCE_MS);
    this.#timer = this.#clock.setTimeout(() => this.#startPass(), Math.max(0, dueAt - now));
  }

  /** Asks for a pass after a failure, unless one is due anyway (it will ask again if it fails too). */
  #retryLater(): void {
    if (this.#running && this.#timer === undefined) this.#requestPass(RETRY_AFTER_FAILURE_MS);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #startPass(): void {
    this.#timer = undefined;
    if (this.#passing !== undefined) {
      this.#passAskedWhileBusy = true;
      return;
    }
    this.#held = [];
    this.#passing = this.#pass()
      .catch((err: unknown) => this.#fail?.(err))
      .finally(() => this.#endPass());
  }

  #endPass(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#passing = undefined;
    for (const commit of held) this.#receive(commit);
    if (this.#passAskedWhileBusy) {
      this.#passAskedWhileBusy = false;
      this.#requestPass();
    }
  }

  /** Places the PENDING tasks this instance owns and writes the decisions. */
  async #pass(): Promise<void> {
    try {
      if (this.#needsResync) this.#resync();
      if (this.#seenVersion < this.#catchUpTo) {
        this.#waitingToCatchUp = true;
        return;
      }
      const pending = this.#state.view((tx) => tx.find('task', byTaskState(TaskState.PENDING)).filter((task) => this.#mayPlace(task)));
      if (pending.length === 0) return;
      const { assigned, unschedulable } = this.#core.schedule(pending);
      const at = new Date(this.#clock.now());
      const writes = [...assigned.map((assignment) => placement(assignment, at)), ...this.#newReasons(unschedulable, at)];
      this.#log.debug({ assigned: assigned.length, unschedulable: unschedulable.length, writes: writes.length }, 'scheduling pass');
      await this.#write(writes);
    } catch (err) {
      if (!isRetryable(err)) throw err;
      this.#log.warn({ err }, 'cannot read the cluster state; scheduling again shortly');
      this.#retryLater();
    }
  }

  /**
   * A PENDING task this instance places now: meant to run (swarmkit leaves tasks desired beyond
   * COMPLETE alone), of a service it owns, and for one created on its node, a node the core knows
   * (until then there is nothing to check it against, and swarmkit writes nothing either).
   */
  #mayPlace(task: Task): boolean {
    return task.desiredState <= TaskState.COMPLETE && (task.nodeId === '' || this.#nodes.has(task.nodeId)) && this.#owns(task.serviceId);
  }

  /**
   * The unschedulable tasks whose explanation changed, with it as their status error. Tasks of a
   * deleted service or of an older spec version than the service's are about to go away, so as
   * swarmkit does, their status is left as it is.
   */
  #newReasons(unschedulable: readonly Unschedulable[], at: Date): TaskWrite[] {
    const changed = unschedulable.filter(({ task, reason }) => task.status?.err !== reason);
    if (changed.length === 0) return [];
    return this.#state.view((tx) =>
      changed
        .filter(({ task }) => isCurrent(task, tx.get('service', task.serviceId)))
        .map(({ task, reason }) => ({ task: { ...task, status: { ...(task.status ?? TaskStatus.fromPartial({})), err: reason, timestamp: at } } })),
    );
  }

  /** Commits `writes` in as many transactions as the store's limits need; a transaction that fails gives its places back. */
  async #write(writes: readonly TaskWrite[]): Promise<void> {
    for (let start = 0; start < writes.length; ) {
      // Built only now: each node bump must expect the version the previous transaction left.
      const transaction = nextTransaction(writes, start, (nodeId) => this.#knownNode(nodeId));
      start += transaction.writes.length;
      try {
        const version = await this.#state.commit({ changes: transaction.changes });
        for (const node of transaction.bumpedNodes) this.#nodes.set(node.id, { ...node, meta: { ...(node.meta ?? Meta.fromPartial({})), version: { index: version } } });
      } catch (err) {
        for (const write of transaction.writes) if (write.nodeId !== undefined) this.#core.removeTask(write.task.id);
        this.#lost(err, transaction.writes.length);
      }
    }
  }

  #knownNode(nodeId: string): Node {
    const node = this.#nodes.get(nodeId);
    // The core only places tasks on nodes this loop fed it, and nothing is taken in during a pass.
    if (node === undefined) throw errors.internal(`the core placed a task on node ${nodeId}, which the scheduling loop does not know`, { nodeId });
    return node;
  }

  #lost(err: unknown, tasks: number): void {
    if (hasCode(err, ErrorCode.Conflict) || hasCode(err, ErrorCode.NotFound)) {
      // Another writer got to a task or node first. Deciding again before the core has seen that
      // write would only lose again: wait for the version it was written at (or the view's, if the
      // error does not say).
      const { version } = err.details;
      const lostTo = typeof version === 'bigint' ? version : this.#state.version;
      if (lostTo > this.#catchUpTo) this.#catchUpTo = lostTo;
      this.#log.debug({ err, tasks, version: lostTo }, 'lost a placement race; placing those tasks again');
      this.#requestPass();
      return;
    }
    this.#log.warn({ err, tasks }, 'could not write placements; placing those tasks again shortly');
    this.#retryLater();
  }
}

function stateOf(task: Task): TaskState {
  return task.status?.state ?? TaskState.NEW;
}

/** ASSIGNED up to RUNNING on a node: the task holds its reservations there (whatever its desired state). */
function holdsPlace(task: Task): boolean {
  const state = stateOf(task);
  return task.nodeId !== '' && state >= TaskState.ASSIGNED && state <= TaskState.RUNNING;
}

function isCurrent(task: Task, service: Service | undefined): boolean {
  if (service === undefined) return false;
  const serviceVersion = service.specVersion?.index;
  const taskVersion = task.specVersion?.index;
  return serviceVersion === undefined || taskVersion === undefined || serviceVersion <= taskVersion;
}

/** The task as the assignment makes it: ASSIGNED on its node with a fresh status, as swarmkit writes it. */
function placement({ task, nodeId, assignedGenericResources, message }: Assignment, at: Date): TaskWrite {
  return {
    nodeId,
    task: {
      ...task,
      nodeId,
      assignedGenericResources: [...assignedGenericResources],
      status: TaskStatus.fromPartial({ state: TaskState.ASSIGNED, message, timestamp: at }),
    },
  };
}
