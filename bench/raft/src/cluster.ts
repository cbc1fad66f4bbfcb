import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { RaftMemberStatus_Reachability, RaftMembershipService, type ListMembersResponse, type RaftMember } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall, type ClientTls } from '@shoal/rpc';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, type TestCertificateAuthority } from '@shoal/testkit';
import { MANAGER_ROLE, MANAGER_SERVER_NAME } from '@shoal/pki';
import { ReplicaProcess, type RaftTimings } from './replica-process.js';

/** How often a wait re-checks: the resolution of every time measured by polling. */
const POLL_INTERVAL_MS = 50;

/** Deadline of one ListMembers call; a poll that misses it just polls again. */
const LIST_MEMBERS_DEADLINE_MS = 2_000;

/** Lines of each replica's output a timeout reports, to show what the cluster was doing. */
const OUTPUT_LINES_ON_TIMEOUT = 12;

/** How long a fresh cluster may take until every replica votes. */
const FORMATION_TIMEOUT_MS = 90_000;

/** Clusters not yet closed, for {@link closeAllClusters}. */
const openClusters = new Set<Cluster>();

/** Closes every cluster still open: what an interrupted bench does before it exits. */
export async function closeAllClusters(): Promise<void> {
  await Promise.all([...openClusters].map((cluster) => cluster.close()));
}

/**
 * A cluster of raft replicas as real processes on loopback, in a temporary directory of its own, with a
 * throw-away CA and a `swarm-manager` client certificate. `close()` kills every process and removes
 * the directory; a cluster that failed to start has already done so.
 */
export class Cluster {
  readonly replicas: ReplicaProcess[] = [];
  readonly #root: string;
  readonly #ca: TestCertificateAuthority;
  readonly #clientTls: ClientTls;
  readonly #clients = new Map<ReplicaProcess, StoreApiClient>();

  private constructor(
    readonly name: string,
    readonly timings: RaftTimings,
  ) {
    this.#root = mkdtempSync(join(tmpdir(), `shoal-bench-raft-${name}-`));
    this.#ca = createTestPki().ca;
    const client = this.#ca.issue({ cn: 'bench-client', ou: MANAGER_ROLE, o: 'bench-raft' });
    this.#clientTls = { ca: client.caCertPem, cert: client.certPem, key: client.keyPem };
    openClusters.add(this);
  }

  /** Starts `size` replicas, the first bootstrapping and the others joining through it, and waits until all vote. */
  static async start(name: string, size: number, timings: RaftTimings): Promise<Cluster> {
    const cluster = new Cluster(name, timings);
    try {
      for (let i = 0; i < size; i++) await (await cluster.addReplica()).start();
      await cluster.waitFor(`all ${size} replicas of ${name} to vote`, FORMATION_TIMEOUT_MS, async () => {
        const { members } = await cluster.listMembers();
        return members.length === size && members.every(isReachableVoter) ? true : undefined;
      });
      return cluster;
    } catch (err) {
      await cluster.close();
      throw err;
    }
  }

  /** A new, not yet started replica on a free loopback port that joins through the first replica. */
  async addReplica(): Promise<ReplicaProcess> {
    const nodeId = `manager-${this.replicas.length + 1}`;
    const joinVia = this.replicas[0]?.address;
    const port = await freeLoopbackPort();
    const replica = new ReplicaProcess(nodeId, `127.0.0.1:${port}`, join(this.#root, nodeId), this.#ca, this.timings, joinVia);
    this.replicas.push(replica);
    return replica;
  }

  /** The Store API client of `replica` (one gRPC channel each, kept for the cluster's life). */
  client(replica: ReplicaProcess): StoreApiClient {
    let client = this.#clients.get(replica);
    if (client === undefined) {
      client = createStoreClient({ address: replica.address, tls: this.#clientTls, serverName: MANAGER_SERVER_NAME });
      this.#clients.set(replica, client);
    }
    return client;
  }

  /** Drops the client of a replica that was killed, so the next call dials it afresh. */
  forgetClient(replica: ReplicaProcess): void {
    this.#clients.get(replica)?.close();
    this.#clients.delete(replica);
  }

  /** ListMembers through `via` (the first replica by default), which forwards it to the leader. */
  async listMembers(via: ReplicaProcess = this.replicas[0]!): Promise<ListMembersResponse> {
    const client = createClient({ address: via.address, credentials: createChannelCredentials(this.#clientTls), serverName: MANAGER_SERVER_NAME });
    try {
      return await unaryCall(client, RaftMembershipService.listMembers, {}, { deadlineMs: LIST_MEMBERS_DEADLINE_MS });
    } finally {
      client.close();
    }
  }

  /** The replica that leads now, as the leader itself reports it through `via`. */
  async leader(via?: ReplicaProcess): Promise<{ replica: ReplicaProcess; raftId: bigint }> {
    const { members, leader } = await this.listMembers(via);
    const nodeId = members.find((member) => member.raftId === leader)?.nodeId;
    const replica = this.replicas.find((candidate) => candidate.nodeId === nodeId);
    if (replica === undefined) throw errors.unavailable(`no leader known to ${via?.nodeId ?? 'the first replica'}`);
    return { replica, raftId: leader };
  }

  /**
   * Polls `probe` every {@link POLL_INTERVAL_MS} until it returns a value, treating a thrown error as
   * "not yet". Fails at once if a replica died on its own (a crash is what the bench most needs to
   * report), and with DEADLINE_EXCEEDED after `timeoutMs`, naming what it waited for, the last error
   * and each replica's last lines of output.
   */
  async waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      this.assertNoCrash();
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() >= deadline) {
        const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
        const outputs = this.replicas.map((replica) => replica.lastOutput(OUTPUT_LINES_ON_TIMEOUT)).join('\n');
        throw new ShoalError(ErrorCode.DeadlineExceeded, `gave up after ${timeoutMs} ms waiting for ${what}${reason}\nlast output of each replica:\n${outputs}`);
      }
      await sleep(POLL_INTERVAL_MS);
    }
  }

  /** Throws, with its last output, if a replica exited without the bench killing it. */
  assertNoCrash(): void {
    const crash = this.replicas.find((replica) => replica.unexpectedExit !== undefined);
    if (crash !== undefined) throw errors.internal(`replica crashed: ${crash.unexpectedExit}`);
  }

  /** Kills every replica (SIGKILL), closes the clients and removes the cluster's directory. */
  async close(): Promise<void> {
    openClusters.delete(this);
    await Promise.all(this.replicas.map((replica) => replica.kill()));
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
    rmSync(this.#root, { recursive: true, force: true });
  }
}

/** A {@link Cluster.waitFor} probe that answers `promise`'s value once it has resolved. */
export function valueOnceResolved<T>(promise: Promise<T>): () => Promise<T | undefined> {
  let value: T | undefined;
  void promise.then((resolved) => (value = resolved));
  return async () => value;
}

/** A voter (not a learner still catching up) that the leader hears from. */
export function isReachableVoter(member: RaftMember): boolean {
  return member.status?.message === '' && member.status.reachability === RaftMemberStatus_Reachability.REACHABLE;
}
