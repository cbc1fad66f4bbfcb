import { TaskState, type Task } from '@shoal/proto';
import { expect, it } from 'vitest';
import { ClusterAudit } from '../src/audit.js';
import { ControlPlane } from '../src/control-plane.js';

it('runs the example of README.md', async () => {
  // --- README example starts here ---
  const plane = new ControlPlane(); // options: clock, log, schedulers, schedulerDebounceMs, agents, mirrorLagMs
  const audit = new ClusterAudit(plane.state); // before anything is written, so that it checks every commit
  await plane.initSwarm();
  await plane.addNodes(10);
  await plane.start(); // agents, scheduler-1, allocator, orchestrator

  const { id } = await plane.createService({ annotations: { name: 'web' }, task: { container: { image: 'app:1' } }, replicated: { replicas: 1n } });
  await plane.scaleService(id, 30);
  const running = (task: Task) => task.desiredState === TaskState.RUNNING && task.status?.state === TaskState.RUNNING;
  await plane.until(() => expect(plane.tasks(id).filter(running)).toHaveLength(30));

  await plane.kill('orchestrator', 'allocator'); // a crash between two writes
  await plane.start('orchestrator', 'allocator'); // fresh instances take the leases at the next epoch
  await plane.scaleService(id, 10);
  await plane.until(() => expect(plane.tasks(id).filter(running)).toHaveLength(10));

  await plane.close(); // throws if a component failed on its own
  audit.close();
  expect(audit.violations).toEqual([]);
  // --- README example ends here ---
});
