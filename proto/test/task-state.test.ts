import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { TaskState, taskStateFromJSON, taskStateToJSON } from '../src/gen/shoal/v1/types.js';
import { parseTaskState, taskStateName, taskStates } from '../src/task-state.js';

describe('TaskState', () => {
  it('keeps swarmkit numbering exactly, spaced so greater always means later', () => {
    expect({
      NEW: TaskState.NEW,
      PENDING: TaskState.PENDING,
      ASSIGNED: TaskState.ASSIGNED,
      ACCEPTED: TaskState.ACCEPTED,
      PREPARING: TaskState.PREPARING,
      READY: TaskState.READY,
      STARTING: TaskState.STARTING,
      RUNNING: TaskState.RUNNING,
      COMPLETE: TaskState.COMPLETE,
      SHUTDOWN: TaskState.SHUTDOWN,
      FAILED: TaskState.FAILED,
      REJECTED: TaskState.REJECTED,
      REMOVE: TaskState.REMOVE,
      ORPHANED: TaskState.ORPHANED,
    }).toEqual({
      NEW: 0,
      PENDING: 64,
      ASSIGNED: 192,
      ACCEPTED: 256,
      PREPARING: 320,
      READY: 384,
      STARTING: 448,
      RUNNING: 512,
      COMPLETE: 576,
      SHUTDOWN: 640,
      FAILED: 704,
      REJECTED: 768,
      REMOVE: 800,
      ORPHANED: 832,
    });
  });

  it('lists every state in strictly increasing order', () => {
    expect(taskStates).toHaveLength(14);
    expect([...taskStates].sort((a, b) => a - b)).toEqual(taskStates);
    expect(new Set(taskStates).size).toBe(taskStates.length);
  });

  it('keeps the canonical prefixed names in JSON', () => {
    expect(taskStateToJSON(TaskState.RUNNING)).toBe('TASK_STATE_RUNNING');
    expect(taskStateFromJSON('TASK_STATE_ORPHANED')).toBe(TaskState.ORPHANED);
  });
});

describe('engine-API task state names', () => {
  it.each([
    [TaskState.NEW, 'new'],
    [TaskState.PENDING, 'pending'],
    [TaskState.ASSIGNED, 'assigned'],
    [TaskState.ACCEPTED, 'accepted'],
    [TaskState.PREPARING, 'preparing'],
    [TaskState.READY, 'ready'],
    [TaskState.STARTING, 'starting'],
    [TaskState.RUNNING, 'running'],
    [TaskState.COMPLETE, 'complete'],
    [TaskState.SHUTDOWN, 'shutdown'],
    [TaskState.FAILED, 'failed'],
    [TaskState.REJECTED, 'rejected'],
    [TaskState.REMOVE, 'remove'],
    [TaskState.ORPHANED, 'orphaned'],
  ])('names state %i "%s" and parses the name back', (state, name) => {
    expect(taskStateName(state)).toBe(name);
    expect(parseTaskState(name)).toBe(state);
  });

  it('refuses to name a state the protocol does not define', () => {
    expect(() => taskStateName(TaskState.UNRECOGNIZED)).toThrow(/unknown task state -1/);
    expect(() => taskStateName(65 as TaskState)).toThrow(/unknown task state 65/);
  });

  it.each(['Running', 'RUNNING', 'allocated', 'TASK_STATE_RUNNING', '', 'toString'])(
    'rejects "%s" with INVALID_ARGUMENT',
    (name) => {
      expect(() => parseTaskState(name)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    },
  );
});
