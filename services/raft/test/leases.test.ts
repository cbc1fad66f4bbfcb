import { ErrorCode, hasCode } from '@shoal/errors';
import { FakeClock } from '@shoal/testkit';
import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApiClient } from '@shoal/store-client';
import { LocalConsensus } from '../src/store-api/index.js';
import { GatedConsensus, Gate, startStoreApi, type StoreApiHarness } from './support/harness.js';
import { network } from './support/objects.js';

const TTL_MS = 10_000;
const START = Date.UTC(2030, 0, 1);
const at = (ms: number) => new Date(START + ms);
const withCode = (code: ErrorCode) => (err: unknown) => hasCode(err, code);

describe('leases', () => {
  let clock: FakeClock;
  let api: StoreApiHarness;
  let client: StoreApiClient;
  beforeEach(async () => {
    clock = new FakeClock({ startMs: START });
    api = await startStoreApi({ consensus: new LocalConsensus({ clock: () => new Date(clock.now()) }) });
    client = api.client();
    return () => api.stop();
  });

  it('gives a free lease to its first holder at epoch 1, until the leader time plus the TTL', async () => {
    const lease = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    expect(lease).toMatchObject({ name: 'orchestrator', holder: 'instance-a', epoch: 1n, expiry: at(TTL_MS) });
    expect(lease.meta?.version?.index).toBe(api.consensus.store.version);
  });

  it('renews a lease for its holder at the same epoch, extending its expiry', async () => {
    const lease = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(4_000);
    expect(await client.renewLease(lease, TTL_MS)).toMatchObject({ holder: 'instance-a', epoch: 1n, expiry: at(4_000 + TTL_MS) });
    clock.advance(4_000);
    expect(await client.acquireLease('orchestrator', 'instance-a', TTL_MS)).toMatchObject({ epoch: 1n, expiry: at(8_000 + TTL_MS) });
  });

  it('refuses a second holder while the lease is held, naming the holder and the expiry', async () => {
    await client.acquireLease('allocator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS - 1);
    const refused = client.acquireLease('allocator', 'instance-b', TTL_MS);
    await expect(refused).rejects.toSatisfy(withCode(ErrorCode.FailedPrecondition));
    await expect(refused).rejects.toThrow(`lease "allocator" is held by instance-a until ${at(TTL_MS).toISOString()}`);
  });

  it('lets another holder take an expired lease at the next epoch', async () => {
    await client.acquireLease('allocator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);
    expect(await client.acquireLease('allocator', 'instance-b', TTL_MS)).toMatchObject({ holder: 'instance-b', epoch: 2n, expiry: at(2 * TTL_MS) });
  });

  it('releases a lease so the next holder takes it at once, at the next epoch', async () => {
    const lease = await client.acquireLease('scheduler', 'instance-a', TTL_MS);
    expect(await client.releaseLease(lease)).toMatchObject({ holder: '', epoch: 1n });
    expect(await client.acquireLease('scheduler', 'instance-b', TTL_MS)).toMatchObject({ holder: 'instance-b', epoch: 2n });
  });

  it("fences a deposed holder: its writes with the old epoch fail with CONFLICT naming the lease and both epochs; the new holder's pass", async () => {
    const deposed = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);
    const current = await client.acquireLease('orchestrator', 'instance-b', TTL_MS);

    const fencedWrite = client.commit({
      changes: [{ action: 'create', kind: 'network', object: network('by-a', 'by-a') }],
      preconditions: [{ kind: 'lease', id: deposed.id, leaseEpoch: deposed.epoch }],
    });
    await expect(fencedWrite).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    await expect(fencedWrite).rejects.toThrow(`lease ${deposed.id} (orchestrator) is at epoch 2, transaction expected 1`);
    await expect(client.get('network', 'by-a')).rejects.toSatisfy(withCode(ErrorCode.NotFound));

    await client.commit({
      changes: [{ action: 'create', kind: 'network', object: network('by-b', 'by-b') }],
      preconditions: [{ kind: 'lease', id: current.id, leaseEpoch: current.epoch }],
    });
    expect(await client.get('network', 'by-b')).toMatchObject({ id: 'by-b' });
  });

  it('fences the writes of a holder whose lease expired even before anyone else took it', async () => {
    const lapsed = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);
    const write = client.commit({
      changes: [{ action: 'create', kind: 'network', object: network('late', 'late') }],
      preconditions: [{ kind: 'lease', id: lapsed.id, leaseEpoch: lapsed.epoch }],
    });
    await expect(write).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    await expect(write).rejects.toThrow(`expired at ${at(TTL_MS).toISOString()}`);
  });

  it('refuses to renew or release for a deposed holder, with CONFLICT naming both epochs', async () => {
    const deposed = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);
    await client.acquireLease('orchestrator', 'instance-b', TTL_MS);
    const renewal = client.renewLease(deposed, TTL_MS);
    await expect(renewal).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    await expect(renewal).rejects.toThrow('cannot renew lease "orchestrator" at epoch 1 for instance-a: it is at epoch 2, held by instance-b');
    await expect(client.releaseLease(deposed)).rejects.toSatisfy(withCode(ErrorCode.Conflict));
    expect(await client.acquireLease('orchestrator', 'instance-b', TTL_MS)).toMatchObject({ holder: 'instance-b', epoch: 2n });
  });

  it('refuses to renew a lease that expired, even with nobody else holding it', async () => {
    const lapsed = await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);
    await expect(client.renewLease(lapsed, TTL_MS)).rejects.toThrow(`expired at ${at(TTL_MS).toISOString()}; acquire it again`);
  });

  it.each([
    ['no name', () => client.acquireLease('', 'instance-a', TTL_MS), 'must name the lease'],
    ['no holder', () => client.acquireLease('orchestrator', '', TTL_MS), 'must name its holder'],
    ['a TTL of zero', () => client.acquireLease('orchestrator', 'instance-a', 0), 'between 1 ms and 300000 ms, not 0 ms'],
    ['a TTL beyond the limit', () => client.acquireLease('orchestrator', 'instance-a', 300_001), 'not 300001 ms'],
  ])('refuses a lease request with %s with INVALID_ARGUMENT and changes nothing', async (_what, request, message) => {
    const before = api.consensus.store.version;
    await expect(request()).rejects.toSatisfy(withCode(ErrorCode.InvalidArgument));
    await expect(request()).rejects.toThrow(message);
    expect(api.consensus.store.version).toBe(before);
  });

  it('answers NOT_FOUND for renewing a lease nobody ever acquired', async () => {
    await expect(client.renewLease({ name: 'nobody', holder: 'instance-a', epoch: 1n }, TTL_MS)).rejects.toSatisfy(withCode(ErrorCode.NotFound));
  });
});

describe('concurrent acquirers', () => {
  it('lets only one of two holders racing for an expired lease win; the other fails with CONFLICT when applied', async () => {
    const clock = new FakeClock({ startMs: START });
    const consensus = new GatedConsensus({ clock: () => new Date(clock.now()) });
    await using api = await startStoreApi({ consensus });
    const client = api.client();
    await client.acquireLease('orchestrator', 'instance-a', TTL_MS);
    clock.advance(TTL_MS);

    consensus.proposalGate = new Gate();
    const byB = client.acquireLease('orchestrator', 'instance-b', TTL_MS).catch((err: unknown) => err);
    const byC = client.acquireLease('orchestrator', 'instance-c', TTL_MS).catch((err: unknown) => err);
    // Both saw the lease expired and proposed a takeover before either was applied.
    await expect.poll(() => consensus.proposals.length).toBe(3);
    consensus.proposalGate.open();

    const [first, second] = await Promise.all([byB, byC]);
    expect(first).toMatchObject({ holder: 'instance-b', epoch: 2n });
    expect(second).toSatisfy(withCode(ErrorCode.Conflict));
    expect(await client.acquireLease('orchestrator', 'instance-b', TTL_MS)).toMatchObject({ holder: 'instance-b', epoch: 2n });
  });
});
