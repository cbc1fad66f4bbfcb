import { ErrorCode } from '@shoal/errors';
import { MemoryStore } from '@shoal/store';
import { ClusterStateLeases, LocalClusterState } from '@shoal/store-client';
import { expect, it } from 'vitest';
import { defer } from './support/cleanup.js';
import { startDispatcher, type RunningDispatcher } from '../src/index.js';
import { joinTokens, newCluster, quietLog } from './support/swarm.js';
import { joinOnceServing, rejection, requestCertificate, TestNode } from './support/test-node.js';

async function createCluster(state: LocalClusterState) {
  const swarm = newCluster();
  await state.commit({ changes: [{ action: 'create', kind: 'cluster', object: swarm.cluster }] });
  return swarm;
}

it('listens only once a swarm exists, and stops serving when it is removed until the next one', async () => {
  const state = new LocalClusterState(new MemoryStore());
  let started: RunningDispatcher | undefined;
  const starting = startDispatcher({ state, leases: new ClusterStateLeases(state), listen: '127.0.0.1:0', log: quietLog }).then((dispatcher) => {
    started = dispatcher;
    defer(() => dispatcher.stop());
    return dispatcher;
  });
  // It stays waiting for as long as there is no swarm.
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(started).toBeUndefined();

  const first = await createCluster(state);
  const dispatcher = await starting;
  const identity = await requestCertificate(dispatcher.address, first.ca.caCertPem, { token: joinTokens(first.cluster).worker });
  const node = new TestNode(identity, dispatcher.address, first.ca.caCertPem);
  defer(() => node.close());
  const { messages } = await node.register();

  // docker swarm leave --force deletes everything.
  await state.commit({ changes: [{ action: 'delete', kind: 'cluster', id: first.cluster.id }] });
  const ended = await messages.end();
  const whileGone = await rejection(requestCertificate(dispatcher.address, first.ca.caCertPem, { token: joinTokens(first.cluster).worker }));
  const second = await createCluster(state);
  const rejoined = await joinOnceServing(dispatcher.address, second.ca.caCertPem, joinTokens(second.cluster).worker);

  expect(ended?.code).toBe(ErrorCode.Unavailable);
  expect(whileGone.code).toBe(ErrorCode.Unavailable);
  expect(rejoined.nodeId).not.toBe(identity.nodeId);
  expect(state.view((tx) => tx.get('node', rejoined.nodeId))).toBeDefined();
});
