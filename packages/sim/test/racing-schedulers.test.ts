import { TaskState } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { OWNS_EVERY_SERVICE } from '../src/control-plane.js';
import { countPerNode, replicatedSpec, running, simulate, stateOf } from './support.js';

const QUARTER_CORE = 250_000_000n;

describe('two scheduling loops placing the same services, each on its own trailing mirror', () => {
  it('fill four one-core nodes with sixteen quarter-core tasks, lose races instead of over-committing, and leave the rest pending with the reason', async () => {
    const { plane } = await simulate({ schedulers: [OWNS_EVERY_SERVICE, OWNS_EVERY_SERVICE], mirrorLagMs: 3 });
    const nodeIds = (await plane.addNodes(4, { resources: { nanoCpus: 1_000_000_000n, memoryBytes: 1n << 30n } })).map((node) => node.id);
    await plane.start();
    const reserving = { task: { resources: { reservations: { nanoCpus: QUARTER_CORE } } } };
    const serviceIds: string[] = [];
    const allTasks = () => serviceIds.flatMap((id) => plane.tasks(id));

    // One service at a time, so that the loops race for each one's tasks in turn.
    for (const name of ['web', 'api', 'worker', 'cache', 'proxy']) {
      serviceIds.push((await plane.createService(replicatedSpec(name, 4, reserving))).id);
      const created = 4 * serviceIds.length;
      await plane.until(() => {
        const tasks = allTasks();
        expect(tasks).toHaveLength(created);
        expect(running(tasks)).toHaveLength(Math.min(created, 16));
        const pending = tasks.filter((task) => stateOf(task) === TaskState.PENDING);
        expect(pending.map((task) => task.status?.err)).toEqual(Array(created - running(tasks).length).fill('no suitable node (insufficient resources on 4 nodes)'));
      });
    }

    expect(countPerNode(running(allTasks()), nodeIds)).toEqual([4, 4, 4, 4]);
    expect(allTasks()).toHaveLength(20);
    expect(plane.writes('scheduler-1').conflicts + plane.writes('scheduler-2').conflicts, 'placement races lost').toBeGreaterThan(0);
  });
});
