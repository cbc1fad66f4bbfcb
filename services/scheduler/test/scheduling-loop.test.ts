import { NodeSpec, NodeSpec_Availability, NodeStatus_State, TaskState, type Task } from '@shoal/proto';
import { MemoryStore } from '@shoal/store';
import { LocalClusterState } from '@shoal/store-client';
import { FakeClock } from '@shoal/testkit';
import { describe, expect, it } from 'vitest';
import { ASSIGNED_MESSAGE, PREASSIGNED_MESSAGE } from '../src/core/index.js';
import { HALF_CPU, node, task, tasks } from './fixtures.js';
import {
  clusterWith,
  createTasks,
  eventually,
  expectNoTrouble,
  laggingState,
  rewrite,
  startLoop,
  stateOf,
  storedTask,
  storedTasks,
} from './loop-support.js';

const reserving = (halfCpus: bigint) => ({ spec: { resources: { reservations: { nanoCpus: halfCpus * HALF_CPU } } } });
/** A READY, ACTIVE node with room for `halfCpus` halves of a core. */
const sized = (id: string, halfCpus: bigint) => node(id, { description: { resources: { nanoCpus: halfCpus * HALF_CPU } } });

function expectAssigned(task: Task, message = ASSIGNED_MESSAGE): void {
  expect({ state: stateOf(task), message: task.status?.message, err: task.status?.err }).toEqual({ state: TaskState.ASSIGNED, message, err: '' });
  expect(task.nodeId).not.toBe('');
}

function tasksPerNode(store: MemoryStore): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const task of storedTasks(store)) if (task.nodeId !== '') counts[task.nodeId] = (counts[task.nodeId] ?? 0) + 1;
  return counts;
}

describe('placing PENDING tasks', () => {
  it('assigns the PENDING tasks of a service to nodes, ASSIGNED with swarmkit message and spread evenly', async () => {
    const store = clusterWith([node('n1'), node('n2'), node('n3')]);
    const { logs } = startLoop(new LocalClusterState(store));
    createTasks(store, tasks(6, 'web-', 'svc', { status: { state: TaskState.PENDING, message: 'pending task scheduling' } }));

    await eventually(() => expect(storedTasks(store).filter((t) => stateOf(t) === TaskState.ASSIGNED)).toHaveLength(6));
    for (const placed of storedTasks(store)) expectAssigned(placed);
    expect(tasksPerNode(store)).toEqual({ n1: 2, n2: 2, n3: 2 });
    expectNoTrouble(logs);
  });

  it('waits for the commits to pause for the debounce, then places the tasks they made together, in one transaction', async () => {
    const clock = new FakeClock({ startMs: Date.parse('2025-03-01T12:00:00Z') });
    const store = clusterWith([node('n1'), node('n2')]);
    startLoop(new LocalClusterState(store), { clock, debounceMs: 50 });
    // Three commits in a row, as an orchestrator scaling a service up writes them.
    for (const id of ['web-1', 'web-2', 'web-3', 'web-4']) createTasks(store, [task(id)]);

    await clock.advanceAsync(49);
    expect(storedTasks(store).map(stateOf)).toEqual([TaskState.PENDING, TaskState.PENDING, TaskState.PENDING, TaskState.PENDING]);

    await clock.advanceAsync(1);
    const placed = storedTasks(store);
    for (const each of placed) expectAssigned(each);
    expect(new Set(placed.map((each) => each.meta?.version?.index)).size).toBe(1);
    expect(placed[0]?.status?.timestamp).toEqual(new Date(clock.now()));
    expect(tasksPerNode(store)).toEqual({ n1: 2, n2: 2 });
  });

  it('leaves a task no node can take PENDING, with swarmkit no suitable node explanation, written once', async () => {
    const eastern = { spec: { annotations: { labels: { zone: 'east' } } } };
    const store = clusterWith([node('n1', eastern), node('n2', eastern)], ['svc', 'other']);
    startLoop(new LocalClusterState(store));
    createTasks(store, [task('west-1', 'svc', { spec: { placement: { constraints: ['node.labels.zone==west'] } }, status: { state: TaskState.PENDING, message: 'pending task scheduling' } })]);

    const reason = 'no suitable node (scheduling constraints not satisfied on 2 nodes)';
    await eventually(() => expect(storedTask(store, 'west-1').status?.err).toBe(reason));
    const written = storedTask(store, 'west-1');
    expect({ state: stateOf(written), message: written.status?.message, nodeId: written.nodeId }).toEqual({
      state: TaskState.PENDING,
      message: 'pending task scheduling',
      nodeId: '',
    });

    // A later pass, which places another task, finds the same explanation and writes nothing.
    createTasks(store, [task('other-1', 'other')]);
    await eventually(() => expectAssigned(storedTask(store, 'other-1')));
    expect(storedTask(store, 'west-1').meta?.version).toEqual(written.meta?.version);
  });

  it('places a PENDING task once a node that can take it joins', async () => {
    const store = clusterWith([]);
    startLoop(new LocalClusterState(store));
    createTasks(store, [task('web-1')]);
    await eventually(() => expect(storedTask(store, 'web-1').status?.err).toBe('no suitable node'));

    store.update((tx) => tx.create('node', node('late')));
    await eventually(() => expectAssigned(storedTask(store, 'web-1')));
    expect(storedTask(store, 'web-1').nodeId).toBe('late');
  });

  it('places nothing new on a node that is down, drained or paused', async () => {
    const store = clusterWith([
      node('up'),
      node('down', { status: { state: NodeStatus_State.DOWN } }),
      node('drained', { spec: { availability: NodeSpec_Availability.DRAIN } }),
      node('paused', { spec: { availability: NodeSpec_Availability.PAUSE } }),
    ]);
    startLoop(new LocalClusterState(store));
    createTasks(store, tasks(3, 'web-'));
    await eventually(() => expect(tasksPerNode(store)).toEqual({ up: 3 }));

    rewrite(store, 'node', 'up', (up) => ({ ...up, spec: NodeSpec.fromPartial({ ...up.spec, availability: NodeSpec_Availability.DRAIN }) }));
    createTasks(store, [task('late-1')]);
    await eventually(() => expect(storedTask(store, 'late-1').status?.err).toBe('no suitable node (4 nodes not available for new tasks)'));
    expect(tasksPerNode(store)).toEqual({ up: 3 });
  });

  it('confirms a task created on its node there, and leaves one its node cannot take PENDING with that node explanation', async () => {
    const store = clusterWith([sized('n1', 2n)], ['global-a', 'global-b']);
    startLoop(new LocalClusterState(store));
    createTasks(store, [task('a-on-n1', 'global-a', { slot: 0n, nodeId: 'n1', ...reserving(2n) })]);
    await eventually(() => expectAssigned(storedTask(store, 'a-on-n1'), PREASSIGNED_MESSAGE));

    createTasks(store, [task('b-on-n1', 'global-b', { slot: 0n, nodeId: 'n1', ...reserving(2n) })]);
    await eventually(() => expect(storedTask(store, 'b-on-n1').status?.err).toBe('insufficient resources on 1 node'));
    expect(stateOf(storedTask(store, 'b-on-n1'))).toBe(TaskState.PENDING);
  });

  it('leaves alone PENDING tasks desired beyond COMPLETE, and does not explain tasks of a deleted service', async () => {
    const store = clusterWith([sized('n1', 0n)], ['svc']);
    startLoop(new LocalClusterState(store));
    createTasks(store, [task('shut-1', 'svc', { desiredState: TaskState.SHUTDOWN }), task('orphan-1', 'gone', reserving(1n)), task('svc-1', 'svc', reserving(1n))]);
    const created = store.version;

    await eventually(() => expect(storedTask(store, 'svc-1').status?.err).toBe('no suitable node (insufficient resources on 1 node)'));
    expect([storedTask(store, 'shut-1'), storedTask(store, 'orphan-1')].map((left) => left.meta?.version?.index)).toEqual([created, created]);
  });
});

describe('keeping the bookkeeping in step with the store', () => {
  it.each([
    { end: 'completed', state: TaskState.COMPLETE },
    { end: 'failed', state: TaskState.FAILED },
    { end: 'shut down', state: TaskState.SHUTDOWN },
    { end: 'deleted', state: undefined },
  ])('gives back the resources of a task that ended ($end), so that a PENDING one fits', async ({ state }) => {
    const store = clusterWith([sized('n1', 2n)], ['first', 'second']);
    startLoop(new LocalClusterState(store));
    createTasks(store, [task('first-1', 'first', reserving(2n))]);
    await eventually(() => expectAssigned(storedTask(store, 'first-1')));
    rewrite(store, 'task', 'first-1', (t) => ({ ...t, status: { ...t.status!, state: TaskState.RUNNING } }));
    createTasks(store, [task('second-1', 'second', reserving(2n))]);
    await eventually(() => expect(storedTask(store, 'second-1').status?.err).toBe('no suitable node (insufficient resources on 1 node)'));

    if (state === undefined) store.update((tx) => tx.delete('task', 'first-1', storedTask(store, 'first-1').meta!.version!.index));
    else rewrite(store, 'task', 'first-1', (t) => ({ ...t, status: { ...t.status!, state } }));
    await eventually(() => expectAssigned(storedTask(store, 'second-1')));
  });

  it.each([
    { tasks: 'replicated', slot: 1n, next: 'n2' },
    { tasks: 'global', slot: 0n, next: 'n1' },
  ])('sends a service version to a node where its $tasks tasks failed 5 times last only if it placed them', async ({ slot, next }) => {
    const store = clusterWith([node('n1'), node('n2')]);
    createTasks(store, [task('running-1', 'svc', { nodeId: 'n2', status: { state: TaskState.RUNNING } })]);
    startLoop(new LocalClusterState(store));
    const failing = Array.from({ length: 5 }, (_, index) => task(`failing-${index}`, 'svc', { slot, nodeId: 'n1', status: { state: TaskState.RUNNING } }));
    createTasks(store, failing);
    for (const { id } of failing) rewrite(store, 'task', id, (t) => ({ ...t, status: { ...t.status!, state: TaskState.FAILED } }));

    // Without failures n1 comes first: it runs no task of the service, n2 runs one.
    createTasks(store, [task('next-1', 'svc', { slot: 6n })]);
    await eventually(() => expectAssigned(storedTask(store, 'next-1')));
    expect(storedTask(store, 'next-1').nodeId).toBe(next);
  });

  it('re-reads everything after a resync notice, so tasks whose commits it never saw still hold their node', async () => {
    const store = clusterWith([sized('n1', 2n)], ['svc', 'other']);
    const state = laggingState(store);
    startLoop(state);
    state.hold();
    // Seen by nobody: the loop's watch broke while this was committed.
    createTasks(store, [task('unseen-1', 'other', { nodeId: 'n1', status: { state: TaskState.RUNNING }, ...reserving(2n) })]);
    state.resync();

    createTasks(store, [task('web-1', 'svc', reserving(1n))]);
    await eventually(() => expect(storedTask(store, 'web-1').status?.err).toBe('no suitable node (insufficient resources on 1 node)'));
  });

  it('writes its decisions in transactions of at most 200 changes', async () => {
    const store = clusterWith([node('n1'), node('n2'), node('n3')]);
    const changesPerWrite: number[] = [];
    const watch = store.watch({ fromVersion: store.version, filters: [{ kind: 'task', actions: ['update'] }, { kind: 'node', actions: ['update'] }] });
    const watching = (async () => {
      for await (const commit of watch) changesPerWrite.push(commit.events.length);
    })();
    try {
      startLoop(new LocalClusterState(store));
      createTasks(store, tasks(450, 'web-'));
      await eventually(() => expect(storedTasks(store).filter((t) => stateOf(t) === TaskState.ASSIGNED)).toHaveLength(450));
      // 450 tasks and 3 node bumps per transaction need at least three.
      await eventually(() => expect(changesPerWrite.length).toBeGreaterThanOrEqual(3));
      expect(changesPerWrite.every((changes) => changes <= 200)).toBe(true);
    } finally {
      watch.close();
      await watching;
    }
  });
});

describe('sharing the work', () => {
  it('places only the tasks of the services it owns, and those of newly owned ones on rebalance', async () => {
    const store = clusterWith([node('n1')], ['mine', 'theirs']);
    const owned = new Set(['mine']);
    const { loop } = startLoop(new LocalClusterState(store), { owns: (serviceId) => owned.has(serviceId) });
    createTasks(store, [task('mine-1', 'mine'), task('theirs-1', 'theirs')]);
    await eventually(() => expectAssigned(storedTask(store, 'mine-1')));
    expect({ state: stateOf(storedTask(store, 'theirs-1')), err: storedTask(store, 'theirs-1').status?.err }).toEqual({ state: TaskState.PENDING, err: '' });

    owned.add('theirs');
    loop.rebalance();
    await eventually(() => expectAssigned(storedTask(store, 'theirs-1')));
  });

  it('loses a placement race on a node it knew at an older version, waits to see the winner write, then decides again', async () => {
    const store = clusterWith([sized('n1', 2n)], ['fast', 'slow']);
    const lagging = laggingState(store);
    const clock = new FakeClock({ startMs: Date.parse('2025-03-01T12:00:00Z') });
    startLoop(new LocalClusterState(store), { owns: (serviceId) => serviceId === 'fast' });
    const slow = startLoop(lagging, { owns: (serviceId) => serviceId === 'slow', clock });
    const racesLost = () => slow.logs.filter((entry) => entry.msg === 'lost a placement race; placing those tasks again').length;
    lagging.hold();
    createTasks(store, [task('fast-1', 'fast', reserving(2n))]);
    await eventually(() => expectAssigned(storedTask(store, 'fast-1')));

    // The slow loop has not seen n1 fill up: it places slow-1 there, and the node's version check refuses it.
    createTasks(store, [task('slow-1', 'slow', reserving(2n))]);
    slow.loop.rebalance();
    await clock.advanceAsync(5);
    expect(racesLost()).toBe(1);
    expect({ state: stateOf(storedTask(store, 'slow-1')), nodeId: storedTask(store, 'slow-1').nodeId }).toEqual({ state: TaskState.PENDING, nodeId: '' });

    // Deciding again from the same stale view would only lose again: it waits for the winner's commit.
    await clock.advanceAsync(100);
    expect(racesLost()).toBe(1);

    lagging.release();
    await clock.advanceAsync(5);
    expect(storedTask(store, 'slow-1').status?.err).toBe('no suitable node (insufficient resources on 1 node)');
    expect(stateOf(storedTask(store, 'slow-1'))).toBe(TaskState.PENDING);
    expect(racesLost()).toBe(1);
  });
});
