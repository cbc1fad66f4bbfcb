import { cidrContainsAddress, cidrEnd, parseAddress, parseCidr } from '@shoal/ipam';
import { newId, TaskState, type Network, type Service, type Task } from '@shoal/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocatedNetwork, bareNetwork, ingressNetwork, node, service, task, TestCluster } from './support.js';

type Operation =
  | { readonly type: 'create service'; readonly networks: readonly number[]; readonly dnsrr: boolean; readonly port: 'none' | 'dynamic' | number }
  | { readonly type: 'create task' | 'end task' | 'delete task' | 'delete service'; readonly pick: number }
  | { readonly type: 'assign task'; readonly pick: number; readonly node: number }
  | { readonly type: 'restart' };

// Weighted towards creating tasks and restarting, where a forgotten reservation shows.
const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('create service' as const),
      networks: fc.subarray([0, 1, 2]),
      dnsrr: fc.boolean(),
      port: fc.oneof(fc.constant('none' as const), fc.constant('dynamic' as const), fc.integer({ min: 8000, max: 8002 })),
    }),
  },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('create task' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom('end task' as const, 'delete task' as const, 'delete service' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('assign task' as const), pick: fc.nat(), node: fc.nat({ max: 1 }) }) },
  { weight: 2, arbitrary: fc.constant({ type: 'restart' as const }) },
);

const pick = <T>(items: readonly T[], index: number): T | undefined => items[index % Math.max(1, items.length)];

/** Every address anything holds, as `network address` entries: live tasks', VIPs and nodes' load-balancer addresses. */
function heldAddresses(cluster: TestCluster): { networkId: string; address: string }[] {
  const isLive = (held: Task) => (held.status?.state ?? TaskState.NEW) <= TaskState.RUNNING;
  const fromAttachments = (attachments: Task['networks']) =>
    attachments.flatMap(({ network, addresses }) => addresses.map((address) => ({ networkId: network!.id, address: address.split('/')[0]! })));
  return [
    ...cluster.list('task').filter(isLive).flatMap((held) => fromAttachments(held.networks)),
    ...cluster.list('node').flatMap((held) => fromAttachments(held.attachments)),
    ...cluster.list('service').flatMap((held) => (held.endpoint?.virtualIps ?? []).map((vip) => ({ networkId: vip.networkId, address: vip.addr.split('/')[0]! }))),
  ];
}

function expectConsistent(cluster: TestCluster): void {
  const networks = new Map(cluster.list('network').map((network) => [network.id, network]));
  const held = heldAddresses(cluster);
  const keys = held.map(({ networkId, address }) => `${networkId} ${address}`);
  expect(new Set(keys).size, `an address is held twice: ${keys.join(', ')}`).toBe(keys.length);
  for (const { networkId, address } of held) {
    const config = networks.get(networkId)!.ipam!.configs[0]!;
    const subnet = parseCidr(config.subnet);
    const value = parseAddress(address);
    expect(cidrContainsAddress(subnet, value) && value !== subnet.start && value !== cidrEnd(subnet) && address !== config.gateway, `${address} in ${config.subnet}`).toBe(true);
  }
  const ports = cluster.list('service').flatMap((held) => (held.endpoint?.ports ?? []).map((port) => `${port.protocol}/${port.publishedPort}`));
  expect(new Set(ports).size, `a published port is held twice: ${ports.join(', ')}`).toBe(ports.length);
  // Never stuck silently: a task still NEW that should run says why.
  const services = new Set(cluster.list('service').map(({ id }) => id));
  const silent = cluster
    .list('task')
    .filter((held) => held.status?.state === TaskState.NEW && held.desiredState === TaskState.RUNNING && services.has(held.serviceId) && held.status.err === '');
  expect(silent).toEqual([]);
}

async function apply(cluster: TestCluster, networks: readonly Network[], nodeIds: readonly string[], step: Operation): Promise<void> {
  const services = cluster.list('service');
  const tasks = cluster.list('task');
  switch (step.type) {
    case 'create service': {
      const ports = step.port === 'none' ? [] : [{ targetPort: 80, publishedPort: step.port === 'dynamic' ? 0 : step.port }];
      const created = service(`svc-${newId()}`, { networks: step.networks.map((index) => networks[index]!), dnsrr: step.dnsrr, ports: step.dnsrr ? [] : ports });
      return cluster.create({ kind: 'service', object: created });
    }
    case 'create task': {
      const of: Service | undefined = pick(services, step.pick);
      return of === undefined ? undefined : cluster.create({ kind: 'task', object: task(of, tasks.length + 1) });
    }
    case 'end task': {
      const live = tasks.filter((held) => (held.status?.state ?? 0) <= TaskState.RUNNING);
      const ending = pick(live, step.pick);
      return ending === undefined ? undefined : cluster.update('task', ending.id, (current) => ({ ...current, status: { ...current.status!, state: TaskState.FAILED } }));
    }
    case 'assign task': {
      const pending = pick(tasks.filter((held) => held.status?.state === TaskState.PENDING), step.pick);
      return pending === undefined
        ? undefined
        : cluster.update('task', pending.id, (current) => ({ ...current, nodeId: nodeIds[step.node]!, status: { ...current.status!, state: TaskState.ASSIGNED } }));
    }
    case 'delete task': {
      const deleted = pick(tasks, step.pick);
      return deleted === undefined ? undefined : cluster.delete('task', deleted.id);
    }
    case 'delete service': {
      const deleted = pick(services, step.pick);
      return deleted === undefined ? undefined : cluster.delete('service', deleted.id);
    }
    case 'restart': {
      const version = cluster.store.version;
      await cluster.stop();
      await cluster.start();
      // Everything the store records was reserved again, so the new allocator has nothing to change.
      expect(cluster.store.version).toBe(version);
      return;
    }
  }
}

describe('restart', () => {
  it('a new allocator over the same store reserves everything recorded and never hands out a held address', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 30 }), async (operations) => {
        await using cluster = new TestCluster();
        // A /28 runs out after 13 addresses, so some runs exhaust it; the third network is the allocator's to allocate.
        const networks = [allocatedNetwork('a', '10.0.1.0/24', 4097), allocatedNetwork('b', '10.0.2.0/28', 4098), bareNetwork('c')];
        const nodes = [node('worker-1'), node('worker-2')];
        await cluster.create(
          { kind: 'network', object: ingressNetwork() },
          ...networks.map((object) => ({ kind: 'network' as const, object })),
          ...nodes.map((object) => ({ kind: 'node' as const, object })),
        );
        await cluster.start();
        for (const step of operations) {
          await apply(cluster, networks, nodes.map(({ id }) => id), step);
          expectConsistent(cluster);
        }
        await apply(cluster, networks, [], { type: 'restart' });
        expectConsistent(cluster);
      }),
      { numRuns: 120 },
    );
  }, 60_000);
});
