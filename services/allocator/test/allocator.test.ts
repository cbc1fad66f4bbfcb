import { EndpointSpec_ResolutionMode, IPAMConfig_AddressFamily, PortConfig_Protocol, PortConfig_PublishMode, TaskState, type NetworkAttachment, type Task } from '@shoal/proto';
import { VXLAN_ID_LIST_OPTION } from '@shoal/ipam';
import { describe, expect, it } from 'vitest';
import { PENDING_MESSAGE } from '../src/allocator.js';
import { allocatedNetwork, bareNetwork, clusterWith, ingressNetwork, lease, node, NOW, service, task, TestCluster } from './support.js';

/** Each attachment as `network name → addresses`. */
function addressesOf(attachments: readonly NetworkAttachment[]): Record<string, string[]> {
  return Object.fromEntries(attachments.map((attachment) => [attachment.network?.spec?.annotations?.name ?? '', attachment.addresses]));
}

const ended = (state: TaskState) => (current: Task): Task => ({ ...current, status: { ...current.status!, state } });

/** Two tasks of a dnsrr service on a /30, which has one address besides its gateway: the first takes it. */
async function twoTasksOnA30(cluster: TestCluster): Promise<{ first: Task; second: Task }> {
  const tiny = allocatedNetwork('tiny', '10.9.0.0/30', 4097);
  const web = service('web', { networks: [tiny], dnsrr: true });
  const [first, second] = [task(web, 1), task(web, 2)];
  await cluster.create({ kind: 'network', object: tiny }, { kind: 'service', object: web });
  await cluster.start();
  await cluster.create({ kind: 'task', object: first }, { kind: 'task', object: second });
  return { first, second };
}

describe('networks', () => {
  it('gives a network without IPAM the lowest free subnet, its first address as gateway and the next VXLAN ID, around what networks hold', async () => {
    await using cluster = new TestCluster();
    const ingress = ingressNetwork();
    const backend = bareNetwork('backend');
    await cluster.create({ kind: 'network', object: ingress }, { kind: 'network', object: backend });
    await cluster.start();

    const allocated = cluster.get('network', backend.id);
    expect(allocated.ipam?.configs).toEqual([expect.objectContaining({ subnet: '10.0.1.0/24', gateway: '10.0.1.1' })]);
    expect(allocated.driverState?.options[VXLAN_ID_LIST_OPTION]).toBe('4097');
    // The ingress network came allocated (as services/api writes it): it is reserved, not rewritten.
    const written = cluster.allocatorState.commits.flatMap((commit) => commit.changes).map((change) => ('object' in change ? change.object.id : change.id));
    expect(written).toEqual([backend.id]);
  });

  it("honours the subnet, gateway, range and VXLAN ID a network's spec asks for", async () => {
    await using cluster = new TestCluster();
    await cluster.start();
    const custom = bareNetwork('custom', {
      driverConfig: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: '5000' } },
      ipam: { driver: { name: 'default', options: {} }, configs: [{ family: IPAMConfig_AddressFamily.IPV4, subnet: '192.168.7.0/24', gateway: '192.168.7.254', range: '192.168.7.128/25', reserved: {} }] },
    });
    const web = service('web', { networks: [custom], dnsrr: true });
    await cluster.create({ kind: 'network', object: custom }, { kind: 'service', object: web }, { kind: 'task', object: task(web, 1) });

    const allocated = cluster.get('network', custom.id);
    expect(allocated.ipam?.configs).toEqual([expect.objectContaining({ subnet: '192.168.7.0/24', gateway: '192.168.7.254', range: '192.168.7.128/25' })]);
    expect(allocated.driverState?.options[VXLAN_ID_LIST_OPTION]).toBe('5000');
    const [only] = cluster.list('task');
    expect(addressesOf(only!.networks)).toEqual({ custom: ['192.168.7.128/24'] });
  });
});

describe('services and tasks', () => {
  it('gives a service on two networks one VIP on each and its tasks an address on both, then moves them to PENDING with "pending task scheduling"', async () => {
    await using cluster = new TestCluster();
    const front = allocatedNetwork('front', '10.0.1.0/24', 4097);
    const back = allocatedNetwork('back', '10.0.2.0/24', 4098);
    const web = service('web', { networks: [front, back] });
    const tasks = [task(web, 1), task(web, 2)];
    await cluster.create({ kind: 'network', object: front }, { kind: 'network', object: back });
    await cluster.start();
    await cluster.create({ kind: 'service', object: web }, ...tasks.map((object) => ({ kind: 'task' as const, object })));

    const endpoint = cluster.get('service', web.id).endpoint;
    expect(endpoint?.spec).toEqual(web.spec?.endpoint);
    expect(endpoint?.virtualIps).toEqual([
      { networkId: front.id, addr: '10.0.1.2/24' },
      { networkId: back.id, addr: '10.0.2.2/24' },
    ]);
    const [first, second] = tasks.map((created) => cluster.get('task', created.id));
    expect(addressesOf(first!.networks)).toEqual({ front: ['10.0.1.3/24'], back: ['10.0.2.3/24'] });
    expect(addressesOf(second!.networks)).toEqual({ front: ['10.0.1.4/24'], back: ['10.0.2.4/24'] });
    // Each attachment carries the whole network, so an agent needs no other lookup.
    expect(first!.networks[0]?.network).toEqual(cluster.get('network', front.id));
    for (const allocated of [first!, second!]) {
      expect(allocated.endpoint).toEqual(endpoint);
      expect(allocated.status).toMatchObject({ state: TaskState.PENDING, message: PENDING_MESSAGE, err: '', timestamp: NOW });
    }
  });

  it('gives a dnsrr service no VIP, and frees the VIP of a service switched to dnsrr', async () => {
    await using cluster = new TestCluster();
    const tiny = allocatedNetwork('tiny', '10.9.0.0/30', 4097);
    const web = service('web', { networks: [tiny] });
    const replica = task(web, 1);
    await cluster.create({ kind: 'network', object: tiny });
    await cluster.start();
    await cluster.create({ kind: 'service', object: web }, { kind: 'task', object: replica });
    // A /30 has one address besides its gateway: the VIP took it.
    expect(cluster.get('service', web.id).endpoint?.virtualIps).toEqual([{ networkId: tiny.id, addr: '10.9.0.2/30' }]);
    expect(cluster.get('task', replica.id).status?.state).toBe(TaskState.NEW);

    await cluster.update('service', web.id, (current) => ({
      ...current,
      spec: { ...current.spec!, endpoint: { ...current.spec!.endpoint!, mode: EndpointSpec_ResolutionMode.DNSRR } },
    }));

    expect(cluster.get('service', web.id).endpoint).toMatchObject({ spec: { mode: EndpointSpec_ResolutionMode.DNSRR }, virtualIps: [] });
    expect(cluster.get('task', replica.id)).toMatchObject({ status: { state: TaskState.PENDING }, networks: [{ addresses: ['10.9.0.2/30'] }] });
  });

  it('leaves a service with no network and no port without an endpoint, and its tasks go straight to PENDING', async () => {
    await using cluster = new TestCluster();
    await cluster.start();
    const worker = service('worker');
    const replica = task(worker, 1);
    await cluster.create({ kind: 'service', object: worker }, { kind: 'task', object: replica });

    expect(cluster.get('service', worker.id).endpoint).toBeUndefined();
    expect(cluster.get('task', replica.id)).toMatchObject({ networks: [], endpoint: undefined, status: { state: TaskState.PENDING } });
  });

  it('leaves alone a NEW task the orchestrator already wants stopped', async () => {
    await using cluster = new TestCluster();
    await cluster.start();
    const worker = service('worker');
    const stopped = task(worker, 1, { desiredState: TaskState.SHUTDOWN });
    await cluster.create({ kind: 'service', object: worker }, { kind: 'task', object: stopped });

    expect(cluster.get('task', stopped.id).status?.state).toBe(TaskState.NEW);
  });
});

describe('published ports', () => {
  it('publishes ingress ports from 30000 up when none is given, reserves requested ones, and never gives two services the same', async () => {
    await using cluster = new TestCluster();
    const ingress = ingressNetwork();
    await cluster.create({ kind: 'network', object: ingress });
    await cluster.start();
    const web = service('web', { ports: [{ targetPort: 80 }, { targetPort: 443, publishedPort: 8443 }] });
    const api = service('api', { ports: [{ targetPort: 80 }, { targetPort: 53, protocol: PortConfig_Protocol.UDP }] });
    const replica = task(web, 1);
    await cluster.create({ kind: 'service', object: web }, { kind: 'service', object: api }, { kind: 'task', object: replica });

    const webEndpoint = cluster.get('service', web.id).endpoint;
    expect(webEndpoint?.ports.map((port) => port.publishedPort)).toEqual([30000, 8443]);
    expect(cluster.get('service', api.id).endpoint?.ports.map((port) => port.publishedPort)).toEqual([30001, 30000]);
    // Publishing through the routing mesh puts the service and its tasks on ingress.
    expect(webEndpoint?.virtualIps).toEqual([{ networkId: ingress.id, addr: '10.0.0.2/24' }]);
    expect(addressesOf(cluster.get('task', replica.id).networks)).toEqual({ ingress: ['10.0.0.4/24'] });
  });

  it('leaves host-mode ports to the scheduler: copied as given, and no ingress attachment for them', async () => {
    await using cluster = new TestCluster();
    await cluster.create({ kind: 'network', object: ingressNetwork() });
    await cluster.start();
    const web = service('web', { ports: [{ targetPort: 80, publishMode: PortConfig_PublishMode.HOST }] });
    const replica = task(web, 1);
    await cluster.create({ kind: 'service', object: web }, { kind: 'task', object: replica });

    expect(cluster.get('service', web.id).endpoint).toMatchObject({ ports: [{ targetPort: 80, publishedPort: 0, publishMode: PortConfig_PublishMode.HOST }], virtualIps: [] });
    expect(cluster.get('task', replica.id)).toMatchObject({ networks: [], status: { state: TaskState.PENDING } });
  });

  it("keeps a task NEW with Docker's message when its requested port is another service's, and allocates it once that service goes", async () => {
    await using cluster = new TestCluster();
    await cluster.create({ kind: 'network', object: ingressNetwork() });
    await cluster.start();
    const web = service('web', { ports: [{ targetPort: 80, publishedPort: 8080 }] });
    await cluster.create({ kind: 'service', object: web });
    // services/api refuses this at create; two writers racing past that check end here.
    const clash = service('clash', { ports: [{ targetPort: 80, publishedPort: 8080 }] });
    const replica = task(clash, 1);
    await cluster.create({ kind: 'service', object: clash }, { kind: 'task', object: replica });

    expect(cluster.get('service', clash.id).endpoint).toBeUndefined();
    expect(cluster.get('task', replica.id).status).toMatchObject({
      state: TaskState.NEW,
      err: `port '8080' is already in use by service 'web' (${web.id}) as an ingress port`,
    });

    await cluster.delete('service', web.id);
    expect(cluster.get('service', clash.id).endpoint?.ports[0]?.publishedPort).toBe(8080);
    expect(cluster.get('task', replica.id).status).toMatchObject({ state: TaskState.PENDING, err: '' });
  });

  it('keeps VIPs and published ports through a service update that leaves the ports alone', async () => {
    await using cluster = new TestCluster();
    const front = allocatedNetwork('front', '10.0.1.0/24', 4097);
    await cluster.create({ kind: 'network', object: ingressNetwork() }, { kind: 'network', object: front });
    await cluster.start();
    const web = service('web', { networks: [front], ports: [{ targetPort: 80 }] });
    await cluster.create({ kind: 'service', object: web });
    const before = cluster.get('service', web.id).endpoint;

    await cluster.update('service', web.id, (current) => ({
      ...current,
      spec: { ...current.spec!, task: { ...current.spec!.task!, container: { ...current.spec!.task!.container!, image: 'nginx:1.27' } } },
    }));

    expect(cluster.get('service', web.id).endpoint).toEqual(before);
    expect(before?.ports[0]?.publishedPort).toBe(30000);
    expect(before?.virtualIps.map((vip) => vip.addr)).toEqual(['10.0.0.2/24', '10.0.1.2/24']);
  });

  it('frees the old published port when an update changes it, for another service to take', async () => {
    await using cluster = new TestCluster();
    await cluster.create({ kind: 'network', object: ingressNetwork() });
    await cluster.start();
    const web = service('web', { ports: [{ targetPort: 80, publishedPort: 8080 }, { targetPort: 81 }] });
    await cluster.create({ kind: 'service', object: web });
    expect(cluster.get('service', web.id).endpoint?.ports.map((port) => port.publishedPort)).toEqual([8080, 30000]);

    // 8080 → 9090, and the dynamic entry now targets 82: a different entry, so a different port.
    await cluster.update('service', web.id, (current) => ({
      ...current,
      spec: { ...current.spec!, endpoint: { ...current.spec!.endpoint!, ports: [{ ...current.spec!.endpoint!.ports[0]!, publishedPort: 9090 }, { ...current.spec!.endpoint!.ports[1]!, targetPort: 82 }] } },
    }));
    expect(cluster.get('service', web.id).endpoint?.ports.map((port) => port.publishedPort)).toEqual([9090, 30001]);

    const next = service('next', { ports: [{ targetPort: 80, publishedPort: 8080 }, { targetPort: 81, publishedPort: 30000 }] });
    await cluster.create({ kind: 'service', object: next });
    expect(cluster.get('service', next.id).endpoint?.ports.map((port) => port.publishedPort)).toEqual([8080, 30000]);
  });

  it("frees a deleted service's VIPs and ports", async () => {
    await using cluster = new TestCluster();
    const tiny = allocatedNetwork('tiny', '10.9.0.0/30', 4097);
    await cluster.create({ kind: 'network', object: ingressNetwork() }, { kind: 'network', object: tiny });
    await cluster.start();
    const web = service('web', { networks: [tiny], ports: [{ targetPort: 80, publishedPort: 8080 }] });
    await cluster.create({ kind: 'service', object: web });
    expect(cluster.get('service', web.id).endpoint?.virtualIps.map((vip) => vip.addr)).toEqual(['10.0.0.2/24', '10.9.0.2/30']);

    await cluster.delete('service', web.id);
    // A /30 has one address besides its gateway, so the new VIP can only be the one web gave back.
    const successor = service('successor', { networks: [tiny], ports: [{ targetPort: 80, publishedPort: 8080 }] });
    await cluster.create({ kind: 'service', object: successor });
    expect(cluster.get('service', successor.id).endpoint).toMatchObject({
      ports: [{ publishedPort: 8080 }],
      virtualIps: [{ addr: '10.0.0.3/24' }, { addr: '10.9.0.2/30' }],
    });
  });
});

describe('exhaustion and freeing', () => {
  it('leaves a task NEW with a clear error when its /30 subnet is exhausted, and allocates it once an address frees', async () => {
    await using cluster = new TestCluster();
    const { first, second } = await twoTasksOnA30(cluster);

    expect(addressesOf(cluster.get('task', first.id).networks)).toEqual({ tiny: ['10.9.0.2/30'] });
    expect(cluster.get('task', second.id)).toMatchObject({
      networks: [],
      status: { state: TaskState.NEW, err: 'no available IP addresses in subnet 10.9.0.0/30' },
    });

    await cluster.update('task', first.id, ended(TaskState.FAILED));
    expect(addressesOf(cluster.get('task', second.id).networks)).toEqual({ tiny: ['10.9.0.2/30'] });
    expect(cluster.get('task', second.id).status).toMatchObject({ state: TaskState.PENDING, message: PENDING_MESSAGE, err: '' });
  });

  it("frees a task's address when the task is deleted", async () => {
    await using cluster = new TestCluster();
    const { first, second } = await twoTasksOnA30(cluster);
    expect(cluster.get('task', second.id).status?.state).toBe(TaskState.NEW);

    await cluster.delete('task', first.id);
    expect(cluster.get('task', second.id)).toMatchObject({ status: { state: TaskState.PENDING }, networks: [{ addresses: ['10.9.0.2/30'] }] });
  });

  it('gives back what a failed allocation took, so a service whose second VIP does not fit waits quietly with the reason', async () => {
    await using cluster = new TestCluster();
    // Two /30s: each has a single address besides its gateway.
    const front = allocatedNetwork('front', '10.0.1.0/30', 4097);
    const tiny = allocatedNetwork('tiny', '10.9.0.0/30', 4098);
    await cluster.create({ kind: 'network', object: front }, { kind: 'network', object: tiny });
    await cluster.start();
    await cluster.create({ kind: 'service', object: service('first', { networks: [tiny] }) });
    // front's VIP is taken first, then tiny has no address left: front's must go back, for third to have.
    const second = service('second', { networks: [front, tiny] });
    const replica = task(second, 1);
    await cluster.create({ kind: 'service', object: second }, { kind: 'task', object: replica });

    expect(cluster.get('service', second.id).endpoint).toBeUndefined();
    expect(cluster.get('task', replica.id).status?.err).toBe('no available IP addresses in subnet 10.9.0.0/30');
    const third = service('third', { networks: [front] });
    await cluster.create({ kind: 'service', object: third });
    expect(cluster.get('service', third.id).endpoint?.virtualIps).toEqual([{ networkId: front.id, addr: '10.0.1.2/30' }]);
  });

  it("frees a deleted network's subnet and VXLAN ID", async () => {
    await using cluster = new TestCluster();
    await cluster.start();
    const first = bareNetwork('first');
    await cluster.create({ kind: 'network', object: first });
    const allocated = cluster.get('network', first.id);
    await cluster.delete('network', first.id);

    const second = bareNetwork('second', { driverConfig: { name: 'overlay', options: { [VXLAN_ID_LIST_OPTION]: '4096' } } });
    await cluster.create({ kind: 'network', object: second });
    expect(cluster.get('network', second.id).ipam?.configs[0]?.subnet).toBe(allocated.ipam?.configs[0]?.subnet);
    expect(cluster.get('network', second.id).driverState?.options[VXLAN_ID_LIST_OPTION]).toBe(allocated.driverState?.options[VXLAN_ID_LIST_OPTION]);
  });

  it('reports a network whose subnet cannot be allocated on the tasks that need it', async () => {
    await using cluster = new TestCluster();
    // A cluster whose only pool holds exactly one subnet, which ingress already has.
    await cluster.create({ kind: 'cluster', object: clusterWith({ defaultAddressPool: ['10.0.0.0/24'], subnetSize: 24 }) }, { kind: 'network', object: ingressNetwork() });
    await cluster.start();
    const backend = bareNetwork('backend');
    const web = service('web', { networks: [backend] });
    const replica = task(web, 1);
    await cluster.create({ kind: 'network', object: backend }, { kind: 'service', object: web }, { kind: 'task', object: replica });

    expect(cluster.get('network', backend.id).ipam).toBeUndefined();
    expect(cluster.get('task', replica.id).status).toMatchObject({
      state: TaskState.NEW,
      err: `network ${backend.id} has no subnet allocated: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network`,
    });
  });
});

describe('nodes', () => {
  it('gives every node a load-balancer address on ingress and on each network its live tasks use, and takes it back when none does', async () => {
    await using cluster = new TestCluster();
    const front = allocatedNetwork('front', '10.0.1.0/24', 4097);
    const worker = node('worker-1');
    await cluster.create({ kind: 'network', object: ingressNetwork() }, { kind: 'network', object: front }, { kind: 'node', object: worker });
    await cluster.start();
    expect(addressesOf(cluster.get('node', worker.id).attachments)).toEqual({ ingress: ['10.0.0.2/24'] });

    const web = service('web', { networks: [front], dnsrr: true });
    const replica = task(web, 1);
    await cluster.create({ kind: 'service', object: web }, { kind: 'task', object: replica });
    await cluster.update('task', replica.id, (current) => ({ ...current, nodeId: worker.id, status: { ...current.status!, state: TaskState.ASSIGNED } }));
    expect(addressesOf(cluster.get('node', worker.id).attachments)).toEqual({ ingress: ['10.0.0.2/24'], front: ['10.0.1.3/24'] });

    await cluster.update('task', replica.id, ended(TaskState.COMPLETE));
    expect(addressesOf(cluster.get('node', worker.id).attachments)).toEqual({ ingress: ['10.0.0.2/24'] });
  });

  it('allocates a global task that comes with its node, and that node its attachment, in one go', async () => {
    await using cluster = new TestCluster();
    const front = allocatedNetwork('front', '10.0.1.0/24', 4097);
    const worker = node('worker-1');
    await cluster.create({ kind: 'network', object: front }, { kind: 'node', object: worker });
    await cluster.start();
    const agent = service('agent', { networks: [front], dnsrr: true });
    const replica = task(agent, 0, { nodeId: worker.id });
    await cluster.create({ kind: 'service', object: agent }, { kind: 'task', object: replica });

    expect(cluster.get('task', replica.id).status?.state).toBe(TaskState.PENDING);
    expect(addressesOf(cluster.get('node', worker.id).attachments)).toEqual({ front: ['10.0.1.3/24'] });
  });
});

describe('writes', () => {
  it('fences every write with the lease and keeps each transaction to at most 200 changes', async () => {
    await using cluster = new TestCluster();
    const held = lease(3n);
    const front = allocatedNetwork('front', '10.0.0.0/16', 4097);
    const web = service('web', { networks: [front] });
    await cluster.create({ kind: 'lease', object: held }, { kind: 'network', object: front }, { kind: 'service', object: web });
    // 450 NEW tasks for the allocator to find when it starts: more than one transaction may hold.
    const tasks = Array.from({ length: 450 }, (_, index) => task(web, index + 1));
    for (let start = 0; start < tasks.length; start += 150) {
      await cluster.create(...tasks.slice(start, start + 150).map((object) => ({ kind: 'task' as const, object })));
    }
    await cluster.start({ fence: { kind: 'lease', id: held.id, leaseEpoch: 3n } });

    expect(cluster.list('task').every((allocated) => allocated.status?.state === TaskState.PENDING)).toBe(true);
    const commits = cluster.allocatorState.commits;
    expect(commits.every((commit) => commit.preconditions?.some((precondition) => 'leaseEpoch' in precondition && precondition.leaseEpoch === 3n))).toBe(true);
    expect(commits.map((commit) => commit.changes.length)).toEqual([1, 200, 200, 50]);
  });

  it('writes nothing once its fence is stale, and stops', async () => {
    await using cluster = new TestCluster();
    const taken = lease(2n);
    const web = service('web');
    const replica = task(web, 1);
    await cluster.create({ kind: 'lease', object: taken }, { kind: 'service', object: web }, { kind: 'task', object: replica });
    const versionBefore = cluster.store.version;

    await cluster.start({ fence: { kind: 'lease', id: taken.id, leaseEpoch: 1n } });
    await cluster.done;

    expect(cluster.allocatorState.commits).not.toHaveLength(0);
    expect(cluster.store.version).toBe(versionBefore);
    expect(cluster.get('task', replica.id).status?.state).toBe(TaskState.NEW);
  });

  it('rebuilds from the store when its commit stream resyncs, catching up on what it missed', async () => {
    await using cluster = new TestCluster();
    const { first, second } = await twoTasksOnA30(cluster);
    cluster.allocatorState.deaf = true;
    await cluster.store.commit({ changes: [{ action: 'update', kind: 'task', object: ended(TaskState.SHUTDOWN)(cluster.get('task', first.id)) }] });

    cluster.allocatorState.resync();
    await cluster.settle();
    expect(cluster.get('task', second.id)).toMatchObject({ status: { state: TaskState.PENDING }, networks: [{ addresses: ['10.9.0.2/30'] }] });
  });

  it("plans again on top of another writer's change when it loses a race, without leaking what it had taken", async () => {
    await using cluster = new TestCluster();
    const tiny = allocatedNetwork('tiny', '10.9.0.0/30', 4097);
    const web = service('web', { networks: [tiny], dnsrr: true });
    await cluster.create({ kind: 'network', object: tiny }, { kind: 'service', object: web });
    await cluster.start();
    const replica = task(web, 1);
    // Just before the allocator's write lands, the orchestrator relabels the task.
    cluster.allocatorState.beforeCommit = async () => {
      cluster.allocatorState.beforeCommit = undefined;
      await cluster.store.commit({ changes: [{ action: 'update', kind: 'task', object: { ...cluster.get('task', replica.id), annotations: { name: '', labels: { raced: 'yes' }, indices: [] } } }] });
    };
    await cluster.create({ kind: 'task', object: replica });

    const allocated = cluster.get('task', replica.id);
    expect(allocated.annotations?.labels).toEqual({ raced: 'yes' });
    // The /30's only address, so the lost attempt must have given it back.
    expect(allocated).toMatchObject({ status: { state: TaskState.PENDING }, networks: [{ addresses: ['10.9.0.2/30'] }] });
  });
});
