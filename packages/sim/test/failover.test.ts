import { EndpointSpec_ResolutionMode, UpdateStatus_UpdateState } from '@shoal/proto';
import { durationOfMs } from '@shoal/store-client';
import { describe, expect, it } from 'vitest';
import type { ControlPlane } from '../src/control-plane.js';
import { expectConverged, imageOf, oneTo, replicatedSpec, running, simulate, slotsOf, withImage } from './support.js';

const REPLICAS = 20;

/** How the orchestrator and the allocator make way for fresh instances. */
const handovers: ReadonlyArray<[string, (plane: ControlPlane) => Promise<void>]> = [
  ['are stopped', (plane) => plane.stop('orchestrator', 'allocator')],
  ['crash between two writes', (plane) => plane.kill('orchestrator', 'allocator')],
  // The standbys take the leases while the old instances still run: their next writes are fenced off.
  ['are deposed by standbys', async () => undefined],
];

describe('failover in the middle of a rolling update', () => {
  it.each(handovers)(
    'completes an update of 20 replicas when the orchestrator and the allocator %s and fresh instances take over, with no slot doubled, no task lost and no address handed out twice',
    async (_, handOver) => {
      const { plane } = await simulate({ mirrorLagMs: 2 });
      await plane.addNodes(10);
      const backend = await plane.createNetwork('backend');
      await plane.start();
      const { id } = await plane.createService(
        replicatedSpec('web', REPLICAS, {
          task: { networks: [{ target: backend.id }] },
          spec: { endpoint: { mode: EndpointSpec_ResolutionMode.VIP }, update: { parallelism: 2n, delay: durationOfMs(10), monitor: durationOfMs(100) } },
        }),
      );
      await plane.until(() => expectConverged(plane.tasks(id), REPLICAS));

      await plane.updateService(id, (spec) => withImage(spec, 'app:2'));
      await plane.until(() => expect(running(plane.tasks(id)).filter((task) => imageOf(task) === 'app:2').length).toBeGreaterThanOrEqual(6));
      expect(plane.service(id).updateStatus?.state).toBe(UpdateStatus_UpdateState.UPDATING);
      await handOver(plane);
      await plane.start('orchestrator', 'allocator');

      await plane.until(() => expect(plane.service(id).updateStatus?.state).toBe(UpdateStatus_UpdateState.COMPLETED));
      await plane.until(() => expectConverged(plane.tasks(id), REPLICAS));
      const tasks = running(plane.tasks(id));
      expect(slotsOf(tasks)).toEqual(oneTo(REPLICAS));
      expect(tasks.map(imageOf)).toEqual(Array(REPLICAS).fill('app:2'));
      const addresses = tasks.map((task) => task.networks[0]?.addresses[0]);
      expect(addresses.every((address) => address !== undefined)).toBe(true);
      expect(new Set(addresses).size).toBe(REPLICAS);
    },
  );
});
