import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, hasCode } from '@shoal/errors';
import { createCertificateAuthority, MANAGER_SERVER_NAME, nodeCertificateSubject, WORKER_ROLE } from '@shoal/pki';
import { CAClient, CAService, DispatcherClient, DispatcherService, SessionRequest } from '@shoal/proto';
import { createChannelCredentials, createClient, serverStreamCall, unaryCall } from '@shoal/rpc';
import { dockerClient, DOCKER, DOCKER_CLIS, SwarmCluster, TEST_IMAGE, TEST_LABEL, type ManagerHost, type SwarmHost } from '@shoal/testkit';

/*
 * One swarm for the whole file, as a user builds it with the real docker CLI: a manager host and two
 * worker-only hosts, each with its own API and agent, all running their tasks' containers on this
 * machine's dockerd. The scenarios run in order and each leaves the swarm as the next expects it.
 */

const POLL = { timeout: 90_000, interval: 250 };

let cluster: SwarmCluster;
let manager: ManagerHost;
let workers: SwarmHost[];
/** A second name for the test image, so that an update changes the image without a registry. */
let releaseImage: string;

interface DockerTask {
  ID: string;
  NodeID?: string;
  Slot?: number;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
  Spec: { ContainerSpec: { Image: string; Env?: string[] } };
}

/** The service's tasks as the manager's API lists them (the same call `docker service ps` makes). */
async function tasksOf(service: string): Promise<DockerTask[]> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service] }));
  const response = await fetch(`${manager.dockerHost.replace(/^tcp:/, 'http:')}/v1.41/tasks?filters=${filters}`);
  if (!response.ok) throw new Error(`GET /tasks: ${response.status} ${await response.text()}`);
  return (await response.json()) as DockerTask[];
}

const running = (tasks: DockerTask[]) => tasks.filter((task) => task.Status.State === 'running' && task.DesiredState === 'running');

/** Containers of this run that the agents made for `service`, straight from dockerd. */
async function containersOf(service: string, options: { all?: boolean } = {}) {
  const docker = await dockerClient();
  return docker.listContainers({
    all: options.all === true,
    filters: { label: [`${TEST_LABEL}=${cluster.runId}`, `com.docker.swarm.service.name=${service}`] },
  });
}

async function nodeIdOf(host: SwarmHost): Promise<string> {
  return (await host.dockerOk(['info', '--format', '{{.Swarm.NodeID}}'])).trim();
}

beforeAll(async () => {
  cluster = SwarmCluster.create();
  const repository = TEST_IMAGE.slice(0, TEST_IMAGE.lastIndexOf(':'));
  releaseImage = `${repository}:e2e-${cluster.runId}`;
  await (await dockerClient()).getImage(TEST_IMAGE).tag({ repo: repository, tag: `e2e-${cluster.runId}` });
  manager = await cluster.startManager('shoal-e2e-manager');
  workers = [await cluster.startWorker('shoal-e2e-worker-1'), await cluster.startWorker('shoal-e2e-worker-2')];
});

afterAll(async () => {
  await cluster?.stop();
  // Removing the extra tag leaves the image, which keeps its own name.
  if (releaseImage !== undefined) await (await dockerClient()).getImage(releaseImage).remove();
});

describe('a swarm built with the docker CLI', () => {
  it('initialises on the manager and lets both workers join with the worker token', async () => {
    // A 2 s heartbeat: a dead node is down after 6 s rather than Docker's 15, yet an agent restart
    // (a new process, a new session) fits well inside the grace even on a loaded machine.
    expect(await manager.dockerOk(['swarm', 'init', '--dispatcher-heartbeat', '2s'])).toContain('Swarm initialized');
    const token = (await manager.dockerOk(['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const worker of workers) {
      expect(await worker.dockerOk(['swarm', 'join', '--token', token, manager.managerAddr])).toContain('This node joined a swarm as a worker.');
    }
    await expect
      .poll(async () => (await manager.dockerOk(['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).trim().split('\n').sort(), POLL)
      .toEqual(['shoal-e2e-manager Ready', 'shoal-e2e-worker-1 Ready', 'shoal-e2e-worker-2 Ready']);
    const info = JSON.parse(await workers[0]!.dockerOk(['info', '--format', '{{json .Swarm}}'])) as { LocalNodeState: string; ControlAvailable: boolean };
    expect(info).toMatchObject({ LocalNodeState: 'active', ControlAvailable: false });
    const refused = await workers[0]!.docker(['node', 'ls']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state.');
  });

  it('refuses a join with a wrong token and adds no node', async () => {
    const token = (await manager.dockerOk(['swarm', 'join-token', '-q', 'worker'])).trim();
    const wrong = `${token.slice(0, -25)}${'0'.repeat(25)}`;
    const extra = await cluster.startWorker('shoal-e2e-intruder');
    const result = await extra.docker(['swarm', 'join', '--token', wrong, manager.managerAddr]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('A valid join token is necessary to join this cluster');
    expect((await manager.dockerOk(['node', 'ls', '-q'])).trim().split('\n')).toHaveLength(3);
  });

  it('runs a service of 3 replicas as 3 containers in dockerd, named and labelled as Docker names them', async () => {
    await manager.dockerOk(['service', 'create', '--detach', '--name', 'web', '--replicas', '3', '--restart-delay', '0s', TEST_IMAGE, 'sleep', '3600']);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(3);
    const containers = await containersOf('web');
    expect(containers).toHaveLength(3);
    const tasks = running(await tasksOf('web'));
    for (const container of containers) {
      const task = tasks.find((candidate) => candidate.ID === container.Labels['com.docker.swarm.task.id']);
      expect(task).toBeDefined();
      expect(container.Names[0]).toBe(`/web.${task!.Slot}.${task!.ID}`);
      expect(container.Labels['com.docker.swarm.node.id']).toBe(task!.NodeID);
    }
    expect(await manager.dockerOk(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])).toContain('web 3/3');
  });

  it('replaces a container removed with docker rm -f and shows the old task failed with exit 137', async () => {
    const [victim] = await containersOf('web');
    const taskId = victim!.Labels['com.docker.swarm.task.id']!;
    await (await dockerClient()).getContainer(victim!.Id).remove({ force: true });
    await expect.poll(async () => (await tasksOf('web')).find((task) => task.ID === taskId)?.Status.State, POLL).toBe('failed');
    const failed = (await tasksOf('web')).find((task) => task.ID === taskId)!;
    expect(failed.Status.Err).toBe('task: non-zero exit (137)');
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(3);
    const ps = await manager.dockerOk(['service', 'ps', '--no-trunc', 'web']);
    expect(ps).toContain('"task: non-zero exit (137)"');
    expect(await containersOf('web')).toHaveLength(3);
  });

  it('scales 3 → 10 → 2, with as many containers as running tasks', async () => {
    await manager.dockerOk(['service', 'scale', '--detach', 'web=10']);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(10);
    await expect.poll(async () => (await containersOf('web')).length, POLL).toBe(10);
    await manager.dockerOk(['service', 'scale', '--detach', 'web=2']);
    await expect.poll(async () => (await containersOf('web')).length, POLL).toBe(2);
    expect(running(await tasksOf('web'))).toHaveLength(2);
  });

  it('rolls an image and env update out two tasks at a time, never below the replicas minus the parallelism', async () => {
    await manager.dockerOk(['service', 'scale', '--detach', 'web=4']);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(4);
    await manager.dockerOk(['service', 'update', '--detach', '--update-parallelism', '2', '--update-delay', '1s', '--image', releaseImage, '--env-add', 'RELEASE=2', 'web']);
    let fewestRunning = 4;
    await expect
      .poll(async () => {
        const current = running(await tasksOf('web'));
        fewestRunning = Math.min(fewestRunning, current.length);
        return current.filter((task) => task.Spec.ContainerSpec.Env?.includes('RELEASE=2') && task.Spec.ContainerSpec.Image === releaseImage).length;
      }, POLL)
      .toBe(4);
    expect(fewestRunning).toBeGreaterThanOrEqual(2);
    // The update completes once the last batch has been watched for the monitor period.
    await expect.poll(async () => (await manager.dockerOk(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', 'web'])).trim(), POLL).toBe('completed');
    for (const container of await containersOf('web')) {
      const inspected = await (await dockerClient()).getContainer(container.Id).inspect();
      expect(inspected.Config.Env).toContain('RELEASE=2');
      expect(inspected.Config.Image).toBe(releaseImage);
    }
  });

  it('rolls a failing update back when told to', async () => {
    await manager.dockerOk([
      'service', 'update', '--detach', '--update-failure-action', 'rollback', '--update-monitor', '3s', '--update-parallelism', '1',
      '--args', 'sh -c "exit 3"', 'web',
    ]);
    await expect.poll(async () => (await manager.dockerOk(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', 'web'])).trim(), POLL).toBe(
      'rollback_completed',
    );
    const args = await manager.dockerOk(['service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Args}}', 'web']);
    expect(JSON.parse(args)).toEqual(['sleep', '3600']);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(4);
    expect((await tasksOf('web')).some((task) => task.Status.Err === 'task: non-zero exit (3)')).toBe(true);
  });

  it('streams a service\'s logs, following new lines', async () => {
    await manager.dockerOk(['service', 'create', '--detach', '--name', 'talker', '--replicas', '1', TEST_IMAGE, 'sh', '-c', 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.2; done']);
    await expect.poll(async () => running(await tasksOf('talker')).length, POLL).toBe(1);
    const follower = spawn(DOCKER, ['service', 'logs', '-f', '--raw', 'talker'], {
      env: { PATH: process.env.PATH ?? '', DOCKER_HOST: manager.dockerHost, DOCKER_CONFIG: join(cluster.root, 'logs-config') },
    });
    let output = '';
    follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await expect.poll(() => output, POLL).toMatch(/line 1\n/);
      const seen = output.length;
      // Following: lines written after the first ones keep arriving on the same stream.
      await expect.poll(() => output.slice(seen), POLL).toMatch(/line \d+\n/);
    } finally {
      follower.kill();
    }
    const plain = await manager.dockerOk(['service', 'logs', 'talker']);
    expect(plain).toMatch(/^talker\.1\.\w+@shoal-e2e-(manager|worker-\d)\s+\| line 0$/m);
    await manager.dockerOk(['service', 'rm', 'talker']);
  });

  it('mounts a secret at /run/secrets/<name> in the container and nowhere on the disk of the agents or the store', async () => {
    const value = `shoal-e2e-secret-${randomBytes(12).toString('hex')}`;
    await manager.dockerOk(['secret', 'create', 'db_pass', '-'], { input: value });
    await manager.dockerOk(['service', 'create', '--detach', '--name', 'reader', '--secret', 'db_pass', TEST_IMAGE, 'sh', '-c', 'stat -c "%a %u" /run/secrets/db_pass; cat /run/secrets/db_pass; echo; sleep 3600']);
    await expect.poll(async () => running(await tasksOf('reader')).length, POLL).toBe(1);
    await expect.poll(async () => manager.dockerOk(['service', 'logs', '--raw', 'reader']), POLL).toContain(value);
    expect(await manager.dockerOk(['service', 'logs', '--raw', 'reader'])).toContain('444 0');
    for (const host of cluster.hosts) expect(SwarmCluster.filesContaining(host.agentDataDir, value)).toEqual([]);
    expect(SwarmCluster.filesContaining(manager.raftDataDir, value)).toEqual([]);
    const [container] = await containersOf('reader');
    expect(SwarmCluster.filesContaining(`/var/lib/docker/containers/${container!.Id}`, value).filter((file) => !file.endsWith('-json.log'))).toEqual([]);
    await manager.dockerOk(['service', 'rm', 'reader']);
    await expect.poll(async () => (await containersOf('reader', { all: true })).length, POLL).toBe(0);
  });

  it('moves the tasks off a drained node', async () => {
    const drained = workers[0]!;
    const drainedId = await nodeIdOf(drained);
    await manager.dockerOk(['service', 'scale', '--detach', 'web=6']);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(6);
    await manager.dockerOk(['node', 'update', '--availability', 'drain', drainedId]);
    await expect.poll(async () => running(await tasksOf('web')).filter((task) => task.NodeID === drainedId).length, POLL).toBe(0);
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(6);
    await expect.poll(async () => (await containersOf('web')).filter((c) => c.Labels['com.docker.swarm.node.id'] === drainedId).length, POLL).toBe(0);
    await manager.dockerOk(['node', 'update', '--availability', 'active', drainedId]);
  });

  it('adopts running containers when an agent restarts instead of restarting them', async () => {
    const host = workers[1]!;
    const nodeId = await nodeIdOf(host);
    // A forced update spreads the tasks over all three nodes again (the drain emptied one).
    await manager.dockerOk(['service', 'update', '--detach', '--force', '--update-parallelism', '0', 'web']);
    await expect.poll(async () => (await manager.dockerOk(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', 'web'])).trim(), POLL).toBe('completed');
    await expect.poll(async () => running(await tasksOf('web')).length, POLL).toBe(6);
    expect(running(await tasksOf('web')).filter((task) => task.NodeID === nodeId).length).toBeGreaterThan(0);
    const before = running(await tasksOf('web')).filter((task) => task.NodeID === nodeId).map((task) => task.ID).sort();
    const docker = await dockerClient();
    const startedAt = async () =>
      Promise.all((await containersOf('web')).filter((c) => c.Labels['com.docker.swarm.node.id'] === nodeId).map(async (c) => (await docker.getContainer(c.Id).inspect()).State.StartedAt));
    const startedBefore = (await startedAt()).sort();
    await host.restartAgent();
    await expect.poll(async () => (await manager.dockerOk(['node', 'inspect', '--format', '{{.Status.State}}', nodeId])).trim(), POLL).toBe('ready');
    expect(running(await tasksOf('web')).filter((task) => task.NodeID === nodeId).map((task) => task.ID).sort()).toEqual(before);
    expect((await startedAt()).sort()).toEqual(startedBefore);
  });

  it('marks a node whose agent was killed down after the heartbeat grace and reschedules its tasks', async () => {
    const host = workers[1]!;
    const nodeId = await nodeIdOf(host);
    expect(running(await tasksOf('web')).filter((task) => task.NodeID === nodeId).length).toBeGreaterThan(0);
    await host.killAgent();
    // The host's own API cannot tell where it stands without its agent, and says so rather than failing.
    expect((await host.dockerOk(['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.Error}}'])).trim()).toMatch(/^error this host's agent does not answer/);
    await expect.poll(async () => (await manager.dockerOk(['node', 'ls', '--format', '{{.ID}} {{.Status}}'])).includes(`${nodeId} Down`), POLL).toBe(true);
    await expect
      .poll(async () => {
        const current = running(await tasksOf('web'));
        return { count: current.length, onDownNode: current.filter((task) => task.NodeID === nodeId).length };
      }, POLL)
      .toEqual({ count: 6, onDownNode: 0 });
    await host.startAgent();
    await expect.poll(async () => (await manager.dockerOk(['node', 'inspect', '--format', '{{.Status.State}}', nodeId])).trim(), POLL).toBe('ready');
    // Back, the node's agent stops what the swarm replaced while it was away.
    await expect.poll(async () => (await containersOf('web')).filter((c) => c.Labels['com.docker.swarm.node.id'] === nodeId).length, POLL).toBe(0);
  });

  it('shows the same swarm to the docker 20.10 CLI', async () => {
    const nodes = await manager.dockerOk(['node', 'ls', '--format', '{{.Hostname}}'], { cli: DOCKER_CLIS[1].path });
    expect(nodes.trim().split('\n').sort()).toEqual(['shoal-e2e-manager', 'shoal-e2e-worker-1', 'shoal-e2e-worker-2']);
    expect(await manager.dockerOk(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'], { cli: DOCKER_CLIS[1].path })).toContain('web 6/6');
  });
});

describe('node certificates at the dispatcher', () => {
  /** The worker's own identity, as its agent keeps it. */
  function workerIdentity(host: SwarmHost) {
    const stored = JSON.parse(readFileSync(join(host.agentDataDir, 'node-identity.json'), 'utf8')) as { certPem: string; keyPem: string; caCertPem: string };
    return { ca: stored.caCertPem, cert: stored.certPem, key: stored.keyPem };
  }

  it('refuses a session to a certificate from another CA, even one naming a real node and the manager role', async () => {
    const nodeId = await nodeIdOf(workers[0]!);
    const foreign = createCertificateAuthority('swarm-ca').issue(nodeCertificateSubject(nodeId, 'swarm-manager', 'any-cluster'));
    const { ca } = workerIdentity(workers[0]!);
    const client = createClient(
      { address: manager.managerAddr, credentials: createChannelCredentials({ ca, cert: foreign.certPem, key: foreign.keyPem }), serverName: MANAGER_SERVER_NAME },
      DispatcherClient,
    );
    try {
      const session = serverStreamCall(client, DispatcherService.session, SessionRequest.fromPartial({}), { deadlineMs: 10_000 });
      await expect(session[Symbol.asyncIterator]().next()).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unauthenticated));
    } finally {
      client.close();
    }
  });

  it('refuses a worker certificate on a manager-only call', async () => {
    const client = createClient(
      { address: manager.managerAddr, credentials: createChannelCredentials(workerIdentity(workers[0]!)), serverName: MANAGER_SERVER_NAME },
      CAClient,
    );
    try {
      await expect(unaryCall(client, CAService.getUnlockKey, {})).rejects.toSatisfy((err) => hasCode(err, ErrorCode.PermissionDenied));
      // The same certificate is good for what a worker may do.
      expect((await unaryCall(client, CAService.getRootCaCertificate, {})).certificate.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it('issued the worker a certificate naming its node and the worker role', async () => {
    const { X509Certificate } = await import('node:crypto');
    const certificate = new X509Certificate(workerIdentity(workers[0]!).cert);
    expect(certificate.subject).toContain(`CN=${await nodeIdOf(workers[0]!)}`);
    expect(certificate.subject).toContain(`OU=${WORKER_ROLE}`);
  });
});
