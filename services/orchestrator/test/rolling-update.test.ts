import { TaskState, type Task } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { newTask } from '../src/task-factory.js';
import { Updater } from '../src/update/updater.js';
import { node, service, task, TestCluster } from './support/harness.js';

/** What the agents do in one round: stop what should stop, start what should run. */
function agentsAct(cluster: TestCluster): void {
  for (const current of cluster.tasks('web')) {
    const state = current.status?.state ?? TaskState.NEW;
    if (current.desiredState > TaskState.RUNNING && state <= TaskState.RUNNING) cluster.report(current.id, TaskState.SHUTDOWN);
    else if (current.desiredState === TaskState.RUNNING && state < TaskState.RUNNING) cluster.report(current.id, TaskState.RUNNING, 'n1');
  }
}

const runnableBySlot = (tasks: readonly Task[]) => tasks.filter((current) => current.desiredState <= TaskState.RUNNING).map(({ slot }) => slot);

describe('rolling updates', () => {
  it('rolls a replicated service onto a new spec through the updater, without the orchestrator refilling the slots it replaces', async () => {
    await using cluster = new TestCluster();
    const updater = new Updater({ state: cluster.state, clock: () => cluster.now(), timers: cluster.clock, log: cluster.logs.log, newTask });
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'), task('t2', 'web', 2, 'n1'));
    await cluster.start({ updater });

    cluster.update('service', 'web', (web) => ({
      ...web,
      specVersion: { index: 2n },
      spec: { ...web.spec!, task: { ...web.spec!.task!, container: { ...web.spec!.task!.container!, image: 'busybox:2' } } },
    }));
    const slotsSeen: bigint[][] = [];
    for (let round = 0; round < 30; round++) {
      await cluster.settle();
      slotsSeen.push(runnableBySlot(cluster.tasks('web')));
      agentsAct(cluster);
      await cluster.clock.advanceAsync(1_000);
    }
    await cluster.stop();
    await updater.stop();

    const running = cluster.tasks('web').filter((current) => current.desiredState === TaskState.RUNNING);
    expect(running.map(({ slot, specVersion, status }) => [slot, specVersion?.index, status?.state])).toEqual([
      [1n, 2n, TaskState.RUNNING],
      [2n, 2n, TaskState.RUNNING],
    ]);
    // Never more than one task meant to run per slot, and never a third slot.
    expect(slotsSeen.filter((slots) => new Set(slots).size !== slots.length || slots.some((slot) => slot > 2n))).toEqual([]);
  });
});
