import { performance } from 'node:perf_hooks';
import { toShoalError, type ShoalError } from '@shoal/errors';
import { NodeRole, NodeStatus_State, TaskState } from '@shoal/proto';
import type { StoreApiClient } from '@shoal/store-client';

/** The states a task passes on its way to running, each the work of one component; timed when every task has reached it. */
export const TASK_MILESTONES = [
  { state: TaskState.NEW, name: 'created (orchestrator)' },
  { state: TaskState.PENDING, name: 'PENDING (allocator)' },
  { state: TaskState.ASSIGNED, name: 'ASSIGNED (scheduler)' },
  { state: TaskState.RUNNING, name: 'RUNNING (dispatcher ← agents)' },
] as const;

/** When the first and the last expected task reached a milestone, in `performance.now()` time. */
interface MilestoneTimes {
  firstAt?: number;
  allAt?: number;
  count: number;
}

/**
 * What the store says about the swarm's worker nodes and tasks, followed through one Store API watch
 * of nodes and tasks (each commit's objects only: no copy of the store is kept). A task counts for
 * every milestone up to the furthest state it has been seen in, since the bench's tasks only move
 * forward. The manager's own node is left out: it runs no agent here.
 */
export class SwarmWatch {
  readonly #stop = new AbortController();
  readonly #workers = new Map<string, NodeStatus_State>();
  readonly #furthest = new Map<string, TaskState>();
  readonly #milestones = TASK_MILESTONES.map((): MilestoneTimes => ({ count: 0 }));
  #expectedTasks = Number.POSITIVE_INFINITY;
  #lastChangeAt = performance.now();
  #failure: ShoalError | undefined;
  readonly #following: Promise<void>;

  private constructor(store: StoreApiClient, started: () => void) {
    this.#following = this.#follow(store, started);
  }

  /** Starts following; resolves once the watch is in place, so nothing committed from then on is missed. */
  static async start(store: StoreApiClient): Promise<SwarmWatch> {
    let watch: SwarmWatch | undefined;
    await new Promise<void>((resolve, reject) => {
      watch = new SwarmWatch(store, resolve);
      watch.#following.catch(reject);
    });
    return watch!;
  }

  /** Worker nodes created so far (each join creates one). */
  get workersJoined(): number {
    return this.#workers.size;
  }

  /** Worker nodes the store shows READY now. */
  get workersReady(): number {
    let ready = 0;
    for (const state of this.#workers.values()) if (state === NodeStatus_State.READY) ready++;
    return ready;
  }

  /** When a node or a task last changed, in `performance.now()` time. */
  get lastChangeAt(): number {
    return this.#lastChangeAt;
  }

  /** How many tasks have reached each of {@link TASK_MILESTONES}, in its order. */
  taskCounts(): number[] {
    return this.#milestones.map((milestone) => milestone.count);
  }

  /** The number of tasks that makes a milestone complete; set before the tasks are created. */
  expectTasks(count: number): void {
    this.#expectedTasks = count;
  }

  /** When the first and the last expected task reached each of {@link TASK_MILESTONES}, in its order. */
  milestoneTimes(): readonly Readonly<MilestoneTimes>[] {
    return this.#milestones;
  }

  /** Throws why the watch ended, if it ended on its own. */
  assertFollowing(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Ends the watch; a failure it ended with earlier is {@link assertFollowing}'s to report. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#following.catch(() => undefined);
  }

  async #follow(store: StoreApiClient, started: () => void): Promise<void> {
    try {
      for await (const commit of store.watch({ filters: [{ kind: 'node' }, { kind: 'task' }] }, { signal: this.#stop.signal })) {
        if (commit.events.length === 0) started();
        const at = performance.now();
        if (commit.events.length > 0) this.#lastChangeAt = at;
        for (const event of commit.events) {
          if (event.action === 'delete') continue;
          if (event.kind === 'node' && event.object.role === NodeRole.WORKER) this.#workers.set(event.object.id, event.object.status?.state ?? NodeStatus_State.UNKNOWN);
          if (event.kind === 'task') this.#see(event.object.id, event.object.status?.state ?? TaskState.NEW, at);
        }
      }
    } catch (err) {
      if (this.#stop.signal.aborted) return;
      this.#failure = toShoalError(err);
      throw this.#failure;
    }
  }

  #see(taskId: string, state: TaskState, at: number): void {
    const previous = this.#furthest.get(taskId);
    if (previous !== undefined && previous >= state) return;
    this.#furthest.set(taskId, state);
    TASK_MILESTONES.forEach((milestone, index) => {
      if (state < milestone.state || (previous !== undefined && previous >= milestone.state)) return;
      const times = this.#milestones[index]!;
      times.count++;
      times.firstAt ??= at;
      if (times.count === this.#expectedTasks) times.allAt = at;
    });
  }
}
