import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MANAGER_SERVER_NAME, loadCertificateAuthority } from '@shoal/pki';
import { Config, newId } from '@shoal/proto';
import { createStoreClient } from '@shoal/store-client';
import { dockerClient, freeLoopbackPort, removeTestContainers, TEST_IMAGE, TEST_LABEL, testRunId } from '@shoal/testkit';
import { isAlive, type HostStatus } from '../src/state.js';
import { serviceNames } from '../src/host.js';

const shoalMain = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = promisify(execFile);

let dataDir: string;
let env: NodeJS.ProcessEnv;
let raftPort: number;

async function shoal(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [shoalMain, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function statusFile(): HostStatus {
  return JSON.parse(readFileSync(join(dataDir, 'run', 'status.json'), 'utf8')) as HostStatus;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-up-test-'));
  raftPort = await freeLoopbackPort();
  env = {
    ...process.env,
    SHOAL_DATA_DIR: dataDir,
    SHOAL_NATS_PORT: String(await freeLoopbackPort()),
    SHOAL_RAFT_PORT: String(raftPort),
    SHOAL_API_LISTEN: `127.0.0.1:${await freeLoopbackPort()}`,
    SHOAL_MANAGER_LISTEN: `127.0.0.1:${await freeLoopbackPort()}`,
    // The agent labels every container it makes, so this run's can be found and removed.
    SHOAL_CONTAINER_LABELS: `${TEST_LABEL}=${testRunId()}`,
    // A short tick so the single replica elects itself quickly; the default is swarmkit's 1 s.
    SHOAL_RAFT_TICK: '100ms',
    SHOAL_LOG_LEVEL: 'info',
  };
});

afterAll(async () => {
  await shoal('down');
  await removeTestContainers();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the shoal command', () => {
  it('reports that shoal is not running before it was started', async () => {
    const result = await shoal('status');
    expect(result.code).toBe(3);
    expect(result.stdout).toContain('shoal is not running');
  });

  it('rejects unknown commands and flags with usage and exit code 2', async () => {
    expect((await shoal('launch')).code).toBe(2);
    const badFlag = await shoal('up', '--detached');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('Unknown option');
  });

  it('rejects invalid settings, naming every one of them, and starts nothing', async () => {
    const saved = env;
    env = { ...env, SHOAL_NATS_PORT: '70000', SHOAL_LOG_LEVEL: 'loud' };
    const result = await shoal('up', '--detach');
    env = saved;
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SHOAL_NATS_PORT');
    expect(result.stderr).toContain('SHOAL_LOG_LEVEL');
    expect((await shoal('status')).code).toBe(3);
  });

  it('up --detach returns once nats-server and every service report ready', async () => {
    const result = await shoal('up', '--detach');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const status = await shoal('status');
    expect(status.code).toBe(0);
    for (const name of ['nats-server', ...serviceNames]) expect(status.stdout).toMatch(new RegExp(`^${name}\\s+\\d+\\s+ready\\s+0$`, 'm'));
  });

  it("runs a single raft replica that serves the Store API over mTLS with the host's own CA", async () => {
    const pki = join(dataDir, 'pki');
    expect(statSync(join(pki, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(pki, 'manager.key')).mode & 0o777).toBe(0o600);
    const ca = loadCertificateAuthority(readFileSync(join(pki, 'ca.crt'), 'utf8'), readFileSync(join(pki, 'ca.key'), 'utf8'));
    const client = ca.issue({ cn: 'cli-test', ou: 'swarm-manager' });
    const store = createStoreClient({
      address: `127.0.0.1:${raftPort}`,
      tls: { ca: client.caCertPem, cert: client.certPem, key: client.keyPem },
      serverName: MANAGER_SERVER_NAME,
    });
    try {
      const config = Config.fromPartial({ id: newId(), spec: { annotations: { name: 'written-through-shoal-up' }, data: Buffer.from('hello') } });
      // The replica may still be electing itself: linearizable reads answer UNAVAILABLE until it leads.
      await expect.poll(() => store.list('config').then(() => true, () => false), { timeout: 30_000, interval: 200 }).toBe(true);
      await store.commit({ changes: [{ action: 'create', kind: 'config', object: config }] });
      const stored = await store.get('config', config.id);
      expect(stored.spec?.annotations?.name).toBe('written-through-shoal-up');
    } finally {
      store.close();
    }
  });

  it('refuses a second up while one is running', async () => {
    const result = await shoal('up', '--detach');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('shoal is already running');
  });

  it('restarts a service process that dies', async () => {
    const before = statusFile().processes.find((p) => p.name === 'scheduler')!;
    process.kill(before.pid!, 'SIGKILL');
    await expect
      .poll(() => statusFile().processes.find((p) => p.name === 'scheduler'), { timeout: 20_000, interval: 100 })
      .toMatchObject({ state: 'ready', restarts: 1 });
    expect(statusFile().processes.find((p) => p.name === 'scheduler')!.pid).not.toBe(before.pid);
  });

  it('env prints the DOCKER_HOST of the API it runs, which the docker CLI then talks to', async () => {
    const result = await shoal('env');
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`export DOCKER_HOST=tcp://${env.SHOAL_API_LISTEN}`);
    const version = await run('/usr/local/bin/docker', ['version', '--format', '{{.Server.APIVersion}}'], {
      env: { PATH: process.env.PATH, DOCKER_HOST: `tcp://${env.SHOAL_API_LISTEN}`, DOCKER_CONFIG: dataDir },
    });
    expect(version.stdout).toBe('1.41\n');
  });

  it('runs a service as containers once the docker CLI initialises a swarm through it, lets a --worker host join, and removes the containers on leave', async () => {
    const docker = (...args: string[]) =>
      run('/usr/local/bin/docker', args, { env: { PATH: process.env.PATH, DOCKER_HOST: `tcp://${env.SHOAL_API_LISTEN}`, DOCKER_CONFIG: dataDir } });
    await docker('swarm', 'init');
    await docker('service', 'create', '--detach', '--name', 'hello', '--replicas', '2', TEST_IMAGE, 'sleep', '600');
    const containers = async () =>
      (await dockerClient()).listContainers({ filters: { label: [`${TEST_LABEL}=${testRunId()}`, 'com.docker.swarm.service.name=hello'] } });
    await expect.poll(async () => (await containers()).length, { timeout: 60_000, interval: 250 }).toBe(2);
    expect((await docker('node', 'ls', '--format', '{{.Status}} {{.ManagerStatus}}')).stdout.trim()).toBe('Ready Leader');

    // A second host, started with --worker, joins with the token the manager prints.
    const workerDir = mkdtempSync(join(tmpdir(), 'shoal-up-worker-test-'));
    const workerApi = `127.0.0.1:${await freeLoopbackPort()}`;
    const workerEnv = { ...env, SHOAL_DATA_DIR: workerDir, SHOAL_API_LISTEN: workerApi, SHOAL_HOSTNAME: 'shoal-up-worker' };
    try {
      const started = await run(process.execPath, [shoalMain, 'up', '--detach', '--worker'], { env: workerEnv, timeout: 120_000 });
      expect(started.stdout).not.toMatch(/^(raft|nats-server|dispatcher)\s/m);
      const token = (await docker('swarm', 'join-token', '-q', 'worker')).stdout.trim();
      const joined = await run('/usr/local/bin/docker', ['swarm', 'join', '--token', token, env.SHOAL_MANAGER_LISTEN!], {
        env: { PATH: process.env.PATH, DOCKER_HOST: `tcp://${workerApi}`, DOCKER_CONFIG: dataDir },
      });
      expect(joined.stdout).toContain('This node joined a swarm as a worker.');
      await expect
        .poll(async () => (await docker('node', 'ls', '--format', '{{.Hostname}} {{.Status}}')).stdout, { timeout: 60_000, interval: 250 })
        .toContain('shoal-up-worker Ready');
    } finally {
      await run(process.execPath, [shoalMain, 'down'], { env: workerEnv, timeout: 120_000 });
      rmSync(workerDir, { recursive: true, force: true });
    }
    await docker('swarm', 'leave', '--force');
    await expect.poll(async () => (await containers()).length, { timeout: 60_000, interval: 250 }).toBe(0);
  });

  it('down stops every process it started and leaves no state behind', async () => {
    const pids = statusFile().processes.map((p) => p.pid!);
    const supervisorPid = statusFile().pid;
    const result = await shoal('down');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('shoal stopped');
    for (const pid of [...pids, supervisorPid]) expect(isAlive(pid)).toBe(false);
    expect((await shoal('status')).code).toBe(3);
    // Each service stopped its components itself (SIGTERM), rather than being killed.
    const log = readFileSync(join(dataDir, 'logs', 'scheduler.log'), 'utf8');
    const entries = log.trim().split('\n').map((line) => JSON.parse(line) as { component?: string; state?: string });
    expect(entries).toContainEqual(expect.objectContaining({ component: 'scheduler', state: 'stopped' }));
  });
});
