import { errors } from '@shoal/errors';
import { TaskState, taskName, type Task, type TaskStatus } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../src/fake-executor.js';
import { TaskManager } from '../src/task-manager.js';
import { assignedTask } from './support/tasks.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });
const noDependencies = { secrets: new Map(), configs: new Map() };
const managers: TaskManager[] = [];

afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});

/** Runs `task` on `executor`, collecting every status the manager reports. */
function manage(executor: FakeExecutor, task: Task, options: { adopt?: boolean } = {}): { manager: TaskManager; reported: TaskStatus[] } {
  const reported: TaskStatus[] = [];
  const manager = new TaskManager({
    task,
    controller: executor.controller(task, noDependencies),
    report: (status) => reported.push(status),
    adopt: options.adopt ?? false,
    log,
    retryDelayMs: 10,
  });
  managers.push(manager);
  return { manager, reported };
}

const lastState = (reported: TaskStatus[]) => reported.at(-1)?.state;

describe('the task state machine (swarmkit exec.Do)', () => {
  it("walks an assigned task to RUNNING with swarmkit's messages, reporting its container", async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    const { reported } = manage(executor, task);

    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);
    expect(reported.map((status) => [status.state, status.message])).toEqual([
      [TaskState.ACCEPTED, 'accepted'],
      [TaskState.PREPARING, 'preparing'],
      [TaskState.READY, 'prepared'],
      [TaskState.STARTING, 'starting'],
      [TaskState.RUNNING, 'started'],
    ]);
    expect(reported.at(-1)?.container).toEqual({ containerId: `fake-${task.id}`, pid: expect.any(Number), exitCode: 0 });
    expect(executor.runtimeState(task.id)).toBe('running');
  });

  it('holds a task prepared at READY while its desired state is READY, and starts it once raised', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1', { desiredState: TaskState.READY });
    const { manager, reported } = manage(executor, task);

    await expect.poll(() => lastState(reported)).toBe(TaskState.READY);
    expect(executor.runtimeState(task.id)).toBe('created');
    manager.update({ ...task, desiredState: TaskState.RUNNING });
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);
    expect(executor.startCount(task.id)).toBe(1);
  });

  it('rejects a task whose preparation fails, with the error as status.err', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    executor.failNext(task.id, 'prepare', errors.notFound('No such image: shoal/missing:1'));
    const { reported } = manage(executor, task);

    await expect.poll(() => lastState(reported)).toBe(TaskState.REJECTED);
    expect(reported.at(-1)).toMatchObject({ err: 'No such image: shoal/missing:1', message: 'preparing' });
  });

  it('fails (not rejects) a task whose start fails', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    executor.failNext(task.id, 'start', errors.invalidArgument('starting container failed: exec: "nope": executable file not found'));
    const { reported } = manage(executor, task);

    await expect.poll(() => lastState(reported)).toBe(TaskState.FAILED);
    expect(reported.at(-1)?.err).toBe('starting container failed: exec: "nope": executable file not found');
  });

  it("reports a non-zero exit as FAILED with moby's text, the container and its exit code", async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    const { reported } = manage(executor, task);
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);

    executor.exit(task.id, 137);
    await expect.poll(() => lastState(reported)).toBe(TaskState.FAILED);
    expect(reported.at(-1)).toMatchObject({ err: 'task: non-zero exit (137)', container: { containerId: `fake-${task.id}`, exitCode: 137 } });
  });

  it('completes a task that exits 0, as finished', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    const { reported } = manage(executor, task);
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);

    executor.exit(task.id, 0);
    await expect.poll(() => lastState(reported)).toBe(TaskState.COMPLETE);
    expect(reported.at(-1)).toMatchObject({ message: 'finished', err: '' });
  });

  it('shuts a running task down once its desired state reaches SHUTDOWN', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    const { manager, reported } = manage(executor, task);
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);

    manager.update({ ...task, desiredState: TaskState.SHUTDOWN });
    await expect.poll(() => lastState(reported)).toBe(TaskState.SHUTDOWN);
    expect(reported.at(-1)?.message).toBe('shutdown');
    expect(executor.runtimeState(task.id)).toBe('exited');
  });

  it('never lowers the desired state: an update asking for less is ignored', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    const { manager, reported } = manage(executor, task);
    manager.update({ ...task, desiredState: TaskState.SHUTDOWN });
    await expect.poll(() => lastState(reported)).toBe(TaskState.SHUTDOWN);

    manager.update({ ...task, desiredState: TaskState.RUNNING });
    expect(manager.task.desiredState).toBe(TaskState.SHUTDOWN);
    expect(lastState(reported)).toBe(TaskState.SHUTDOWN);
  });

  it('retries a step that hit a temporary error, noting the error meanwhile', async () => {
    const executor = new FakeExecutor();
    const task = assignedTask('node-1');
    executor.failNext(task.id, 'prepare', errors.unavailable('dockerd is restarting'));
    const { reported } = manage(executor, task);

    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);
    expect(reported).toContainEqual(expect.objectContaining({ state: TaskState.PREPARING, err: 'dockerd is restarting' }));
    expect(reported.map((status) => status.state)).not.toContain(TaskState.REJECTED);
  });
});

describe('adopting a task after an agent restart', () => {
  /** Runs a task to RUNNING, then stops managing it: its container keeps running, as when the agent restarts. */
  async function runThenRestartAgent(executor: FakeExecutor): Promise<Task> {
    const task = assignedTask('node-1');
    const first = manage(executor, task);
    await expect.poll(() => lastState(first.reported)).toBe(TaskState.RUNNING);
    await first.manager.close();
    return { ...task, status: first.reported.at(-1) };
  }

  it('adopts a running container as RUNNING and waits on it without starting it again', async () => {
    const executor = new FakeExecutor();
    const task = await runThenRestartAgent(executor);

    const { reported } = manage(executor, task, { adopt: true });
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);
    expect(executor.startCount(task.id)).toBe(1);
    executor.exit(task.id, 0);
    await expect.poll(() => lastState(reported)).toBe(TaskState.COMPLETE);
    expect(executor.startCount(task.id)).toBe(1);
  });

  it('reports the exit of a container that ended while the agent was away', async () => {
    const executor = new FakeExecutor();
    const task = await runThenRestartAgent(executor);
    executor.exit(task.id, 3);

    const { reported } = manage(executor, task, { adopt: true });
    await expect.poll(() => lastState(reported)).toBe(TaskState.FAILED);
    expect(reported.at(-1)).toMatchObject({ err: 'task: non-zero exit (3)', container: { exitCode: 3 } });
  });

  it("fails a task whose container is gone while the manager thinks it runs, with moby's error", async () => {
    const task = await runThenRestartAgent(new FakeExecutor());

    const { reported } = manage(new FakeExecutor(), task, { adopt: true });
    await expect.poll(() => lastState(reported)).toBe(TaskState.FAILED);
    expect(reported.at(-1)?.err).toBe(`No such container: ${taskName(task)}`);
  });

  it('prepares a task afresh when the manager saw it accepted but no container was made yet', async () => {
    const executor = new FakeExecutor();
    const task = { ...assignedTask('node-1'), status: { ...assignedTask('node-1').status!, state: TaskState.ACCEPTED, message: 'accepted' } };

    const { reported } = manage(executor, task, { adopt: true });
    await expect.poll(() => lastState(reported)).toBe(TaskState.RUNNING);
    expect(executor.startCount(task.id)).toBe(1);
  });
});
