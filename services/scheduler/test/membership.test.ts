import { connectBus, type BusConnection } from '@shoal/bus';
import { TaskState } from '@shoal/proto';
import { captureLogs } from '@shoal/runtime/testing';
import { LocalClusterState } from '@shoal/store-client';
import { FakeClock, startNatsServer, type NatsServer } from '@shoal/testkit';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Membership, ownerOf, type MembershipOptions } from '../src/membership.js';
import { node, task } from './fixtures.js';
import { clusterWith, createTasks, eventually, startLoop, stateOf, storedTasks } from './loop-support.js';

const HEARTBEAT_MS = 100;

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server.stop();
});

/** Undone in reverse order after each test: memberships stop before their connections close. */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function connect(name: string, url = server.url): Promise<BusConnection> {
  const connection = await connectBus({ url, name, log: captureLogs().log });
  cleanups.push(() => connection.close());
  return connection;
}

interface RunningMembership {
  readonly membership: Membership;
  /** The members at each change, in order. */
  readonly changes: (readonly string[])[];
  stop(): Promise<void>;
}

function join(connection: BusConnection, instanceId: string, options: Partial<MembershipOptions> = {}): RunningMembership {
  const changes: (readonly string[])[] = [];
  const controller = new AbortController();
  const membership = new Membership({
    nc: connection.nc,
    instanceId,
    log: captureLogs().log,
    heartbeatMs: HEARTBEAT_MS,
    onChange: (members) => changes.push(members),
    ...options,
  });
  const done = membership.run(controller.signal);
  const stop = async () => {
    controller.abort();
    await done;
  };
  cleanups.push(stop);
  return { membership, changes, stop };
}

const serviceIds = Array.from({ length: 50 }, (_, index) => `service-${index}`);

describe('ownerOf', () => {
  it('gives every service one owner among the instances, whatever their order, and moves only the services of an instance that leaves', () => {
    const instances = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 6 });
    fc.assert(
      fc.property(instances, fc.string(), (instanceIds, serviceId) => {
        const owner = ownerOf(serviceId, instanceIds);
        expect(instanceIds).toContain(owner);
        expect(ownerOf(serviceId, [...instanceIds].reverse())).toBe(owner);
        const someoneElse = instanceIds.find((instanceId) => instanceId !== owner);
        expect(ownerOf(serviceId, instanceIds.filter((instanceId) => instanceId !== someoneElse))).toBe(owner);
      }),
    );
  });
});

describe('Membership', () => {
  it('finds the other instances over NATS and splits the services with them: each has exactly one owner, and each instance owns some', async () => {
    const a = join(await connect('a'), 'instance-a');
    const b = join(await connect('b'), 'instance-b');
    await eventually(() => {
      expect(a.membership.members).toEqual(['instance-a', 'instance-b']);
      expect(b.membership.members).toEqual(['instance-a', 'instance-b']);
    });

    for (const serviceId of serviceIds) expect([a, b].filter(({ membership }) => membership.owns(serviceId))).toHaveLength(1);
    expect(serviceIds.filter((serviceId) => a.membership.owns(serviceId)).length).toBeGreaterThan(0);
    expect(serviceIds.filter((serviceId) => b.membership.owns(serviceId)).length).toBeGreaterThan(0);
  });

  it('forgets an instance not heard from for three heartbeats, and takes over its services', async () => {
    const clock = new FakeClock({ startMs: Date.parse('2025-03-01T12:00:00Z') });
    const survivorConnection = await connect('survivor');
    const survivor = join(survivorConnection, 'survivor', { clock });
    const doomedConnection = await connect('doomed');
    join(doomedConnection, 'doomed', { clock });
    await eventually(() => expect(survivor.membership.members).toEqual(['doomed', 'survivor']));

    // Its connection drops without a goodbye, as when the process is killed.
    await doomedConnection.nc.close();
    const beat = async () => {
      clock.advance(HEARTBEAT_MS);
      await survivorConnection.nc.flush(); // the survivor hears its own heartbeat: it is not the one cut off
    };
    for (let missed = 1; missed <= 3; missed++) await beat();
    expect(survivor.membership.members).toEqual(['doomed', 'survivor']);

    await beat();
    expect(survivor.membership.members).toEqual(['survivor']);
    expect(survivor.changes.at(-1)).toEqual(['survivor']);
    expect(serviceIds.every((serviceId) => survivor.membership.owns(serviceId))).toBe(true);
  });

  it('says it is leaving when it stops, so that the others take over at once rather than after its silence', async () => {
    const stayer = join(await connect('stayer'), 'stayer', { missedHeartbeats: 1_000_000 });
    const leaver = join(await connect('leaver'), 'leaver', { missedHeartbeats: 1_000_000 });
    await eventually(() => expect(stayer.membership.members).toEqual(['leaver', 'stayer']));

    await leaver.stop();
    await eventually(() => expect(stayer.membership.members).toEqual(['stayer']));
  });

  it('keeps the members it knew while it cannot hear even itself, as NATS being down says nothing about the others', async () => {
    const doomedServer = await startNatsServer();
    cleanups.push(() => doomedServer.stop());
    const clock = new FakeClock({ startMs: Date.parse('2025-03-01T12:00:00Z') });
    const a = join(await connect('a', doomedServer.url), 'instance-a', { clock });
    join(await connect('b', doomedServer.url), 'instance-b', { clock });
    await eventually(() => expect(a.membership.members).toEqual(['instance-a', 'instance-b']));

    await doomedServer.stop();
    clock.advance(10 * HEARTBEAT_MS);
    expect(a.membership.members).toEqual(['instance-a', 'instance-b']);
  });
});

describe('sharing the work between scheduling loops', () => {
  it('places the PENDING tasks of a killed instance services once the others notice it is gone', async () => {
    const store = clusterWith([node('n1'), node('n2')], serviceIds);
    const state = new LocalClusterState(store);
    const instances = ['survivor', 'doomed'].map(async (instanceId) => {
      const connection = await connect(instanceId);
      const running = join(connection, instanceId, { onChange: () => loop.rebalance() });
      const { loop, stop } = startLoop(state, { owns: (serviceId) => running.membership.owns(serviceId) });
      return { connection, membership: running.membership, stopLoop: stop };
    });
    const [survivor, doomed] = await Promise.all(instances);
    await eventually(() => expect(survivor!.membership.members).toEqual(['doomed', 'survivor']));
    const doomedServices = serviceIds.filter((serviceId) => !survivor!.membership.owns(serviceId));
    expect(doomedServices.length).toBeGreaterThan(0);

    await doomed!.stopLoop();
    await doomed!.connection.nc.close();
    createTasks(store, serviceIds.map((serviceId) => task(`${serviceId}-1`, serviceId)));

    await eventually(() => expect(storedTasks(store).filter((each) => stateOf(each) !== TaskState.ASSIGNED)).toEqual([]));
    expect(survivor!.membership.members).toEqual(['survivor']);
  });
});
