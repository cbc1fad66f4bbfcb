import { ErrorCode, isShoalError, type ShoalError } from '@shoal/errors';
import type { ServiceSpec } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { serviceSpecFromDocker } from '../src/convert/service.js';
import { validateServiceSpec, validateServiceSpecUpdate } from '../src/convert/service-validation.js';

type Json = Record<string, unknown>;

/** The spec of a service `web` running busybox, with the given parts of the container, template and spec. */
function spec(container: Json = {}, template: Json = {}, top: Json = {}): ServiceSpec {
  return serviceSpecFromDocker({
    Name: 'web',
    TaskTemplate: { ContainerSpec: { Image: 'busybox:1', ...container }, ...template },
    ...top,
  });
}

function rejection(check: () => void): ShoalError {
  try {
    check();
  } catch (err) {
    if (isShoalError(err)) return err;
    throw err;
  }
  throw new Error('the spec was accepted');
}

function invalid(service: ServiceSpec): string {
  const error = rejection(() => validateServiceSpec(service));
  expect(error.code).toBe(ErrorCode.InvalidArgument);
  return error.message;
}

const secret = (name: string, target: string, id = `${name}-id`) => ({
  File: { Name: target, UID: '0', GID: '0', Mode: 0o444 },
  SecretID: id,
  SecretName: name,
});

const config = (name: string, target: string) => ({
  File: { Name: target, UID: '0', GID: '0', Mode: 0o444 },
  ConfigID: `${name}-id`,
  ConfigName: name,
});

describe('validateServiceSpec', () => {
  it('accepts a spec using every kind of field correctly', () => {
    const full = spec(
      {
        Mounts: [
          { Type: 'volume', Source: 'data', Target: '/data' },
          { Type: 'volume', Target: '/anonymous' },
          { Type: 'bind', Source: '/srv', Target: '/srv' },
          { Type: 'tmpfs', Target: '/tmp' },
        ],
        Healthcheck: { Test: ['CMD', 'true'], Interval: 1e6, Timeout: 2e9, Retries: 0 },
        Secrets: [secret('a', 'a'), secret('b', 'b')],
        Configs: [config('c', '/etc/c'), { Runtime: {}, ConfigID: 'cred-id', ConfigName: 'cred' }],
        Privileges: { CredentialSpec: { Config: 'cred-id' } },
      },
      {
        Resources: { Limits: { NanoCPUs: 1e6, MemoryBytes: 4 * 1024 * 1024 }, Reservations: { NanoCPUs: 0 } },
        RestartPolicy: { Delay: 0, Window: 1e9 },
        Placement: { Constraints: ['node.role==manager', 'node.labels.zone != east-1', 'engine.labels.os==linux'] },
      },
      {
        UpdateConfig: { Delay: 0, Monitor: 1e9, MaxFailureRatio: 1 },
        RollbackConfig: { MaxFailureRatio: 0 },
        EndpointSpec: {
          Ports: [
            { TargetPort: 80, PublishedPort: 8080 },
            { Protocol: 'udp', TargetPort: 80, PublishedPort: 8080 },
            { TargetPort: 81 },
            { TargetPort: 82 },
          ],
        },
      },
    );
    expect(() => validateServiceSpec(full)).not.toThrow();
  });

  it.each([
    ['', 'meta: name must be provided'],
    ['my.service', 'name must be valid as a DNS name component'],
    ['-web', 'name must be valid as a DNS name component'],
    ['web-', 'name must be valid as a DNS name component'],
    [`${'a'.repeat(5000)}!`, 'name must be valid as a DNS name component'],
    ['a'.repeat(64), 'name must be 63 characters or fewer'],
  ])('refuses the service name %j', (name, message) => {
    expect(invalid(spec({}, {}, { Name: name }))).toBe(message);
  });

  it('accepts names of letters, digits, dashes and underscores of up to 63 characters', () => {
    for (const name of ['web', 'Web_1', 'probe_st28_web', 'a--b__c', 'a'.repeat(63)]) {
      expect(() => validateServiceSpec(spec({}, {}, { Name: name }))).not.toThrow();
    }
  });

  it('refuses a container without an image', () => {
    expect(invalid(spec({ Image: '' }))).toBe('ContainerSpec: image reference must be provided');
  });

  it.each([
    'Busybox',
    'busybox:-1',
    'busybox@sha256:abc',
    `busybox@sha256:${'A'.repeat(64)}`,
    `busybox@md5:${'a'.repeat(32)}`,
    'a'.repeat(64).replace(/a/g, 'f'),
    `${'a'.repeat(250)}/busybox`,
    'registry..example.com/app',
    'team//app',
  ])('refuses the image reference %s', (image) => {
    expect(invalid(spec({ Image: image }))).toBe(`ContainerSpec: ${JSON.stringify(image)} is not a valid repository/tag`);
  });

  it('accepts image references with registries, ports, tags and digests', () => {
    const images = [
      'busybox',
      'swarmtest/busybox:1',
      `swarmtest/busybox:1@sha256:${'0'.repeat(64)}`,
      'localhost:5000/team/app:v1.2',
      'Registry.Example.com/app',
      '[::1]:5000/app',
      'docker.io/library/a_b__c-d.e:latest',
    ];
    for (const image of images) expect(() => validateServiceSpec(spec({ Image: image }))).not.toThrow();
  });

  it.each([
    ['a relative target', { Type: 'volume', Source: 'v', Target: 'data' }, 'invalid mount target, must be an absolute path: data'],
    ['no target', { Type: 'volume', Source: 'v' }, 'invalid mount target, must be an absolute path: '],
    ['a bind without a source', { Type: 'bind', Target: '/data' }, 'invalid bind mount source, must be an absolute path: '],
    ['a bind of a relative path', { Type: 'bind', Source: 'srv', Target: '/data' }, 'invalid bind mount source, must be an absolute path: srv'],
    ['a volume named by a path', { Type: 'volume', Source: '/srv', Target: '/data' }, 'invalid volume mount source, must not be an absolute path: /srv'],
    ['a tmpfs with a source', { Type: 'tmpfs', Source: 'x', Target: '/tmp' }, 'invalid tmpfs source, source must be empty'],
    ['a named pipe without a source', { Type: 'npipe', Target: '\\\\.\\pipe\\x' }, 'invalid npipe source, source must not be empty'],
    ['a cluster volume', { Type: 'cluster', Source: 'csi', Target: '/data' }, 'invalid mount type: cluster'],
  ])('refuses a mount with %s', (_case, mount, message) => {
    expect(invalid(spec({ Mounts: [mount] }))).toBe(message);
  });

  it('refuses two mounts on one target', () => {
    const mounts = [
      { Type: 'volume', Source: 'a', Target: '/data' },
      { Type: 'tmpfs', Target: '/data' },
    ];
    expect(invalid(spec({ Mounts: mounts }))).toBe('ContainerSpec: duplicate mount point: /data');
  });

  it.each([
    ['Interval', { Interval: 999_999 }, 'ContainerSpec: Interval in HealthConfig cannot be less than 1ms'],
    ['Timeout', { Timeout: -1 }, 'ContainerSpec: Timeout in HealthConfig cannot be less than 1ms'],
    ['StartPeriod', { StartPeriod: 1 }, 'ContainerSpec: StartPeriod in HealthConfig cannot be less than 1ms'],
    ['StartInterval', { StartInterval: 10 }, 'ContainerSpec: StartInterval in HealthConfig cannot be less than 1ms'],
    ['Retries', { Retries: -1 }, 'ContainerSpec: Retries in HealthConfig cannot be negative'],
  ])('refuses a healthcheck %s out of range', (_field, healthcheck, message) => {
    expect(invalid(spec({ Healthcheck: { Test: ['CMD', 'true'], ...healthcheck } }))).toBe(message);
  });

  it.each([
    ['half a thousandth of a CPU', { Limits: { NanoCPUs: 500_000 } }, 'invalid cpu value 0.0005: Must be at least 0.001'],
    ['a reservation of 50µ CPUs', { Reservations: { NanoCPUs: 50_000 } }, 'invalid cpu value 5e-05: Must be at least 0.001'],
    ['a negative CPU limit', { Limits: { NanoCPUs: -2e15 } }, 'invalid cpu value -2e+06: Must be at least 0.001'],
    ['1 KiB of memory', { Limits: { MemoryBytes: 1024 } }, 'invalid memory value 1024: Must be at least 4MiB'],
    ['a reservation just under 4 MiB', { Reservations: { MemoryBytes: 4 * 1024 * 1024 - 1 } }, 'invalid memory value 4194303: Must be at least 4MiB'],
  ])('refuses %s', (_case, resources, message) => {
    expect(invalid(spec({}, { Resources: resources }))).toBe(message);
  });

  it.each([
    ['restart delay', { RestartPolicy: { Delay: -1 } }, {}, 'TaskSpec: restart-delay cannot be negative'],
    ['restart window', { RestartPolicy: { Window: -1 } }, {}, 'TaskSpec: restart-window cannot be negative'],
    ['update delay', {}, { UpdateConfig: { Delay: -1 } }, 'TaskSpec: update-delay cannot be negative'],
    ['update monitor', {}, { UpdateConfig: { Monitor: -1 } }, 'TaskSpec: update-monitor cannot be negative'],
    ['rollback delay', {}, { RollbackConfig: { Delay: -1 } }, 'TaskSpec: rollback-delay cannot be negative'],
  ])('refuses a negative %s', (_case, template, top, message) => {
    expect(invalid(spec({}, template, top))).toBe(message);
  });

  it.each([
    ['an update', 'UpdateConfig', 1.5, 'TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1'],
    ['a rollback', 'RollbackConfig', -0.1, 'TaskSpec: rollback-maxfailureratio cannot be less than 0 or bigger than 1'],
  ])('refuses a failure ratio outside [0, 1] for %s', (_case, key, ratio, message) => {
    expect(invalid(spec({}, {}, { [key]: { MaxFailureRatio: ratio } }))).toBe(message);
  });

  it.each([
    ['node.role', 'constraint expected one operator from ==, !='],
    ['node.role>manager', 'constraint expected one operator from ==, !='],
    ['node role==manager', "key 'node role' is invalid"],
    ['==manager', "key '' is invalid"],
    ['node.role==man>ager', "value 'man>ager' is invalid"],
    ['node.role==a!=b', "value 'a!=b' is invalid"],
    ['node.role==', "value '' is invalid"],
  ])('refuses the placement constraint %j', (constraint, message) => {
    expect(invalid(spec({}, { Placement: { Constraints: [constraint] } }))).toBe(message);
  });

  it.each([
    ['without an ID', [{ ...secret('a', 'a'), SecretID: '' }], 'malformed secret reference'],
    ['without a name', [{ ...secret('a', 'a'), SecretName: '' }], 'malformed secret reference'],
    ['without a target', [{ SecretID: 'a-id', SecretName: 'a' }], 'malformed secret reference, no target provided'],
    ['with an empty file name', [secret('a', '')], 'malformed file secret reference, invalid target file name provided'],
    ['sharing a target', [secret('a', 'x'), secret('b', 'x')], "secret references 'a' and 'b' have a conflicting target: 'x'"],
  ])('refuses secrets %s', (_case, secrets, message) => {
    expect(invalid(spec({ Secrets: secrets }))).toBe(message);
  });

  it.each([
    ['without an ID', [{ ...config('a', '/a'), ConfigID: '' }], 'malformed config reference'],
    ['with an empty file name', [config('a', '')], 'malformed file config reference, invalid target file name provided'],
    ['sharing a target', [config('a', '/x'), config('b', '/x')], "config references 'a' and 'b' have a conflicting target: '/x'"],
  ])('refuses configs %s', (_case, configs, message) => {
    expect(invalid(spec({ Configs: configs }))).toBe(message);
  });

  it('refuses a credential spec naming a config that is not attached to the runtime', () => {
    const service = spec({ Privileges: { CredentialSpec: { Config: 'cred-id' } }, Configs: [config('cred', '/cred')] });
    expect(invalid(service)).toBe(
      "CredentialSpec references config 'cred-id', but that config isn't in config references with RuntimeTarget",
    );
  });

  it('refuses a task without a runtime, and a runtime other than containers as unimplemented', () => {
    const withoutRuntime = spec();
    withoutRuntime.task!.container = undefined;
    expect(invalid(withoutRuntime)).toBe('TaskSpec: missing runtime');
    const attachment = spec();
    attachment.task!.container = undefined;
    attachment.task!.attachment = { containerId: 'c0ffee' };
    const error = rejection(() => validateServiceSpec(attachment));
    expect([error.code, error.message]).toEqual([ErrorCode.Unimplemented, 'RuntimeSpec: unimplemented runtime in service spec']);
  });

  it('refuses a spec without a mode, and an update config on a job', () => {
    const modeless = spec();
    modeless.replicated = undefined;
    expect(invalid(modeless)).toBe('Unrecognized service mode');
    for (const mode of [{ ReplicatedJob: {} }, { GlobalJob: {} }]) {
      expect(invalid(spec({}, {}, { Mode: mode, UpdateConfig: { Parallelism: 1 } }))).toBe('Jobs may not have an update config');
      expect(() => validateServiceSpec(spec({}, {}, { Mode: mode }))).not.toThrow();
    }
  });

  it('refuses routing-mesh ports with DNS round robin but allows host-mode ones', () => {
    const ports = (publishMode: string) => ({ EndpointSpec: { Mode: 'dnsrr', Ports: [{ TargetPort: 80, PublishMode: publishMode }] } });
    expect(invalid(spec({}, {}, ports('ingress')))).toBe(
      "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
    );
    expect(() => validateServiceSpec(spec({}, {}, ports('host')))).not.toThrow();
  });

  it('refuses the same published port and protocol twice', () => {
    const ports = [
      { TargetPort: 80, PublishedPort: 8080 },
      { TargetPort: 81, PublishedPort: 8080, PublishMode: 'host' },
    ];
    expect(invalid(spec({}, {}, { EndpointSpec: { Ports: ports } }))).toBe('EndpointSpec: duplicate published ports provided');
  });
});

describe('validateServiceSpecUpdate', () => {
  const unimplemented = (current: ServiceSpec, next: ServiceSpec) => {
    const error = rejection(() => validateServiceSpecUpdate(current, next));
    expect(error.code).toBe(ErrorCode.Unimplemented);
    return error.message;
  };

  it('accepts a changed spec that keeps the name and mode', () => {
    expect(() => validateServiceSpecUpdate(spec(), spec({ Env: ['A=1'] }, {}, { Mode: { Replicated: { Replicas: 5 } } }))).not.toThrow();
  });

  it('refuses a rename', () => {
    expect(unimplemented(spec(), spec({}, {}, { Name: 'api' }))).toBe('renaming services is not supported');
  });

  it.each([
    ['global', { Global: {} }],
    ['replicated job', { ReplicatedJob: {} }],
    ['global job', { GlobalJob: {} }],
  ])('refuses changing a replicated service to %s', (_case, mode) => {
    expect(unimplemented(spec(), spec({}, {}, { Mode: mode }))).toBe('service mode change is not allowed');
  });

  it('refuses changing the deprecated service networks alone, but allows moving them to the task', () => {
    const legacy = spec({}, {}, { Networks: [{ Target: 'net1' }] });
    expect(unimplemented(legacy, spec({}, {}, { Networks: [{ Target: 'net2' }] }))).toBe(
      'networks must be migrated to TaskSpec before being changed',
    );
    expect(() => validateServiceSpecUpdate(legacy, spec({}, { Networks: [{ Target: 'net1' }] }))).not.toThrow();
  });
});
