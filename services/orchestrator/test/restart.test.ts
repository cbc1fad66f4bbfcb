import { NodeSpec_Availability, NodeStatus_State, RestartPolicy_RestartCondition, TaskSpec, TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { node, service, START_MS, task, TestCluster, type PartialOf } from './support/harness.js';

const { NONE, ON_FAILURE, ANY } = RestartPolicy_RestartCondition;
const seconds = (value: number) => ({ seconds: BigInt(value), nanos: 0 });
const NO_DELAY = seconds(0);

/** A cluster with node n1 and service web (replicas 1, `restart` as its policy) whose task t1 runs on n1. */
async function runningWeb(restart: PartialOf<typeof TaskSpec> = {}): Promise<TestCluster> {
  const cluster = new TestCluster();
  cluster.create('node', node('n1'));
  cluster.create('service', service('web', { replicated: { replicas: 1n } }, restart));
  cluster.create('task', task('t1', 'web', 1, 'n1', { spec: restart }));
  await cluster.start();
  return cluster;
}

/** The service's tasks as [id-or-'new', desired state name], oldest first. */
function desiredStates(cluster: TestCluster, serviceId = 'web'): [string, string][] {
  return cluster.tasks(serviceId).map(({ id, desiredState }) => [/^t\d+$/.test(id) ? id : 'new', TaskState[desiredState] ?? '']);
}

describe('restart supervisor', () => {
  it('replaces a failed task in its slot, starting the replacement after the default 5 s delay', async () => {
    await using cluster = await runningWeb();
    await cluster.advance(1_000);
    cluster.report('t1', TaskState.FAILED);
    await cluster.settle();

    const [old, replacement] = cluster.tasks('web');
    expect(old).toMatchObject({ id: 't1', desiredState: TaskState.SHUTDOWN });
    expect(replacement).toMatchObject({ slot: 1n, nodeId: '', desiredState: TaskState.READY, status: { state: TaskState.NEW } });

    await cluster.advance(4_999);
    expect(cluster.task(replacement!.id).desiredState).toBe(TaskState.READY);
    await cluster.advance(1);
    expect(cluster.task(replacement!.id).desiredState).toBe(TaskState.RUNNING);
  });

  it('with condition none, shuts a stopped task down and leaves its slot to it', async () => {
    await using cluster = await runningWeb({ restart: { condition: NONE } });
    cluster.report('t1', TaskState.FAILED);
    await cluster.advance(60_000);

    expect(desiredStates(cluster)).toEqual([['t1', 'SHUTDOWN']]);
  });

  it('with condition on-failure, replaces a failed task but not one that completed', async () => {
    const policy = { restart: { condition: ON_FAILURE, delay: NO_DELAY } };
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 2n } }, policy));
    cluster.create('task', task('t1', 'web', 1, 'n1', { spec: policy }), task('t2', 'web', 2, 'n1', { spec: policy }));
    await cluster.start();

    await cluster.advance(1_000);
    cluster.report('t1', TaskState.COMPLETE);
    cluster.report('t2', TaskState.FAILED);
    await cluster.settle();

    expect(desiredStates(cluster)).toEqual([
      ['t1', 'SHUTDOWN'],
      ['t2', 'SHUTDOWN'],
      ['new', 'RUNNING'],
    ]);
    expect(cluster.tasks('web')[2]?.slot).toBe(2n);
  });

  it('with condition any, replaces a task that completed too', async () => {
    await using cluster = await runningWeb({ restart: { condition: ANY, delay: NO_DELAY } });
    await cluster.advance(1_000);
    cluster.report('t1', TaskState.COMPLETE);
    await cluster.settle();

    expect(desiredStates(cluster)).toEqual([
      ['t1', 'SHUTDOWN'],
      ['new', 'RUNNING'],
    ]);
  });

  it('stops restarting a slot once max attempts restarts happened within the window', async () => {
    await using cluster = await runningWeb({ restart: { condition: ANY, delay: NO_DELAY, maxAttempts: 2n, window: seconds(60) } });
    const failNewest = async () => {
      const newest = cluster.liveTasks('web').at(-1)!;
      cluster.report(newest.id, TaskState.RUNNING, 'n1');
      await cluster.advance(1_000);
      cluster.report(newest.id, TaskState.FAILED);
      await cluster.settle();
    };

    await failNewest();
    await failNewest();
    expect(cluster.liveTasks('web')).toHaveLength(1);
    await failNewest();

    expect(cluster.tasks('web')).toHaveLength(3);
    expect(cluster.liveTasks('web')).toEqual([]);
  });

  it('restarts again once the earlier restarts have left the window', async () => {
    await using cluster = await runningWeb({ restart: { condition: ANY, delay: NO_DELAY, maxAttempts: 1n, window: seconds(10) } });
    cluster.report('t1', TaskState.FAILED);
    await cluster.settle();
    const first = cluster.liveTasks('web')[0]!;

    cluster.report(first.id, TaskState.RUNNING, 'n1');
    await cluster.advance(30_000);
    cluster.report(first.id, TaskState.FAILED);
    await cluster.settle();

    expect(cluster.tasks('web')).toHaveLength(3);
    expect(cluster.liveTasks('web')).toHaveLength(1);
  });

  it('waits out the delay of a replacement that fails during it before replacing it (no tight restart loop)', async () => {
    await using cluster = await runningWeb();
    cluster.report('t1', TaskState.FAILED);
    await cluster.settle();
    const first = cluster.liveTasks('web')[0]!;

    await cluster.advance(1_000);
    cluster.report(first.id, TaskState.REJECTED, 'n1');
    await cluster.settle();
    expect(cluster.tasks('web')).toHaveLength(2);

    await cluster.advance(4_000);
    const second = cluster.liveTasks('web')[0]!;
    expect(second.id).not.toBe(first.id);
    expect(second).toMatchObject({ slot: 1n, desiredState: TaskState.READY });
    expect(cluster.task(first.id).desiredState).toBe(TaskState.SHUTDOWN);

    await cluster.advance(5_000);
    expect(cluster.task(second.id).desiredState).toBe(TaskState.RUNNING);
  });

  it('replaces the task of a node that went down in the same slot, to be placed elsewhere', async () => {
    await using cluster = await runningWeb();
    await cluster.advance(1_000);
    cluster.setNodeState('n1', NodeStatus_State.DOWN);
    await cluster.settle();

    const [old, replacement] = cluster.tasks('web');
    expect(old).toMatchObject({ id: 't1', desiredState: TaskState.SHUTDOWN });
    expect(replacement).toMatchObject({ slot: 1n, nodeId: '', desiredState: TaskState.READY });
    // Nothing will hear from the down node's task: only the delay is waited for.
    await cluster.advance(5_000);
    expect(cluster.task(replacement!.id).desiredState).toBe(TaskState.RUNNING);
  });

  it('replaces the task of a drained node without delay, starting the replacement once the old task has stopped', async () => {
    await using cluster = await runningWeb();
    cluster.setAvailability('n1', NodeSpec_Availability.DRAIN);
    await cluster.settle();
    const replacement = cluster.liveTasks('web')[0]!;
    expect(replacement).toMatchObject({ slot: 1n, desiredState: TaskState.READY });

    await cluster.advance(10_000);
    expect(cluster.task(replacement.id).desiredState).toBe(TaskState.READY);
    cluster.report('t1', TaskState.SHUTDOWN);
    await cluster.settle();
    expect(cluster.task(replacement.id).desiredState).toBe(TaskState.RUNNING);
  });

  it('starts a replacement anyway when the task it replaces has not stopped a minute after the delay', async () => {
    await using cluster = await runningWeb();
    cluster.setAvailability('n1', NodeSpec_Availability.DRAIN);
    await cluster.settle();
    const replacement = cluster.liveTasks('web')[0]!;

    await cluster.advance(59_999);
    expect(cluster.task(replacement.id).desiredState).toBe(TaskState.READY);
    await cluster.advance(1);
    expect(cluster.task(replacement.id).desiredState).toBe(TaskState.RUNNING);
  });

  it('takes over the delayed start a previous instance left, for the rest of its delay', async () => {
    await using cluster = new TestCluster();
    cluster.create('node', node('n1'));
    cluster.create('service', service('web', { replicated: { replicas: 1n } }));
    cluster.create(
      'task',
      task('t1', 'web', 1, 'n1', { desiredState: TaskState.SHUTDOWN, status: { state: TaskState.FAILED, timestamp: new Date(START_MS) } }),
      task('t2', 'web', 1, '', { desiredState: TaskState.READY, status: { state: TaskState.NEW } }),
    );
    cluster.clock.advance(2_000);
    await cluster.start();
    expect(desiredStates(cluster)).toEqual([
      ['t1', 'SHUTDOWN'],
      ['t2', 'READY'],
    ]);

    await cluster.advance(2_999);
    expect(cluster.task('t2').desiredState).toBe(TaskState.READY);
    await cluster.advance(1);
    expect(cluster.task('t2').desiredState).toBe(TaskState.RUNNING);
  });
});
