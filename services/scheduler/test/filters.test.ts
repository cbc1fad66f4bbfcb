import { NodeSpec_Availability, NodeStatus_State, PortConfig_Protocol, PortConfig_PublishMode } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { ASSIGNED_MESSAGE, PREASSIGNED_MESSAGE, Scheduler } from '../src/core/index.js';
import { decisions, GIB, HALF_CPU, namedUnit, node, placed, task, tasks, wantsGeneric } from './fixtures.js';

function schedulerWith(...nodes: ReturnType<typeof node>[]): Scheduler {
  const scheduler = new Scheduler();
  for (const each of nodes) scheduler.addNode(each);
  return scheduler;
}

const hostPort = (publishedPort: number, protocol = PortConfig_Protocol.TCP) => ({
  endpoint: { ports: [{ protocol, targetPort: 80, publishedPort, publishMode: PortConfig_PublishMode.HOST }] },
});

describe('the ready filter', () => {
  it('places tasks only on nodes that are READY and ACTIVE', () => {
    const scheduler = schedulerWith(
      node('down', { status: { state: NodeStatus_State.DOWN } }),
      node('unknown', { status: { state: NodeStatus_State.UNKNOWN } }),
      node('paused', { spec: { availability: NodeSpec_Availability.PAUSE } }),
      node('drained', { spec: { availability: NodeSpec_Availability.DRAIN } }),
      node('ready'),
    );
    expect(decisions(scheduler.schedule(tasks(2, 't')))).toEqual({ t1: 'ready', t2: 'ready' });
  });

  it('explains "N nodes not available for new tasks", in the singular for one node', () => {
    const one = schedulerWith(node('down', { status: { state: NodeStatus_State.DOWN } }));
    const two = schedulerWith(node('d1', { status: { state: NodeStatus_State.DOWN } }), node('d2', { spec: { availability: NodeSpec_Availability.DRAIN } }));
    expect(decisions(one.schedule([task('t1')]))).toEqual({ t1: 'no suitable node (1 node not available for new tasks)' });
    expect(decisions(two.schedule([task('t1')]))).toEqual({ t1: 'no suitable node (2 nodes not available for new tasks)' });
  });

  it('says only "no suitable node" when there are no nodes at all', () => {
    expect(decisions(new Scheduler().schedule([task('t1')]))).toEqual({ t1: 'no suitable node' });
  });
});

describe('the resource filter', () => {
  const reserving = (nanoCpus: bigint, memoryBytes = 0n) => ({ spec: { resources: { reservations: { nanoCpus, memoryBytes } } } });

  it('places a task only where its CPU and memory reservations fit in what is left', () => {
    const scheduler = schedulerWith(node('small', { description: { resources: { nanoCpus: 2n * HALF_CPU, memoryBytes: 4n * GIB } } }), node('big'));
    expect(decisions(scheduler.schedule([task('cpu', 'svc', reserving(6n * HALF_CPU)), task('mem', 'other', reserving(0n, 6n * GIB))]))).toEqual({
      cpu: 'big',
      mem: 'big',
    });
  });

  it('explains "insufficient resources on N nodes"', () => {
    const scheduler = schedulerWith(node('n1'), node('n2'));
    expect(decisions(scheduler.schedule([task('t1', 'svc', reserving(9n * HALF_CPU))]))).toEqual({
      t1: 'no suitable node (insufficient resources on 2 nodes)',
    });
  });

  it('counts reservations of tasks it placed itself, in the same call and later ones', () => {
    const scheduler = schedulerWith(node('n1'));
    const first = scheduler.schedule(tasks(3, 'a', 'svc', reserving(3n * HALF_CPU)));
    const second = scheduler.schedule([task('b1', 'other', reserving(3n * HALF_CPU)), task('b2', 'third', reserving(2n * HALF_CPU))]);
    expect({ ...decisions(first), ...decisions(second) }).toEqual({
      a1: 'n1',
      a2: 'n1',
      a3: 'no suitable node (insufficient resources on 1 node)',
      b1: 'no suitable node (insufficient resources on 1 node)',
      b2: 'n1',
    });
  });

  it('hands out named generic resources unit by unit and records which ones each task holds', () => {
    const gpus = ['GPU-a', 'GPU-b', 'GPU-c'].map((value) => namedUnit('gpu', value));
    const scheduler = schedulerWith(node('gpu-node', { description: { resources: { nanoCpus: 8n * HALF_CPU, memoryBytes: 8n * GIB, generic: gpus } } }));
    const result = scheduler.schedule(tasks(2, 't', 'svc', wantsGeneric('gpu', 2n)));
    expect(result.assigned.map(({ task, assignedGenericResources }) => [task.id, assignedGenericResources])).toEqual([['t1', gpus.slice(0, 2)]]);
    expect(decisions(result).t2).toBe('no suitable node (insufficient resources on 1 node)');
  });

  it('counts down discrete generic resources and refuses a kind the node does not advertise', () => {
    const ssd = [{ discreteResourceSpec: { kind: 'ssd', value: 3n } }];
    const scheduler = schedulerWith(node('n1', { description: { resources: { nanoCpus: HALF_CPU, memoryBytes: GIB, generic: ssd } } }));
    const result = scheduler.schedule([
      task('two', 'a', wantsGeneric('ssd', 2n)),
      task('two-more', 'b', wantsGeneric('ssd', 2n)),
      task('tpu', 'c', wantsGeneric('tpu', 1n)),
    ]);
    expect(decisions(result)).toEqual({
      two: 'n1',
      'two-more': 'no suitable node (insufficient resources on 1 node)',
      tpu: 'no suitable node (insufficient resources on 1 node)',
    });
    expect(result.assigned[0]?.assignedGenericResources).toEqual([{ discreteResourceSpec: { kind: 'ssd', value: 2n } }]);
  });
});

describe('the constraint filter', () => {
  const zoned = (id: string, zone: string) => node(id, { spec: { annotations: { labels: { zone } } } });
  const constrained = (...constraints: string[]) => ({ spec: { placement: { constraints } } });

  it('places tasks only on nodes matching every constraint', () => {
    const scheduler = schedulerWith(zoned('e1', 'east'), zoned('w1', 'west'), zoned('e2', 'east'));
    const result = scheduler.schedule(tasks(2, 't', 'svc', constrained('node.labels.zone==east', 'node.hostname!=host-e1')));
    expect(decisions(result)).toEqual({ t1: 'e2', t2: 'e2' });
  });

  it('explains "scheduling constraints not satisfied on N nodes", most rejections first', () => {
    const scheduler = schedulerWith(
      zoned('w1', 'west'),
      zoned('w2', 'west'),
      zoned('w3', 'west'),
      node('e1', { spec: { annotations: { labels: { zone: 'east' } } }, description: { resources: { nanoCpus: HALF_CPU, memoryBytes: GIB } } }),
    );
    const big = { spec: { placement: { constraints: ['node.labels.zone==east'] }, resources: { reservations: { nanoCpus: 2n * HALF_CPU } } } };
    expect(decisions(scheduler.schedule([task('t1', 'svc', big)]))).toEqual({
      t1: 'no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 1 node)',
    });
  });

  it('leaves the tasks of a group with a malformed constraint pending, saying which', () => {
    const scheduler = schedulerWith(node('n1'));
    expect(decisions(scheduler.schedule(tasks(2, 't', 'svc', constrained('node.labels.zone=east'))))).toEqual({
      t1: 'invalid placement constraint: constraint expected one operator from ==, !=',
      t2: 'invalid placement constraint: constraint expected one operator from ==, !=',
    });
  });
});

describe('the platform filter', () => {
  const on = (id: string, os: string, architecture: string) => node(id, { description: { platform: { os, architecture } } });
  const forPlatforms = (...platforms: { os: string; architecture: string }[]) => ({ spec: { placement: { platforms } } });

  it('places a task on a node running one of its platforms, taking x86_64 for amd64 and aarch64 for arm64', () => {
    const scheduler = schedulerWith(on('pi', 'linux', 'aarch64'), on('win', 'windows', 'x86_64'));
    const result = scheduler.schedule([
      task('arm', 'a', forPlatforms({ os: 'linux', architecture: 'arm64' })),
      task('amd', 'b', forPlatforms({ os: 'linux', architecture: 's390x' }, { os: 'windows', architecture: 'amd64' })),
      task('any-arch', 'c', forPlatforms({ os: 'windows', architecture: '' })),
    ]);
    expect(decisions(result)).toEqual({ arm: 'pi', amd: 'win', 'any-arch': 'win' });
  });

  it('explains "unsupported platform on N nodes", counting nodes that report no platform', () => {
    const scheduler = schedulerWith(on('pi', 'linux', 'aarch64'), node('silent'));
    expect(decisions(scheduler.schedule([task('t1', 'svc', forPlatforms({ os: 'linux', architecture: 'amd64' }))]))).toEqual({
      t1: 'no suitable node (unsupported platform on 2 nodes)',
    });
  });
});

describe('the host-port filter', () => {
  it('puts no two tasks publishing the same host-mode port and protocol on one node', () => {
    const scheduler = schedulerWith(node('n1'), node('n2'));
    const result = scheduler.schedule([
      task('tcp1', 'svc', hostPort(8080)),
      task('tcp2', 'svc', hostPort(8080)),
      task('udp', 'other', hostPort(8080, PortConfig_Protocol.UDP)),
      task('tcp3', 'svc', hostPort(8080)),
    ]);
    expect(decisions(result)).toEqual({
      tcp1: 'n1',
      tcp2: 'n2',
      tcp3: 'no suitable node (host-mode port already in use on 2 nodes)',
      udp: 'n1',
    });
  });

  it('ignores ingress ports and host-mode ports without a published port', () => {
    const scheduler = schedulerWith(node('n1'));
    const ingress = { endpoint: { ports: [{ publishedPort: 8080, targetPort: 80, publishMode: PortConfig_PublishMode.INGRESS }] } };
    expect(decisions(scheduler.schedule([...tasks(2, 'i', 'a', ingress), ...tasks(2, 'h', 'b', hostPort(0))]))).toEqual({
      i1: 'n1',
      i2: 'n1',
      h1: 'n1',
      h2: 'n1',
    });
  });

  it('frees a port when the task publishing it is removed', () => {
    const scheduler = schedulerWith(node('n1'));
    scheduler.addTask(placed('old', 'n1', 'svc', hostPort(443)));
    expect(decisions(scheduler.schedule([task('new1', 'svc', hostPort(443))]))).toEqual({
      new1: 'no suitable node (host-mode port already in use on 1 node)',
    });
    scheduler.removeTask('old');
    expect(decisions(scheduler.schedule([task('new2', 'svc', hostPort(443))]))).toEqual({ new2: 'n1' });
  });
});

describe('the max-replicas filter', () => {
  const maxReplicas = (limit: bigint) => ({ spec: { placement: { maxReplicas: limit } } });

  it('puts at most max_replicas active tasks of the service on a node, counting those already there', () => {
    const scheduler = schedulerWith(node('n1'), node('n2'));
    scheduler.addTask(placed('running', 'n1', 'svc', maxReplicas(2n)));
    const result = scheduler.schedule(tasks(4, 't', 'svc', maxReplicas(2n)));
    expect(decisions(result)).toEqual({ t1: 'n2', t2: 'n1', t3: 'n2', t4: 'no suitable node (max replicas per node limit exceed)' });
  });

  it('does not count tasks of other services', () => {
    const scheduler = schedulerWith(node('n1'));
    scheduler.addTask(placed('other', 'n1', 'other-svc'));
    expect(decisions(scheduler.schedule([task('t1', 'svc', maxReplicas(1n))]))).toEqual({ t1: 'n1' });
  });
});

describe('an unschedulable task', () => {
  it('lists every filter that rejected nodes, most rejections first and ties in pipeline order', () => {
    const scheduler = schedulerWith(
      node('down', { status: { state: NodeStatus_State.DOWN } }),
      node('west', { spec: { annotations: { labels: { zone: 'west' } } } }),
      node('east-full', { spec: { annotations: { labels: { zone: 'east' } } } }),
    );
    scheduler.addTask(placed('p1', 'east-full', 'svc', hostPort(80)));
    const result = scheduler.schedule([task('t1', 'svc', { spec: { placement: { constraints: ['node.labels.zone!=west'] } }, ...hostPort(80) })]);
    expect(decisions(result)).toEqual({
      t1: 'no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node; host-mode port already in use on 1 node)',
    });
  });

  it('counts each node once, under the first filter in pipeline order that rejects it', () => {
    const scheduler = schedulerWith(
      node('down-and-west', { status: { state: NodeStatus_State.DOWN }, spec: { annotations: { labels: { zone: 'west' } } } }),
      node('west', { spec: { annotations: { labels: { zone: 'west' } } } }),
    );
    expect(decisions(scheduler.schedule([task('t1', 'svc', { spec: { placement: { constraints: ['node.labels.zone==east'] } } })]))).toEqual({
      t1: 'no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)',
    });
  });
});

describe('a task that came with its node', () => {
  it('is assigned to that node, and no other, when the node passes the pipeline', () => {
    const scheduler = schedulerWith(node('n1'), node('n2'));
    const result = scheduler.schedule([task('global', 'svc', { nodeId: 'n2' }), task('replica', 'svc')]);
    expect(result.assigned.map(({ task, nodeId, message }) => [task.id, nodeId, message])).toEqual([
      ['global', 'n2', PREASSIGNED_MESSAGE],
      ['replica', 'n1', ASSIGNED_MESSAGE],
    ]);
  });

  it("stays pending with what its node lacks, in swarmkit's words without the no-suitable-node prefix", () => {
    const scheduler = schedulerWith(node('n1'), node('down', { status: { state: NodeStatus_State.DOWN } }));
    const result = scheduler.schedule([
      task('too-big', 'svc', { nodeId: 'n1', spec: { resources: { reservations: { memoryBytes: 9n * GIB } } } }),
      task('on-down', 'svc', { nodeId: 'down' }),
      task('on-gone', 'svc', { nodeId: 'gone' }),
    ]);
    expect(decisions(result)).toEqual({
      'too-big': 'insufficient resources on 1 node',
      'on-down': '1 node not available for new tasks',
      'on-gone': 'node gone is not known to the scheduler',
    });
  });
});
