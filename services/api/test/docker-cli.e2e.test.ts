import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Node, NodeRole, NodeSpec_Membership, NodeStatus_State } from '@shoal/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_CLIS, runDocker, type CliResult } from '@shoal/testkit';
import { ShoalHost } from './support/shoal-host.js';

const IMAGE = 'shoal/busybox:1';

const composeFile = `version: "3.8"
services:
  web:
    image: ${IMAGE}
    command: ["sleep", "1000"]
    networks: [front, back]
    secrets: [db_pass]
    deploy:
      replicas: 2
      update_config:
        parallelism: 1
        delay: 1s
      restart_policy:
        condition: on-failure
        max_attempts: 3
      placement:
        constraints: ["node.role==manager"]
  worker:
    image: ${IMAGE}
    command: ["sleep", "1000"]
    networks: [back]
networks:
  front:
    driver: overlay
  back:
    driver: overlay
    attachable: true
secrets:
  db_pass:
    file: ./db_pass.txt
`;

/** Table rows of a CLI listing, without the header, split on runs of two or more spaces. */
const rows = (output: string) =>
  output
    .trim()
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(/\s{2,}/));

describe.each(DOCKER_CLIS)('$name against Shoal', ({ path: cli }) => {
  /** For a 404, CLI 28 prints the server's message and CLI 20.10 its own wording (as recorded in the reference transcripts). */
  const byCli = (messages: { cli28: string; cli20: string }) => (cli === DOCKER_CLIS[0].path ? messages.cli28 : messages.cli20);
  let host: ShoalHost;
  let workDir: string;
  const docker = (args: string[], input?: string): Promise<CliResult> => runDocker(cli, host.dockerHost, args, { input, configDir: workDir });
  const ok = async (...args: string[]) => {
    const result = await docker(args);
    expect(result, `docker ${args.join(' ')}`).toMatchObject({ code: 0 });
    return result.stdout;
  };
  const fails = async (args: string[], message: string) => {
    const result = await docker(args);
    expect(result.code, `docker ${args.join(' ')} should fail`).not.toBe(0);
    expect(result.stderr).toContain(message);
  };

  beforeAll(async () => {
    host = await ShoalHost.start();
    workDir = mkdtempSync(join(tmpdir(), 'shoal-cli-test-'));
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('refuses manager-only commands before swarm init with Docker\'s message', async () => {
    await fails(['service', 'ls'], 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.');
    expect(await ok('info', '--format', '{{.Swarm.LocalNodeState}}')).toBe('inactive\n');
  });

  it('initialises a swarm, prints the worker join command, and refuses a second init', async () => {
    const output = await ok('swarm', 'init');
    const nodeId = (await ok('info', '--format', '{{.Swarm.NodeID}}')).trim();
    expect(nodeId).toMatch(/^[0-9a-z]{25}$/);
    expect(output).toContain(`Swarm initialized: current node (${nodeId}) is now a manager.`);
    expect(output).toMatch(/docker swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} 127\.0\.0\.1:\d+/);
    await fails(['swarm', 'init'], 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.');
    expect(await ok('info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}')).toBe('active true 1 1\n');
  });

  it('rotates the worker join token and only that one', async () => {
    const worker = (await ok('swarm', 'join-token', '-q', 'worker')).trim();
    const manager = (await ok('swarm', 'join-token', '-q', 'manager')).trim();
    expect(worker).not.toBe(manager);
    expect(await ok('swarm', 'join-token', '--rotate', 'worker')).toContain('Successfully rotated worker join token.');
    const rotated = (await ok('swarm', 'join-token', '-q', 'worker')).trim();
    expect(rotated).not.toBe(worker);
    // The CA digest part of the token stays; only the secret changes.
    expect(rotated.split('-').slice(0, 3)).toEqual(worker.split('-').slice(0, 3));
    expect((await ok('swarm', 'join-token', '-q', 'manager')).trim()).toBe(manager);
  });

  it('turns autolock on and prints the unlock key, then rotates it', async () => {
    const updated = await ok('swarm', 'update', '--autolock=true');
    expect(updated).toContain('Swarm updated.');
    const key = (await ok('swarm', 'unlock-key', '-q')).trim();
    expect(key).toMatch(/^SWMKEY-1-/);
    await ok('swarm', 'unlock-key', '--rotate');
    expect((await ok('swarm', 'unlock-key', '-q')).trim()).not.toBe(key);
    await ok('swarm', 'update', '--autolock=false');
    await fails(['swarm', 'unlock-key'], 'no unlock key is set');
    await fails(['swarm', 'unlock'], 'swarm is not locked');
  });

  it('lists, inspects and updates nodes, and refuses to demote the last manager', async () => {
    const [self] = rows(await ok('node', 'ls'));
    expect(self?.[0]).toMatch(/ \*$/);
    expect(self).toContain('Leader');
    const nodeId = self![0]!.replace(' *', '');
    await ok('node', 'update', '--label-add', 'zone=east', '--availability', 'drain', nodeId);
    expect(await ok('node', 'inspect', '--format', '{{.Spec.Availability}} {{index .Spec.Labels "zone"}}', 'self')).toBe('drain east\n');
    expect(await ok('node', 'inspect', '--pretty', nodeId)).toMatch(/Availability:\s+Drain/);
    await ok('node', 'update', '--availability', 'active', nodeId);
    expect(await ok('node', 'promote', nodeId)).toContain(`Node ${nodeId} is already a manager.`);
    await fails(['node', 'demote', nodeId], 'attempting to demote the last manager of the swarm');
    await fails(['node', 'inspect', 'nosuchnode'], byCli({ cli28: 'node nosuchnode not found', cli20: 'No such node: nosuchnode' }));
  });

  it('promotes and demotes a worker, and removes it only once it is down', async () => {
    const store = host.storeClient();
    try {
      const worker = Node.fromPartial({
        id: `w${Date.now().toString(36)}`.padEnd(25, '0').slice(0, 25),
        spec: { desiredRole: NodeRole.WORKER, membership: NodeSpec_Membership.ACCEPTED },
        role: NodeRole.WORKER,
        description: { hostname: 'worker-1', platform: { architecture: 'x86_64', os: 'linux' } },
        status: { state: NodeStatus_State.READY, addr: '10.0.0.9' },
      });
      // As the dispatcher records a node that joined (Shoal issue 6).
      await store.commit({ changes: [{ action: 'create', kind: 'node', object: worker }] });
      expect(await ok('node', 'promote', 'worker-1')).toContain('Node worker-1 promoted to a manager in the swarm.');
      expect(await ok('node', 'inspect', '--format', '{{.Spec.Role}}', worker.id)).toBe('manager\n');
      expect(await ok('node', 'demote', 'worker-1')).toContain('Manager worker-1 demoted in the swarm.');
      await fails(['node', 'rm', 'worker-1'], `node ${worker.id} is not down and can't be removed`);
      expect(await ok('node', 'rm', '--force', 'worker-1')).toContain('worker-1');
      expect(rows(await ok('node', 'ls'))).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('creates, lists, inspects and removes overlay networks with allocated subnets', async () => {
    const id = (await ok('network', 'create', '-d', 'overlay', '--attachable', '--label', 'team=a', 'front')).trim();
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    await fails(['network', 'create', '-d', 'overlay', 'front'], 'network with name front already exists');
    const listed = rows(await ok('network', 'ls'));
    expect(listed.map((row) => [row[1], row[2], row[3]])).toEqual(
      expect.arrayContaining([
        ['front', 'overlay', 'swarm'],
        ['ingress', 'overlay', 'swarm'],
      ]),
    );
    const [network] = JSON.parse(await ok('network', 'inspect', 'front')) as Array<{ Id: string; Attachable: boolean; IPAM: { Config: Array<{ Subnet: string; Gateway: string }> } }>;
    expect(network?.Id).toBe(id);
    expect(network?.Attachable).toBe(true);
    expect(network?.IPAM.Config).toEqual([{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }]);
    const [ingress] = JSON.parse(await ok('network', 'inspect', 'ingress')) as Array<{ Ingress: boolean; IPAM: { Config: Array<{ Subnet: string }> } }>;
    expect(ingress?.Ingress).toBe(true);
    expect(ingress?.IPAM.Config[0]?.Subnet).toBe('10.0.0.0/24');
    expect(await ok('network', 'ls', '-q', '-f', 'label=team=a')).toBe(`${id.slice(0, 12)}\n`);
    expect(await ok('network', 'rm', 'front')).toBe('front\n');
    await fails(['network', 'rm', 'front'], byCli({ cli28: 'network front not found', cli20: 'No such network: front' }));
  });

  it('creates secrets from a file and from stdin, never shows their data, and refuses removing one in use', async () => {
    const file = join(workDir, 'secret.txt');
    writeFileSync(file, 'from-a-file');
    const fromFile = (await ok('secret', 'create', '--label', 'kind=file', 'file_secret', file)).trim();
    expect(fromFile).toMatch(/^[0-9a-z]{25}$/);
    const fromStdin = await docker(['secret', 'create', 'stdin_secret', '-'], 'from-stdin');
    expect(fromStdin.code).toBe(0);
    await fails(['secret', 'create', 'file_secret', file], 'secret file_secret already exists');
    expect(rows(await ok('secret', 'ls')).map((row) => row[1]).sort()).toEqual(['file_secret', 'stdin_secret']);
    const inspected = await ok('secret', 'inspect', 'file_secret');
    expect(JSON.parse(inspected)[0].Spec).toEqual({ Name: 'file_secret', Labels: { kind: 'file' } });
    expect(inspected).not.toContain(Buffer.from('from-a-file').toString('base64'));
    await ok('service', 'create', '-d', '--name', 'uses_secret', '--secret', 'file_secret', IMAGE, 'sleep', '1000');
    await fails(['secret', 'rm', 'file_secret'], "secret 'file_secret' is in use by the following service: uses_secret");
    await ok('service', 'rm', 'uses_secret');
    expect(await ok('secret', 'rm', 'file_secret', 'stdin_secret')).toBe('file_secret\nstdin_secret\n');
  });

  it('creates, inspects and removes configs, showing their data', async () => {
    const file = join(workDir, 'app.conf');
    writeFileSync(file, 'listen 80\n');
    await ok('config', 'create', 'app_conf', file);
    expect(await ok('config', 'inspect', '--pretty', 'app_conf')).toContain('listen 80');
    expect(rows(await ok('config', 'ls')).map((row) => row[1])).toEqual(['app_conf']);
    expect(await ok('config', 'rm', 'app_conf')).toBe('app_conf\n');
  });

  it('creates, lists, inspects, updates, scales, rolls back and removes a service', async () => {
    await ok('network', 'create', '-d', 'overlay', 'svcnet');
    const id = (await ok('service', 'create', '-d', '--name', 'web', '--network', 'svcnet', '-p', '8080:80', '--env', 'A=1', IMAGE, 'sleep', '1000')).trim();
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    await fails(['service', 'create', '-d', '--name', 'web', IMAGE], 'service web already exists');
    await fails(['service', 'create', '-d', '--name', 'web2', '-p', '8080:80', IMAGE], `port '8080' is already in use by service 'web' (${id}) as an ingress port`);
    const [listed] = rows(await ok('service', 'ls'));
    expect(listed?.slice(1, 4)).toEqual(['web', 'replicated', '0/1']);
    const pretty = await ok('service', 'inspect', '--pretty', 'web');
    expect(pretty).toContain('Replicas:\t1');
    expect(pretty).toContain('Networks: svcnet');
    const [inspected] = JSON.parse(await ok('service', 'inspect', 'web'));
    expect(inspected.Spec.TaskTemplate.ContainerSpec.Env).toEqual(['A=1']);
    expect(inspected.Spec.RestartPolicy ?? inspected.Spec.TaskTemplate.RestartPolicy).toEqual({ Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 });
    await ok('service', 'update', '-d', '--env-add', 'B=2', 'web');
    const [updated] = JSON.parse(await ok('service', 'inspect', 'web'));
    // The CLI merges --env-add through a map, so the order it sends varies.
    expect([...updated.Spec.TaskTemplate.ContainerSpec.Env].sort()).toEqual(['A=1', 'B=2']);
    expect(updated.PreviousSpec.TaskTemplate.ContainerSpec.Env).toEqual(['A=1']);
    expect(await ok('service', 'scale', '-d', 'web=3')).toContain('web scaled to 3');
    expect(await ok('service', 'inspect', '--format', '{{.Spec.Mode.Replicated.Replicas}}', 'web')).toBe('3\n');
    await ok('service', 'rollback', '-d', 'web');
    const [rolledBack] = JSON.parse(await ok('service', 'inspect', 'web'));
    expect(rolledBack.Spec.Mode.Replicated.Replicas).toBe(1);
    expect(rolledBack.UpdateStatus).toMatchObject({ State: 'rollback_started', Message: 'manually requested rollback' });
    // create v1, env v2, scale v3, rollback to v2: the next spec is v4, never the rolled-back v3 again.
    await ok('service', 'update', '-d', '--env-add', 'C=3', 'web');
    const store = host.storeClient();
    try {
      const stored = await store.get('service', rolledBack.ID);
      expect(stored.specVersion?.index).toBe(4n);
      expect(stored.previousSpecVersion?.index).toBe(2n);
    } finally {
      store.close();
    }
    expect(await ok('service', 'rm', 'web')).toBe('web\n');
    await fails(['service', 'inspect', 'web'], 'no such service: web');
    await ok('network', 'rm', 'svcnet');
  });

  it('deploys a stack from a compose file purely through the API, lists it and removes it', async () => {
    writeFileSync(join(workDir, 'db_pass.txt'), 's3cret');
    const compose = join(workDir, 'stack.yml');
    writeFileSync(compose, composeFile);
    const deployed = await docker(['stack', 'deploy', '-c', compose, 'app']);
    expect(deployed.code, deployed.stderr).toBe(0);
    for (const line of ['Creating network app_front', 'Creating network app_back', 'Creating secret app_db_pass', 'Creating service app_web', 'Creating service app_worker']) {
      expect(deployed.stdout).toContain(line);
    }
    expect(rows(await ok('stack', 'ls'))[0]?.slice(0, 2)).toEqual(['app', '2']);
    const services = rows(await ok('stack', 'services', 'app')).map((row) => [row[1], row[2], row[3]]);
    expect(services.sort()).toEqual([
      ['app_web', 'replicated', '0/2'],
      ['app_worker', 'replicated', '0/1'],
    ]);
    const [web] = JSON.parse(await ok('service', 'inspect', 'app_web'));
    expect(web.Spec.TaskTemplate.Placement.Constraints).toEqual(['node.role==manager']);
    expect(web.Spec.TaskTemplate.RestartPolicy).toMatchObject({ Condition: 'on-failure', MaxAttempts: 3 });
    expect(web.Spec.UpdateConfig).toMatchObject({ Parallelism: 1, Delay: 1_000_000_000 });
    expect(web.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe('app_db_pass');
    const networkIds = web.Spec.TaskTemplate.Networks.map((network: { Target: string }) => network.Target);
    expect(networkIds.every((target: string) => /^[0-9a-z]{25}$/.test(target))).toBe(true);
    // A second deploy updates in place.
    const redeployed = await docker(['stack', 'deploy', '-c', compose, 'app']);
    expect(redeployed.stdout).toContain('Updating service app_web');
    // No orchestrator yet (Shoal issue 5): the stack has no tasks, which stack ps reports as Docker does.
    const ps = await docker(['stack', 'ps', 'app']);
    expect(`${ps.stdout}${ps.stderr}`).toContain('nothing found in stack: app');
    const removed = await ok('stack', 'rm', 'app');
    for (const line of ['Removing service app_web', 'Removing service app_worker', 'Removing secret app_db_pass', 'Removing network app_front', 'Removing network app_back']) {
      expect(removed).toContain(line);
    }
    expect(await ok('stack', 'ls')).not.toContain('app');
    expect(await ok('network', 'ls', '-q', '-f', 'label=com.docker.stack.namespace=app')).toBe('');
  });

  it('leaves the swarm with --force only', async () => {
    await fails(['swarm', 'leave'], 'You are attempting to leave the swarm on a node that is participating as a manager.');
    expect(await ok('swarm', 'leave', '--force')).toContain('Node left the swarm.');
    expect(await ok('info', '--format', '{{.Swarm.LocalNodeState}}')).toBe('inactive\n');
  });
});
