import { Service, TaskState } from '@shoal/proto';
import { captureLogs } from '@shoal/runtime/testing';
import { byServiceId, MemoryStore } from '@shoal/store';
import { LocalClusterState } from '@shoal/store-client';
import { expect, it } from 'vitest';
import { Orchestrator } from '../src/orchestrator.js';

it('runs the example of README.md', async () => {
  const { log } = captureLogs({ level: 'warn' });
  // --- README example starts here ---
  const store = new MemoryStore();
  store.update((tx) =>
    tx.create(
      'service',
      Service.fromPartial({
        id: 'web',
        specVersion: { index: 1n },
        spec: { annotations: { name: 'web' }, task: { container: { image: 'nginx' } }, replicated: { replicas: 3n } },
      }),
    ),
  );

  // The service runs it on a StoreMirror, fenced by its lease; a test runs it on the store in-process.
  const orchestrator = new Orchestrator({ state: new LocalClusterState(store), log });
  const stop = new AbortController();
  const running = orchestrator.run(stop.signal);
  await orchestrator.settled();

  const tasks = store.view((tx) => tx.find('task', byServiceId('web')));
  // Three tasks, in slots 1, 2 and 3, desired RUNNING, status NEW "created": the allocator takes over.
  stop.abort();
  await running;
  // --- README example ends here ---

  expect(tasks.map(({ slot, desiredState, status }) => [slot, desiredState, status?.state, status?.message]).sort()).toEqual([
    [1n, TaskState.RUNNING, TaskState.NEW, 'created'],
    [2n, TaskState.RUNNING, TaskState.NEW, 'created'],
    [3n, TaskState.RUNNING, TaskState.NEW, 'created'],
  ]);
});
