// The usage example in README.md is this test, so that it compiles and runs.
import { Service, Task, TaskState } from '@shoal/proto';
import { expect, it } from 'vitest';
import { byServiceId, MemoryStore } from '../src/index.js';

it('runs the README example: write, read, watch and resume', async () => {
  const store = new MemoryStore();

  // A write transaction: every check throws a ShoalError naming the object, and undoes it all.
  store.update((tx) => {
    tx.create('service', Service.fromPartial({ id: 'svc1', spec: { annotations: { name: 'web' } } }));
    tx.create('task', Task.fromPartial({ id: 'task1', serviceId: 'svc1', slot: 1n, desiredState: TaskState.RUNNING }));
  });

  // A component starts from a snapshot and follows every later commit, with no gap.
  const { result: tasks, version, watch } = store.viewAndWatch((tx) => tx.find('task', byServiceId('svc1')), {
    filters: [{ kind: 'task', selectors: [byServiceId('svc1')] }],
  });

  // Writes are conditional: pass back the object as read (its meta.version) or get CONFLICT.
  const [task] = tasks;
  if (task === undefined) throw new Error('no task');
  store.update((tx) => tx.update('task', { ...task, nodeId: 'node1' }));

  for await (const commit of watch) {
    for (const event of commit.events) {
      if (event.kind !== 'task') continue; // narrows event.object and event.old to Task
      expect([commit.version, event.action, event.old?.nodeId, event.object.nodeId]).toEqual([2n, 'update', '', 'node1']);
    }
    break; // ends the watch
  }

  // A watcher that went away resumes from the last version it saw (or gets COMPACTED and resyncs).
  const resumed = store.watch({ fromVersion: version });
  const next = await resumed.next();
  expect(next.value?.version).toBe(2n);
  resumed.close();
});
