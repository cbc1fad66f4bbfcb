import {
  AssignmentChange_AssignmentAction,
  AssignmentsMessage_Type,
  Config,
  Secret,
  Task,
  TaskState,
  type Assignment,
  type AssignmentChange,
  type AssignmentsMessage,
} from '@shoal/proto';
import { byNodeId, type Commit, type ReadTx } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { sameEncoding } from './messages.js';

/** swarmkit's `batchingWaitTime`: changes go out this long after the last one. */
const BATCH_WAIT_MS = 100;
/** swarmkit's `modificationBatchLimit`: a message carries at most this many changes. */
const MAX_CHANGES_PER_MESSAGE = 100;

type DependencyKind = 'secret' | 'config';
const { UPDATE, REMOVE } = AssignmentChange_AssignmentAction;

/** What an {@link AssignmentStream} reads from and writes to. */
export interface AssignmentStreamOptions {
  readonly nodeId: string;
  readonly state: ClusterState;
  readonly send: (message: AssignmentsMessage) => void;
  /** @default 100 */
  readonly batchWaitMs?: number;
}

/**
 * One node's Assignments stream (swarmkit's `Dispatcher.Assignments` and `assignmentSet`): a COMPLETE
 * message with every task of the node from ASSIGNED on, and the secrets and configs its tasks up to
 * RUNNING reference; then INCREMENTAL messages with what changed, sent 100 ms after the last change
 * (at most 100 changes each), chained by `appliesTo`/`resultsIn` so the agent can tell a gap.
 *
 * A dependency is sent once, when the first live task referencing it arrives, and removed when the
 * last one moves past RUNNING or goes: the node holds exactly the secrets and configs its running
 * tasks need. Task updates that only change the agent's own status are not echoed back.
 */
export class AssignmentStream {
  readonly #nodeId: string;
  readonly #state: ClusterState;
  readonly #send: (message: AssignmentsMessage) => void;
  readonly #batchWaitMs: number;
  /** The node's tasks as last sent or seen, by ID. */
  readonly #tasks = new Map<string, Task>();
  /** The IDs of the tasks using each dependency sent, by `secret/<id>` or `config/<id>`. */
  readonly #users = new Map<string, Set<string>>();
  /** Changes not sent yet, one per object, by `task/<id>`, `secret/<id>` or `config/<id>`. */
  #changes = new Map<string, AssignmentChange>();
  #modifications = 0;
  #timer: NodeJS.Timeout | undefined;
  #resultsIn = 0;
  /** The store version the set reflects: commits up to it are already in. */
  #version = 0n;

  constructor(options: AssignmentStreamOptions) {
    this.#nodeId = options.nodeId;
    this.#state = options.state;
    this.#send = options.send;
    this.#batchWaitMs = options.batchWaitMs ?? BATCH_WAIT_MS;
  }

  /** Sends the COMPLETE set as the store has it now. */
  start(): void {
    this.#state.view((tx) => {
      this.#version = tx.version;
      for (const task of tx.find('task', byNodeId(this.#nodeId))) this.#upsert(tx, task);
    });
    const changes = [...this.#changes.values()];
    this.#changes = new Map();
    this.#emit(AssignmentsMessage_Type.COMPLETE, changes);
  }

  /** Takes in a commit; an event-less commit (the view was resynced) is a cue to compare everything. */
  apply(commit: Commit): void {
    if (commit.version <= this.#version) return;
    this.#state.view((tx) => {
      this.#version = tx.version;
      if (commit.events.length === 0) {
        this.#resync(tx);
        return;
      }
      for (const event of commit.events) {
        if (event.kind !== 'task') continue;
        const task = event.object;
        if (task.nodeId !== this.#nodeId && !this.#tasks.has(task.id)) continue;
        const modified = event.action === 'delete' || task.nodeId !== this.#nodeId ? this.#remove(task.id) : this.#upsert(tx, task);
        if (modified) this.#modified();
      }
    });
  }

  /** Stops the batching timer; nothing more is sent. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #resync(tx: ReadTx): void {
    const current = new Map(tx.find('task', byNodeId(this.#nodeId)).map((task) => [task.id, task]));
    for (const id of [...this.#tasks.keys()]) if (!current.has(id) && this.#remove(id)) this.#modified();
    for (const task of current.values()) if (this.#upsert(tx, task)) this.#modified();
  }

  /** swarmkit's `addOrUpdateTask`; true if the agent must hear of it. */
  #upsert(tx: ReadTx, task: Task): boolean {
    const state = task.status?.state ?? TaskState.NEW;
    // Below ASSIGNED the task may yet go elsewhere: its secrets must not reach this node.
    if (state < TaskState.ASSIGNED) return false;
    const known = this.#tasks.get(task.id);
    this.#tasks.set(task.id, task);
    const released = state > TaskState.RUNNING && this.#releaseDependencies(task);
    if (state <= TaskState.RUNNING && known === undefined) this.#addDependencies(tx, task);
    // The agent wrote anything past ASSIGNED itself: echo only what a manager changed.
    if (known !== undefined && state > TaskState.ASSIGNED && tasksEqualStable(known, task)) return released;
    this.#changes.set(`task/${task.id}`, change({ task }, UPDATE));
    return true;
  }

  /** swarmkit's `removeTask`: a REMOVE with the ID only. */
  #remove(taskId: string): boolean {
    const known = this.#tasks.get(taskId);
    if (known === undefined) return false;
    this.#tasks.delete(taskId);
    this.#releaseDependencies(known);
    this.#changes.set(`task/${taskId}`, change({ task: Task.fromPartial({ id: taskId }) }, REMOVE));
    return true;
  }

  #addDependencies(tx: ReadTx, task: Task): void {
    for (const [kind, id] of dependenciesOf(task)) {
      const key = `${kind}/${id}`;
      const users = this.#users.get(key);
      if (users !== undefined) {
        users.add(task.id);
        continue;
      }
      // A dependency deleted meanwhile cannot be sent; the agent fails the task for want of it.
      const assignment = dependencyAssignment(tx, kind, id);
      if (assignment === undefined) continue;
      this.#users.set(key, new Set([task.id]));
      this.#changes.set(key, change(assignment, UPDATE));
    }
  }

  /** Drops the task's claim on its dependencies; true if that removed any from the node. */
  #releaseDependencies(task: Task): boolean {
    let released = false;
    for (const [kind, id] of dependenciesOf(task)) {
      const key = `${kind}/${id}`;
      const users = this.#users.get(key);
      if (users === undefined || !users.delete(task.id) || users.size > 0) continue;
      this.#users.delete(key);
      this.#changes.set(key, change(kind === 'secret' ? { secret: Secret.fromPartial({ id }) } : { config: Config.fromPartial({ id }) }, REMOVE));
      released = true;
    }
    return released;
  }

  /** swarmkit's batching: the timer restarts at each change, and a full batch goes at once. */
  #modified(): void {
    this.#modifications += 1;
    clearTimeout(this.#timer);
    if (this.#modifications >= MAX_CHANGES_PER_MESSAGE) this.#flush();
    else this.#timer = setTimeout(() => this.#flush(), this.#batchWaitMs);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#modifications = 0;
    const changes = inDeliveryOrder([...this.#changes.values()]);
    this.#changes = new Map();
    for (let start = 0; start < changes.length; start += MAX_CHANGES_PER_MESSAGE) {
      this.#emit(AssignmentsMessage_Type.INCREMENTAL, changes.slice(start, start + MAX_CHANGES_PER_MESSAGE));
    }
  }

  #emit(type: AssignmentsMessage_Type, changes: AssignmentChange[]): void {
    const appliesTo = this.#resultsIn === 0 ? '' : String(this.#resultsIn);
    this.#resultsIn += 1;
    this.#send({ type, appliesTo, resultsIn: String(this.#resultsIn), changes });
  }
}

function change(assignment: Assignment, action: AssignmentChange_AssignmentAction): AssignmentChange {
  return { assignment, action };
}

function dependencyAssignment(tx: ReadTx, kind: DependencyKind, id: string): Assignment | undefined {
  if (kind === 'secret') {
    const secret = tx.get('secret', id);
    return secret === undefined ? undefined : { secret };
  }
  const config = tx.get('config', id);
  return config === undefined ? undefined : { config };
}

/** The secrets and configs a task's container references. */
function dependenciesOf(task: Task): Array<[DependencyKind, string]> {
  const container = task.spec?.container;
  return [
    ...(container?.secrets ?? []).map((reference): [DependencyKind, string] => ['secret', reference.secretId]),
    ...(container?.configs ?? []).map((reference): [DependencyKind, string] => ['config', reference.configId]),
  ];
}

/**
 * Dependencies before the tasks that need them and removed after the tasks that used them, so that
 * when a batch is split over several messages no task arrives before its secrets.
 */
function inDeliveryOrder(changes: AssignmentChange[]): AssignmentChange[] {
  const rank = ({ assignment, action }: AssignmentChange) => (assignment?.task === undefined ? (action === UPDATE ? 0 : 3) : action === UPDATE ? 1 : 2);
  return changes.sort((a, b) => rank(a) - rank(b));
}

/** swarmkit's `TasksEqualStable`: equal but for `meta` and `status`, which change without the agent needing to hear. */
function tasksEqualStable(a: Task, b: Task): boolean {
  return sameEncoding(Task, { ...a, meta: undefined, status: undefined }, { ...b, meta: undefined, status: undefined });
}
