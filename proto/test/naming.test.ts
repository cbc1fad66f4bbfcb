import { describe, expect, it } from 'vitest';
import { Task } from '../src/gen/shoal/v1/objects.js';
import { taskName } from '../src/naming.js';

const taskId = '0qihejybwf1xabcdefghijklm';

describe('taskName', () => {
  it('names a replicated task <service>.<slot>.<task id>', () => {
    const task = Task.fromPartial({ id: taskId, slot: 3n, nodeId: 'node1', serviceAnnotations: { name: 'redis' } });
    expect(taskName(task)).toBe(`redis.3.${taskId}`);
  });

  it('names a global task (slot 0) <service>.<node id>.<task id>', () => {
    const task = Task.fromPartial({ id: taskId, slot: 0n, nodeId: 'node1', serviceAnnotations: { name: 'agent' } });
    expect(taskName(task)).toBe(`agent.node1.${taskId}`);
  });

  it("prefers the name in the task's own annotations", () => {
    const task = Task.fromPartial({
      id: taskId,
      slot: 1n,
      annotations: { name: 'custom-name' },
      serviceAnnotations: { name: 'redis' },
    });
    expect(taskName(task)).toBe('custom-name');
  });

  it('prints slots above 2^53 without rounding', () => {
    const task = Task.fromPartial({ id: taskId, slot: 18446744073709551615n, serviceAnnotations: { name: 'web' } });
    expect(taskName(task)).toBe(`web.18446744073709551615.${taskId}`);
  });
});
