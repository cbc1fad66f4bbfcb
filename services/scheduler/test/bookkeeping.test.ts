import { ErrorCode } from '@shoal/errors';
import { NodeSpec_Availability, TaskState } from '@shoal/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../src/core/index.js';
import { failure } from '@shoal/testkit';
import { decisions, GIB, HALF_CPU, namedUnit, node, placed, task, tasks, wantsGeneric } from './fixtures.js';

const reserving = (nanoCpus: bigint, memoryBytes = 0n) => ({ spec: { resources: { reservations: { nanoCpus, memoryBytes } } } });
const sized = (id: string, halfCpus: bigint) => node(id, { description: { resources: { nanoCpus: halfCpus * HALF_CPU, memoryBytes: 8n * GIB } } });

describe('resource accounting', () => {
  it('never reserves more CPU or memory on a node than it has, and leaves a task pending only when no node has room', () => {
    const nodeArbitrary = fc.record({ cpu: fc.bigInt({ min: 0n, max: 8n }), memory: fc.bigInt({ min: 0n, max: 8n }) });
    const serviceArbitrary = fc.record({ cpu: fc.bigInt({ min: 0n, max: 4n }), memory: fc.bigInt({ min: 0n, max: 4n }), count: fc.integer({ min: 1, max: 10 }) });
    fc.assert(
      fc.property(fc.array(nodeArbitrary, { maxLength: 6 }), fc.array(serviceArbitrary, { minLength: 1, maxLength: 5 }), (nodes, services) => {
        const scheduler = new Scheduler();
        const free = new Map<string, { cpu: bigint; memory: bigint }>();
        nodes.forEach(({ cpu, memory }, index) => {
          scheduler.addNode(node(`n${index}`, { description: { resources: { nanoCpus: cpu * HALF_CPU, memoryBytes: memory * GIB } } }));
          free.set(`n${index}`, { cpu: cpu * HALF_CPU, memory: memory * GIB });
        });
        const pending = services.flatMap(({ cpu, memory, count }, s) => tasks(count, `s${s}-`, `svc${s}`, reserving(cpu * HALF_CPU, memory * GIB)));
        const result = scheduler.schedule(pending);
        for (const { task, nodeId } of result.assigned) {
          const left = free.get(nodeId);
          const wanted = task.spec?.resources?.reservations;
          if (left === undefined || wanted === undefined) throw new Error(`task ${task.id} went to unknown node ${nodeId}`);
          left.cpu -= wanted.nanoCpus;
          left.memory -= wanted.memoryBytes;
          expect(left.cpu >= 0n && left.memory >= 0n, `${nodeId} over-committed`).toBe(true);
        }
        for (const { task } of result.unschedulable) {
          const wanted = task.spec?.resources?.reservations;
          const room = [...free.values()].some((left) => left.cpu >= (wanted?.nanoCpus ?? 0n) && left.memory >= (wanted?.memoryBytes ?? 0n));
          expect(room, `task ${task.id} left pending with room on a node`).toBe(false);
        }
      }),
    );
  });

  it('counts the reservations of tasks added as placed and gives them back when they are removed', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 2n));
    scheduler.addTask(placed('running', 'n1', 'svc', reserving(2n * HALF_CPU)));
    expect(decisions(scheduler.schedule([task('t1', 'other', reserving(HALF_CPU))]))).toEqual({
      t1: 'no suitable node (insufficient resources on 1 node)',
    });
    expect(scheduler.removeTask('running')).toBe(true);
    expect(decisions(scheduler.schedule([task('t2', 'other', reserving(HALF_CPU))]))).toEqual({ t2: 'n1' });
  });

  it('gives back the resources of a task it placed itself when that task is removed', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 1n));
    scheduler.schedule([task('first', 'svc', reserving(HALF_CPU))]);
    scheduler.removeTask('first');
    expect(decisions(scheduler.schedule([task('second', 'other', reserving(HALF_CPU))]))).toEqual({ second: 'n1' });
  });

  it('keeps reserving for a task whose desired state moved past COMPLETE, but stops counting it for spreading', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 2n));
    scheduler.addNode(sized('n2', 2n));
    scheduler.addTask(placed('stopping', 'n1', 'svc', reserving(HALF_CPU)));
    scheduler.addTask(placed('stopping', 'n1', 'svc', { ...reserving(HALF_CPU), desiredState: TaskState.SHUTDOWN }));
    scheduler.addTask(placed('busy', 'n2', 'other'));
    expect(decisions(scheduler.schedule([task('t1', 'svc'), task('t2', 'third', reserving(2n * HALF_CPU))]))).toEqual({
      t1: 'n1',
      t2: 'n2',
    });
  });

  it('takes a new version of a node: its resources, less what its tasks hold, and its availability', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 1n));
    scheduler.addTask(placed('running', 'n1', 'svc', reserving(HALF_CPU)));
    scheduler.updateNode(sized('n1', 3n));
    expect(decisions(scheduler.schedule(tasks(3, 't', 'other', reserving(HALF_CPU))))).toEqual({
      t1: 'n1',
      t2: 'n1',
      t3: 'no suitable node (insufficient resources on 1 node)',
    });
    scheduler.updateNode(node('n1', { spec: { availability: NodeSpec_Availability.DRAIN } }));
    expect(decisions(scheduler.schedule([task('after-drain', 'third')]))).toEqual({ 'after-drain': 'no suitable node (1 node not available for new tasks)' });
  });

  it('keeps the named generic resources a placed task holds when its node is updated, and frees them when it goes', () => {
    const [gpuA, gpuB] = [namedUnit('gpu', 'GPU-a'), namedUnit('gpu', 'GPU-b')];
    const gpuNode = node('n1', { description: { resources: { generic: [gpuA, gpuB] } } });
    const wantsOne = wantsGeneric('gpu', 1n);
    const scheduler = new Scheduler();
    scheduler.addNode(gpuNode);
    scheduler.addTask(placed('holder', 'n1', 'svc', { ...wantsOne, assignedGenericResources: [gpuA] }));
    scheduler.updateNode(gpuNode);
    const first = scheduler.schedule(tasks(2, 'a', 'other', wantsOne));
    expect(first.assigned.map(({ assignedGenericResources }) => assignedGenericResources)).toEqual([[gpuB]]);
    scheduler.removeTask('holder');
    expect(scheduler.schedule([task('b1', 'third', wantsOne)]).assigned[0]?.assignedGenericResources).toEqual([gpuA]);
  });

  it('accounts tasks added before their node once the node is added', () => {
    const scheduler = new Scheduler();
    scheduler.addTask(placed('early', 'n1', 'svc', reserving(HALF_CPU)));
    scheduler.addNode(sized('n1', 1n));
    expect(decisions(scheduler.schedule([task('t1', 'other', reserving(HALF_CPU))]))).toEqual({
      t1: 'no suitable node (insufficient resources on 1 node)',
    });
    expect(scheduler.removeTask('early')).toBe(true);
  });

  it('forgets a removed node with its tasks, and places nothing on it', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 1n));
    scheduler.addNode(sized('n2', 1n));
    scheduler.addTask(placed('on-n1', 'n1'));
    scheduler.removeNode('n1');
    expect(scheduler.removeTask('on-n1')).toBe(false);
    expect(decisions(scheduler.schedule(tasks(2, 't', 'svc', reserving(HALF_CPU))))).toEqual({
      t1: 'n2',
      t2: 'no suitable node (insufficient resources on 1 node)',
    });
  });

  it('moves a task re-added on another node', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 1n));
    scheduler.addNode(sized('n2', 1n));
    scheduler.addTask(placed('moving', 'n1', 'svc', reserving(HALF_CPU)));
    scheduler.addTask(placed('moving', 'n2', 'svc', reserving(HALF_CPU)));
    expect(decisions(scheduler.schedule([task('t1', 'other', reserving(HALF_CPU))]))).toEqual({ t1: 'n1' });
  });

  it('reports false when removing a task it does not account', () => {
    expect(new Scheduler().removeTask('never-seen')).toBe(false);
  });
});

describe('calls the scheduler refuses', () => {
  it('adding a node twice is ALREADY_EXISTS; updating or removing an unknown node is NOT_FOUND', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(node('n1'));
    expect(failure(() => scheduler.addNode(node('n1')))).toEqual({ code: ErrorCode.AlreadyExists, message: 'node n1 is already known to the scheduler' });
    expect(failure(() => scheduler.updateNode(node('n2')))).toEqual({ code: ErrorCode.NotFound, message: 'node n2 is not known to the scheduler' });
    expect(failure(() => scheduler.removeNode('n2'))).toEqual({ code: ErrorCode.NotFound, message: 'node n2 is not known to the scheduler' });
  });

  it('accounting a task, or its failure, without a node is INVALID_ARGUMENT', () => {
    const scheduler = new Scheduler();
    expect(failure(() => scheduler.addTask(task('t1')))).toEqual({ code: ErrorCode.InvalidArgument, message: 'task t1 has no node to be accounted on' });
    expect(failure(() => scheduler.recordTaskFailure(task('t1')))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'task t1 has no node to have failed on',
    });
  });

  it('scheduling a task twice, one already placed, or one not meant to run is INVALID_ARGUMENT, deciding nothing', () => {
    const scheduler = new Scheduler();
    scheduler.addNode(sized('n1', 1n));
    scheduler.addTask(placed('placed', 'n1'));
    const first = task('first', 'svc', reserving(HALF_CPU));
    expect(failure(() => scheduler.schedule([first, task('dup'), task('dup')]))).toEqual({ code: ErrorCode.InvalidArgument, message: 'task dup is pending twice' });
    expect(failure(() => scheduler.schedule([first, task('placed')]))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'task placed is already placed on node n1',
    });
    expect(failure(() => scheduler.schedule([first, task('removed', 'svc', { desiredState: TaskState.REMOVE })]))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'task removed is desired remove, so it is not to be placed',
    });
    expect(decisions(scheduler.schedule([first]))).toEqual({ first: 'n1' });
  });
});
