import { Lease } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { service, START_MS, TestCluster } from './support/harness.js';

/** The orchestrator lease as another instance took it over: epoch 2, held for an hour. */
const takenOver = Lease.fromPartial({ id: 'lease-1', name: 'orchestrator', holder: 'instance-b', epoch: 2n, expiry: new Date(START_MS + 3_600_000) });

describe('lease fencing', () => {
  it('writes nothing with the fence of a stale lease epoch, and stops', async () => {
    await using cluster = new TestCluster();
    cluster.create('lease', takenOver);
    cluster.create('service', service('web', { replicated: { replicas: 3n } }));
    await cluster.start({ fence: { kind: 'lease', id: 'lease-1', leaseEpoch: 1n } });

    // run() ends by itself: a fenced write means another instance leads now.
    await expect(cluster.finished).resolves.toBeUndefined();
    expect(cluster.tasks()).toEqual([]);
    expect(cluster.logs.entries.map(({ msg }) => msg)).toContain('a write was fenced off: another instance holds the lease now; stopping');
  });

  it('writes with the fence of the current lease epoch', async () => {
    await using cluster = new TestCluster();
    cluster.create('lease', takenOver);
    cluster.create('service', service('web', { replicated: { replicas: 3n } }));
    await cluster.start({ fence: { kind: 'lease', id: 'lease-1', leaseEpoch: 2n } });

    expect(cluster.tasks('web')).toHaveLength(3);
  });
});
