import { isDeepStrictEqual } from 'node:util';
import { ErrorCode } from '@shoal/errors';
import {
  Node,
  NodeStatus_State,
  Service,
  TaskState,
  UpdateConfig,
  UpdateConfig_FailureAction,
  UpdateConfig_UpdateOrder,
  UpdateStatus_UpdateState,
  type ServiceSpec,
  type Task,
} from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { captureLogs } from '@shoal/runtime/testing';
import { MemoryStore, type Change, type Commit, type Precondition, type ReadTx } from '@shoal/store';
import { lease } from '@shoal/store/testing';
import { durationOfMs, LocalClusterState, type ClusterState, type CommitInput } from '@shoal/store-client';
import { FakeClock } from '@shoal/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { newTask } from '../src/task-factory.js';
import { Updater } from '../src/update/updater.js';

const SERVICE_ID = 'svc-web';
const NODE_IDS = ['node-1', 'node-2', 'node-3'];
const START_MS = Date.parse('2026-01-01T00:00:00Z');

interface ScenarioOptions {
  replicas?: number;
  global?: boolean;
  update?: Partial<UpdateConfig>;
  rollback?: Partial<UpdateConfig>;
  fence?: Precondition;
  onFenced?: () => void;
  /** How long an agent takes to stop a task (its stop grace period, say). @default 0 */
  stopDelayMs?: number;
  log?: Logger;
  /** Stands between the updater and the cluster state (to observe its writes). */
  updaterState?: (state: ClusterState) => ClusterState;
}

/**
 * A service with running tasks on image `app:1` (spec version 1), an {@link Updater}, and stand-ins
 * for the rest of the manager: the api (`deploy`, `rollBack`), the orchestrator (which hands the
 * updater the service and its slots whenever the service changes) and the agents (which run, stop or
 * fail tasks as the dispatcher would report). Time moves only through the fake clock.
 */
class Scenario {
  readonly state = new LocalClusterState(new MemoryStore());
  readonly clock = new FakeClock({ startMs: START_MS });
  /** Every commit after the seed, stamped with the fake time it was seen at. */
  readonly journal: { at: number; commit: Commit }[] = [];
  readonly updater: Updater;
  /** Which tasks the agents fail when asked to start them, instead of running them. */
  failing: (task: Task) => boolean = () => false;
  readonly #unsubscribes: (() => void)[] = [];
  /** Tasks an agent is stopping, on a clock timer. */
  readonly #stopping = new Set<string>();

  constructor(private readonly options: ScenarioOptions = {}) {
    this.#seed();
    this.updater = new Updater({
      state: options.updaterState?.(this.state) ?? this.state,
      fence: options.fence,
      onFenced: options.onFenced,
      clock: () => new Date(this.clock.now()),
      timers: this.clock,
      log: options.log ?? captureLogs().log,
      newTask,
    });
    this.#unsubscribes.push(
      this.state.subscribe((commit) => this.journal.push({ at: this.clock.now(), commit })),
      this.state.subscribe((commit) => this.#orchestrate(commit)),
      this.state.subscribe(() => this.#runAgents()),
    );
  }

  async close(): Promise<void> {
    await this.updater.stop();
    for (const unsubscribe of this.#unsubscribes) unsubscribe();
  }

  #seed(): void {
    const { replicas = 3, global = false, update, rollback } = this.options;
    const service = Service.fromPartial({
      id: SERVICE_ID,
      spec: {
        annotations: { name: 'web' },
        task: { container: { image: 'app:1' } },
        ...(global ? { global: {} } : { replicated: { replicas: BigInt(replicas) } }),
        update: update && UpdateConfig.fromPartial(update),
        rollback: rollback && UpdateConfig.fromPartial(rollback),
      },
      specVersion: { index: 1n },
    });
    const placements = global ? NODE_IDS.map((nodeId) => ({ slot: 0n, nodeId })) : Array.from({ length: replicas }, (_, i) => ({ slot: BigInt(i + 1), nodeId: NODE_IDS[i % NODE_IDS.length]! }));
    this.state.store.update((tx) => {
      for (const id of NODE_IDS) tx.create('node', Node.fromPartial({ id, description: { hostname: id }, status: { state: NodeStatus_State.READY } }));
      tx.create('service', service);
      for (const { slot, nodeId } of placements) {
        const task = newTask(service, slot, nodeId, new Date(START_MS));
        tx.create('task', { ...task, nodeId, status: { ...task.status!, state: TaskState.RUNNING } });
      }
      if (this.options.fence !== undefined) tx.create('lease', lease(this.options.fence.id, 'orchestrator', 2n, new Date('2100-01-01T00:00:00Z')));
    });
  }

  /** The api's `POST /services/{id}/update`: a new spec and spec version, the old ones kept for rollback, the status cleared. */
  deploy(change: (spec: ServiceSpec) => ServiceSpec, alongside: (deployed: Service) => Change[] = () => []): Promise<bigint> {
    return this.#rewriteService(
      (service) => ({
        spec: change(service.spec!),
        specVersion: { index: service.specVersion!.index + 1n },
        previousSpec: service.spec,
        previousSpecVersion: service.specVersion,
        updateStatus: undefined,
      }),
      alongside,
    );
  }

  /** The api's `POST /services/{id}/update?rollback=previous`. */
  rollBack(startedAt: Date): Promise<bigint> {
    return this.#rewriteService((service) => ({
      spec: service.previousSpec,
      specVersion: service.previousSpecVersion,
      previousSpec: service.spec,
      previousSpecVersion: service.specVersion,
      updateStatus: { state: UpdateStatus_UpdateState.ROLLBACK_STARTED, startedAt, completedAt: undefined, message: 'manually requested rollback' },
    }));
  }

  /** Rewrites the service, and commits whatever `alongside` adds for the rewritten service in the same transaction. */
  #rewriteService(rewrite: (service: Service) => Partial<Service>, alongside: (rewritten: Service) => Change[] = () => []): Promise<bigint> {
    const service = this.service();
    const rewritten = Service.fromPartial({ ...service, ...rewrite(service) });
    return this.state.commit({ changes: [{ action: 'update', kind: 'service', object: rewritten }, ...alongside(rewritten)] });
  }

  service(): Service {
    return this.state.view((tx) => tx.get('service', SERVICE_ID)!);
  }

  /** Hands the updater the service and its slots, as the orchestrator's reconciliation does. */
  rollOut(): void {
    this.updater.update(this.service(), this.state.view(slotsOf));
  }

  /** The tasks meant to run, in slot (then node) order. */
  liveTasks(): Task[] {
    return this.state.view(slotsOf).flat();
  }

  /** An agent's report that a running task exited. */
  async crash(taskId: string): Promise<void> {
    await this.state.commit({ changes: [{ action: 'update', kind: 'task', object: withState(this.#task(taskId), TaskState.FAILED) }] });
  }

  #task(id: string): Task {
    return this.state.view((tx) => tx.get('task', id)!);
  }

  /** Lets every reaction to what happened so far run (no time passes). */
  async settle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Moves time, timer by timer, until no rollout is left; fails if one waits for something that cannot come. */
  async finish(): Promise<void> {
    for (;;) {
      await this.settle();
      let idle = false;
      void this.updater.idle().then(() => (idle = true));
      await this.settle();
      if (idle) return;
      if (!this.clock.runNext()) throw new Error('a rollout is stuck: it waits for nothing the clock or the agents will bring');
    }
  }

  /** The update statuses the service went through, in order. */
  statusHistory(): { state: UpdateStatus_UpdateState; message: string }[] {
    const history: { state: UpdateStatus_UpdateState; message: string }[] = [];
    for (const { commit } of this.journal) {
      for (const event of commit.events) {
        const status = event.kind === 'service' ? event.object.updateStatus : undefined;
        const last = history.at(-1);
        if (status !== undefined && (last?.state !== status.state || last.message !== status.message)) history.push({ state: status.state, message: status.message });
      }
    }
    return history;
  }

  /** Every task created after the seed. */
  createdTasks(): Task[] {
    return this.journal.flatMap(({ commit }) => commit.events.flatMap((event) => (event.kind === 'task' && event.action === 'create' ? [event.object] : [])));
  }

  /** The index in the journal of the first commit holding an event about `taskId` that satisfies `test`. */
  firstCommitWhere(taskId: string, test: (task: Task, action: Change['action']) => boolean): number {
    return this.journal.findIndex(({ commit }) => commit.events.some((event) => event.kind === 'task' && event.object.id === taskId && test(event.object, event.action)));
  }

  /**
   * The most slots ever being replaced at once, read from the writes: a slot is being replaced from
   * the commit that creates its replacement to the one that reports the replacement running.
   */
  mostSlotsInFlight(fromCommit = 0): number {
    const inFlight = new Set<bigint>();
    let most = 0;
    for (const { commit } of this.journal.slice(fromCommit)) {
      for (const event of commit.events) {
        if (event.kind !== 'task') continue;
        if (event.action === 'create') inFlight.add(event.object.slot);
        else if (event.object.status?.state === TaskState.RUNNING) inFlight.delete(event.object.slot);
      }
      most = Math.max(most, inFlight.size);
    }
    return most;
  }

  #orchestrate(commit: Commit): void {
    if (commit.events.some((event) => event.kind === 'service' && event.object.id === SERVICE_ID)) this.rollOut();
  }

  /** Each agent: starts what should run (or fails it), prepares what should be ready, stops what should stop. */
  #runAgents(): void {
    const changes = this.state.view((tx) =>
      tx.list('task').flatMap((task): Change[] => {
        const next = this.#agentStep(task);
        return next === undefined ? [] : [{ action: 'update', kind: 'task', object: next }];
      }),
    );
    if (changes.length > 0) void this.state.commit({ changes });
  }

  #agentStep(task: Task): Task | undefined {
    const state = task.status?.state ?? TaskState.NEW;
    const placed = { ...task, nodeId: task.nodeId || NODE_IDS[Number(task.slot) % NODE_IDS.length]! };
    if (task.desiredState > TaskState.RUNNING) {
      if (state > TaskState.RUNNING) return undefined;
      if (!this.options.stopDelayMs) return withState(task, TaskState.SHUTDOWN);
      if (!this.#stopping.has(task.id)) {
        this.#stopping.add(task.id);
        this.clock.setTimeout(() => void this.state.commit({ changes: [{ action: 'update', kind: 'task', object: withState(this.#task(task.id), TaskState.SHUTDOWN) }] }), this.options.stopDelayMs);
      }
      return undefined;
    }
    if (task.desiredState === TaskState.RUNNING && state < TaskState.RUNNING) return withState(placed, this.failing(task) ? TaskState.FAILED : TaskState.RUNNING);
    if (task.desiredState === TaskState.READY && state < TaskState.READY) return withState(placed, TaskState.READY);
    return undefined;
  }
}

/** The service's live tasks grouped as the orchestrators group them: by slot, or by node for a global service. */
function slotsOf(tx: ReadTx): Task[][] {
  const slots = new Map<string, Task[]>();
  for (const task of tx.list('task')) {
    if (task.serviceId !== SERVICE_ID || task.desiredState > TaskState.RUNNING) continue;
    const key = task.slot === 0n ? task.nodeId : String(task.slot).padStart(4, '0');
    slots.set(key, [...(slots.get(key) ?? []), task]);
  }
  return [...slots.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, tasks]) => tasks);
}

function withState(task: Task, state: TaskState): Task {
  return { ...task, status: { ...task.status!, state, message: TaskState[state].toLowerCase() } };
}

const withImage = (image: string) => (spec: ServiceSpec): ServiceSpec => ({ ...spec, task: { ...spec.task!, container: { ...spec.task!.container!, image } } });
const imageOf = (task: Task) => task.spec?.container?.image;
const versionOf = (task: Task) => task.specVersion?.index;

let scenario: Scenario | undefined;
function start(options?: ScenarioOptions): Scenario {
  scenario = new Scenario(options);
  return scenario;
}
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

/** A scenario whose agents fail every task of image `app:broken`, after rolling that image out. */
async function deployBrokenImage(options?: ScenarioOptions): Promise<Scenario> {
  const s = start(options);
  s.failing = (task) => imageOf(task) === 'app:broken';
  await s.deploy(withImage('app:broken'));
  await s.finish();
  return s;
}

describe('rolling update', () => {
  it('replaces the tasks one slot at a time by default, then reports the update completed one monitor period later', async () => {
    const s = start();
    const original = s.liveTasks().map((task) => task.id);
    await s.deploy(withImage('app:2'));
    await s.finish();

    const live = s.liveTasks();
    expect(live.map(imageOf)).toEqual(['app:2', 'app:2', 'app:2']);
    expect(live.map(versionOf)).toEqual([2n, 2n, 2n]);
    expect(live.map((task) => task.id).filter((id) => original.includes(id))).toEqual([]);
    expect(s.mostSlotsInFlight()).toBe(1);
    expect(s.statusHistory()).toEqual([
      { state: UpdateStatus_UpdateState.UPDATING, message: 'update in progress' },
      { state: UpdateStatus_UpdateState.COMPLETED, message: 'update completed' },
    ]);
    const lastRunningAt = Math.max(...live.map((task) => s.journal[s.firstCommitWhere(task.id, (t) => t.status?.state === TaskState.RUNNING)]!.at));
    const status = s.service().updateStatus!;
    expect(status.startedAt?.getTime()).toBe(START_MS);
    expect(status.completedAt!.getTime() - lastRunningAt).toBe(5_000);
  });

  it.each([
    { parallelism: 2, setting: '2', replicas: 5, most: 2 },
    { parallelism: 0, setting: '0 (all at once)', replicas: 3, most: 3 },
  ])('with parallelism $setting, replaces $most slots at once and never more', async ({ parallelism, replicas, most }) => {
    const s = start({ replicas, update: { parallelism: BigInt(parallelism) } });
    await s.deploy(withImage('app:2'));
    await s.finish();

    expect(s.liveTasks().map(imageOf)).toEqual(Array(replicas).fill('app:2'));
    expect(s.mostSlotsInFlight()).toBe(most);
    expect(s.service().updateStatus?.state).toBe(UpdateStatus_UpdateState.COMPLETED);
  });

  it('waits the delay after each slot and, as the delay outlasts the monitor period, watches one second longer than it before completing', async () => {
    const s = start({ update: { parallelism: 1n, delay: durationOfMs(10_000), monitor: durationOfMs(5_000) } });
    await s.deploy(withImage('app:2'));
    await s.finish();

    const createdAt = s.createdTasks().map((task) => s.journal[s.firstCommitWhere(task.id, (_, action) => action === 'create')]!.at - START_MS);
    expect(createdAt).toEqual([0, 10_000, 20_000]);
    // The last worker's delay, then delay + 1s of monitoring.
    expect(s.service().updateStatus!.completedAt!.getTime() - START_MS).toBe(20_000 + 10_000 + 11_000);
  });

  it('stop-first: shuts the old task down while creating its replacement, and starts the replacement only once the old task has stopped', async () => {
    const s = start({ replicas: 1, stopDelayMs: 2_000 });
    const [old] = s.liveTasks();
    await s.deploy(withImage('app:2'));
    await s.finish();

    const [replacement] = s.createdTasks();
    const created = s.firstCommitWhere(replacement!.id, (_, action) => action === 'create');
    expect(replacement!.desiredState).toBe(TaskState.READY);
    expect(s.firstCommitWhere(old!.id, (task) => task.desiredState === TaskState.SHUTDOWN)).toBe(created);
    const oldStopped = s.firstCommitWhere(old!.id, (task) => task.status?.state === TaskState.SHUTDOWN);
    const started = s.firstCommitWhere(replacement!.id, (task) => task.desiredState === TaskState.RUNNING);
    const running = s.firstCommitWhere(replacement!.id, (task) => task.status?.state === TaskState.RUNNING);
    expect(created).toBeLessThan(oldStopped);
    expect(oldStopped).toBeLessThan(started);
    expect(started).toBeLessThan(running);
    expect(s.journal[started]!.at - START_MS).toBe(2_000);
  });

  it('stop-first: starts the replacement after a minute when the old task does not stop', async () => {
    const s = start({ replicas: 1, stopDelayMs: 120_000 });
    await s.deploy(withImage('app:2'));
    await s.finish();

    const [replacement] = s.createdTasks();
    const started = s.firstCommitWhere(replacement!.id, (task) => task.desiredState === TaskState.RUNNING);
    expect(s.journal[started]!.at - START_MS).toBe(60_000);
    expect(s.liveTasks().map(imageOf)).toEqual(['app:2']);
  });

  it('start-first: starts the replacement first and shuts the old task down only once the replacement runs', async () => {
    const s = start({ replicas: 1, stopDelayMs: 2_000, update: { parallelism: 1n, order: UpdateConfig_UpdateOrder.START_FIRST } });
    const [old] = s.liveTasks();
    await s.deploy(withImage('app:2'));
    await s.finish();

    const [replacement] = s.createdTasks();
    expect(replacement!.desiredState).toBe(TaskState.RUNNING);
    const created = s.firstCommitWhere(replacement!.id, (_, action) => action === 'create');
    const running = s.firstCommitWhere(replacement!.id, (task) => task.status?.state === TaskState.RUNNING);
    const oldShutDown = s.firstCommitWhere(old!.id, (task) => task.desiredState === TaskState.SHUTDOWN);
    expect(created).toBeLessThan(running);
    expect(running).toBeLessThan(oldShutDown);
    expect(s.liveTasks().map((task) => task.id)).toEqual([replacement!.id]);
  });

  it('finishes a start-first replacement another rollout left half done: keeps its new task and shuts the old one down', async () => {
    const s = start({ update: { parallelism: 1n, order: UpdateConfig_UpdateOrder.START_FIRST } });
    const [old] = s.liveTasks();
    const leftover = (deployed: Service): Task => {
      const task = newTask(deployed, 1n, '', new Date(START_MS));
      return { ...task, nodeId: 'node-2', status: { ...task.status!, state: TaskState.RUNNING } };
    };
    let halfDone: Task | undefined;
    await s.deploy(withImage('app:2'), (deployed) => {
      halfDone = leftover(deployed);
      return [{ action: 'create', kind: 'task', object: halfDone }];
    });
    await s.finish();

    expect(s.liveTasks().map((task) => [task.slot, imageOf(task)])).toEqual([
      [1n, 'app:2'],
      [2n, 'app:2'],
      [3n, 'app:2'],
    ]);
    expect(s.liveTasks()[0]!.id).toBe(halfDone!.id);
    expect(s.state.view((tx) => tx.get('task', old!.id)?.desiredState)).toBe(TaskState.SHUTDOWN);
    expect(s.createdTasks().filter((task) => task.slot === 1n).map((task) => task.id)).toEqual([halfDone!.id]);
  });

  it('updates a global service node by node, each replacement preset to the node it replaces a task on', async () => {
    const s = start({ global: true });
    await s.deploy(withImage('app:2'));
    await s.finish();

    expect(s.createdTasks().map((task) => [task.slot, task.nodeId])).toEqual(NODE_IDS.map((nodeId) => [0n, nodeId]));
    expect(s.liveTasks().map((task) => [task.nodeId, imageOf(task)])).toEqual(NODE_IDS.map((nodeId) => [nodeId, 'app:2']));
  });

  it('replaces every task when only the force-update counter was bumped (docker service update --force)', async () => {
    const s = start();
    const original = new Set(s.liveTasks().map((task) => task.id));
    await s.deploy((spec) => ({ ...spec, task: { ...spec.task!, forceUpdate: spec.task!.forceUpdate + 1n } }));
    await s.finish();

    const live = s.liveTasks();
    expect(live.filter((task) => original.has(task.id))).toEqual([]);
    expect(live.map(imageOf)).toEqual(['app:1', 'app:1', 'app:1']);
    expect(live.map((task) => task.spec?.forceUpdate)).toEqual([1n, 1n, 1n]);
    expect(s.service().updateStatus?.message).toBe('update completed');
  });

  it('replaces no task and reports nothing when the new spec leaves the task template alone', async () => {
    const s = start();
    const original = s.liveTasks().map((task) => task.id);
    await s.deploy((spec) => ({ ...spec, annotations: { ...spec.annotations!, labels: { tier: 'front' } } }));
    await s.finish();

    expect(s.liveTasks().map((task) => task.id)).toEqual(original);
    expect(s.createdTasks()).toEqual([]);
    expect(s.service().updateStatus).toBeUndefined();
  });

  it('cancels a rollout when a newer spec arrives, and the new one brings every slot to the newest spec', async () => {
    const s = start({ update: { parallelism: 1n, delay: durationOfMs(10_000) } });
    await s.deploy(withImage('app:2'));
    await s.settle();
    // The first slot is done and its worker is in its delay.
    expect(s.liveTasks().map(imageOf)).toEqual(['app:2', 'app:1', 'app:1']);

    const newest = await s.deploy(withImage('app:3'));
    await s.finish();

    const newestAt = s.journal.findIndex(({ commit }) => commit.version === newest);
    const createdAfter = s.journal.slice(newestAt).flatMap(({ commit }) => commit.events.flatMap((event) => (event.kind === 'task' && event.action === 'create' ? [imageOf(event.object)] : [])));
    expect(createdAfter).toEqual(['app:3', 'app:3', 'app:3']);
    expect(s.createdTasks().filter((task) => imageOf(task) === 'app:2')).toHaveLength(1);
    expect(s.liveTasks().map(versionOf)).toEqual([3n, 3n, 3n]);
    expect(s.service().updateStatus?.state).toBe(UpdateStatus_UpdateState.COMPLETED);
  });
});

describe('failures during a rolling update', () => {
  it('pauses with Docker’s message naming the failed task and replaces no further slot', async () => {
    const s = await deployBrokenImage();

    const [failed] = s.createdTasks();
    expect(s.service().updateStatus).toMatchObject({
      state: UpdateStatus_UpdateState.PAUSED,
      message: `update paused due to failure or early termination of task ${failed!.id}`,
      completedAt: undefined,
    });
    expect(s.createdTasks()).toHaveLength(1);
    expect(s.liveTasks().map(imageOf)).toEqual(['app:broken', 'app:1', 'app:1']);
  });

  it('stays paused however often the orchestrator asks again, until the next spec update resumes the rollout', async () => {
    const s = await deployBrokenImage();
    const writes = s.journal.length;

    s.rollOut();
    s.rollOut();
    await s.finish();
    expect(s.journal).toHaveLength(writes);

    await s.deploy(withImage('app:3'));
    await s.finish();
    expect(s.liveTasks().map(imageOf)).toEqual(['app:3', 'app:3', 'app:3']);
    expect(s.service().updateStatus?.message).toBe('update completed');
  });

  it('with failure action continue, goes on past failed replacements and completes', async () => {
    const s = await deployBrokenImage({ update: { parallelism: 1n, failureAction: UpdateConfig_FailureAction.CONTINUE } });

    expect(s.createdTasks()).toHaveLength(3);
    expect(s.liveTasks().map((task) => task.status?.state)).toEqual([TaskState.FAILED, TaskState.FAILED, TaskState.FAILED]);
    expect(s.service().updateStatus?.message).toBe('update completed');
  });

  it('with failure action rollback, rolls back to the previous spec and reports rollback completed', async () => {
    const s = await deployBrokenImage({ update: { parallelism: 1n, failureAction: UpdateConfig_FailureAction.ROLLBACK } });

    const [failed] = s.createdTasks();
    expect(s.statusHistory()).toEqual([
      { state: UpdateStatus_UpdateState.UPDATING, message: 'update in progress' },
      { state: UpdateStatus_UpdateState.ROLLBACK_STARTED, message: `update rolled back due to failure or early termination of task ${failed!.id}` },
      { state: UpdateStatus_UpdateState.ROLLBACK_COMPLETED, message: 'rollback completed' },
    ]);
    const service = s.service();
    expect(service.spec?.task?.container?.image).toBe('app:1');
    expect(service.specVersion).toEqual({ index: 1n });
    expect(service.previousSpec).toBeUndefined();
    expect(s.liveTasks().map((task) => [versionOf(task), imageOf(task), task.status?.state])).toEqual(Array(3).fill([1n, 'app:1', TaskState.RUNNING]));
  });

  it.each([
    { failingSlots: [1n, 2n], outcome: 'completes', state: UpdateStatus_UpdateState.COMPLETED },
    { failingSlots: [1n, 2n, 3n], outcome: 'pauses', state: UpdateStatus_UpdateState.PAUSED },
  ])('with max failure ratio 0.5, an update of 4 slots with $failingSlots.length failures $outcome', async ({ failingSlots, state }) => {
    const s = start({ replicas: 4, update: { parallelism: 1n, maxFailureRatio: 0.5 } });
    s.failing = (task) => versionOf(task) === 2n && failingSlots.includes(task.slot);
    await s.deploy(withImage('app:2'));
    await s.finish();

    const status = s.service().updateStatus!;
    expect(status.state).toBe(state);
    if (state === UpdateStatus_UpdateState.PAUSED) {
      const thirdFailure = s.createdTasks().find((task) => task.slot === 3n)!;
      expect(status.message).toBe(`update paused due to failure or early termination of task ${thirdFailure.id}`);
      expect(s.createdTasks()).toHaveLength(3);
    } else {
      expect(s.createdTasks()).toHaveLength(4);
    }
  });

  it.each([
    { crashAfterMs: 4_000, outcome: 'counts as a failure', state: UpdateStatus_UpdateState.PAUSED, images: ['app:2', 'app:1'] },
    { crashAfterMs: 6_000, outcome: 'does not count', state: UpdateStatus_UpdateState.COMPLETED, images: ['app:2', 'app:2'] },
  ])('a replacement that exits $crashAfterMs ms after it started, with a 5 s monitor period, $outcome', async ({ crashAfterMs, state, images }) => {
    const s = start({ replicas: 2, update: { parallelism: 1n, delay: durationOfMs(10_000), monitor: durationOfMs(5_000) } });
    await s.deploy(withImage('app:2'));
    await s.settle();
    const [first] = s.createdTasks();
    expect(s.state.view((tx) => tx.get('task', first!.id)?.status?.state)).toBe(TaskState.RUNNING);

    await s.clock.advanceAsync(crashAfterMs);
    await s.crash(first!.id);
    await s.finish();

    expect(s.service().updateStatus?.state).toBe(state);
    expect(s.liveTasks().map(imageOf)).toEqual(images);
  });
});

describe('rollback', () => {
  it('completes a manually requested rollback with the rollback config, keeping the start time the api set', async () => {
    const s = start({ update: { parallelism: 1n }, rollback: { parallelism: 0n } });
    await s.deploy(withImage('app:2'));
    await s.finish();
    const requestedAt = new Date(s.clock.now());
    const rollbackRequested = s.journal.length;
    await s.rollBack(requestedAt);
    await s.finish();

    const status = s.service().updateStatus!;
    expect(status).toMatchObject({ state: UpdateStatus_UpdateState.ROLLBACK_COMPLETED, message: 'rollback completed', startedAt: requestedAt });
    expect(status.completedAt!.getTime()).toBe(requestedAt.getTime() + 5_000);
    expect(s.liveTasks().map((task) => [versionOf(task), imageOf(task)])).toEqual(Array(3).fill([1n, 'app:1']));
    // All three slots at once: the rollback config's parallelism, not the update config's.
    expect(s.mostSlotsInFlight(rollbackRequested)).toBe(3);
  });

  it('pauses a failing rollback as rollback paused, never rolling a rollback back', async () => {
    const s = start({ rollback: { parallelism: 1n, failureAction: UpdateConfig_FailureAction.ROLLBACK } });
    await s.deploy(withImage('app:2'));
    await s.finish();
    s.failing = (task) => imageOf(task) === 'app:1';
    await s.rollBack(new Date(s.clock.now()));
    await s.finish();

    const failed = s.createdTasks().find((task) => imageOf(task) === 'app:1')!;
    expect(s.service().updateStatus).toMatchObject({
      state: UpdateStatus_UpdateState.ROLLBACK_PAUSED,
      message: `rollback paused due to failure or early termination of task ${failed.id}`,
    });
    expect(s.service().specVersion).toEqual({ index: 1n });
  });
});

describe('fencing', () => {
  const fence: Precondition = { kind: 'lease', id: 'lease-orchestrator', leaseEpoch: 2n };

  it('fences every write it makes', async () => {
    const writes: CommitInput[] = [];
    const s = start({
      fence,
      updaterState: (state) => ({
        get version() {
          return state.version;
        },
        view: (read) => state.view(read),
        subscribe: (listener) => state.subscribe(listener),
        commit: (write) => {
          writes.push(write);
          return state.commit(write);
        },
      }),
    });
    await s.deploy(withImage('app:2'));
    await s.finish();

    expect(s.liveTasks().map(imageOf)).toEqual(['app:2', 'app:2', 'app:2']);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.filter((write) => !write.preconditions?.some((precondition) => isDeepStrictEqual(precondition, fence)))).toEqual([]);
  });

  it('makes no change once its fence is stale: the first write fails, the rollout ends and the orchestrator is told to stop', async () => {
    const { log, entries } = captureLogs();
    let fencedOff = 0;
    const s = start({ fence: { ...fence, leaseEpoch: 1n }, log, onFenced: () => fencedOff++ });
    const before = s.liveTasks();
    await s.deploy(withImage('app:2'));
    const deployed = s.state.version;
    await s.finish();

    expect(s.state.version).toBe(deployed);
    expect(s.liveTasks()).toEqual(before);
    expect(s.service().updateStatus).toBeUndefined();
    expect(fencedOff).toBe(1);
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', serviceId: SERVICE_ID, msg: expect.stringContaining('fenced off') }));
  });
});
