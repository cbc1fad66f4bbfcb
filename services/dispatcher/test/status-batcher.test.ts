import { ErrorCode, errors } from '@shoal/errors';
import { TaskState, type Task } from '@shoal/proto';
import { MemoryStore } from '@shoal/store';
import { LocalClusterState, type CommitInput } from '@shoal/store-client';
import { describe, expect, it } from 'vitest';
import { StatusBatcher } from '../src/status-batcher.js';
import { assignedTask, quietLog } from './support/swarm.js';
import { rejection } from './support/test-node.js';

/** Long enough that only the item limit or close() writes a batch: these tests never wait for the timer. */
const NEVER_MS = 3_600_000;

async function storeWith(...tasks: Task[]): Promise<LocalClusterState> {
  const state = new LocalClusterState(new MemoryStore());
  await state.commit({ changes: tasks.map((object) => ({ action: 'create', kind: 'task', object })) });
  return state;
}

const read = (state: LocalClusterState, id: string) => state.view((tx) => tx.get('task', id))!;
const withMessage = (message: string) => (task: Task): Task => ({ ...task, status: { ...task.status!, message } });

describe('StatusBatcher', () => {
  it('writes the changes queued for one object in the order queued, as one change', async () => {
    const task = assignedTask('node-1');
    const state = await storeWith(task);
    const before = state.version;
    const batcher = new StatusBatcher({ state, log: quietLog, intervalMs: NEVER_MS });

    const written = [
      batcher.update('task', task.id, withMessage('first')),
      batcher.update('task', task.id, (current) => ({ ...current, status: { ...current.status!, message: `${current.status!.message}, then second` } })),
    ];
    await batcher.close();
    await Promise.all(written);

    expect(read(state, task.id).status?.message).toBe('first, then second');
    expect(state.version).toBe(before + 1n);
  });

  it('writes at once when as many changes as the item limit are queued', async () => {
    const tasks = [assignedTask('node-1'), assignedTask('node-1'), assignedTask('node-1')];
    const state = await storeWith(...tasks);
    const batcher = new StatusBatcher({ state, log: quietLog, intervalMs: NEVER_MS, maxItems: 3 });

    await Promise.all(tasks.map((task) => batcher.update('task', task.id, withMessage('accepted'))));

    expect(tasks.map((task) => read(state, task.id).status?.message)).toEqual(['accepted', 'accepted', 'accepted']);
    await batcher.close();
  });

  it('recomputes a change that lost a race on the object the other writer left', async () => {
    const task = assignedTask('node-1');
    const state = await storeWith(task);
    // Another writer gets in between the batcher's read and its commit, once.
    let raced = false;
    const racing = Object.create(state, {
      commit: {
        value: async (write: CommitInput) => {
          if (!raced) {
            raced = true;
            const current = read(state, task.id);
            await state.commit({ changes: [{ action: 'update', kind: 'task', object: { ...current, desiredState: TaskState.SHUTDOWN } }] });
          }
          return state.commit(write);
        },
      },
    }) as LocalClusterState;
    const batcher = new StatusBatcher({ state: racing, log: quietLog, intervalMs: 10 });

    await batcher.update('task', task.id, withMessage('started'));
    await batcher.close();

    expect(raced).toBe(true);
    expect(read(state, task.id)).toMatchObject({ desiredState: TaskState.SHUTDOWN, status: { message: 'started' } });
  });

  it('resolves without writing when the change finds nothing to change or the object gone', async () => {
    const task = assignedTask('node-1');
    const state = await storeWith(task);
    const before = state.version;
    const batcher = new StatusBatcher({ state, log: quietLog, intervalMs: NEVER_MS });

    const unchanged = batcher.update('task', task.id, () => undefined);
    const gone = batcher.update('task', 'no-such-task', withMessage('lost'));
    await batcher.close();

    await expect(Promise.all([unchanged, gone])).resolves.toEqual([undefined, undefined]);
    expect(state.version).toBe(before);
  });

  it('rejects a write the store refuses for good, and anything queued after close', async () => {
    const task = assignedTask('node-1');
    const state = await storeWith(task);
    const refusing = Object.create(state, {
      commit: { value: () => Promise.reject(errors.invalidArgument('refused')) },
    }) as LocalClusterState;
    const batcher = new StatusBatcher({ state: refusing, log: quietLog, intervalMs: 10 });

    const refused = await rejection(batcher.update('task', task.id, withMessage('started')));
    await batcher.close();
    const late = await rejection(batcher.update('task', task.id, withMessage('late')));

    expect(refused).toMatchObject({ code: ErrorCode.InvalidArgument, message: 'refused' });
    expect(late.code).toBe(ErrorCode.Unavailable);
    expect(read(state, task.id).status?.message).toBe('scheduler assigned task to node');
  });
});
