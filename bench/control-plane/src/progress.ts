import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError } from '@shoal/errors';
import { TaskState, type Task } from '@shoal/proto';
import type { Commit, StoreEvent } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';

/** The states a task passes through on its way to running, each a milestone once every task has reached it. */
export const MILESTONES = [
  { state: TaskState.NEW, name: 'created (orchestrator)' },
  { state: TaskState.PENDING, name: 'PENDING (allocator)' },
  { state: TaskState.ASSIGNED, name: 'ASSIGNED (scheduler)' },
  { state: TaskState.RUNNING, name: 'RUNNING (fake agents)' },
] as const;

/** Who wrote a commit, told from what it changed (each writer owns one transition). */
export const WRITERS = [
  'bench: services created',
  'orchestrator: tasks created',
  'allocator: service endpoints',
  'allocator: tasks to PENDING',
  'scheduler: tasks to ASSIGNED (with node bumps)',
  'agents: tasks to RUNNING',
  'allocator: node attachments',
  'leases',
  'other',
] as const;
export type Writer = (typeof WRITERS)[number];

const POLL_MS = 100;

/** When the first and the last expected task reached a milestone (ms from the start), and how many have. */
export interface MilestoneTimes {
  readonly firstMs: number | undefined;
  readonly allMs: number | undefined;
  readonly reached: number;
}

/** One writer's commits seen in a run. */
export interface WriterCount {
  commits: number;
  changes: number;
}

function writerOf(events: readonly StoreEvent[]): Writer {
  const task = (state: TaskState) => events.some((event) => event.kind === 'task' && event.action === 'update' && stateOf(event.object) === state);
  if (events.some((event) => event.kind === 'service' && event.action === 'create')) return 'bench: services created';
  if (events.some((event) => event.kind === 'task' && event.action === 'create')) return 'orchestrator: tasks created';
  if (task(TaskState.PENDING)) return 'allocator: tasks to PENDING';
  if (task(TaskState.ASSIGNED)) return 'scheduler: tasks to ASSIGNED (with node bumps)';
  if (task(TaskState.RUNNING)) return 'agents: tasks to RUNNING';
  if (events.some((event) => event.kind === 'service' && event.action === 'update')) return 'allocator: service endpoints';
  if (events.every((event) => event.kind === 'node' && event.action === 'update')) return 'allocator: node attachments';
  if (events.every((event) => event.kind === 'lease')) return 'leases';
  return 'other';
}

function stateOf(task: Task): TaskState {
  return task.status?.state ?? TaskState.NEW;
}

/**
 * Follows the tasks of a set of services through a {@link ClusterState}, from the moment it is made
 * (the start of the measurement): when the first and the last of them reached each milestone, and
 * every commit seen meanwhile, attributed to its writer. Task states only move forward in these runs,
 * so a task counts for every milestone up to the highest state it has been seen in.
 */
export class Progress {
  readonly #startedAt = performance.now();
  readonly #state: ClusterState;
  readonly #serviceIds: ReadonlySet<string>;
  readonly #expected: number;
  /** The furthest state each task has been seen in. */
  readonly #furthest = new Map<string, TaskState>();
  readonly #reached = MILESTONES.map((): { firstMs?: number; allMs?: number; count: number } => ({ count: 0 }));
  readonly #writers = new Map<Writer, WriterCount>(WRITERS.map((writer) => [writer, { commits: 0, changes: 0 }]));
  #lastProgressMs = 0;
  #lastCommitMs = 0;
  readonly #unsubscribe: () => void;

  /** Starts the clock and follows the tasks of `serviceIds` until {@link stop}; `expected` of them make the milestones. */
  constructor(state: ClusterState, serviceIds: Iterable<string>, expected: number) {
    this.#state = state;
    this.#serviceIds = new Set(serviceIds);
    this.#expected = expected;
    this.#unsubscribe = state.subscribe((commit) => this.#receive(commit));
  }

  /** Milliseconds since the start. */
  elapsedMs(): number {
    return performance.now() - this.#startedAt;
  }

  /** Each milestone's times, in {@link MILESTONES}' order. */
  milestones(): MilestoneTimes[] {
    return this.#reached.map(({ firstMs, allMs, count }) => ({ firstMs, allMs, reached: count }));
  }

  /** The commits seen since the start, by writer. */
  writers(): ReadonlyMap<Writer, Readonly<WriterCount>> {
    return this.#writers;
  }

  /** When the last commit was seen, in ms from the start. */
  get lastCommitMs(): number {
    return this.#lastCommitMs;
  }

  /**
   * Resolves once every expected task is RUNNING. Fails if no task moved on for `stallMs` (naming
   * how far each milestone got), or as soon as `assertGoing` throws (a service crashed, an interrupt).
   */
  async allRunning(stallMs: number, assertGoing: () => void): Promise<void> {
    const running = this.#reached[MILESTONES.length - 1]!;
    while (running.allMs === undefined) {
      assertGoing();
      if (this.elapsedMs() - this.#lastProgressMs > stallMs) {
        const counts = MILESTONES.map(({ name }, index) => `${this.#reached[index]!.count} ${name}`).join(', ');
        throw new ShoalError(ErrorCode.DeadlineExceeded, `no task moved on for ${stallMs / 1000} s; of ${this.#expected} tasks: ${counts}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Stops following the store. */
  stop(): void {
    this.#unsubscribe();
  }

  #receive(commit: Commit): void {
    const at = this.elapsedMs();
    this.#lastCommitMs = at;
    if (commit.events.length === 0) {
      // The copy was resynced: what changed is unknown, so every task is looked at again.
      this.#state.view((tx) => tx.list('task').forEach((task) => this.#see(task, at)));
      return;
    }
    const count = this.#writers.get(writerOf(commit.events))!;
    count.commits += 1;
    count.changes += commit.events.length;
    for (const event of commit.events) if (event.kind === 'task' && event.action !== 'delete') this.#see(event.object, at);
  }

  #see(task: Task, at: number): void {
    if (!this.#serviceIds.has(task.serviceId)) return;
    const previous = this.#furthest.get(task.id);
    const state = stateOf(task);
    if (previous !== undefined && previous >= state) return;
    this.#furthest.set(task.id, state);
    MILESTONES.forEach((milestone, index) => {
      const newlyReached = state >= milestone.state && (previous === undefined || previous < milestone.state);
      if (!newlyReached) return;
      const reached = this.#reached[index]!;
      reached.count += 1;
      reached.firstMs ??= at;
      if (reached.count === this.#expected) reached.allMs = at;
      this.#lastProgressMs = at;
    });
  }
}
