import { ContainerSpec, Service, Task, TaskState, UpdateConfig_FailureAction, UpdateConfig_UpdateOrder, UpdateStatus_UpdateState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { isSlotDirty, isTaskDirty } from '../src/update/dirty.js';
import { exceedsFailureRatio, finalMonitorMs, rolloutPolicyOf } from '../src/update/policy.js';

const container = (partial: Parameters<typeof ContainerSpec.fromPartial>[0]) => ContainerSpec.fromPartial(partial);
const template = container({ image: 'app:1', labels: { a: '1', b: '2' } });

function service(version: bigint, spec = template, rest: Parameters<typeof Service.fromPartial>[0] = {}): Service {
  return Service.fromPartial({ ...rest, id: 'svc', specVersion: { index: version }, spec: { ...rest.spec, task: { container: spec } } });
}

function task(version: bigint, spec = template, rest: Parameters<typeof Task.fromPartial>[0] = {}): Task {
  return Task.fromPartial({ desiredState: TaskState.RUNNING, status: { state: TaskState.RUNNING }, ...rest, id: 't1', serviceId: 'svc', slot: 1n, specVersion: { index: version }, spec: { container: spec } });
}

describe('which tasks a rollout replaces', () => {
  it('keeps a task made from the service’s current spec version without comparing specs', () => {
    expect(isTaskDirty(service(2n, container({ image: 'app:2' })), task(2n))).toBe(false);
  });

  it('keeps a task from an older spec version whose task template is the same, maps in any order', () => {
    expect(isTaskDirty(service(2n, container({ image: 'app:1', labels: { b: '2', a: '1' } })), task(1n))).toBe(false);
  });

  it.each([
    ['a new image', service(2n, container({ image: 'app:2' }))],
    ['a bumped force-update counter', Service.fromPartial({ id: 'svc', specVersion: { index: 2n }, spec: { task: { container: template, forceUpdate: 1n } } })],
  ])('replaces a task when the template changed: %s', (_, changed) => {
    expect(isTaskDirty(changed, task(1n))).toBe(true);
  });

  it('ignores new registry credentials for a task that already has its image, but not for one still pulling', () => {
    const withCredentials = service(2n, container({ ...template, pullOptions: { registryAuth: 'token' } }));
    expect(isTaskDirty(withCredentials, task(1n))).toBe(false);
    expect(isTaskDirty(withCredentials, task(1n, template, { status: { state: TaskState.PREPARING } }))).toBe(true);
  });

  it('replaces a task allocated for another endpoint spec', () => {
    const published = service(2n, template, { spec: { endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } } });
    expect(isTaskDirty(published, task(1n, template, { endpoint: { spec: { ports: [] } } }))).toBe(true);
    expect(isTaskDirty(published, task(1n, template, { endpoint: { spec: { ports: [{ targetPort: 80, publishedPort: 8080 }] } } }))).toBe(false);
  });

  it('treats a slot holding two tasks (an interrupted start-first replacement) as needing attention', () => {
    expect(isSlotDirty(service(1n), [task(1n)])).toBe(false);
    expect(isSlotDirty(service(1n), [task(1n), { ...task(1n), id: 't2' }])).toBe(true);
  });
});

describe('rollout policy', () => {
  it('falls back to swarmkit’s defaults: one slot at a time, no delay, 5 s monitor, pause, stop-first', () => {
    expect(rolloutPolicyOf(service(1n))).toEqual({
      parallelism: 1,
      delayMs: 0,
      failureAction: UpdateConfig_FailureAction.PAUSE,
      monitorMs: 5_000,
      maxFailureRatio: 0,
      order: UpdateConfig_UpdateOrder.STOP_FIRST,
    });
  });

  it('uses the rollback config while rolling back and the update config otherwise', () => {
    const configured = (state: UpdateStatus_UpdateState | undefined) =>
      service(1n, template, {
        spec: { update: { parallelism: 2n }, rollback: { parallelism: 0n, order: UpdateConfig_UpdateOrder.START_FIRST } },
        updateStatus: state === undefined ? undefined : { state },
      });
    expect(rolloutPolicyOf(configured(undefined))).toMatchObject({ parallelism: 2, order: UpdateConfig_UpdateOrder.STOP_FIRST, monitorMs: 5_000 });
    expect(rolloutPolicyOf(configured(UpdateStatus_UpdateState.ROLLBACK_STARTED))).toMatchObject({ parallelism: 0, order: UpdateConfig_UpdateOrder.START_FIRST });
  });

  it('compares the failure ratio in single precision, as swarmkit does: 7 failures of 10 meet a 0.7 ratio', () => {
    const policy = { ...rolloutPolicyOf(service(1n)), maxFailureRatio: Math.fround(0.7) };
    expect(exceedsFailureRatio(7, 10, policy)).toBe(false);
    expect(exceedsFailureRatio(8, 10, policy)).toBe(true);
  });

  it('monitors one second past the delay after the last slot when the delay is not shorter than the monitor period', () => {
    const policy = rolloutPolicyOf(service(1n));
    expect(finalMonitorMs({ ...policy, delayMs: 1_000 })).toBe(5_000);
    expect(finalMonitorMs({ ...policy, delayMs: 5_000 })).toBe(6_000);
  });
});
