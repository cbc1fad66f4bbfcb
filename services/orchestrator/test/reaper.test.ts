import { Cluster, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { node, service, START_MS, task, TestCluster } from './support/harness.js';

/**
 * A cluster with service web (replicas 1) whose slot 1 holds `history` stopped tasks h1… (h1 the
 * oldest) and the running task t1.
 */
function webWithHistory(history: number, retentionLimit?: number): TestCluster {
  const cluster = new TestCluster();
  cluster.create('node', node('n1'));
  if (retentionLimit !== undefined) {
    cluster.create('cluster', Cluster.fromPartial({ id: 'c1', spec: { annotations: { name: 'default' }, orchestration: { taskHistoryRetentionLimit: BigInt(retentionLimit) } } }));
  }
  cluster.create('service', service('web', { replicated: { replicas: 1n } }));
  const stopped = Array.from({ length: history }, (_, index) =>
    task(`h${index + 1}`, 'web', 1, 'n1', {
      desiredState: TaskState.SHUTDOWN,
      status: { state: TaskState.FAILED, timestamp: new Date(START_MS + index * 1_000) },
    }),
  );
  cluster.create('task', ...stopped, task('t1', 'web', 1, 'n1'));
  return cluster;
}

const ids = (cluster: TestCluster) => cluster.tasks('web').map(({ id }) => id).sort();

describe('task reaper', () => {
  it('keeps the 5 newest tasks of a slot by default, deleting the oldest history', async () => {
    await using cluster = webWithHistory(7);
    await cluster.start();

    expect(ids(cluster)).toEqual(['h4', 'h5', 'h6', 'h7', 't1']);
  });

  it("keeps as many as the cluster's task history retention limit says, and follows a change of it", async () => {
    await using cluster = webWithHistory(4, 3);
    await cluster.start();
    expect(ids(cluster)).toEqual(['h3', 'h4', 't1']);

    cluster.update('cluster', 'c1', (settings) => ({ ...settings, spec: { ...settings.spec!, orchestration: { taskHistoryRetentionLimit: 1n } } }));
    await cluster.settle();
    expect(ids(cluster)).toEqual(['t1']);
  });

  it('never deletes a task that is running, even over the limit', async () => {
    await using cluster = webWithHistory(2, 0);
    cluster.create('task', task('t2', 'web', 1, 'n1', { desiredState: TaskState.SHUTDOWN }));
    await cluster.start();

    expect(ids(cluster)).toEqual(['t1', 't2']);
  });

  it('keeps a negative limit as "keep everything"', async () => {
    await using cluster = webWithHistory(7, -1);
    await cluster.start();

    expect(ids(cluster)).toHaveLength(8);
  });

  it('keeps max_attempts + 1 tasks per slot when the restart policy counts more attempts than the limit keeps', async () => {
    await using cluster = new TestCluster();
    const policy = { restart: { maxAttempts: 3n } };
    cluster.create('node', node('n1'));
    cluster.create('cluster', Cluster.fromPartial({ id: 'c1', spec: { annotations: { name: 'default' }, orchestration: { taskHistoryRetentionLimit: 1n } } }));
    cluster.create('service', service('web', { replicated: { replicas: 1n } }, policy));
    cluster.create(
      'task',
      ...[1, 2, 3, 4, 5].map((index) =>
        task(`h${index}`, 'web', 1, 'n1', { desiredState: TaskState.SHUTDOWN, status: { state: TaskState.FAILED, timestamp: new Date(START_MS + index) } }),
      ),
      task('t1', 'web', 1, 'n1'),
    );
    await cluster.start();

    expect(ids(cluster)).toEqual(['h3', 'h4', 'h5', 't1']);
  });

  it('deletes a task removed by a scale-down once it has stopped, not while it runs', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'), task('t2', 'web', 2, 'n1'));
    await cluster.start();

    cluster.scale('web', 1);
    await cluster.settle();
    expect(cluster.task('t2').desiredState).toBe(TaskState.REMOVE);

    cluster.report('t2', TaskState.SHUTDOWN);
    await cluster.settle();
    expect(ids(cluster)).toEqual(['t1']);
  });

  it('deletes a task of no service (a network attachment) once the dispatcher has orphaned it', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('task', task('a1', '', 0, 'n1'));
    await cluster.start();
    expect(cluster.tasks('')).toHaveLength(1);

    cluster.report('a1', TaskState.ORPHANED);
    await cluster.settle();
    expect(cluster.tasks('')).toEqual([]);
  });
});
