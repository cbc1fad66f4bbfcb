import { errors } from '@shoal/errors';
import { TaskState, TaskStatus, type UpdateTaskStatusRequest_TaskStatusUpdate } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { STATUS_BATCH_SIZE, StatusReporter, type StatusSender } from '../src/status-reporter.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });
const running: AbortController[] = [];

afterEach(() => {
  for (const controller of running.splice(0)) controller.abort();
});

function startReporter(): StatusReporter {
  const reporter = new StatusReporter(log);
  const stop = new AbortController();
  running.push(stop);
  void reporter.run(stop.signal);
  return reporter;
}

/** A sender that records every call it accepts; `fail` makes calls fail (counted in `failures`) until it is set back to false. */
function recordingSender(): { send: StatusSender; calls: UpdateTaskStatusRequest_TaskStatusUpdate[][]; fail: boolean; failures: number } {
  const recorder = {
    calls: [] as UpdateTaskStatusRequest_TaskStatusUpdate[][],
    fail: false,
    failures: 0,
    send: async (updates: UpdateTaskStatusRequest_TaskStatusUpdate[]) => {
      if (recorder.fail) {
        recorder.failures += 1;
        throw errors.unavailable('dispatcher gone');
      }
      recorder.calls.push(updates);
    },
  };
  return recorder;
}

const status = (state: TaskState, message = '') => TaskStatus.fromPartial({ state, message });
const sentStates = (calls: UpdateTaskStatusRequest_TaskStatusUpdate[][], taskId: string) =>
  calls.flat().filter((update) => update.taskId === taskId).map((update) => update.status?.state);

describe('the status reporter', () => {
  it('never lets a task go back to an earlier state', async () => {
    const reporter = startReporter();
    reporter.report('t1', status(TaskState.RUNNING, 'started'));
    reporter.report('t1', status(TaskState.PREPARING, 'preparing'));
    const sender = recordingSender();
    reporter.attach(sender.send);

    await expect.poll(() => sender.calls.length).toBe(1);
    expect(sentStates(sender.calls, 't1')).toEqual([TaskState.RUNNING]);
    expect(reporter.latest('t1')?.state).toBe(TaskState.RUNNING);
  });

  it(`sends at most ${STATUS_BATCH_SIZE} updates per call, every task's latest status once`, async () => {
    const reporter = startReporter();
    const count = STATUS_BATCH_SIZE * 2 + 5;
    for (let i = 0; i < count; i++) {
      reporter.report(`t${i}`, status(TaskState.ACCEPTED));
      reporter.report(`t${i}`, status(TaskState.PREPARING));
    }
    const sender = recordingSender();
    reporter.attach(sender.send);

    await expect.poll(() => sender.calls.flat().length).toBe(count);
    expect(sender.calls.map((call) => call.length)).toEqual([STATUS_BATCH_SIZE, STATUS_BATCH_SIZE, 5]);
    expect(new Set(sender.calls.flat().map((update) => update.status?.state))).toEqual(new Set([TaskState.PREPARING]));
  });

  it('retries a status until the dispatcher takes it', async () => {
    const reporter = startReporter();
    const sender = recordingSender();
    sender.fail = true;
    reporter.attach(sender.send);
    reporter.report('t1', status(TaskState.RUNNING));

    await expect.poll(() => sender.failures).toBeGreaterThan(0);
    sender.fail = false;
    await expect.poll(() => sentStates(sender.calls, 't1'), { timeout: 5_000 }).toEqual([TaskState.RUNNING]);
  });

  it("resends every task's latest status to a new session", async () => {
    const reporter = startReporter();
    const first = recordingSender();
    reporter.attach(first.send);
    reporter.report('t1', status(TaskState.RUNNING));
    reporter.report('t2', status(TaskState.COMPLETE));
    await expect.poll(() => first.calls.flat().length).toBe(2);

    reporter.detach(first.send);
    const second = recordingSender();
    reporter.attach(second.send);
    await expect.poll(() => second.calls.flat().map((update) => update.taskId).sort()).toEqual(['t1', 't2']);
  });

  it('holds statuses while no session is attached and drops those of forgotten tasks', async () => {
    const reporter = startReporter();
    reporter.report('kept', status(TaskState.RUNNING));
    reporter.report('removed', status(TaskState.RUNNING));
    reporter.forget('removed');
    const sender = recordingSender();
    reporter.attach(sender.send);

    await expect.poll(() => sender.calls.length).toBe(1);
    expect(sender.calls.flat().map((update) => update.taskId)).toEqual(['kept']);
  });
});
