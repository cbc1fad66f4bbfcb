import { ErrorCode } from '@shoal/errors';
import { NodeRole, TaskState, type ObjectKindName } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import {
  all,
  byDesiredState,
  byId,
  byIdPrefix,
  byLabel,
  byName,
  byNamePrefix,
  byNodeId,
  byReferencedConfigId,
  byReferencedNetworkId,
  byReferencedSecretId,
  byRole,
  byServiceId,
  bySlot,
  byTaskState,
  MemoryStore,
  type Selector,
} from '../src/index.js';
import { failure, network, node, service, task, testOptions } from './fixtures.js';

const networks = [{ target: 'net1' }];
const container = {
  image: 'nginx',
  secrets: [{ secretId: 'sec1', secretName: 'db' }],
  configs: [{ configId: 'cfg1', configName: 'conf' }],
};

/** A small cluster with one object for each index to find. */
function seededStore(): MemoryStore {
  const store = new MemoryStore(testOptions());
  store.update((tx) => {
    tx.create('network', network('net1', 'front'));
    tx.create('node', node('node1', 'Worker-A', { spec: { annotations: { labels: { zone: 'a' } } } }));
    tx.create('node', node('node2', 'manager-b', { role: NodeRole.MANAGER }));
    tx.create('service', service('svc1', 'Web', { spec: { annotations: { labels: { tier: 'front' } }, task: { container, networks } } }));
    tx.create('service', service('svc2', 'api', { spec: { networks } }));
    tx.create('task', task('task1', 'svc1', { nodeId: 'node1', spec: { container, networks }, serviceAnnotations: { name: 'Web' } }));
    tx.create('task', task('task2', 'svc1', { slot: 2n, status: { state: TaskState.RUNNING }, serviceAnnotations: { name: 'Web' } }));
    const ownName = { name: 'named', labels: { tier: 'back' } };
    tx.create('task', task('task3', 'svc2', { desiredState: TaskState.SHUTDOWN, annotations: ownName }));
  });
  return store;
}

function idsFound(store: MemoryStore, kind: ObjectKindName, selector: Selector): string[] {
  return store.view((tx) => tx.find(kind, selector).map((object) => object.id).sort());
}

describe('selectors', () => {
  const store = seededStore();

  it.each<[string, ObjectKindName, Selector, string[]]>([
    ['byId', 'task', byId('task2'), ['task2']],
    ['byId of a missing id', 'task', byId('task9'), []],
    ['byIdPrefix', 'task', byIdPrefix('task'), ['task1', 'task2', 'task3']],
    ['byName, ignoring case', 'service', byName('WEB'), ['svc1']],
    ['byName on a node hostname', 'node', byName('worker-a'), ['node1']],
    ['byName on a task own name', 'task', byName('named'), ['task3']],
    ['byName on a derived task name', 'task', byName('web.2.task2'), ['task2']],
    ['byNamePrefix, ignoring case', 'node', byNamePrefix('MAN'), ['node2']],
    ['byServiceId', 'task', byServiceId('svc1'), ['task1', 'task2']],
    ['byNodeId', 'task', byNodeId('node1'), ['task1']],
    ['byNodeId of no node (unassigned)', 'task', byNodeId(''), ['task2', 'task3']],
    ['bySlot', 'task', bySlot('svc1', 2n), ['task2']],
    ['byDesiredState', 'task', byDesiredState(TaskState.SHUTDOWN), ['task3']],
    ['byTaskState', 'task', byTaskState(TaskState.RUNNING), ['task2']],
    ['byTaskState NEW matches tasks without a status', 'task', byTaskState(TaskState.NEW), ['task1', 'task3']],
    ['byRole', 'node', byRole(NodeRole.MANAGER), ['node2']],
    ['byLabel with any value', 'service', byLabel('tier'), ['svc1']],
    ['byLabel with a value', 'node', byLabel('zone', 'a'), ['node1']],
    ['byLabel with another value', 'node', byLabel('zone', 'b'), []],
    ['byLabel on a task', 'task', byLabel('tier', 'back'), ['task3']],
    ['byReferencedNetworkId on tasks', 'task', byReferencedNetworkId('net1'), ['task1']],
    ['byReferencedNetworkId on services, old-style networks too', 'service', byReferencedNetworkId('net1'), ['svc1', 'svc2']],
    ['byReferencedSecretId', 'service', byReferencedSecretId('sec1'), ['svc1']],
    ['byReferencedConfigId', 'task', byReferencedConfigId('cfg1'), ['task1']],
    ['all', 'node', all, ['node1', 'node2']],
  ])('%s finds exactly the matching objects', (_name, kind, selector, expected) => {
    expect(idsFound(store, kind, selector)).toEqual(expected);
  });

  it.each<[ObjectKindName, Selector]>([
    ['node', byServiceId('svc1')],
    ['service', bySlot('svc1', 1n)],
    ['network', byRole(NodeRole.MANAGER)],
    ['lease', byLabel('tier')],
    ['secret', byReferencedSecretId('sec1')],
  ])('rejects a selector that does not apply to %s objects as an invalid argument', (kind, selector) => {
    expect(failure(() => store.view((tx) => tx.find(kind, selector)))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: `selector ${selector.description} does not apply to ${kind} objects`,
    });
  });

  it('rejects a hand-made object in place of a selector', () => {
    const forged = { description: 'byId("task1")' } as Selector;
    expect(failure(() => store.view((tx) => tx.find('task', forged)))).toEqual({
      code: ErrorCode.InvalidArgument,
      message: 'not a store selector: build one with byId, byServiceId, … or all',
    });
  });

  it('moves an object between index keys when an indexed field changes', () => {
    const moving = seededStore();
    moving.update((tx) => {
      const task1 = tx.get('task', 'task1');
      if (task1 === undefined) throw new Error('missing task');
      tx.update('task', { ...task1, nodeId: 'node2' });
    });
    expect(idsFound(moving, 'task', byNodeId('node1'))).toEqual([]);
    expect(idsFound(moving, 'task', byNodeId('node2'))).toEqual(['task1']);
  });
});
