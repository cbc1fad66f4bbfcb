import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError } from '@shoal/errors';
import {
  EndpointSpec_ResolutionMode,
  Node,
  NodeRole,
  NodeSpec_Availability,
  NodeSpec_Membership,
  NodeStatus_State,
  RestartPolicy_RestartCondition,
  Service,
  Task,
  TaskState,
  UpdateConfig_FailureAction,
  UpdateConfig_UpdateOrder,
  newId,
  type Network,
  type ObjectKindName,
  type ObjectTypes,
} from '@shoal/proto';
import type { Change } from '@shoal/store';
import type { StoreApiClient } from '@shoal/store-client';
import { filtersQuery, type DockerClient } from './docker-client.js';

/** The scale: 1,000 services of 100 replicas each, 100,000 tasks, over 100 worker nodes. */
export const SERVICE_COUNT = 1_000;
export const TASKS_PER_SERVICE = 100;
export const NODE_COUNT = 100;
/** Services belong to 10 stacks of 100 (service i to stack i mod 10): one stack's tasks are 10,000. */
export const STACK_COUNT = 10;

/** The store's limit (swarmkit's MaxChangesPerTransaction). */
const CHANGES_PER_TRANSACTION = 200;
/** Transactions in flight while seeding: enough to keep the raft replica's pipeline busy. */
const COMMITS_IN_FLIGHT = 4;
/** How long the api's copy may take to show the last write before the bench gives up. */
const CATCH_UP_TIMEOUT_MS = 120_000;
const CATCH_UP_POLL_MS = 50;

/** The label `docker stack deploy` puts on everything of a stack, and `docker stack rm` selects by. */
export const STACK_LABEL = 'com.docker.stack.namespace';

export const serviceName = (index: number): string => `svc-${index}`;
export const stackName = (stack: number): string => `stack-${stack}`;
const stackOf = (serviceIndex: number) => serviceIndex % STACK_COUNT;

/** What the bench needs to know about the cluster it seeded. */
export interface SeededCluster {
  /** Service IDs, by service index. */
  readonly serviceIds: readonly string[];
  /** From `swarm init` until the last task was committed. */
  readonly seedSeconds: number;
  /** From the last commit until the api's copy showed it. */
  readonly catchUpSeconds: number;
}

/**
 * Initialises a swarm through the api, creates one overlay network per stack through it, then writes
 * 100 nodes, 1,000 services and 100,000 tasks straight into the store through the Store API, as the
 * control plane would have written them (transactions of at most 200 changes), and waits until the
 * api's copy shows them all.
 */
export async function seedCluster(docker: DockerClient, store: StoreApiClient): Promise<SeededCluster> {
  const started = performance.now();
  await docker.json('POST', '/v1.41/swarm/init', { ListenAddr: '0.0.0.0:2377', AdvertiseAddr: '127.0.0.1', Spec: {} });
  const networks: Network[] = [];
  for (let stack = 0; stack < STACK_COUNT; stack++) networks.push(await createStackNetwork(docker, store, stack));
  const nodeIds = Array.from({ length: NODE_COUNT }, () => newId());
  await createAll(store, 'node', nodeIds.map(workerNode));

  const addresses = networks.map(() => new AddressCounter());
  const services = Array.from({ length: SERVICE_COUNT }, (_, index) => stackService(index, networks[stackOf(index)]!, addresses[stackOf(index)]!));
  await createAll(store, 'service', services);
  const tasks = services.flatMap((service, index) =>
    Array.from({ length: TASKS_PER_SERVICE }, (_, replica) =>
      runningTask(service, replica + 1, nodeIds[(index + replica) % NODE_COUNT]!, networks[stackOf(index)]!, addresses[stackOf(index)]!),
    ),
  );
  const lastWritten = await createAll(store, 'task', tasks);
  const committed = performance.now();

  await waitForApi('the api to list every service', async () => (await docker.json<unknown[]>('GET', '/v1.41/services')).length === SERVICE_COUNT);
  // The copy applies commits in order: once it shows the last one, it shows them all.
  const lastServiceId = lastWritten[0]!.serviceId;
  const lastServiceTasks = `/v1.41/tasks?${filtersQuery({ service: { [lastServiceId]: true } })}`;
  await waitForApi('the api to show the last task written', async () => (await docker.json<unknown[]>('GET', lastServiceTasks)).length === TASKS_PER_SERVICE);
  return {
    serviceIds: services.map((service) => service.id),
    seedSeconds: (committed - started) / 1000,
    catchUpSeconds: (performance.now() - committed) / 1000,
  };
}

/** `docker network create` as `docker stack deploy` does it for the stack's default network, with a /16 for its 10,100 addresses. */
async function createStackNetwork(docker: DockerClient, store: StoreApiClient, stack: number): Promise<Network> {
  const { Id } = await docker.json<{ Id: string }>('POST', '/v1.41/networks/create', {
    Name: `${stackName(stack)}_default`,
    Driver: 'overlay',
    Labels: { [STACK_LABEL]: stackName(stack) },
    IPAM: { Driver: 'default', Config: [{ Subnet: `10.${10 + stack}.0.0/16` }] },
    CheckDuplicate: true,
  });
  return store.get('network', Id);
}

/** Hands out the addresses of one stack's /16, from .0.2 on (.0.1 is the gateway). */
class AddressCounter {
  #next = 2;

  take(network: Network): string {
    const [a, b] = (network.ipam?.configs[0]?.subnet ?? '').split('.');
    const host = this.#next++;
    return `${a}.${b}.${host >> 8}.${host & 0xff}/16`;
  }
}

/** A worker node as the dispatcher keeps it: accepted, active, ready, with its description. */
function workerNode(id: string, index: number): Node {
  return Node.fromPartial({
    id,
    role: NodeRole.WORKER,
    spec: { desiredRole: NodeRole.WORKER, membership: NodeSpec_Membership.ACCEPTED, availability: NodeSpec_Availability.ACTIVE },
    description: {
      hostname: `worker-${index}`,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCpus: 8_000_000_000n, memoryBytes: 32n * 1024n ** 3n },
      engine: { engineVersion: '28.0.0' },
    },
    status: { state: NodeStatus_State.READY, addr: `10.1.${index >> 8}.${index & 0xff}` },
  });
}

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

/** A replicated service of a stack as `docker stack deploy` creates it, after the allocator gave it a VIP. */
function stackService(index: number, network: Network, addresses: AddressCounter): Service {
  const stack = stackName(stackOf(index));
  const name = serviceName(index);
  const image = `registry.example.com/${stack}/${name}:1.${index % 10}.0`;
  return Service.fromPartial({
    id: newId(),
    specVersion: { index: 1n },
    spec: {
      annotations: { name, labels: { [STACK_LABEL]: stack, 'com.docker.stack.image': image } },
      task: {
        container: {
          image,
          labels: { [STACK_LABEL]: stack },
          args: ['serve', '--port', '8080'],
          env: ['LOG_LEVEL=info', `SERVICE_NAME=${name}`, 'TZ=UTC'],
          stopGracePeriod: seconds(10),
          healthcheck: { test: ['CMD', 'wget', '-qO-', 'http://localhost:8080/health'], interval: seconds(30), timeout: seconds(5), retries: 3 },
        },
        resources: {
          limits: { nanoCpus: 500_000_000n, memoryBytes: 256n * 1024n ** 2n },
          reservations: { nanoCpus: 100_000_000n, memoryBytes: 64n * 1024n ** 2n },
        },
        restart: { condition: RestartPolicy_RestartCondition.ANY, delay: seconds(5) },
        placement: { constraints: ['node.role == worker'] },
        networks: [{ target: network.id, aliases: [name] }],
      },
      replicated: { replicas: BigInt(TASKS_PER_SERVICE) },
      update: { parallelism: 1n, failureAction: UpdateConfig_FailureAction.PAUSE, monitor: seconds(5), order: UpdateConfig_UpdateOrder.STOP_FIRST },
      rollback: { parallelism: 1n, failureAction: UpdateConfig_FailureAction.PAUSE, monitor: seconds(5), order: UpdateConfig_UpdateOrder.STOP_FIRST },
      endpoint: { mode: EndpointSpec_ResolutionMode.VIP },
    },
    endpoint: { spec: { mode: EndpointSpec_ResolutionMode.VIP }, virtualIps: [{ networkId: network.id, addr: addresses.take(network) }] },
  });
}

/** A task of `service` in `slot` as it stands once its container runs: a copy of the template, a node, an address, a container. */
function runningTask(service: Service, slot: number, nodeId: string, network: Network, addresses: AddressCounter): Task {
  return Task.fromPartial({
    id: newId(),
    serviceId: service.id,
    slot: BigInt(slot),
    nodeId,
    spec: service.spec?.task,
    specVersion: service.specVersion,
    serviceAnnotations: service.spec?.annotations,
    desiredState: TaskState.RUNNING,
    status: {
      timestamp: new Date(),
      state: TaskState.RUNNING,
      message: 'started',
      container: { containerId: randomBytes(32).toString('hex'), pid: 1_000 + slot, exitCode: 0 },
      portStatus: {},
    },
    networks: [{ network, addresses: [addresses.take(network)] }],
  });
}

/** Creates `objects` in transactions of at most 200, a few in flight; resolves with the objects of the transaction committed last. */
async function createAll<K extends ObjectKindName>(store: StoreApiClient, kind: K, objects: readonly ObjectTypes[K][]): Promise<readonly ObjectTypes[K][]> {
  const batches: ObjectTypes[K][][] = [];
  for (let start = 0; start < objects.length; start += CHANGES_PER_TRANSACTION) batches.push(objects.slice(start, start + CHANGES_PER_TRANSACTION));
  let last = { version: -1n, batch: [] as readonly ObjectTypes[K][] };
  let next = 0;
  const committer = async () => {
    for (let batch = batches[next++]; batch !== undefined; batch = batches[next++]) {
      const changes = batch.map((object) => ({ action: 'create', kind, object }) as Change);
      const version = await store.commit({ changes });
      if (version > last.version) last = { version, batch };
    }
  };
  await Promise.all(Array.from({ length: COMMITS_IN_FLIGHT }, committer));
  return last.batch;
}

/** Polls `probe` until it is true; a probe that fails counts as "not yet". */
async function waitForApi(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
  let lastError = '';
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = `; last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (performance.now() > deadline) throw new ShoalError(ErrorCode.DeadlineExceeded, `gave up after ${CATCH_UP_TIMEOUT_MS} ms waiting for ${what}${lastError}`);
    await sleep(CATCH_UP_POLL_MS);
  }
}
