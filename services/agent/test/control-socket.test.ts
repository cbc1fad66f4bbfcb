import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@shoal/errors';
import { createCertificateAuthority, nodeCertificateSubject, WORKER_ROLE } from '@shoal/pki';
import { TaskState } from '@shoal/proto';
import { createLogger } from '@shoal/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentHost } from '../src/agent-host.js';
import { AgentControlClient } from '../src/control-client.js';
import { ControlSocket } from '../src/control-socket.js';
import { FakeExecutor } from '../src/fake-executor.js';
import { IdentityFile } from '../src/identity.js';
import { INVALID_TOKEN_MESSAGE, TestCluster, TestManager } from './support/test-cluster.js';
import { assignedTask } from './support/tasks.js';

const log = createLogger({ service: 'agent-test', level: 'silent' });

let dataDir: string;
let cluster: TestCluster;
let manager: TestManager;
let executors: Map<string, FakeExecutor>;
let running: { host: AgentHost; socket: ControlSocket }[];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'shoal-agent-control-'));
  cluster = new TestCluster();
  manager = await TestManager.start(cluster, log);
  executors = new Map();
  running = [];
});

afterEach(async () => {
  for (const { host, socket } of running) {
    await socket.close();
    await host.stop();
  }
  await manager.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** An agent host on `dataDir` with its control socket, as the agent process runs them. */
async function startHost(): Promise<{ host: AgentHost; client: AgentControlClient; socketPath: string }> {
  const host = new AgentHost({
    identityFile: new IdentityFile(dataDir),
    createExecutor: (nodeId) => {
      const executor = executors.get(nodeId) ?? new FakeExecutor();
      executors.set(nodeId, executor);
      return executor;
    },
    log,
    timing: { maxBackoffMs: 200, taskRetryDelayMs: 50 },
    joinRetries: { attempts: 1 },
  });
  await host.start();
  const socketPath = join(dataDir, 'agent.sock');
  const socket = new ControlSocket({ path: socketPath, control: host, log });
  await socket.listen();
  running.push({ host, socket });
  return { host, client: new AgentControlClient(socketPath), socketPath };
}

/** The raw HTTP answer to a control request, for what the typed client hides (the status). */
function rawCall(socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const call = request({ socketPath, method, path }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    call.on('error', reject);
    call.end(body);
  });
}

const joinThroughManager = (client: AgentControlClient, token = cluster.workerToken) => client.join({ token, remoteAddrs: [manager.address], availability: 'active' });

describe('the agent control socket', () => {
  it('is a socket only its owner may use', async () => {
    const { socketPath } = await startHost();

    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
  });

  it('reports inactive, joins with a token, then reports the node active and connected', async () => {
    const { client } = await startHost();
    expect(await client.state()).toEqual({ state: 'inactive' });

    const node = await joinThroughManager(client);
    expect(node.role).toBe('worker');
    expect(await client.state()).toEqual({ state: 'active', nodeId: node.nodeId, role: 'worker', clusterId: cluster.clusterId, managers: [manager.address], connected: true });
    expect((await stat(new IdentityFile(dataDir).path)).mode & 0o777).toBe(0o600);
  });

  it("refuses a second join with Docker's message and status 409", async () => {
    const { client, socketPath } = await startHost();
    await joinThroughManager(client);

    const answer = await rawCall(socketPath, 'POST', '/join', JSON.stringify({ token: cluster.workerToken, remoteAddrs: [manager.address] }));
    expect(answer).toEqual({
      status: 409,
      body: { code: ErrorCode.FailedPrecondition, message: 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.' },
    });
  });

  it("passes a refused join on with the manager's code and message, and stays inactive", async () => {
    const { client } = await startHost();
    const wrongSecret = `${cluster.workerToken.slice(0, -25)}${'0'.repeat(25)}`;

    await expect(joinThroughManager(client, wrongSecret)).rejects.toMatchObject({ code: ErrorCode.InvalidArgument, message: INVALID_TOKEN_MESSAGE });
    expect(await client.state()).toEqual({ state: 'inactive' });
    expect(await new IdentityFile(dataDir).load()).toBeUndefined();
  });

  it('leaves: tasks removed, identity deleted, inactive afterwards; leaving again is 503', async () => {
    const { client, socketPath } = await startHost();
    const { nodeId } = await joinThroughManager(client);
    const task = assignedTask(nodeId);
    cluster.putTask(task);
    await expect.poll(() => cluster.latestStatus(task.id)?.state).toBe(TaskState.RUNNING);

    await client.leave();
    expect(executors.get(nodeId)?.runtimeState(task.id)).toBe('absent');
    expect(await client.state()).toEqual({ state: 'inactive' });
    expect(await new IdentityFile(dataDir).load()).toBeUndefined();
    expect(await rawCall(socketPath, 'POST', '/leave', '{}')).toEqual({ status: 503, body: { code: ErrorCode.Unavailable, message: 'This node is not part of a swarm' } });
  });

  it('takes the identity made for this host at swarm init and connects with it', async () => {
    const { client } = await startHost();
    const identity = cluster.enrol('manager', [manager]);

    const node = await client.identity({ certPem: identity.certPem, keyPem: identity.keyPem, caCertPem: identity.caCertPem, managers: [manager.address] });
    expect(node).toEqual({ nodeId: identity.nodeId, role: 'manager' });
    await expect.poll(() => client.state()).toMatchObject({ state: 'active', nodeId: identity.nodeId, role: 'manager', connected: true });
  });

  it('refuses an identity whose certificate is not from the CA, or whose key is not its own', async () => {
    const { client } = await startHost();
    const foreign = createCertificateAuthority('not the swarm').issue(nodeCertificateSubject('n1', WORKER_ROLE, cluster.clusterId));
    const genuine = cluster.enrol('worker', [manager]);
    const other = cluster.enrol('worker', [manager]);

    await expect(client.identity({ certPem: foreign.certPem, keyPem: foreign.keyPem, caCertPem: cluster.ca.caCertPem, managers: [manager.address] })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: 'the node certificate is not signed by the given CA certificate, or is not valid now',
    });
    await expect(client.identity({ certPem: genuine.certPem, keyPem: other.keyPem, caCertPem: cluster.ca.caCertPem, managers: [manager.address] })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: 'the private key does not belong to the node certificate',
    });
    expect(await client.state()).toEqual({ state: 'inactive' });
  });

  it('reconnects as the same node after a restart, from the identity on disk', async () => {
    const first = await startHost();
    const { nodeId } = await joinThroughManager(first.client);
    const saved = await readFile(new IdentityFile(dataDir).path, 'utf8');
    const { host, socket } = running.pop()!;
    await socket.close();
    await host.stop();

    const second = await startHost();
    await expect.poll(() => second.client.state()).toMatchObject({ state: 'active', nodeId, connected: true });
    expect(await readFile(new IdentityFile(dataDir).path, 'utf8')).toBe(saved);
  });

  it('answers a malformed request with 400 and an unknown one with 404', async () => {
    const { socketPath } = await startHost();

    expect(await rawCall(socketPath, 'POST', '/join', '{"token": 7}')).toMatchObject({ status: 400, body: { code: ErrorCode.InvalidArgument } });
    expect(await rawCall(socketPath, 'POST', '/join', 'not json')).toMatchObject({ status: 400, body: { code: ErrorCode.InvalidArgument } });
    expect(await rawCall(socketPath, 'GET', '/nodes')).toMatchObject({ status: 404, body: { code: ErrorCode.NotFound } });
  });

  it('says the agent is unavailable when nothing listens on the socket', async () => {
    const client = new AgentControlClient(join(dataDir, 'nobody.sock'));

    await expect(client.state()).rejects.toMatchObject({ code: ErrorCode.Unavailable });
  });
});
