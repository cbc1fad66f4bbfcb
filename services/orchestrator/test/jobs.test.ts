import { RestartPolicy_RestartCondition, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { node, service, slotsOf, TestCluster } from './support/harness.js';

/** Reports the tasks in `slots` (of the live ones) done. */
function complete(cluster: TestCluster, serviceId: string, ...slots: number[]): void {
  for (const task of cluster.liveTasks(serviceId)) {
    if (slots.includes(Number(task.slot))) cluster.report(task.id, TaskState.COMPLETE, 'n1');
  }
}

describe('replicated jobs', () => {
  it('runs at most max-concurrent tasks at once, each in its own slot, until total-completions have completed', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('batch', { replicatedJob: { maxConcurrent: 2n, totalCompletions: 3n } }));
    await cluster.start();

    const first = cluster.tasks('batch');
    expect(slotsOf(first)).toEqual([1, 2]);
    expect(first[0]).toMatchObject({ desiredState: TaskState.COMPLETE, jobIteration: { index: 0n }, status: { state: TaskState.NEW } });

    complete(cluster, 'batch', 1);
    await cluster.settle();
    expect(slotsOf(cluster.tasks('batch'))).toEqual([1, 2, 3]);

    complete(cluster, 'batch', 2, 3);
    await cluster.settle();
    expect(cluster.tasks('batch').map(({ slot, status }) => [Number(slot), TaskState[status?.state ?? 0]])).toEqual([
      [1, 'COMPLETE'],
      [2, 'COMPLETE'],
      [3, 'COMPLETE'],
    ]);
  });

  it('restarts a failed job task in its slot after the restart delay, and starts it to completion', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('batch', { replicatedJob: { maxConcurrent: 1n, totalCompletions: 1n } }));
    await cluster.start();
    const [failed] = cluster.tasks('batch');

    await cluster.advance(1_000);
    cluster.report(failed!.id, TaskState.FAILED, 'n1');
    await cluster.settle();
    const [, replacement] = cluster.tasks('batch');
    expect(replacement).toMatchObject({ slot: 1n, desiredState: TaskState.READY, jobIteration: { index: 0n } });

    await cluster.advance(5_000);
    expect(cluster.task(replacement!.id).desiredState).toBe(TaskState.COMPLETE);
  });

  it('gives up on a slot whose task failed when the restart policy says none', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    const noRestart = { restart: { condition: RestartPolicy_RestartCondition.NONE } };
    cluster.create('service', service('batch', { replicatedJob: { maxConcurrent: 1n, totalCompletions: 2n } }, noRestart));
    await cluster.start();

    cluster.report(cluster.tasks('batch')[0]!.id, TaskState.FAILED, 'n1');
    await cluster.advance(10_000);

    expect(cluster.tasks('batch').map(({ slot, desiredState }) => [Number(slot), TaskState[desiredState]])).toEqual([
      [1, 'SHUTDOWN'],
      [2, 'COMPLETE'],
    ]);
  });

  it('on a new job run, removes the unfinished tasks of the last run, keeps its finished ones, and starts over', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('batch', { replicatedJob: { maxConcurrent: 2n, totalCompletions: 2n } }));
    await cluster.start();
    complete(cluster, 'batch', 1);
    cluster.report(cluster.tasks('batch')[1]!.id, TaskState.RUNNING, 'n1');
    await cluster.settle();

    await cluster.advance(1_000);
    cluster.update('service', 'batch', (batch) => ({ ...batch, jobStatus: { jobIteration: { index: 1n }, lastExecution: cluster.now() } }));
    await cluster.settle();

    const runs = cluster.tasks('batch').map(({ slot, jobIteration, desiredState }) => [Number(slot), Number(jobIteration?.index), TaskState[desiredState]]);
    expect(runs).toEqual([
      [1, 0, 'COMPLETE'],
      [1, 1, 'COMPLETE'],
      [2, 0, 'REMOVE'],
      [2, 1, 'COMPLETE'],
    ]);
  });
});

describe('global jobs', () => {
  it('runs once on each ready, active node that existed when the job started, and not again once done', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'), node('n2'));
    await cluster.advance(1_000);
    cluster.create('service', service('sweep', { globalJob: {} }));
    await cluster.start();
    expect(Object.keys(cluster.tasksByNode('sweep')).sort()).toEqual(['n1', 'n2']);
    expect(cluster.tasks('sweep')[0]).toMatchObject({ slot: 0n, desiredState: TaskState.COMPLETE, jobIteration: { index: 0n } });

    await cluster.advance(1_000);
    cluster.create('node', node('n3'));
    for (const task of cluster.tasks('sweep')) cluster.report(task.id, TaskState.COMPLETE);
    await cluster.settle();

    expect(Object.keys(cluster.tasksByNode('sweep')).sort()).toEqual(['n1', 'n2']);
    expect(cluster.tasks('sweep')).toHaveLength(2);
  });
});
