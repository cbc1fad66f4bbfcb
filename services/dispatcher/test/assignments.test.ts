import {
  AssignmentChange_AssignmentAction,
  AssignmentsMessage_Type,
  Config,
  newId,
  Secret,
  TaskState,
  type AssignmentChange,
  type AssignmentsMessage,
  type Task,
} from '@shoal/proto';
import type { Change } from '@shoal/store';
import { beforeEach, describe, expect, it } from 'vitest';
import { assignedTask, createSwarm, eventually, serve, type TestSwarm } from './support/swarm.js';
import { joinedWorker, type StreamReader, type TestNode } from './support/test-node.js';

const { REMOVE } = AssignmentChange_AssignmentAction;

let swarm: TestSwarm;
let nodeA: TestNode;
let nodeB: TestNode;
let sessions: { a: string; b: string };

beforeEach(async () => {
  swarm = await createSwarm();
  const dispatcher = await serve(swarm);
  [nodeA, nodeB] = await Promise.all([joinedWorker(swarm, dispatcher.address), joinedWorker(swarm, dispatcher.address)]);
  sessions = { a: (await nodeA.register()).sessionId, b: (await nodeB.register()).sessionId };
});

function secret(name: string): Secret {
  return Secret.fromPartial({ id: newId(), spec: { annotations: { name }, data: Buffer.from(`${name} data`) } });
}

function config(name: string): Config {
  return Config.fromPartial({ id: newId(), spec: { annotations: { name }, data: Buffer.from(`${name} data`) } });
}

async function write(...changes: Change[]): Promise<void> {
  await swarm.state.commit({ changes });
}

/** The stored task with the state its agent reported. */
function withState(taskId: string, state: TaskState): Task {
  const task = swarm.task(taskId)!;
  return { ...task, status: { ...task.status!, state } };
}

const create = (kind: 'task' | 'secret' | 'config', object: Task | Secret | Config) => ({ action: 'create', kind, object }) as Change;

/** What a message carries, as `<action> <kind> <id>` lines in the order sent. */
function summary(message: AssignmentsMessage): string[] {
  return message.changes.map(describeChange);
}

function describeChange({ assignment, action }: AssignmentChange): string {
  const [kind, object] = assignment?.task ? ['task', assignment.task] : assignment?.secret ? ['secret', assignment.secret] : ['config', assignment?.config];
  return `${action === REMOVE ? 'remove' : 'update'} ${kind} ${object?.id}`;
}

async function incremental(stream: StreamReader<AssignmentsMessage>): Promise<AssignmentsMessage> {
  const message = await stream.next();
  expect(message.type).toBe(AssignmentsMessage_Type.INCREMENTAL);
  return message;
}

describe('assignments', () => {
  it("start with the node's tasks from ASSIGNED on and exactly the secrets and configs its live tasks reference", async () => {
    const [ownSecret, finishedSecret, otherSecret, unusedSecret] = ['own', 'finished', 'other', 'unused'].map(secret);
    const ownConfig = config('own-config');
    const live = assignedTask(nodeA.id, { secrets: [ownSecret!], configs: [ownConfig] });
    const running = assignedTask(nodeA.id, { state: TaskState.RUNNING });
    const finished = assignedTask(nodeA.id, { state: TaskState.COMPLETE, secrets: [finishedSecret!] });
    const notYetPlaced = assignedTask(nodeA.id, { state: TaskState.PENDING, secrets: [unusedSecret!] });
    const others = assignedTask(nodeB.id, { secrets: [otherSecret!] });
    await write(
      ...[ownSecret!, finishedSecret!, otherSecret!, unusedSecret!].map((object) => create('secret', object)),
      create('config', ownConfig),
      ...[live, running, finished, notYetPlaced, others].map((task) => create('task', task)),
    );

    const first = await nodeA.assignments(sessions.a).next();
    const forB = await nodeB.assignments(sessions.b).next();

    expect(first).toMatchObject({ type: AssignmentsMessage_Type.COMPLETE, appliesTo: '', resultsIn: '1' });
    expect(summary(first).sort()).toEqual(
      [`update task ${live.id}`, `update task ${running.id}`, `update task ${finished.id}`, `update secret ${ownSecret!.id}`, `update config ${ownConfig.id}`].sort(),
    );
    expect(first.changes.find((change) => change.assignment?.secret)?.assignment?.secret?.spec?.data.toString()).toBe('own data');
    expect(summary(forB).sort()).toEqual([`update task ${others.id}`, `update secret ${otherSecret!.id}`].sort());
  });

  it('then send what changed, chained, without echoing what the agent reported itself', async () => {
    const shared = secret('shared');
    const first = assignedTask(nodeA.id, { secrets: [shared] });
    await write(create('secret', shared), create('task', first));
    const stream = nodeA.assignments(sessions.a);
    await stream.next();

    const added = assignedTask(nodeA.id, { secrets: [shared], configs: [] });
    const addedSecret = secret('added');
    const withOwnSecret = assignedTask(nodeA.id, { secrets: [addedSecret] });
    await write(create('secret', addedSecret), create('task', added));
    await write(create('task', withOwnSecret));
    const second = await incremental(stream);

    // The agent's own report is not sent back; a manager's change is.
    await nodeA.updateTaskStatus(sessions.a, [{ taskId: added.id, status: { ...added.status!, state: TaskState.RUNNING, message: 'started' } }]);
    await eventually('the report to be written', () => swarm.task(added.id)?.status?.state === TaskState.RUNNING);
    await write({ action: 'update', kind: 'task', object: { ...swarm.task(first.id)!, desiredState: TaskState.SHUTDOWN } });
    const third = await incremental(stream);

    expect(second).toMatchObject({ appliesTo: '1', resultsIn: '2' });
    // Both commits in one message, each dependency before the task needing it.
    expect(summary(second)).toEqual([`update secret ${addedSecret.id}`, `update task ${added.id}`, `update task ${withOwnSecret.id}`]);
    expect(third).toMatchObject({ appliesTo: '2', resultsIn: '3' });
    expect(summary(third)).toEqual([`update task ${first.id}`]);
    expect(third.changes[0]?.assignment?.task?.desiredState).toBe(TaskState.SHUTDOWN);
  });

  it('remove a dependency once no task up to RUNNING needs it, and a deleted task by its ID', async () => {
    const shared = secret('shared');
    const ownConfig = config('config');
    const [one, two] = [assignedTask(nodeA.id, { secrets: [shared], configs: [ownConfig] }), assignedTask(nodeA.id, { secrets: [shared] })];
    await write(create('secret', shared), create('config', ownConfig), create('task', one), create('task', two));
    const stream = nodeA.assignments(sessions.a);
    await stream.next();

    await write({ action: 'update', kind: 'task', object: withState(one.id, TaskState.FAILED) });
    const oneDone = await incremental(stream);
    await write({ action: 'update', kind: 'task', object: withState(two.id, TaskState.SHUTDOWN) });
    const twoDone = await incremental(stream);
    await write({ action: 'delete', kind: 'task', id: one.id });
    const deleted = await incremental(stream);

    // The status change is the agent's and not echoed; the shared secret stays while `two` runs.
    expect(summary(oneDone)).toEqual([`remove config ${ownConfig.id}`]);
    expect(summary(twoDone)).toEqual([`remove secret ${shared.id}`]);
    expect(twoDone.changes[0]?.assignment?.secret).toEqual(Secret.fromPartial({ id: shared.id }));
    expect(summary(deleted)).toEqual([`remove task ${one.id}`]);
    expect(deleted.changes[0]?.assignment?.task).toMatchObject({ id: one.id, spec: undefined, nodeId: '' });
  });

  it('split a burst into chained messages of at most 100 changes', async () => {
    const stream = nodeA.assignments(sessions.a);
    await stream.next();
    const tasks = Array.from({ length: 150 }, () => assignedTask(nodeA.id));

    await write(...tasks.map((task) => create('task', task)));
    const messages = [await incremental(stream), await incremental(stream)];

    expect(messages.map((message) => message.changes.length)).toEqual([100, 50]);
    expect(messages.map(({ appliesTo, resultsIn }) => [appliesTo, resultsIn])).toEqual([
      ['1', '2'],
      ['2', '3'],
    ]);
    expect(new Set(messages.flatMap(summary))).toEqual(new Set(tasks.map((task) => `update task ${task.id}`)));
  });

  it("never carry another node's tasks", async () => {
    const stream = nodeA.assignments(sessions.a);
    await stream.next();

    const elsewhere = assignedTask(nodeB.id);
    const here = assignedTask(nodeA.id);
    await write(create('task', elsewhere));
    await write(create('task', here));

    expect(summary(await incremental(stream))).toEqual([`update task ${here.id}`]);
    expect(stream.pending).toEqual([]);
  });
});
