import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RaftMembershipService, RaftUnlockService, type JoinRequest, type JoinResponse, type ListMembersResponse } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall, type ClientTls } from '@shoal/rpc';
import { Supervisor } from '@shoal/runtime';
import { captureLogs } from '@shoal/runtime/testing';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, type TestCertificate, type TestPki } from '@shoal/testkit';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { ManagerServerComponent, RaftReplica, type RaftReplicaOptions } from '../../src/replica/index.js';

/** Raft timings for tests: 50 ms ticks make an election timeout 0.5–1 s. */
export const TEST_TIMINGS = { tickMs: 50, electionTicks: 10, heartbeatTicks: 1 } as const;

/** Options a test may give every replica of a cluster. */
export type ReplicaTuning = Partial<Pick<RaftReplicaOptions, 'snapshotInterval' | 'logEntriesForSlowFollowers' | 'snapshotChunkBytes'>>;

/** A replica run in this process: the real replica and gRPC server under a supervisor, on loopback with mutual TLS. */
export class ReplicaHandle {
  replica!: RaftReplica;
  logs!: ReturnType<typeof captureLogs>;
  #supervisor: Supervisor | undefined;
  readonly #clients: { close(): void }[] = [];

  constructor(
    private readonly cluster: TestCluster,
    readonly nodeId: string,
    readonly address: string,
    readonly dataDir: string,
    readonly identity: TestCertificate,
    private readonly joinVia: string | undefined,
  ) {}

  get running(): boolean {
    return this.#supervisor !== undefined;
  }

  /** Starts (or restarts, from its data directory) the replica; resolves once it reports ready. */
  async start(): Promise<void> {
    const tls = { ca: this.identity.caCertPem, cert: this.identity.certPem, key: this.identity.keyPem };
    this.logs = captureLogs({ level: 'info' });
    this.replica = new RaftReplica({
      ...TEST_TIMINGS,
      ...this.cluster.tuning,
      dataDir: this.dataDir,
      nodeId: this.nodeId,
      advertiseAddress: this.address,
      join: this.joinVia,
      tls,
    });
    const server = new ManagerServerComponent({ replica: this.replica, tls, address: this.address, stopGraceMs: 200 });
    this.#supervisor = new Supervisor({ log: this.logs.log, components: [server, this.replica], shutdownGraceMs: 10_000 });
    await this.#supervisor.start();
  }

  /** Stops the replica gracefully (the clients made for it are closed). */
  async stop(): Promise<void> {
    const supervisor = this.#supervisor;
    this.#supervisor = undefined;
    for (const client of this.#clients.splice(0)) client.close();
    if (supervisor !== undefined) {
      const result = await supervisor.stop();
      if (!result.ok) throw new Error(`replica ${this.nodeId} did not stop cleanly: ${JSON.stringify(result)}`);
    }
  }

  /** A Store API client of this replica, as a manager that is not a raft member (an API service). */
  client(): StoreApiClient {
    const client = createStoreClient({ address: this.address, tls: this.cluster.clientTls, serverName: MANAGER_SERVER_NAME });
    this.#clients.push(client);
    return client;
  }

  listMembers(): Promise<ListMembersResponse> {
    return this.call(RaftMembershipService.listMembers, {});
  }

  leave(raftId: bigint): Promise<unknown> {
    return this.call(RaftMembershipService.leave, { raftId });
  }

  unlock(unlockKey: string): Promise<unknown> {
    return this.call(RaftUnlockService.unlock, { unlockKey });
  }

  /** RaftMembership.Join as the holder of `tls` (the joiner itself, in the cluster). */
  join(request: JoinRequest, tls: ClientTls): Promise<JoinResponse> {
    return this.call(RaftMembershipService.join, request, tls);
  }

  private async call<Req, Res>(method: Parameters<typeof unaryCall<Req, Res>>[1], request: Req, tls = this.cluster.clientTls): Promise<Res> {
    const client = createClient({ address: this.address, credentials: createChannelCredentials(tls), serverName: MANAGER_SERVER_NAME });
    try {
      return await unaryCall(client, method, request, { deadlineMs: 10_000 });
    } finally {
      client.close();
    }
  }
}

/**
 * A raft cluster of replicas in this process, each with its own data directory under one temporary
 * directory, its own certificate from one test PKI, and its own loopback port. The first replica
 * bootstraps the cluster; the others join through it. `close()` stops them all and removes the directory.
 */
export class TestCluster {
  readonly replicas: ReplicaHandle[] = [];
  readonly pki: TestPki = createTestPki();
  readonly root = mkdtempSync(join(tmpdir(), 'shoal-raft-cluster-'));
  /** A manager certificate that is not any replica's: what the API and other services call with. */
  readonly clientTls: ClientTls;

  private constructor(readonly tuning: ReplicaTuning) {
    const client = this.pki.ca.issue({ cn: 'api-client', ou: 'swarm-manager', o: 'test-cluster' });
    this.clientTls = { ca: client.caCertPem, cert: client.certPem, key: client.keyPem };
  }

  static async start(size: number, tuning: ReplicaTuning = {}): Promise<TestCluster> {
    const cluster = new TestCluster(tuning);
    try {
      for (let i = 0; i < size; i++) await cluster.add();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** Starts one more replica: the first bootstraps, later ones join through `via` (by default the first running replica). */
  async add(via?: ReplicaHandle): Promise<ReplicaHandle> {
    const nodeId = `manager-${this.replicas.length + 1}`;
    const identity = this.pki.ca.issue({ cn: nodeId, ou: 'swarm-manager', o: 'test-cluster', serverNames: [MANAGER_SERVER_NAME, 'localhost', '127.0.0.1'] });
    const address = `127.0.0.1:${await freeLoopbackPort()}`;
    const joinAddress = (via ?? this.replicas.find((handle) => handle.running))?.address;
    const handle = new ReplicaHandle(this, nodeId, address, join(this.root, nodeId), identity, joinAddress);
    this.replicas.push(handle);
    await handle.start();
    return handle;
  }

  /** The running replica that leads, once one does. */
  async leader(timeoutMs = 10_000): Promise<ReplicaHandle> {
    return eventually(() => {
      const leader = this.replicas.find((handle) => handle.running && handle.replica.status().role === 'leader');
      if (leader === undefined) throw new Error('no leader yet');
      return leader;
    }, timeoutMs);
  }

  /** The running replicas that follow. */
  async followers(): Promise<ReplicaHandle[]> {
    const leader = await this.leader();
    return this.replicas.filter((handle) => handle.running && handle !== leader);
  }

  async close(): Promise<void> {
    try {
      await Promise.all(this.replicas.map((handle) => handle.stop()));
    } finally {
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}

/** Retries `check` until it returns without throwing (or its promise resolves), or rethrows its last error after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > giveUpAt) throw err;
      await sleep(intervalMs);
    }
  }
}
