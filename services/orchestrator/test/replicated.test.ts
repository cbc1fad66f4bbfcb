import { TaskState } from '@shoal/proto';
import type { ClusterState } from '@shoal/store-client';
import { describe, expect, it } from 'vitest';
import { node, service, slotsOf, START_MS, task, TestCluster } from './support/harness.js';

describe('replicated services', () => {
  it('creates one task per slot 1..N from the service, desired RUNNING and left for the scheduler to place', async () => {
    await using cluster = new TestCluster();
    const web = service('web', { replicated: { replicas: 3n } });
    cluster.create('service', web);
    await cluster.start();

    const tasks = cluster.tasks('web');
    expect(slotsOf(tasks)).toEqual([1, 2, 3]);
    expect(new Set(tasks.map((created) => created.id)).size).toBe(3);
    for (const created of tasks) {
      expect(created).toMatchObject({
        serviceId: 'web',
        nodeId: '',
        desiredState: TaskState.RUNNING,
        spec: web.spec?.task,
        specVersion: { index: 1n },
        serviceAnnotations: web.spec?.annotations,
        annotations: { name: '' },
        status: { state: TaskState.NEW, message: 'created', timestamp: new Date(START_MS) },
      });
      expect(created.jobIteration).toBeUndefined();
    }
  });

  it('scales up into the lowest free slots', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }));
    cluster.create('task', task('t2', 'web', 2, 'n1'), task('t5', 'web', 5, 'n1'));
    await cluster.start();
    expect(cluster.tasks('web').map(({ id }) => id)).toEqual(['t2', 't5']);

    cluster.scale('web', 4);
    await cluster.settle();

    expect(slotsOf(cluster.tasks('web'))).toEqual([1, 2, 3, 5]);
  });

  it('scales down taking replicas from the nodes that have the most of them first', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'), node('n2'));
    cluster.create('service', service('web', { replicated: { replicas: 4n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'), task('t2', 'web', 2, 'n1'), task('t3', 'web', 3, 'n1'), task('t4', 'web', 4, 'n2'));
    await cluster.start();

    cluster.scale('web', 2);
    await cluster.settle();

    const desired = Object.fromEntries(cluster.tasks('web').map(({ id, desiredState }) => [id, TaskState[desiredState]]));
    expect(desired).toEqual({ t1: 'RUNNING', t2: 'REMOVE', t3: 'REMOVE', t4: 'RUNNING' });
  });

  it('scales down removing unplaced tasks first, then tasks not running, then the highest slots', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'), node('n2'), node('n3'), node('n4'));
    cluster.create('service', service('web', { replicated: { replicas: 5n } }));
    cluster.create(
      'task',
      task('t1', 'web', 1, 'n1'),
      task('t2', 'web', 2, 'n2', { status: { state: TaskState.ASSIGNED } }),
      task('t3', 'web', 3, 'n3'),
      task('t4', 'web', 4, 'n4'),
      task('t5', 'web', 5, '', { status: { state: TaskState.PENDING } }),
    );
    await cluster.start();

    cluster.scale('web', 2);
    await cluster.settle();

    // t5 never reached a node, so once REMOVE it is deleted by the reaper straight away.
    const desired = Object.fromEntries(cluster.tasks('web').map(({ id, desiredState }) => [id, TaskState[desiredState]]));
    expect(desired).toEqual({ t1: 'RUNNING', t2: 'REMOVE', t3: 'RUNNING', t4: 'REMOVE' });
  });

  it('sets desired REMOVE on every task of a deleted service, and the reaper deletes each once it has stopped', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'), task('t2', 'web', 2, 'n1'));
    await cluster.start();

    cluster.delete('service', 'web');
    await cluster.settle();
    expect(cluster.tasks('web').map(({ id, desiredState }) => [id, desiredState])).toEqual([
      ['t1', TaskState.REMOVE],
      ['t2', TaskState.REMOVE],
    ]);

    cluster.report('t1', TaskState.SHUTDOWN);
    await cluster.settle();
    expect(cluster.tasks('web').map(({ id }) => id)).toEqual(['t2']);
  });

  it('hands the service to the updater when its tasks run an older spec, with the slots it keeps', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'), task('t2', 'web', 2, 'n1'));
    await cluster.start();
    expect(cluster.updater.updates).toEqual([]);

    cluster.update('service', 'web', (web) => ({ ...web, specVersion: { index: 2n }, spec: { ...web.spec!, replicated: { replicas: 3n } } }));
    await cluster.settle();

    // The new slot's task is made from the new spec already; only the kept slots need updating.
    expect(cluster.updater.updates[0]).toEqual({ serviceId: 'web', slots: [['t1'], ['t2']] });
    expect(cluster.tasks('web')[2]).toMatchObject({ slot: 3n, specVersion: { index: 2n } });
  });

  it('counts a bumped force-update counter as an outdated spec', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 1n } }));
    cluster.create('task', task('t1', 'web', 1, 'n1'));
    await cluster.start();

    cluster.update('service', 'web', (web) => ({ ...web, spec: { ...web.spec!, task: { ...web.spec!.task!, forceUpdate: 1n } } }));
    await cluster.settle();

    expect(cluster.updater.updates.map(({ serviceId }) => serviceId)).toContain('web');
  });

  it('neither loses nor repeats work when it is stopped and another instance takes over', async () => {
    await using cluster = new TestCluster();
    cluster.create('service', service('web', { replicated: { replicas: 3n } }));
    await cluster.start();
    const first = cluster.tasks('web').map(({ id }) => id);
    await cluster.stop();

    cluster.scale('web', 4);
    await cluster.start();

    const tasks = cluster.tasks('web');
    expect(slotsOf(tasks)).toEqual([1, 2, 3, 4]);
    expect(tasks.slice(0, 3).map(({ id }) => id)).toEqual(first);
  });

  it('creates a large service in transactions within the store limit of 200 changes', async () => {
    const commitSizes: number[] = [];
    const recordSizes = (state: ClusterState): ClusterState => ({
      get version() {
        return state.version;
      },
      view: (read) => state.view(read),
      subscribe: (listener) => state.subscribe(listener),
      commit: (write) => {
        commitSizes.push(write.changes.length);
        return state.commit(write);
      },
    });
    await using cluster = new TestCluster(recordSizes);
    cluster.create('service', service('web', { replicated: { replicas: 450n } }));
    await cluster.start();

    expect(cluster.tasks('web')).toHaveLength(450);
    expect(commitSizes).toEqual([200, 200, 50]);
  });
});
