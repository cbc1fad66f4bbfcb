import { describe, expect, it } from 'vitest';
import {
  PortConfig_Protocol,
  PortConfig_PublishMode,
  Privileges_AppArmorOpts_AppArmorMode,
  Privileges_SeccompOpts_SeccompMode,
  Task,
  newId,
} from '@shoal/proto';
import { containerCreateBody, imageReference } from '../src/docker/container-spec.js';

type TaskInit = Parameters<typeof Task.fromPartial>[0];

/** The create call for a task of service `web` whose container spec is `container`, plus `fields`. */
function bodyFor(container: NonNullable<NonNullable<TaskInit['spec']>['container']>, fields: TaskInit = {}) {
  const task = Task.fromPartial({
    id: newId(),
    slot: 1n,
    nodeId: 'node-1',
    serviceAnnotations: { name: 'web' },
    ...fields,
    spec: { ...fields.spec, container: { image: 'nginx', ...container } },
  });
  return containerCreateBody(task, task.spec!.container!, {}, []);
}

describe('the image reference', () => {
  it.each([
    ['nginx', 'nginx:latest'],
    ['nginx:1.27', 'nginx:1.27'],
    ['localhost:5000/team/app', 'localhost:5000/team/app:latest'],
    ['localhost:5000/team/app:2', 'localhost:5000/team/app:2'],
    ['nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'],
  ])('of %s is created and pulled as %s', (image, reference) => {
    expect(imageReference(image)).toBe(reference);
  });
});

describe('the create call', () => {
  it('joins a predefined network by name, and the default bridge otherwise', () => {
    const host = { network: { spec: { annotations: { name: 'host', labels: { 'com.docker.swarm.predefined': 'true' } } } } };
    const overlay = { network: { spec: { annotations: { name: 'backend', labels: {} } } } };
    expect(bodyFor({}, { networks: [host] }).HostConfig.NetworkMode).toBe('host');
    expect(bodyFor({}, { networks: [overlay] }).HostConfig.NetworkMode).toBe('bridge');
    expect(bodyFor({}).HostConfig.NetworkMode).toBe('bridge');
  });

  it('publishes host-mode ports on the node, a zero published port leaving the choice to the engine', () => {
    const body = bodyFor(
      {},
      {
        endpoint: {
          ports: [
            { targetPort: 80, publishedPort: 8080, protocol: PortConfig_Protocol.TCP, publishMode: PortConfig_PublishMode.HOST },
            { targetPort: 53, publishedPort: 0, protocol: PortConfig_Protocol.UDP, publishMode: PortConfig_PublishMode.HOST },
            { targetPort: 443, publishedPort: 30443, protocol: PortConfig_Protocol.TCP, publishMode: PortConfig_PublishMode.INGRESS },
          ],
        },
      },
    );
    expect(body.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
    expect(body.HostConfig.PortBindings).toEqual({ '80/tcp': [{ HostPort: '8080' }], '53/udp': [{}] });
  });

  it('turns the privileges into security options as moby writes them', () => {
    const body = bodyFor({
      privileges: {
        selinuxContext: { disable: false, user: 'system_u', role: 'system_r', type: 'svirt_lxc_net_t', level: 's0:c1' },
        seccomp: { mode: Privileges_SeccompOpts_SeccompMode.UNCONFINED },
        apparmor: { mode: Privileges_AppArmorOpts_AppArmorMode.DISABLED },
        noNewPrivileges: true,
      },
    });
    expect(body.HostConfig.SecurityOpt).toEqual([
      'label=user:system_u',
      'label=role:system_r',
      'label=level:s0:c1',
      'label=type:svirt_lxc_net_t',
      'seccomp=unconfined',
      'apparmor=unconfined',
      'no-new-privileges=true',
    ]);
  });

  it('gives swap on top of the memory limit, and -1 for unlimited swap', () => {
    const withSwap = (swapBytes: bigint) => bodyFor({}, { spec: { resources: { limits: { memoryBytes: 100n }, swapBytes } } }).HostConfig;
    expect(withSwap(50n)).toMatchObject({ Memory: 100, MemorySwap: 150 });
    expect(withSwap(-1n)).toMatchObject({ Memory: 100, MemorySwap: -1 });
    expect(bodyFor({}).HostConfig).not.toHaveProperty('MemorySwap');
  });

  it('passes the generic resources reserved for the task as DOCKER_RESOURCE_* variables after the spec environment', () => {
    const body = bodyFor(
      { env: ['A=1'] },
      {
        assignedGenericResources: [
          { namedResourceSpec: { kind: 'gpu', value: 'UUID1' } },
          { namedResourceSpec: { kind: 'gpu', value: 'UUID2' } },
          { discreteResourceSpec: { kind: 'ssd', value: 2n } },
        ],
      },
    );
    expect(body.Env).toEqual(['A=1', 'DOCKER_RESOURCE_GPU=UUID1,UUID2', 'DOCKER_RESOURCE_SSD=2']);
  });

  it('lets the swarm labels win over the spec, the task and the agent', () => {
    const task = Task.fromPartial({
      id: newId(),
      nodeId: 'node-1',
      annotations: { labels: { tier: 'task', 'com.docker.swarm.node.id': 'forged' } },
      spec: { container: { image: 'nginx', labels: { tier: 'spec', zone: 'a' } } },
    });
    const labels = containerCreateBody(task, task.spec!.container!, { zone: 'agent' }, []).Labels;
    expect(labels).toMatchObject({ tier: 'task', zone: 'agent', 'com.docker.swarm.node.id': 'node-1' });
  });
});
