import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { NodeRole } from '@shoal/proto';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, ServiceProcess, serviceEnvironment, startNatsServer, writeManagerIdentity } from '@shoal/testkit';
import { expect, it } from 'vitest';
import { defer } from './support/cleanup.js';
import { joinTokens, newCluster } from './support/swarm.js';
import { joinOnceServing } from './support/test-node.js';

const mainOf = (service: string) => fileURLToPath(new URL(`../../${service}/dist/main.js`, import.meta.url));

it('waits for a swarm, then serves it on its port under its lease, and stops cleanly on SIGTERM', async () => {
  const root = mkdtempSync(join(tmpdir(), 'shoal-dispatcher-test-'));
  defer(() => rmSync(root, { recursive: true, force: true }));
  const identity = writeManagerIdentity(createTestPki().ca, root, 'dispatcher-test-manager');
  const [raftPort, dispatcherPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const nats = await startNatsServer();
  defer(() => nats.stop());
  const common = { ...serviceEnvironment(), ...identity.env, SHOAL_LOG_LEVEL: 'info', SHOAL_NATS_URL: nats.url };
  const raft = await ServiceProcess.start(
    'raft',
    mainOf('raft'),
    { ...common, SHOAL_DATA_DIR: join(root, 'raft'), SHOAL_RAFT_LISTEN: `127.0.0.1:${raftPort}`, SHOAL_RAFT_TICK: '100ms' },
    join(root, 'raft.log'),
  );
  defer(() => raft.stop());
  const dispatcher = await ServiceProcess.start(
    'dispatcher',
    mainOf('dispatcher'),
    { ...common, SHOAL_STORE_ADDRESS: `127.0.0.1:${raftPort}`, SHOAL_DISPATCHER_LISTEN: `127.0.0.1:${dispatcherPort}`, SHOAL_DISPATCHER_INSTANCE: 'under-test' },
    join(root, 'dispatcher.log'),
  );
  defer(() => dispatcher.stop());
  const store: StoreApiClient = createStoreClient({
    address: `127.0.0.1:${raftPort}`,
    tls: { ca: Buffer.from(identity.pem.ca), cert: Buffer.from(identity.pem.cert), key: Buffer.from(identity.pem.key) },
    serverName: MANAGER_SERVER_NAME,
  });
  defer(() => store.close());

  const { cluster, ca } = newCluster();
  await store.commit({ changes: [{ action: 'create', kind: 'cluster', object: cluster }] });
  const joined = await joinOnceServing(`127.0.0.1:${dispatcherPort}`, ca.caCertPem, joinTokens(cluster).worker);
  const node = await store.get('node', joined.nodeId);
  const leaseWhileServing = (await store.list('lease')).objects.find((lease) => lease.name === 'dispatcher.under-test');
  await dispatcher.stop();
  const leaseAfterStop = (await store.list('lease')).objects.find((lease) => lease.name === 'dispatcher.under-test');

  expect(dispatcher.endpoints).toEqual({ dispatcher: `127.0.0.1:${dispatcherPort}` });
  expect(node.role).toBe(NodeRole.WORKER);
  expect(leaseWhileServing?.holder).toBe('under-test');
  expect(leaseAfterStop?.holder).toBe('');
  expect(dispatcher.child.exitCode).toBe(0);
  expect(dispatcher.warnings()).toEqual([]);
}, 60_000);
