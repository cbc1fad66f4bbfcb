import { ErrorCode, hasCode } from '@shoal/errors';
import { NodeStatus_State, TaskState, type Node, type Task } from '@shoal/proto';
import { byNodeId, splitIntoTransactions, type Change } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';

/** What a fake node does with a task it is given. */
export type TaskOutcome = { readonly state: 'running' } | { readonly state: 'failed'; readonly exitCode: number } | { readonly state: 'complete' };

export interface FakeAgentsOptions {
  readonly clock?: () => Date;
  /** How each task assigned to a node turns out; default: it runs (a job task completes). */
  readonly outcome?: (task: Task) => TaskOutcome;
  /** How long status changes are gathered into one transaction, as the dispatcher batches them. */
  readonly batchMs?: number;
}

const isDown = (node: Node | undefined) => node?.status?.state === NodeStatus_State.DOWN;


/**
 * Agents that run no containers: they report the tasks assigned to their nodes as running (or
 * failed, or complete, as told) and stop tasks the orchestrator wants shut down, writing task status
 * the way the dispatcher does for real agents (batched, by the version read, moving forward only).
 * The agent of a node that is DOWN reports nothing until the node is back, as a lost host cannot.
 * For simulations and benchmarks of the control plane.
 */
export class FakeAgents {
  readonly #state: ClusterState;
  readonly #clock: () => Date;
  readonly #outcome: (task: Task) => TaskOutcome;
  readonly #batchMs: number;
  #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  /** The first write that failed for a reason other than a lost race; `run` rejects with it. */
  #failure: unknown;
  readonly #failures: Set<string> = new Set();

  constructor(state: ClusterState, options: FakeAgentsOptions = {}) {
    this.#state = state;
    this.#clock = options.clock ?? (() => new Date());
    this.#outcome = options.outcome ?? ((task) => (task.desiredState === TaskState.COMPLETE ? { state: 'complete' } : { state: 'running' }));
    this.#batchMs = options.batchMs ?? 10;
  }

  /** Follows the store until `signal` aborts; rejects then with the first write that failed other than by a lost race. */
  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.#state.subscribe((commit) => {
      if (commit.events.length === 0) this.#state.view((tx) => tx.list('task').forEach((task) => this.#dirty.add(task.id)));
      for (const event of commit.events) {
        if (event.kind === 'task' && event.action !== 'delete') this.#dirty.add(event.object.id);
        // A node that is back catches up on what its tasks were told while it was down.
        if (event.kind === 'node' && event.action === 'update' && !isDown(event.object)) {
          this.#state.view((tx) => tx.find('task', byNodeId(event.object.id)).forEach((task) => this.#dirty.add(task.id)));
        }
      }
      this.#schedule();
    });
    this.#state.view((tx) => tx.list('task').forEach((task) => this.#dirty.add(task.id)));
    this.#schedule();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    unsubscribe();
    clearTimeout(this.#timer);
    await this.#writing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Makes the container of a running task exit with `exitCode` (as `docker rm -f` gives 137). */
  async exit(taskId: string, exitCode: number): Promise<void> {
    this.#failures.add(`${taskId}:${exitCode}`);
    this.#dirty.add(taskId);
    this.#schedule();
    await this.#writing;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#dirty.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // Kept, not thrown: a rejection here would have no handler until `run` ends.
      this.#writing = this.#writing.then(() => this.#flush()).catch((err: unknown) => void (this.#failure ??= err));
    }, this.#batchMs);
  }

  async #flush(): Promise<void> {
    const ids = [...this.#dirty];
    this.#dirty.clear();
    const changes = this.#state.view((tx) =>
      ids.flatMap((id) => {
        const task = tx.get('task', id);
        // A node that is down has no agent to report anything.
        const next = task === undefined || isDown(tx.get('node', task.nodeId)) ? undefined : this.#next(task);
        return next === undefined ? [] : [{ action: 'update', kind: 'task', object: next } as Change];
      }),
    );
    for (const batch of splitIntoTransactions(changes)) {
      try {
        await this.#state.commit({ changes: batch });
      } catch (err) {
        if (!hasCode(err, ErrorCode.Conflict) && !hasCode(err, ErrorCode.NotFound)) throw err;
        // Someone else wrote one of them first: look at each again.
        for (const change of batch) if (change.action === 'update') this.#dirty.add(change.object.id);
        this.#schedule();
      }
    }
  }

  /** The task as its node would report it next, or undefined when there is nothing to report. */
  #next(task: Task): Task | undefined {
    const state = task.status?.state ?? TaskState.NEW;
    const at = (next: TaskState, message: string, err = '') => ({ ...task, status: { ...task.status, timestamp: this.#clock(), state: next, message, err } }) as Task;
    const exit = [...this.#failures].find((entry) => entry.startsWith(`${task.id}:`));
    if (exit !== undefined && state === TaskState.RUNNING) {
      this.#failures.delete(exit);
      const code = Number(exit.slice(task.id.length + 1));
      return at(TaskState.FAILED, 'started', `task: non-zero exit (${code})`);
    }
    if (task.nodeId === '' || state >= TaskState.COMPLETE) return undefined;
    if (task.desiredState >= TaskState.SHUTDOWN) return state < TaskState.SHUTDOWN ? at(TaskState.SHUTDOWN, 'shutdown') : undefined;
    if (state < TaskState.ASSIGNED || state >= TaskState.RUNNING) return undefined;
    // Desired READY: prepared but not started yet (the updater's start-first replacement waits so).
    if (task.desiredState < TaskState.RUNNING) return state < TaskState.READY ? at(TaskState.READY, 'prepared') : undefined;
    const outcome = this.#outcome(task);
    if (outcome.state === 'failed') return at(TaskState.FAILED, 'started', `task: non-zero exit (${outcome.exitCode})`);
    if (outcome.state === 'complete') return at(TaskState.COMPLETE, 'finished');
    return at(TaskState.RUNNING, 'started');
  }
}
