import { NodeSpec_Availability, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { node, service, task, TestCluster } from './support/harness.js';

const GIB = 1n << 30n;

describe('constraint enforcer', () => {
  it('rejects a running task whose node no longer meets its constraints, and the task is replaced in its slot', async () => {
    await using cluster = new TestCluster();
    const inZoneA = { placement: { constraints: ['node.labels.zone==a'] } };
    cluster.create('node', node('n1', { spec: { annotations: { labels: { zone: 'a' } } } }));
    cluster.create('service', service('web', { replicated: { replicas: 1n } }, inZoneA));
    cluster.create('task', task('t1', 'web', 1, 'n1', { spec: inZoneA }));
    await cluster.start();

    await cluster.advance(1_000);
    cluster.setLabels('n1', { zone: 'b' });
    await cluster.settle();

    expect(cluster.task('t1')).toMatchObject({
      desiredState: TaskState.SHUTDOWN,
      status: { state: TaskState.REJECTED, message: 'task rejected by constraint enforcer', err: 'assigned node no longer meets constraints', timestamp: cluster.now() },
    });
    expect(cluster.liveTasks('web')).toMatchObject([{ slot: 1n, nodeId: '' }]);
  });

  it("rejects the newest tasks when the node's resources no longer cover their reservations", async () => {
    await using cluster = new TestCluster();
    const reserves = { resources: { reservations: { memoryBytes: GIB } } };
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 3n } }, reserves));
    cluster.create('task', task('t1', 'web', 1, 'n1', { spec: reserves }));
    await cluster.advance(1_000);
    cluster.create('task', task('t2', 'web', 2, 'n1', { spec: reserves }), task('t3', 'web', 3, 'n1', { spec: reserves }));
    await cluster.start();

    cluster.update('node', 'n1', (n1) => ({ ...n1, description: { ...n1.description!, resources: { nanoCpus: 4_000_000_000n, memoryBytes: 2n * GIB, generic: [] } } }));
    await cluster.settle();

    const rejected = ['t1', 't2', 't3'].filter((id) => cluster.task(id).status?.state === TaskState.REJECTED);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).not.toBe('t1');
  });

  it('leaves the tasks of a paused node alone', async () => {
    await using cluster = new TestCluster();
    const inZoneA = { placement: { constraints: ['node.labels.zone==a'] } };
    cluster.create('node', node('n1', { spec: { annotations: { labels: { zone: 'a' } }, availability: NodeSpec_Availability.PAUSE } }));
    cluster.create('service', service('web', { replicated: { replicas: 1n } }, inZoneA));
    cluster.create('task', task('t1', 'web', 1, 'n1', { spec: inZoneA }));
    await cluster.start();

    cluster.setLabels('n1', { zone: 'b' });
    await cluster.settle();

    expect(cluster.task('t1')).toMatchObject({ desiredState: TaskState.RUNNING, status: { state: TaskState.RUNNING } });
  });
});
