import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, hasCode } from '@shoal/errors';
import { RaftMembershipService, type ListMembersResponse } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall, type ClientTls } from '@shoal/rpc';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort } from '@shoal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGER_SERVER_NAME } from '../src/replica/index.js';
import { eventually } from './support/cluster.js';
import { network } from './support/objects.js';
import { ReplicaProcess } from './support/processes.js';

const RETRYABLE = [ErrorCode.Unavailable, ErrorCode.DeadlineExceeded];

describe('three replicas as real processes', () => {
  const root = mkdtempSync(join(tmpdir(), 'shoal-raft-processes-'));
  const pki = createTestPki();
  const clientIdentity = pki.ca.issue({ cn: 'api-client', ou: 'swarm-manager', o: 'process-cluster' });
  const clientTls: ClientTls = { ca: clientIdentity.caCertPem, cert: clientIdentity.certPem, key: clientIdentity.keyPem };
  const replicas: ReplicaProcess[] = [];
  const clients = new Map<ReplicaProcess, StoreApiClient>();

  const storeClient = (replica: ReplicaProcess): StoreApiClient => {
    let client = clients.get(replica);
    if (client === undefined) {
      client = createStoreClient({ address: replica.address, tls: clientTls, serverName: MANAGER_SERVER_NAME });
      clients.set(replica, client);
    }
    return client;
  };

  const listMembers = async (replica: ReplicaProcess): Promise<ListMembersResponse> => {
    const client = createClient({ address: replica.address, credentials: createChannelCredentials(clientTls), serverName: MANAGER_SERVER_NAME });
    try {
      return await unaryCall(client, RaftMembershipService.listMembers, {}, { deadlineMs: 2_000 });
    } finally {
      client.close();
    }
  };

  beforeAll(async () => {
    for (let i = 1; i <= 3; i++) {
      const address = `127.0.0.1:${await freeLoopbackPort()}`;
      const replica = new ReplicaProcess(`manager-${i}`, address, root, pki.ca, replicas[0]?.address);
      replicas.push(replica);
      await replica.start();
    }
    // Joiners start as learners; wait until all three vote.
    await eventually(async () => {
      const { members } = await listMembers(replicas[0]!);
      expect(members).toHaveLength(3);
      for (const member of members) expect(member.status?.message).toBe('');
    }, 20_000);
  }, 90_000);

  afterAll(async () => {
    for (const client of clients.values()) client.close();
    await Promise.all(replicas.map((replica) => replica.kill()));
    rmSync(root, { recursive: true, force: true });
  });

  it('loses no acknowledged write when the leader is killed with SIGKILL under write load, and the killed replica catches up after a restart', async () => {
    const acknowledged: string[] = [];
    let alive = [...replicas];
    let writing = true;
    let sequence = 0;
    /** Writes one network after another through the live replicas in turn, retrying what is retryable. */
    const writer = async (offset: number): Promise<void> => {
      for (let attempt = offset; writing; attempt++) {
        const id = `load-${sequence++}`;
        const through = alive[attempt % alive.length]!;
        try {
          await storeClient(through).commit({ changes: [{ action: 'create', kind: 'network', object: network(id, id) }] }, { deadlineMs: 5_000 });
          acknowledged.push(id);
        } catch (err) {
          if (!RETRYABLE.some((code) => hasCode(err, code))) throw err;
        }
      }
    };
    const writers = [writer(0), writer(1)];

    await eventually(() => expect(acknowledged.length).toBeGreaterThanOrEqual(20), 20_000);
    const { members, leader } = await listMembers(replicas[0]!);
    const leaderNode = members.find((member) => member.raftId === leader)!.nodeId;
    const killed = replicas.find((replica) => replica.nodeId === leaderNode)!;
    alive = replicas.filter((replica) => replica !== killed);
    const killedAt = Date.now();
    await killed.kill();

    const newLeader = await eventually(async () => {
      const view = await listMembers(alive[0]!);
      expect(view.leader).not.toBe(0n);
      expect(view.leader).not.toBe(leader);
      return view.leader;
    }, 20_000);
    // Speed belongs in bench/: this is reported, not asserted.
    console.info(`raft: new leader ${newLeader} elected ${Date.now() - killedAt} ms after SIGKILL of the leader (tick 50 ms, election 10 ticks)`);
    const countAtNewLeader = acknowledged.length;
    await eventually(() => expect(acknowledged.length).toBeGreaterThanOrEqual(countAtNewLeader + 20), 20_000);
    writing = false;
    await Promise.all(writers);

    for (const survivor of alive) {
      const { objects } = await storeClient(survivor).list('network');
      const stored = new Set(objects.map((object) => object.id));
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    }

    clients.get(killed)?.close();
    clients.delete(killed);
    await killed.start();
    const { objects } = await eventually(() => storeClient(killed).list('network'), 20_000);
    const stored = new Set(objects.map((object) => object.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
  }, 120_000);
});
