import { NodeSpec_Availability, NodeStatus, NodeStatus_State, TaskState } from '@shoal/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FAILURE_WINDOW_MS, MAX_RECENT_FAILURES, Scheduler } from '../src/core/index.js';
import { decisions, GIB, HALF_CPU, node, placed, task, tasks, tasksPerNode } from './fixtures.js';

/** A scheduler with nodes `n1`…`n<count>`, all alike. */
function equalNodes(count: number, options: ConstructorParameters<typeof Scheduler>[0] = {}): Scheduler {
  const scheduler = new Scheduler(options);
  for (let index = 1; index <= count; index++) scheduler.addNode(node(`n${index}`));
  return scheduler;
}

const inZone = (id: string, zone: string | undefined, rack?: string) =>
  node(id, { spec: { annotations: { labels: { ...(zone === undefined ? {} : { zone }), ...(rack === undefined ? {} : { rack }) } } } });
const spreadOver = (...descriptors: string[]) => ({
  spec: { placement: { preferences: descriptors.map((spreadDescriptor) => ({ spread: { spreadDescriptor } })) } },
});

describe('spreading a service over nodes', () => {
  it('never leaves two equal nodes more than one task of the service apart, however the tasks arrive', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 5 }), (nodeCount, batches) => {
        const scheduler = equalNodes(nodeCount);
        const perNode = new Map<string, number>();
        batches.forEach((size, batch) => {
          const result = scheduler.schedule(tasks(size, `b${batch}-`, 'svc', { specVersion: { index: BigInt(batch % 2) } }));
          expect(result.unschedulable).toEqual([]);
          for (const { nodeId } of result.assigned) perNode.set(nodeId, (perNode.get(nodeId) ?? 0) + 1);
        });
        const counts = Array.from({ length: nodeCount }, (_, index) => perNode.get(`n${index + 1}`) ?? 0);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('places every task exactly where a naive re-sort of all nodes per task would', () => {
    const nodeArbitrary = fc.record({ halfCpus: fc.bigInt({ min: 0n, max: 6n }), otherTasks: fc.integer({ min: 0, max: 3 }) });
    const groupArbitrary = fc.record({
      service: fc.constantFrom('a', 'b', 'c'),
      count: fc.integer({ min: 1, max: 12 }),
      halfCpus: fc.bigInt({ min: 0n, max: 2n }),
      maxReplicas: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(nodeArbitrary, { minLength: 1, maxLength: 7 }), fc.array(groupArbitrary, { minLength: 1, maxLength: 4 }), (nodes, groups) => {
        const scheduler = new Scheduler();
        const model = nodes.map(({ halfCpus, otherTasks }, index) => {
          const id = `n${index}`;
          scheduler.addNode(node(id, { description: { resources: { nanoCpus: halfCpus * HALF_CPU, memoryBytes: GIB } } }));
          for (let t = 0; t < otherTasks; t++) scheduler.addTask(placed(`${id}-other${t}`, id, 'other'));
          return { id, free: halfCpus, total: otherTasks, byService: new Map<string, number>() };
        });
        const expected: Record<string, string> = {};
        const pending = groups.flatMap(({ service, count, halfCpus, maxReplicas }, g) => {
          for (let t = 1; t <= count; t++) {
            const fits = model.filter((n) => n.free >= halfCpus && (maxReplicas === 0 || (n.byService.get(service) ?? 0) < maxReplicas));
            const best = fits.sort((x, y) => (x.byService.get(service) ?? 0) - (y.byService.get(service) ?? 0) || x.total - y.total || (x.id < y.id ? -1 : 1))[0];
            expected[`g${g}-${t}`] = best?.id ?? 'none';
            if (best === undefined) continue;
            best.free -= halfCpus;
            best.total++;
            best.byService.set(service, (best.byService.get(service) ?? 0) + 1);
          }
          const spec = { resources: { reservations: { nanoCpus: halfCpus * HALF_CPU } }, placement: { maxReplicas: BigInt(maxReplicas) } };
          return tasks(count, `g${g}-`, service, { specVersion: { index: BigInt(g) }, spec });
        });
        const result = scheduler.schedule(pending);
        const actual = decisions(result);
        for (const { task } of result.unschedulable) actual[task.id] = 'none';
        expect(actual).toEqual(expected);
      }),
    );
  });

  it('gives ties to the smaller node ID, so the same inputs give the same placements', () => {
    expect(decisions(equalNodes(3).schedule(tasks(5, 't')))).toEqual({ t1: 'n1', t2: 'n2', t3: 'n3', t4: 'n1', t5: 'n2' });
  });

  it('fills the nodes with fewest tasks of the service first, counting those already placed', () => {
    const scheduler = equalNodes(3);
    for (const id of ['a', 'b', 'c']) scheduler.addTask(placed(id, 'n1'));
    scheduler.addTask(placed('d', 'n2'));
    expect(tasksPerNode(scheduler.schedule(tasks(4, 't')))).toEqual({ n2: 2, n3: 2 });
  });

  it('breaks ties between nodes with as many tasks of the service by their total of active tasks', () => {
    const scheduler = equalNodes(3);
    scheduler.addTask(placed('x1', 'n1', 'other'));
    scheduler.addTask(placed('x2', 'n1', 'other'));
    scheduler.addTask(placed('x3', 'n2', 'other'));
    expect(decisions(scheduler.schedule(tasks(2, 't')))).toEqual({ t1: 'n3', t2: 'n2' });
  });

  it('counts tasks of every version of the service, but only tasks desired to run at most to completion', () => {
    const scheduler = equalNodes(2);
    scheduler.addTask(placed('old-version', 'n1', 'svc', { specVersion: { index: 7n } }));
    scheduler.addTask(placed('stopping', 'n2', 'svc', { desiredState: TaskState.SHUTDOWN }));
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n2' });
  });

  it('places the tasks of one service version as one group, and each task without a spec version alone', () => {
    const scheduler = equalNodes(2);
    const result = scheduler.schedule([task('v1-a'), task('one-off', 'svc', { specVersion: undefined }), task('v1-b'), task('v2-a', 'svc', { specVersion: { index: 2n } })]);
    expect(result.assigned.map(({ task }) => task.id)).toEqual(['v1-a', 'v1-b', 'one-off', 'v2-a']);
    expect(decisions(result)).toEqual({ 'v1-a': 'n1', 'v1-b': 'n2', 'one-off': 'n1', 'v2-a': 'n2' });
  });
});

describe('placement preferences', () => {
  it('spreads evenly over the values of the label, however many nodes each value has', () => {
    const scheduler = new Scheduler();
    for (const [id, zone] of [['e1', 'east'], ['w1', 'west'], ['w2', 'west'], ['n1', 'north'], ['n2', 'north'], ['n3', 'north']] as const) {
      scheduler.addNode(inZone(id, zone));
    }
    const result = scheduler.schedule(tasks(6, 't', 'svc', spreadOver('node.labels.zone')));
    expect(tasksPerNode(result)).toEqual({ e1: 2, w1: 1, w2: 1, n1: 1, n2: 1 });
  });

  it('gives each level of a nested preference an even share of its parent branch', () => {
    const scheduler = new Scheduler();
    for (const [id, zone, rack] of [['e-a1', 'east', 'a'], ['e-a2', 'east', 'a'], ['e-b1', 'east', 'b'], ['w-c1', 'west', 'c']] as const) {
      scheduler.addNode(inZone(id, zone, rack));
    }
    const result = scheduler.schedule(tasks(8, 't', 'svc', spreadOver('node.labels.zone', 'node.labels.rack')));
    expect(tasksPerNode(result)).toEqual({ 'e-a1': 1, 'e-a2': 1, 'e-b1': 2, 'w-c1': 4 });
  });

  it('counts the service tasks on every node of a branch, including nodes that take no new tasks', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(node('e-drained', { spec: { availability: NodeSpec_Availability.DRAIN, annotations: { labels: { zone: 'east' } } } }));
    scheduler.addNode(inZone('e-ready', 'east'));
    scheduler.addNode(inZone('w-ready', 'west'));
    scheduler.addTask(placed('old1', 'e-drained'));
    scheduler.addTask(placed('old2', 'e-drained'));
    expect(tasksPerNode(scheduler.schedule(tasks(3, 't', 'svc', spreadOver('node.labels.zone'))))).toEqual({ 'w-ready': 2, 'e-ready': 1 });
  });

  it('puts nodes without the label in a branch of their own, and reads engine labels too', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(node('aws', { description: { engine: { labels: { provider: 'aws' } } } }));
    scheduler.addNode(node('gcp', { description: { engine: { labels: { provider: 'gcp' } } } }));
    scheduler.addNode(node('bare1'));
    scheduler.addNode(node('bare2'));
    expect(tasksPerNode(scheduler.schedule(tasks(3, 't', 'svc', spreadOver('engine.labels.provider'))))).toEqual({ aws: 1, gcp: 1, bare1: 1 });
  });

  it('ignores a descriptor that names no label, as swarmkit does', () => {
    expect(decisions(equalNodes(2).schedule(tasks(2, 't', 'svc', spreadOver('node.hostname'))))).toEqual({ t1: 'n1', t2: 'n2' });
  });

  it('sends the tasks a full branch cannot take to the other branches', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(inZone('e1', 'east'));
    scheduler.addNode(inZone('w1', 'west'));
    scheduler.addNode(inZone('w2', 'west'));
    const result = scheduler.schedule(tasks(3, 't', 'svc', { spec: { placement: { maxReplicas: 1n, preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] } } }));
    expect(tasksPerNode(result)).toEqual({ e1: 1, w1: 1, w2: 1 });
  });

  it('stops, leaving the rest pending, when no branch can take another task', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(node('e-down', { status: { state: NodeStatus_State.DOWN }, spec: { annotations: { labels: { zone: 'east' } } } }));
    scheduler.addNode(inZone('w1', 'west'));
    scheduler.addTask(placed('old', 'e-down'));
    const placement = { spec: { placement: { maxReplicas: 1n, preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] } } };
    expect(decisions(scheduler.schedule(tasks(3, 't', 'svc', placement)))).toEqual({
      t1: 'w1',
      t2: 'no suitable node (1 node not available for new tasks; max replicas per node limit exceed)',
      t3: 'no suitable node (1 node not available for new tasks; max replicas per node limit exceed)',
    });
  });

  it('terminates and leaves a task pending only when no node can take another, whatever the labels and limits', () => {
    const nodeArbitrary = fc.record({
      zone: fc.constantFrom('a', 'b', 'c', undefined),
      rack: fc.constantFrom('r1', 'r2', undefined),
      ready: fc.boolean(),
      existing: fc.integer({ min: 0, max: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(nodeArbitrary, { maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 30 }),
        fc.subarray(['node.labels.zone', 'node.labels.rack']),
        (nodes, maxReplicas, count, descriptors) => {
          const scheduler = new Scheduler();
          nodes.forEach(({ zone, rack, ready, existing }, index) => {
            const id = `n${index}`;
            scheduler.addNode(inZone(id, zone, rack));
            if (!ready) scheduler.updateNode({ ...inZone(id, zone, rack), status: NodeStatus.fromPartial({ state: NodeStatus_State.DOWN }) });
            for (let t = 0; t < existing; t++) scheduler.addTask(placed(`${id}-old${t}`, id));
          });
          const placement = { spec: { placement: { maxReplicas: BigInt(maxReplicas), ...spreadOver(...descriptors).spec.placement } } };
          const result = scheduler.schedule(tasks(count, 't', 'svc', placement));
          expect(result.assigned.length + result.unschedulable.length).toBe(count);
          if (result.unschedulable.length > 0) {
            expect(scheduler.schedule([task('probe', 'svc', placement)]).assigned).toEqual([]);
          }
        },
      ),
    );
  });
});

describe('nodes where the service recently failed', () => {
  function failTimes(scheduler: Scheduler, nodeId: string, times: number, specVersion = 1n): void {
    for (let index = 0; index < times; index++) {
      scheduler.recordTaskFailure(placed(`failed-${nodeId}-${specVersion}-${index}`, nodeId, 'svc', { specVersion: { index: specVersion } }));
    }
  }

  it(`go last once the service version failed there ${MAX_RECENT_FAILURES} times`, () => {
    const scheduler = equalNodes(2);
    scheduler.addTask(placed('busy', 'n2'));
    failTimes(scheduler, 'n1', MAX_RECENT_FAILURES);
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n2' });
  });

  it('still rank by their tasks below that many failures', () => {
    const scheduler = equalNodes(2);
    scheduler.addTask(placed('busy', 'n2'));
    failTimes(scheduler, 'n1', MAX_RECENT_FAILURES - 1);
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n1' });
  });

  it('are ranked by their failures among themselves, and still used when no other node is left', () => {
    const scheduler = equalNodes(2);
    failTimes(scheduler, 'n1', MAX_RECENT_FAILURES + 1);
    failTimes(scheduler, 'n2', MAX_RECENT_FAILURES);
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n2' });
  });

  it('count only failures of the same service version', () => {
    const scheduler = equalNodes(2);
    scheduler.addTask(placed('busy', 'n2'));
    failTimes(scheduler, 'n1', MAX_RECENT_FAILURES, 2n);
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n1' });
  });

  it(`count failures for ${FAILURE_WINDOW_MS / 60_000} minutes only`, () => {
    let now = 1_000_000;
    const scheduler = equalNodes(2, { now: () => now });
    scheduler.addTask(placed('busy', 'n2'));
    failTimes(scheduler, 'n1', MAX_RECENT_FAILURES);
    now += FAILURE_WINDOW_MS;
    expect(decisions(scheduler.schedule([task('t1')]))).toEqual({ t1: 'n2' });
    now += 1;
    expect(decisions(scheduler.schedule([task('t2')]))).toEqual({ t2: 'n1' });
  });
});
