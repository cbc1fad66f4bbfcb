import { TaskState, type Task } from '@shoal/proto';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { HALF_CPU, node, task } from './fixtures.js';
import { clusterWith, createTasks, eventually, mirrorOf, startLoop, stateOf, storedTasks } from './loop-support.js';

/** Which of the two loops place a service's tasks: one, the other, or both (the worst case). */
const owners = ['a', 'b', 'both'] as const;

it('never over-commits a node nor assigns a task twice when two loops on lagging mirrors place the same or neighbouring services, and fills every node', async () => {
  const scenario = fc.record({
    // Each node's room in tasks (each task reserves half a core).
    capacities: fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 5 }),
    serviceOwners: fc.array(fc.constantFrom(...owners), { minLength: 1, maxLength: 4 }),
    // The tasks, created in commits of these sizes.
    commits: fc.array(fc.integer({ min: 1, max: 80 }), { minLength: 1, maxLength: 4 }).filter((sizes) => sizes.reduce((sum, size) => sum + size, 0) <= 200),
    // How far behind the store each loop's mirror runs.
    lagsMs: fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ capacities, serviceOwners, commits, lagsMs }) => {
      const serviceIds = serviceOwners.map((_, index) => `svc${index}`);
      const store = clusterWith(
        capacities.map((room, index) => node(`n${index}`, { description: { resources: { nanoCpus: BigInt(room) * HALF_CPU } } })),
        serviceIds,
      );
      const assignments = new Map<string, number>();
      const watch = store.watch({ fromVersion: store.version, filters: [{ kind: 'task', actions: ['update'] }] });
      const watching = (async () => {
        for await (const commit of watch) {
          for (const event of commit.events) {
            if (event.kind === 'task' && event.object.status?.state === TaskState.ASSIGNED) assignments.set(event.object.id, (assignments.get(event.object.id) ?? 0) + 1);
          }
        }
      })();
      const mirrors = await Promise.all(lagsMs.map((lagMs) => mirrorOf(store, lagMs)));
      const loops = (['a', 'b'] as const).map((loop, index) =>
        startLoop(mirrors[index]!.mirror, {
          debounceMs: 1,
          owns: (serviceId) => [loop, 'both'].includes(serviceOwners[serviceIds.indexOf(serviceId)]!),
        }),
      );
      try {
        let created = 0;
        for (const size of commits) {
          const batch: Task[] = [];
          for (; batch.length < size; created++) {
            batch.push(task(`t${created}`, serviceIds[created % serviceIds.length], { slot: BigInt(created + 1), spec: { resources: { reservations: { nanoCpus: HALF_CPU } } } }));
          }
          createTasks(store, batch);
          await new Promise((resolve) => setImmediate(resolve));
        }
        const room = capacities.reduce((sum, each) => sum + each, 0);
        // Done once every task that fits is placed and the rest are explained (a node over-committed
        // would let more than that be placed, which the checks below report).
        await eventually(() => {
          const all = storedTasks(store);
          expect(all.filter((each) => stateOf(each) === TaskState.ASSIGNED).length).toBeGreaterThanOrEqual(Math.min(created, room));
          for (const left of all.filter((each) => stateOf(each) === TaskState.PENDING)) expect(left.status?.err).toMatch(/^no suitable node \(insufficient resources/);
        });

        const perNode = new Map<string, number>();
        for (const { nodeId } of storedTasks(store)) if (nodeId !== '') perNode.set(nodeId, (perNode.get(nodeId) ?? 0) + 1);
        capacities.forEach((nodeRoom, index) => expect(perNode.get(`n${index}`) ?? 0, `n${index} over-committed`).toBeLessThanOrEqual(nodeRoom));
        expect([...assignments.entries()].filter(([, times]) => times > 1)).toEqual([]);
      } finally {
        await Promise.all(loops.map((loop) => loop.stop()));
        await Promise.all(mirrors.map(({ stop }) => stop()));
        watch.close();
        await watching;
      }
    }),
    { numRuns: 25 },
  );
});
