import { errors } from '@shoal/errors';
import { NodeStatus_State, type NodeStatus } from '@shoal/proto';
import { ClusterStateLeases, type LeaseApi } from '@shoal/store-client';
import { expect, it } from 'vitest';
import { defer } from './support/cleanup.js';
import { HEARTBEAT_FAILURE, UNKNOWN_AFTER_DISPATCHER_CHANGE } from '../src/index.js';
import { createSwarm, eventually, serve, type TestSwarm } from './support/swarm.js';
import { joinedWorker, requestCertificate, TestNode } from './support/test-node.js';

const HEARTBEAT_PERIOD_MS = 300;

/** Leases of a process that gets killed: it never gets to release them, they lapse. */
function leasesOfAKilledProcess(swarm: TestSwarm): LeaseApi {
  const leases = new ClusterStateLeases(swarm.state);
  return {
    acquireLease: (name, holder, ttlMs) => leases.acquireLease(name, holder, ttlMs),
    renewLease: (lease, ttlMs) => leases.renewLease(lease, ttlMs),
    releaseLease: () => Promise.reject(errors.unavailable('the process was killed')),
  };
}

/** Heartbeats as an agent does, twice a period, until the returned function is called. */
function keepBeating(node: TestNode, sessionId: string): () => void {
  let beating = true;
  void (async () => {
    while (beating) {
      const period = await node.heartbeat(sessionId).catch(() => HEARTBEAT_PERIOD_MS);
      await new Promise((resolve) => setTimeout(resolve, period / 2));
    }
  })();
  return () => (beating = false);
}

it('moves the nodes of a dispatcher that died to UNKNOWN, then DOWN unless they reconnect to another one, where they are READY', async () => {
  const swarm = await createSwarm({ heartbeatPeriodMs: HEARTBEAT_PERIOD_MS });
  const dying = await serve(swarm, { leases: leasesOfAKilledProcess(swarm), leaseTtlMs: 3 * HEARTBEAT_PERIOD_MS });
  const survivor = await serve(swarm);
  const [staying, moving] = await Promise.all([1, 2].map(() => requestCertificate(dying.address, swarm.ca.caCertPem, { token: swarm.tokens().worker })));
  for (const identity of [staying!, moving!]) {
    const node = new TestNode(identity, dying.address, swarm.ca.caCertPem);
    defer(() => node.close());
    defer(keepBeating(node, (await node.register()).sessionId));
  }
  const stayingStatuses: NodeStatus[] = [];
  defer(swarm.state.subscribe(() => {
    const status = swarm.node(staying!.nodeId)?.status;
    if (status !== undefined && status.state !== stayingStatuses.at(-1)?.state) stayingStatuses.push(status);
  }));

  await dying.stop();
  const moved = new TestNode(moving!, survivor.address, swarm.ca.caCertPem);
  defer(() => moved.close());
  defer(keepBeating(moved, (await moved.register()).sessionId));
  await eventually('the node that stayed to be DOWN', () => swarm.node(staying!.nodeId)?.status?.state === NodeStatus_State.DOWN);

  expect(stayingStatuses.slice(-2)).toMatchObject([
    { state: NodeStatus_State.UNKNOWN, message: UNKNOWN_AFTER_DISPATCHER_CHANGE, dispatcher: '' },
    { state: NodeStatus_State.DOWN, message: HEARTBEAT_FAILURE, dispatcher: '' },
  ]);
  expect(swarm.node(moving!.nodeId)?.status).toMatchObject({ state: NodeStatus_State.READY, dispatcher: survivor.instance });
});

it('leaves the nodes of a live dispatcher alone', async () => {
  const swarm = await createSwarm({ heartbeatPeriodMs: HEARTBEAT_PERIOD_MS });
  const [first, second] = [await serve(swarm), await serve(swarm)];
  const node = await joinedWorker(swarm, first.address);
  const { sessionId } = await node.register();
  defer(keepBeating(node, sessionId));
  const version = swarm.node(node.id)?.meta?.version?.index;

  // More than the six periods after which the other instance would give up on an unwatched node.
  await new Promise((resolve) => setTimeout(resolve, 8 * HEARTBEAT_PERIOD_MS));

  expect(swarm.node(node.id)?.status).toMatchObject({ state: NodeStatus_State.READY, dispatcher: first.instance });
  expect(swarm.node(node.id)?.meta?.version?.index).toBe(version);
  expect(second.instance).not.toBe(first.instance);
});
