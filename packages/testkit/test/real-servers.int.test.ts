/**
 * Proves, in CI, that the real servers Shoal's tests depend on work on this host: a labelled busybox
 * container runs a command and is removed through dockerode, and a NATS request/reply round trip goes
 * through a real nats-server. Needs scripts/bootstrap.sh to have run (dockerd up, shoal/busybox:1 built).
 */
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTestContainers, removeTestContainers, requireTestImage, runTestContainer, testRunId } from '../src/containers.js';
import { startNatsServer } from '../src/nats-server.js';

const runId = `${testRunId()}-real-servers`;

describe('real servers', () => {
  beforeAll(() => requireTestImage());
  afterAll(() => removeTestContainers(runId));

  it('runs a command in a labelled busybox container through dockerode and leaves no container behind', async () => {
    const container = await runTestContainer({ cmd: ['sh', '-c', 'echo "ran as $(id -un) in $(pwd)"; exit 42'], runId });
    expect(await listTestContainers(runId)).toEqual([container.id]);

    expect(await container.wait()).toBe(42);
    expect((await container.logs()).stdout).toBe('ran as root in /\n');

    await container.stop();
    expect(await listTestContainers(runId)).toEqual([]);
  });

  it('carries a request and its reply between two clients through a real nats-server', async () => {
    await using server = await startNatsServer();
    const responder = await connect({ servers: server.url, name: 'responder' });
    const requester = await connect({ servers: server.url, name: 'requester' });
    try {
      responder.subscribe('shoal.test.echo', { callback: (_err, msg) => { msg.respond(msg.string().toUpperCase()); } });
      await responder.flush();
      const reply = await requester.request('shoal.test.echo', 'round trip', { timeout: 2_000 });
      expect(reply.string()).toBe('ROUND TRIP');
    } finally {
      await Promise.all([responder.close(), requester.close()]);
    }
  });
});
