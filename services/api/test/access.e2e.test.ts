import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeRole } from '@shoal/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_CLIS, runDocker } from '@shoal/testkit';
import { ShoalHost } from './support/shoal-host.js';

const docker28 = DOCKER_CLIS[0].path;

describe('the API over HTTPS with client certificates', () => {
  let host: ShoalHost;
  let configDir: string;
  beforeAll(async () => {
    host = await ShoalHost.start({ apiTls: true });
    configDir = mkdtempSync(join(tmpdir(), 'shoal-tls-test-'));
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it.each(DOCKER_CLIS)('serves $name when it presents a certificate from the CA', async ({ path }) => {
    const tls = { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: host.clientCertDir };
    const result = await runDocker(path, host.dockerHost, ['version', '--format', '{{.Server.APIVersion}}'], { configDir, env: tls });
    expect(result).toMatchObject({ code: 0, stdout: '1.41\n' });
  });

  it('refuses a client without a certificate, and plain HTTP', async () => {
    const withoutCertificate = await runDocker(docker28, host.dockerHost, ['version'], { configDir, env: { DOCKER_TLS: '1' } });
    expect(withoutCertificate.code).not.toBe(0);
    const plain = await runDocker(docker28, host.dockerHost, ['version'], { configDir });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).not.toContain('API version');
  });

  it('also serves the unix socket, readable and writable by its owner and group only', async () => {
    expect(statSync(host.socketPath).mode & 0o777).toBe(0o660);
    const result = await runDocker(docker28, `unix://${host.socketPath}`, ['version', '--format', '{{.Server.APIVersion}}'], { configDir });
    expect(result).toMatchObject({ code: 0, stdout: '1.41\n' });
  });
});

describe('a host whose node is a worker', () => {
  it('refuses manager-only commands with Docker\'s worker message, and still answers info', async () => {
    await using host = await ShoalHost.start();
    const configDir = mkdtempSync(join(tmpdir(), 'shoal-worker-test-'));
    try {
      const docker = (...args: string[]) => runDocker(docker28, host.dockerHost, args, { configDir });
      expect((await docker('swarm', 'init')).code).toBe(0);
      const self = (await docker('info', '--format', '{{.Swarm.NodeID}}')).stdout.trim();
      const store = host.storeClient();
      try {
        // What the role manager writes once a demoted manager has left raft (Shoal issue 6).
        const node = await store.get('node', self);
        await store.commit({ changes: [{ action: 'update', kind: 'node', object: { ...node, role: NodeRole.WORKER, managerStatus: undefined } }] });
      } finally {
        store.close();
      }
      await expect.poll(async () => (await docker('info', '--format', '{{.Swarm.ControlAvailable}}')).stdout).toBe('false\n');
      const refused = await docker('service', 'ls');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
      );
      expect((await docker('info', '--format', '{{.Swarm.LocalNodeState}}')).stdout).toBe('active\n');
    } finally {
      rmSync(configDir, { recursive: true, force: true });
    }
  });
});

describe('an autolocked swarm', () => {
  it('comes back locked after a manager restart, refuses a wrong key, and unlocks with the right one', async () => {
    await using host = await ShoalHost.start();
    const configDir = mkdtempSync(join(tmpdir(), 'shoal-unlock-test-'));
    try {
      const docker = (args: string[], input?: string) => runDocker(docker28, host.dockerHost, args, { configDir, input });
      expect((await docker(['swarm', 'init', '--autolock'])).stdout).toContain('SWMKEY-1-');
      const key = (await docker(['swarm', 'unlock-key', '-q'])).stdout.trim();
      await host.restartRaft();
      await expect.poll(async () => (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout, { timeout: 20_000 }).toBe('locked\n');
      const listed = await docker(['service', 'ls']);
      expect(listed.stderr).toContain('Swarm is encrypted and needs to be unlocked before it can be used.');
      const wrong = await docker(['swarm', 'unlock'], 'SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
      expect(wrong.stderr).toContain('swarm could not be unlocked: invalid key provided');
      expect((await docker(['swarm', 'unlock'], `${key}\n`)).code).toBe(0);
      await expect.poll(async () => (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout, { timeout: 20_000 }).toBe('active\n');
      expect((await docker(['service', 'ls'])).code).toBe(0);
    } finally {
      rmSync(configDir, { recursive: true, force: true });
    }
  });
});
