import { caCertificateDigest, createCertificateAuthority, generateJoinToken, type CertificateAuthority } from '@shoal/pki';
import { Cluster, newId, Node, NodeRole, NodeSpec_Membership, NodeStatus_State, TaskState, type Secret, type Config, Task } from '@shoal/proto';
import { createLogger, type Logger } from '@shoal/runtime';
import { MemoryStore } from '@shoal/store';
import { ClusterStateLeases, durationOfMs, LocalClusterState, type LeaseApi } from '@shoal/store-client';
import type { BusConnection } from '@shoal/bus';
import { startDispatcher, type RunningDispatcher } from '../../src/index.js';
import { defer } from './cleanup.js';

/** Logs of the code under test stay out of the test output. */
export const quietLog: Logger = createLogger({ service: 'dispatcher-test', level: process.env['SHOAL_TEST_LOG_LEVEL'] ?? 'silent' });

/** A swarm as `docker swarm init` leaves it in the store: the cluster object with its root CA and join tokens. */
export interface TestSwarm {
  readonly state: LocalClusterState;
  readonly ca: CertificateAuthority;
  readonly clusterId: string;
  cluster(): Cluster;
  /** The current join tokens. */
  tokens(): { worker: string; manager: string };
  /** Rewrites the cluster object with `change` applied. */
  updateCluster(change: (cluster: Cluster) => Cluster): Promise<void>;
  node(id: string): Node | undefined;
  task(id: string): Task | undefined;
}

/** The cluster object `docker swarm init` writes, with a fresh root CA; agents heartbeat every `heartbeatPeriodMs`. */
export function newCluster(options: { heartbeatPeriodMs?: number } = {}): { cluster: Cluster; ca: CertificateAuthority } {
  const ca = createCertificateAuthority('swarm-ca');
  const cluster = Cluster.fromPartial({
    id: newId(),
    spec: {
      annotations: { name: 'default' },
      dispatcher: options.heartbeatPeriodMs === undefined ? undefined : { heartbeatPeriod: durationOfMs(options.heartbeatPeriodMs) },
    },
    rootCa: {
      caCert: Buffer.from(ca.caCertPem),
      caKey: Buffer.from(ca.caKeyPem),
      caCertHash: caCertificateDigest(ca.caCertPem),
      joinTokens: { worker: generateJoinToken(ca.caCertPem), manager: generateJoinToken(ca.caCertPem) },
    },
  });
  return { cluster, ca };
}

/** The join tokens of a cluster. */
export function joinTokens(cluster: Cluster): { worker: string; manager: string } {
  return { worker: cluster.rootCa?.joinTokens?.worker ?? '', manager: cluster.rootCa?.joinTokens?.manager ?? '' };
}

/** A fresh in-process store holding a swarm (see {@link newCluster}). */
export async function createSwarm(options: { heartbeatPeriodMs?: number } = {}): Promise<TestSwarm> {
  const state = new LocalClusterState(new MemoryStore());
  const { cluster, ca } = newCluster(options);
  const clusterId = cluster.id;
  await state.commit({ changes: [{ action: 'create', kind: 'cluster', object: cluster }] });
  const read = () => state.view((tx) => tx.get('cluster', clusterId))!;
  return {
    state,
    ca,
    clusterId,
    cluster: read,
    tokens: () => joinTokens(read()),
    updateCluster: async (change) => {
      await state.commit({ changes: [{ action: 'update', kind: 'cluster', object: change(read()) }] });
    },
    node: (id) => state.view((tx) => tx.get('node', id)),
    task: (id) => state.view((tx) => tx.get('task', id)),
  };
}

/** A dispatcher serving `swarm` on a free loopback port, stopped after the test (if the test did not stop it). */
export async function serve(swarm: TestSwarm, options: { instance?: string; bus?: BusConnection; leases?: LeaseApi; leaseTtlMs?: number } = {}): Promise<RunningDispatcher> {
  const dispatcher = await startDispatcher({
    state: swarm.state,
    leases: options.leases ?? new ClusterStateLeases(swarm.state),
    bus: options.bus,
    listen: '127.0.0.1:0',
    log: quietLog,
    instance: options.instance,
    leaseTtlMs: options.leaseTtlMs,
  });
  defer(() => dispatcher.stop());
  return dispatcher;
}

/** A node as the api writes one at `swarm init`, for tests that need a node without joining it. */
export function storedNode(role = NodeRole.WORKER): Node {
  return Node.fromPartial({
    id: newId(),
    spec: { desiredRole: role, membership: NodeSpec_Membership.ACCEPTED },
    role,
    status: { state: NodeStatus_State.UNKNOWN },
  });
}

/** A task the scheduler placed on `nodeId` (ASSIGNED), referencing the given secrets and configs. */
export function assignedTask(nodeId: string, options: { secrets?: readonly Secret[]; configs?: readonly Config[]; state?: TaskState } = {}): Task {
  return Task.fromPartial({
    id: newId(),
    serviceId: 'service-1',
    slot: 1n,
    nodeId,
    desiredState: TaskState.RUNNING,
    spec: {
      container: {
        image: 'shoal/busybox:1',
        secrets: (options.secrets ?? []).map((secret) => ({ secretId: secret.id, secretName: secret.spec?.annotations?.name ?? '', file: { name: secret.id } })),
        configs: (options.configs ?? []).map((config) => ({ configId: config.id, configName: config.spec?.annotations?.name ?? '', file: { name: config.id } })),
      },
    },
    status: { state: options.state ?? TaskState.ASSIGNED, message: 'scheduler assigned task to node' },
  });
}

/** Polls `check` until it returns something other than undefined or false, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = check();
    if (result !== undefined && result !== false) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
