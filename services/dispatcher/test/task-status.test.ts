import { ErrorCode } from '@shoal/errors';
import { TaskState, type Task, type TaskStatus } from '@shoal/proto';
import { versionOf } from '@shoal/store';
import { beforeEach, describe, expect, it } from 'vitest';
import { assignedTask, createSwarm, eventually, serve, type TestSwarm } from './support/swarm.js';
import { joinedWorker, rejection, type TestNode } from './support/test-node.js';

let swarm: TestSwarm;
let node: TestNode;
let other: TestNode;
let sessionId: string;

beforeEach(async () => {
  swarm = await createSwarm();
  const dispatcher = await serve(swarm);
  [node, other] = await Promise.all([joinedWorker(swarm, dispatcher.address), joinedWorker(swarm, dispatcher.address)]);
  ({ sessionId } = await node.register());
});

async function tasksOn(nodeId: string, count: number): Promise<Task[]> {
  const tasks = Array.from({ length: count }, () => assignedTask(nodeId));
  for (let start = 0; start < tasks.length; start += 200) {
    await swarm.state.commit({ changes: tasks.slice(start, start + 200).map((object) => ({ action: 'create', kind: 'task', object })) });
  }
  return tasks;
}

const status = (state: TaskState, message = ''): TaskStatus => ({ timestamp: new Date(), state, message, err: '', appliedBy: '', appliedAt: undefined, portStatus: undefined });

/** Reports `marker` RUNNING and waits until it is written: every report sent before it has been dealt with by then. */
async function settle(marker: Task): Promise<void> {
  await node.updateTaskStatus(sessionId, [{ taskId: marker.id, status: status(TaskState.RUNNING) }]);
  await eventually('the marker report to be written', () => swarm.task(marker.id)?.status?.state === TaskState.RUNNING);
}

describe('task status reports', () => {
  it('are written with the time they were applied, and never move a task backwards', async () => {
    const [task, marker] = await tasksOn(node.id, 2);

    await node.updateTaskStatus(sessionId, [{ taskId: task!.id, status: status(TaskState.RUNNING, 'started') }]);
    await eventually('the report to be written', () => swarm.task(task!.id)?.status?.state === TaskState.RUNNING);
    await node.updateTaskStatus(sessionId, [{ taskId: task!.id, status: status(TaskState.STARTING, 'starting') }]);
    await settle(marker!);

    expect(swarm.task(task!.id)?.status).toMatchObject({ state: TaskState.RUNNING, message: 'started', appliedBy: '', appliedAt: expect.any(Date) });
  });

  it('are not written again when nothing changed', async () => {
    const [task, marker] = await tasksOn(node.id, 2);
    const report = status(TaskState.RUNNING, 'started');
    await node.updateTaskStatus(sessionId, [{ taskId: task!.id, status: report }]);
    await eventually('the report to be written', () => swarm.task(task!.id)?.status?.state === TaskState.RUNNING);
    const version = versionOf(swarm.task(task!.id)!);

    await node.updateTaskStatus(sessionId, [{ taskId: task!.id, status: report }]);
    await settle(marker!);

    expect(versionOf(swarm.task(task!.id)!)).toBe(version);
  });

  it('are written together, in transactions of at most 200 changes', async () => {
    const tasks = await tasksOn(node.id, 250);
    const transactions: number[] = [];
    const unsubscribe = swarm.state.subscribe((commit) => transactions.push(commit.events.filter((event) => event.kind === 'task').length));

    await node.updateTaskStatus(sessionId, tasks.map((task) => ({ taskId: task.id, status: status(TaskState.ACCEPTED, 'accepted') })));
    await eventually('every report to be written', () => tasks.every((task) => swarm.task(task.id)?.status?.state === TaskState.ACCEPTED));
    unsubscribe();

    expect(transactions).toEqual([200, 50]);
  });

  it("refuse the whole request when a task belongs to another node, and skip tasks that are gone", async () => {
    const [own, marker] = await tasksOn(node.id, 2);
    const [theirs] = await tasksOn(other.id, 1);

    const error = await rejection(
      node.updateTaskStatus(sessionId, [
        { taskId: own!.id, status: status(TaskState.FAILED) },
        { taskId: theirs!.id, status: status(TaskState.FAILED) },
      ]),
    );
    await node.updateTaskStatus(sessionId, [{ taskId: 'deleted-long-ago', status: status(TaskState.FAILED) }]);
    await settle(marker!);

    expect(error).toMatchObject({ code: ErrorCode.PermissionDenied, message: 'cannot update a task not assigned this node' });
    expect(swarm.task(own!.id)?.status?.state).toBe(TaskState.ASSIGNED);
    expect(swarm.task(theirs!.id)?.status?.state).toBe(TaskState.ASSIGNED);
  });

  it('need the current session', async () => {
    const [task] = await tasksOn(node.id, 1);

    const error = await rejection(node.updateTaskStatus('not-my-session', [{ taskId: task!.id, status: status(TaskState.RUNNING) }]));

    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'session invalid' });
  });
});
