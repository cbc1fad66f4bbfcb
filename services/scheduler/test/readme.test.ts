import { Node, NodeStatus_State, Task, TaskState } from '@shoal/proto';
import { expect, it } from 'vitest';
import { ASSIGNED_MESSAGE, Scheduler } from '../src/core/index.js';

it('runs the example of src/core/README.md', () => {
  // --- README example starts here ---
  const scheduler = new Scheduler();

  // The caller feeds the bookkeeping: every node, and every task that holds a place on one.
  for (const [id, zone] of [['node-a', 'east'], ['node-b', 'east'], ['node-c', 'west']]) {
    scheduler.addNode(
      Node.fromPartial({
        id,
        status: { state: NodeStatus_State.READY },
        spec: { annotations: { labels: { zone } } },
        description: { resources: { nanoCpus: 2_000_000_000n, memoryBytes: 4n << 30n } },
      }),
    );
  }
  scheduler.addTask(
    Task.fromPartial({
      id: 'old',
      serviceId: 'web',
      nodeId: 'node-a',
      desiredState: TaskState.RUNNING,
      spec: { resources: { reservations: { nanoCpus: 2_000_000_000n } } },
    }),
  );

  // Five PENDING tasks of one service version, spread over the zones, then over the nodes.
  const pending = [1, 2, 3, 4, 5].map((slot) =>
    Task.fromPartial({
      id: `web-${slot}`,
      serviceId: 'web',
      specVersion: { index: 3n },
      slot: BigInt(slot),
      desiredState: TaskState.RUNNING,
      status: { state: TaskState.PENDING },
      spec: {
        resources: { reservations: { nanoCpus: 1_000_000_000n } },
        placement: { constraints: ['node.labels.zone!=north'], preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] },
      },
    }),
  );
  const { assigned, unschedulable } = scheduler.schedule(pending);

  // assigned: web-1 → node-c (zone east already has `old`), web-2 → node-b (node-a is full),
  // web-3 → node-c, web-4 → node-b, each with message ASSIGNED_MESSAGE. The caller writes them
  // ASSIGNED, and calls removeTask for any it could not write.
  // unschedulable: web-5, reason 'no suitable node (insufficient resources on 3 nodes)': it stays PENDING.
  // --- README example ends here ---

  expect(assigned.map(({ task, nodeId, message }) => [task.id, nodeId, message])).toEqual([
    ['web-1', 'node-c', ASSIGNED_MESSAGE],
    ['web-2', 'node-b', ASSIGNED_MESSAGE],
    ['web-3', 'node-c', ASSIGNED_MESSAGE],
    ['web-4', 'node-b', ASSIGNED_MESSAGE],
  ]);
  expect(unschedulable.map(({ task, reason }) => [task.id, reason])).toEqual([['web-5', 'no suitable node (insufficient resources on 3 nodes)']]);
});
