import { errors } from '@shoal/errors';
import { AssignmentChange_AssignmentAction, Config, Secret, Task, TaskState, type AssignmentChange } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskController, TaskDependencies } from '../src/executor.js';
import { FakeExecutor } from '../src/fake-executor.js';
import { StatusReporter } from '../src/status-reporter.js';
import { Worker } from '../src/worker.js';
import { assignedTask } from './support/tasks.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });
const workers: Worker[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
});

function startWorker(executor: FakeExecutor): { worker: Worker; reporter: StatusReporter } {
  const reporter = new StatusReporter(log);
  const worker = new Worker({ executor, reporter, log, retryDelayMs: 10 });
  workers.push(worker);
  return { worker, reporter };
}

const update = (item: { task: Task } | { secret: Secret } | { config: Config }): AssignmentChange => ({ assignment: item, action: AssignmentChange_AssignmentAction.UPDATE });
const remove = (taskId: string): AssignmentChange => ({ assignment: { task: Task.fromPartial({ id: taskId }) }, action: AssignmentChange_AssignmentAction.REMOVE });

describe('the worker', () => {
  it('removes the tasks a COMPLETE set no longer lists, with their containers', async () => {
    const executor = new FakeExecutor();
    const { worker, reporter } = startWorker(executor);
    const [kept, dropped] = [assignedTask('node-1'), assignedTask('node-1')];
    await worker.apply([update({ task: kept }), update({ task: dropped })], true);
    await expect.poll(() => [executor.runtimeState(kept.id), executor.runtimeState(dropped.id)]).toEqual(['running', 'running']);

    await worker.apply([update({ task: kept })], true);
    await expect.poll(() => executor.runtimeState(dropped.id)).toBe('absent');
    expect(executor.runtimeState(kept.id)).toBe('running');
    expect(reporter.latest(dropped.id)).toBeUndefined();
    expect(worker.runningTasks().map(({ task }) => task.id)).toEqual([kept.id]);
  });

  it('applies an INCREMENTAL set to what it names only', async () => {
    const executor = new FakeExecutor();
    const { worker, reporter } = startWorker(executor);
    const [removed, stopped, untouched, added] = [assignedTask('node-1'), assignedTask('node-1'), assignedTask('node-1'), assignedTask('node-1')];
    await worker.apply([update({ task: removed }), update({ task: stopped }), update({ task: untouched })], true);
    await expect.poll(() => reporter.latest(untouched.id)?.state).toBe(TaskState.RUNNING);

    await worker.apply([remove(removed.id), update({ task: { ...stopped, desiredState: TaskState.SHUTDOWN } }), update({ task: added })], false);
    await expect.poll(() => reporter.latest(stopped.id)?.state).toBe(TaskState.SHUTDOWN);
    await expect.poll(() => reporter.latest(added.id)?.state).toBe(TaskState.RUNNING);
    expect(executor.runtimeState(removed.id)).toBe('absent');
    expect(executor.runtimeState(untouched.id)).toBe('running');
  });

  it('hands each task exactly the secrets and configs its spec references', async () => {
    const executor = new FakeExecutor();
    const { worker } = startWorker(executor);
    const secret = (id: string) => Secret.fromPartial({ id, spec: { annotations: { name: id }, data: Buffer.from(`${id}-data`) } });
    const config = Config.fromPartial({ id: 'c1', spec: { annotations: { name: 'c1' }, data: Buffer.from('c1-data') } });
    const first = assignedTask('node-1', { secretIds: ['s1'], configIds: ['c1'] });
    const second = assignedTask('node-1', { secretIds: ['s2'] });
    await worker.apply([update({ secret: secret('s1') }), update({ secret: secret('s2') }), update({ config }), update({ task: first }), update({ task: second })], true);

    await expect.poll(() => executor.runtimeState(second.id)).toBe('running');
    const keys = (dependencies: TaskDependencies | undefined) => ({ secrets: [...(dependencies?.secrets.keys() ?? [])], configs: [...(dependencies?.configs.keys() ?? [])] });
    expect(keys(executor.dependenciesOf(first.id))).toEqual({ secrets: ['s1'], configs: ['c1'] });
    expect(keys(executor.dependenciesOf(second.id))).toEqual({ secrets: ['s2'], configs: [] });
    expect(executor.dependenciesOf(first.id)?.secrets.get('s1')?.spec?.data.toString()).toBe('s1-data');
  });

  it('adopts the containers an earlier run left for assigned tasks and removes those of unassigned ones', async () => {
    const executor = new FakeExecutor();
    const earlier = startWorker(executor);
    const [stillAssigned, gone] = [assignedTask('node-1'), assignedTask('node-1')];
    await earlier.worker.apply([update({ task: stillAssigned }), update({ task: gone })], true);
    await expect.poll(() => earlier.reporter.latest(gone.id)?.state).toBe(TaskState.RUNNING);
    await earlier.worker.close();
    expect(executor.runtimeState(gone.id)).toBe('running');

    const { worker, reporter } = startWorker(executor);
    await worker.apply([update({ task: { ...stillAssigned, status: earlier.reporter.latest(stillAssigned.id) } })], true);
    await expect.poll(() => executor.runtimeState(gone.id)).toBe('absent');
    await expect.poll(() => reporter.latest(stillAssigned.id)?.state).toBe(TaskState.RUNNING);
    expect(executor.startCount(stillAssigned.id)).toBe(1);
  });

  it('rejects a task the executor cannot make a controller for, with its error', async () => {
    class RefusingExecutor extends FakeExecutor {
      override controller(task: Task, dependencies: TaskDependencies): TaskController {
        if (task.spec?.container?.image === 'unsupported') throw errors.invalidArgument('unsupported runtime');
        return super.controller(task, dependencies);
      }
    }
    const { worker, reporter } = startWorker(new RefusingExecutor());
    const task = assignedTask('node-1');
    await worker.apply([update({ task: { ...task, spec: { ...task.spec!, container: { ...task.spec!.container!, image: 'unsupported' } } } })], true);

    expect(reporter.latest(task.id)).toMatchObject({ state: TaskState.REJECTED, err: 'unsupported runtime' });
    await worker.apply([], true);
    expect(reporter.latest(task.id)).toBeUndefined();
  });

  it('leaves containers running when it closes, and removes all of them when the node leaves', async () => {
    const executor = new FakeExecutor();
    const first = startWorker(executor);
    const task = assignedTask('node-1');
    await first.worker.apply([update({ task })], true);
    await expect.poll(() => executor.runtimeState(task.id)).toBe('running');
    await first.worker.close();
    expect(executor.runtimeState(task.id)).toBe('running');

    const { worker } = startWorker(executor);
    const another = assignedTask('node-1');
    await worker.apply([update({ task: another })], false);
    await expect.poll(() => executor.runtimeState(another.id)).toBe('running');
    await worker.removeAll(new AbortController().signal);
    expect([executor.runtimeState(task.id), executor.runtimeState(another.id)]).toEqual(['absent', 'absent']);
  });
});
