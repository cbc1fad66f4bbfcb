import { ErrorCode, hasCode } from '@shoal/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identities, startStoreApi, type StoreApiHarness } from './support/harness.js';
import { network, take } from './support/objects.js';

describe('who may call the Store API', () => {
  let api: StoreApiHarness;
  beforeAll(async () => {
    api = await startStoreApi();
  });
  afterAll(() => api.stop());

  it('serves a client with a manager certificate from the cluster CA', async () => {
    const version = await api.client(identities.manager).commit({ changes: [{ action: 'create', kind: 'network', object: network('net-m', 'm') }] });
    expect(version).toBe(api.consensus.store.version);
  });

  it('refuses a worker certificate with PERMISSION_DENIED, for writes, reads and watches alike, and changes nothing', async () => {
    const before = api.consensus.store.version;
    const worker = api.client(identities.worker);
    const write = worker.commit({ changes: [{ action: 'create', kind: 'network', object: network('net-w', 'w') }] });
    await expect(write).rejects.toSatisfy((err) => hasCode(err, ErrorCode.PermissionDenied));
    await expect(write).rejects.toThrow('role swarm-worker may not call this; allowed: swarm-manager');
    await expect(worker.get('network', 'net-m')).rejects.toSatisfy((err) => hasCode(err, ErrorCode.PermissionDenied));
    await expect(worker.acquireLease('orchestrator', 'worker-1', 1_000)).rejects.toSatisfy((err) => hasCode(err, ErrorCode.PermissionDenied));
    await expect(take(worker.watch(), 1)).rejects.toSatisfy((err) => hasCode(err, ErrorCode.PermissionDenied));
    expect(api.consensus.store.version).toBe(before);
  });

  it('does not let a client with a certificate from another CA connect at all', async () => {
    const intruder = api.client(identities.foreignManager);
    await expect(intruder.get('network', 'net-m')).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
  });
});
