import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, hasCode } from '@shoal/errors';
import {
  Endpoint,
  JobStatus,
  Service,
  ServiceSpec,
  UpdateStatus,
  UpdateStatus_UpdateState,
} from '@shoal/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../src/convert/decode.js';
import { serviceSpecFromDocker, serviceSpecToDocker, serviceToDocker } from '../src/convert/service.js';
import { validateServiceSpec } from '../src/convert/service-validation.js';
import { portConfigFromDocker, taskSpecFromDocker, taskSpecToDocker } from '../src/convert/task.js';

/** One recorded request and its response, from shared/reference/docker-api-transcripts. */
interface Exchange {
  file: string;
  method: string;
  path: string;
  query: string;
  status: number;
  /** Parsed JSON; absent when there was none or the recorder truncated it. */
  body?: unknown;
  response?: unknown;
}

function transcriptsDir(): string {
  const reference =
    process.env['SHOAL_REFERENCE_DIR'] ?? fileURLToPath(new URL('../../../../shared/reference/', import.meta.url));
  return join(reference, 'docker-api-transcripts');
}

/**
 * Reads every transcript: `-> +0.01s METHOD /path?query`, an optional `   body: {json}`, then
 * `<- STATUS Text  [content-type]` and the response, all bodies indented by three spaces.
 */
function readExchanges(): Exchange[] {
  const exchanges: Exchange[] = [];
  for (const file of readdirSync(transcriptsDir()).filter((name) => name.endsWith('.txt')).sort()) {
    let current: Exchange | undefined;
    let collecting: 'body' | 'response' | undefined;
    let lines: string[] = [];
    const finish = () => {
      if (current !== undefined && collecting !== undefined && lines.length > 0) {
        try {
          current[collecting] = JSON.parse(lines.join('\n'));
        } catch {
          // A truncated or non-JSON body: nothing to compare with.
        }
      }
      collecting = undefined;
      lines = [];
    };
    for (const line of readFileSync(join(transcriptsDir(), file), 'utf8').split('\n')) {
      const request = /^-> \+[\d.]+s (\S+) ([^?\s]+)\??(\S*)/.exec(line);
      const response = /^<- (\d+)/.exec(line);
      if (request !== null) {
        finish();
        current = { file, method: request[1]!, path: request[2]!, query: request[3]!, status: 0 };
        exchanges.push(current);
      } else if (response !== null && current !== undefined) {
        finish();
        current.status = Number(response[1]);
        collecting = 'response';
      } else if (line.startsWith('   body: ') && current !== undefined) {
        finish();
        collecting = 'body';
        lines.push(line.slice('   body: '.length));
      } else if (line.startsWith('   ') && collecting !== undefined) {
        lines.push(line.slice(3));
      } else {
        finish();
      }
    }
    finish();
  }
  return exchanges;
}

type Json = Record<string, any>;

const exchanges = readExchanges();

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every service dockerd returned, with the request that returned it; repeated polls of one version once. */
const storedServices = [
  ...new Map(
    exchanges.flatMap((exchange) => {
      if (exchange.method !== 'GET' || !/\/services(\/[^/]+)?$/.test(exchange.path)) return [];
      const services = Array.isArray(exchange.response) ? exchange.response : [exchange.response];
      const insertDefaults = exchange.query.includes('insertDefaults=true');
      return services
        .filter((service): service is Json => isObject(service) && isObject(service['Spec']))
        .map((service) => {
          const key = `${service['ID']}@${service['Version']['Index']} ${insertDefaults} ${'ServiceStatus' in service}`;
          return [key, { exchange, service, insertDefaults }] as const;
        });
    }),
  ).values(),
];

/** Network names the recorded CLIs used, with the IDs dockerd gave them. */
const networkIdByName = new Map<string, string>(
  exchanges.flatMap((exchange): [string, string][] => {
    const { body, response } = exchange;
    if (exchange.method === 'POST' && exchange.path.endsWith('/networks/create') && isObject(body) && isObject(response)) {
      return [[body['Name'], response['Id']]];
    }
    if (exchange.method !== 'GET' || !exchange.path.includes('/networks')) return [];
    const networks = Array.isArray(response) ? response : [response];
    return networks.filter(isObject).map((network) => [network['Name'], network['Id']]);
  }),
);

/** Stands in for the route layer, which resolves stack deploy's network names to IDs before storing. */
function resolveNetworkNames(spec: ServiceSpec): ServiceSpec {
  for (const network of spec.task?.networks ?? []) network.target = networkIdByName.get(network.target) ?? network.target;
  return spec;
}

const versionOf = (service: Json): number => service['Version']['Index'];

/** The successful create and update requests; a rollback's body is the current spec, which dockerd ignores. */
const specRequests = exchanges.flatMap((exchange) => {
  const create = exchange.path.endsWith('/services/create');
  const update = /\/services\/([a-z0-9]+)\/update$/.exec(exchange.path);
  if (exchange.method !== 'POST' || (!create && update === null) || exchange.query.includes('rollback=previous')) return [];
  if (exchange.status >= 300 || !isObject(exchange.body)) return [];
  const serviceId = create ? (exchange.response as Json | undefined)?.['ID'] : update?.[1];
  const versionBefore = create ? 0 : Number(/version=(\d+)/.exec(exchange.query)?.[1]);
  const label = `${exchange.file} ${create ? 'create' : 'update'} of ${exchange.body['Name']}`;
  return [{ label, exchange, body: exchange.body, serviceId: serviceId as string, versionBefore }];
});

/**
 * The first stored spec dockerd returned after a request, when no other recorded request changed
 * the service in between: what the request's spec became.
 */
function storedAfter(request: (typeof specRequests)[number]) {
  const later = storedServices
    .filter(({ service }) => service['ID'] === request.serviceId && versionOf(service) > request.versionBefore)
    .sort((a, b) => versionOf(a.service) - versionOf(b.service));
  const first = later[0];
  if (first === undefined) return undefined;
  const overtaken = specRequests.some(
    (other) =>
      other.serviceId === request.serviceId &&
      other.versionBefore > request.versionBefore &&
      other.versionBefore < versionOf(first.service),
  );
  return overtaken ? undefined : first;
}

const pairedRequests = specRequests.flatMap((request) => {
  const stored = storedAfter(request);
  return stored === undefined ? [] : [{ ...request, stored }];
});


/** Stored specs as the CLI reads them back before an update (`?insertDefaults=false`). */
const storedSpecs = storedServices
  .filter(({ insertDefaults }) => !insertDefaults)
  .flatMap(({ exchange, service }) => [
    { label: `${exchange.file} ${service['Spec']['Name']}@${versionOf(service)}`, spec: service['Spec'] as Json },
    ...(isObject(service['PreviousSpec'])
      ? [{ label: `${exchange.file} previous spec of ${service['Spec']['Name']}`, spec: service['PreviousSpec'] }]
      : []),
  ]);

/** `docker service inspect` output (`?insertDefaults=true`) beside the same version read without defaults. */
const defaultedSpecs = storedServices
  .filter(({ insertDefaults }) => insertDefaults)
  .flatMap(({ exchange, service }) => {
    const plain = storedServices.find(
      (other) =>
        !other.insertDefaults &&
        other.service['ID'] === service['ID'] &&
        versionOf(other.service) === versionOf(service),
    );
    const label = `${exchange.file} ${service['Spec']['Name']}@${versionOf(service)}`;
    return plain === undefined ? [] : [{ label, stored: plain.service['Spec'] as Json, shown: service['Spec'] as Json }];
  });

/** Every task dockerd listed, each once. */
const recordedTasks = [
  ...new Map(
    exchanges
      .filter((exchange) => exchange.method === 'GET' && /\/tasks(\/[^/]+)?$/.test(exchange.path))
      .flatMap((exchange) => (Array.isArray(exchange.response) ? exchange.response : [exchange.response]))
      .filter((task): task is Json => isObject(task) && isObject(task['Spec']))
      .map((task) => [`${task['ID']}@${versionOf(task)}`, task] as const),
  ).values(),
];

/** What JSON.stringify makes of a value: undefined properties gone, as on the wire. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Recorded times carry nanoseconds where ours carry milliseconds; cut them to what we can show. */
function atMillisecondPrecision(value: unknown): unknown {
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) {
    return new Date(value).toISOString().replace(/\.?0+Z$/, 'Z');
  }
  if (Array.isArray(value)) return value.map(atMillisecondPrecision);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, atMillisecondPrecision(v)]));
  return value;
}

const updateStateByName: Record<string, UpdateStatus_UpdateState> = {
  updating: UpdateStatus_UpdateState.UPDATING,
  paused: UpdateStatus_UpdateState.PAUSED,
  completed: UpdateStatus_UpdateState.COMPLETED,
  rollback_started: UpdateStatus_UpdateState.ROLLBACK_STARTED,
  rollback_paused: UpdateStatus_UpdateState.ROLLBACK_PAUSED,
  rollback_completed: UpdateStatus_UpdateState.ROLLBACK_COMPLETED,
};

const optionalDate = (text: string | undefined) => (text === undefined ? undefined : new Date(text));

/** The stored Service a recorded GET /services response was made from. */
function serviceFromRecorded(recorded: Json): Service {
  const endpoint: Json = recorded['Endpoint'];
  const updateStatus: Json | undefined = recorded['UpdateStatus'];
  const jobStatus: Json | undefined = recorded['JobStatus'];
  const endpointSpec: Json = endpoint['Spec'];
  return Service.create({
    id: recorded['ID'],
    meta: {
      version: { index: BigInt(versionOf(recorded)) },
      createdAt: new Date(recorded['CreatedAt']),
      updatedAt: new Date(recorded['UpdatedAt']),
    },
    spec: serviceSpecFromDocker(recorded['Spec']),
    previousSpec: recorded['PreviousSpec'] && serviceSpecFromDocker(recorded['PreviousSpec']),
    endpoint: Endpoint.create({
      spec:
        Object.keys(endpointSpec).length === 0
          ? undefined
          : serviceSpecFromDocker({ TaskTemplate: { ContainerSpec: {} }, EndpointSpec: endpointSpec }).endpoint,
      ports: (endpoint['Ports'] ?? []).map((port: Json) => portConfigFromDocker(Decoder.root(port, 'PortConfig'))),
      virtualIps: (endpoint['VirtualIPs'] ?? []).map((vip: Json) => ({ networkId: vip['NetworkID'], addr: vip['Addr'] })),
    }),
    updateStatus:
      updateStatus &&
      UpdateStatus.create({
        state: updateStateByName[updateStatus['State']],
        startedAt: optionalDate(updateStatus['StartedAt']),
        completedAt: optionalDate(updateStatus['CompletedAt']),
        message: updateStatus['Message'],
      }),
    jobStatus:
      jobStatus &&
      JobStatus.create({
        jobIteration: { index: BigInt(jobStatus['JobIteration']['Index'] ?? 0) },
        lastExecution: new Date(jobStatus['LastExecution']),
      }),
  });
}

describe('serviceSpecFromDocker on recorded request bodies', () => {
  it('finds creates and updates from both CLIs, stack deploy and API 1.50, most with what dockerd stored', () => {
    const files = specRequests.map(({ exchange }) => exchange.file);
    expect(files).toEqual(
      expect.arrayContaining([
        'svc_create_20.txt',
        'svc_create_full_28.txt',
        'svc_create_job_28.txt',
        'stk_deploy1_20.txt',
        'stk_deploy2_28.txt',
        'svc_update_secret_28.txt',
        'v150_svc_create_full.txt',
      ]),
    );
    expect(pairedRequests.length).toBeGreaterThanOrEqual(30);
  });

  it.each(specRequests)('decodes $label into a spec that passes validation', ({ body }) => {
    expect(() => validateServiceSpec(serviceSpecFromDocker(body))).not.toThrow();
  });

  it.each(pairedRequests)('stores $label as dockerd stored it', ({ body, stored }) => {
    const spec = resolveNetworkNames(serviceSpecFromDocker(body));
    expect(asJson(serviceSpecToDocker(spec, { insertDefaults: stored.insertDefaults }))).toStrictEqual(
      stored.service['Spec'],
    );
  });

  it('writes the full spec of svc_create_full_28 exactly as `docker service inspect` printed it, key order included', () => {
    const create = specRequests.find(({ exchange }) => exchange.file === 'svc_create_full_28.txt');
    const inspectText = readFileSync(join(transcriptsDir(), 'svc_inspect_full_28.txt'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('   '))
      .map((line) => line.slice(3))
      .join('\n');
    const spec = serviceSpecToDocker(serviceSpecFromDocker(create?.body), { insertDefaults: true });
    // The recorder indented by one space per level; the spec sits one level down in the service.
    const expected = `"Spec": ${JSON.stringify(spec, null, 1).replaceAll('\n', '\n ')},\n "Endpoint"`;
    expect(inspectText).toContain(expected);
  });
});

describe('serviceSpecToDocker on recorded responses', () => {
  it.each(storedSpecs)('writes back the stored spec of $label unchanged', ({ spec }) => {
    expect(asJson(serviceSpecToDocker(serviceSpecFromDocker(spec), { insertDefaults: false }))).toStrictEqual(spec);
  });

  it('finds `docker service inspect` output for replicated, global and pre-existing services', () => {
    expect(defaultedSpecs.map(({ label }) => label)).toEqual(
      expect.arrayContaining([expect.stringMatching(/probe_global_28/), expect.stringMatching(/ web@/)]),
    );
  });

  it.each(defaultedSpecs)('fills in the defaults of $label as dockerd does', ({ stored, shown }) => {
    expect(asJson(serviceSpecToDocker(serviceSpecFromDocker(stored), { insertDefaults: true }))).toStrictEqual(shown);
  });
});

describe('taskSpecToDocker on recorded tasks', () => {
  it('finds tasks of several services', () => {
    expect(new Set(recordedTasks.map((task) => task['ServiceID'])).size).toBeGreaterThanOrEqual(5);
  });

  it.each(recordedTasks.map((task) => ({ label: `${task['ID']}@${versionOf(task)}`, spec: task['Spec'] as Json })))(
    'writes the spec of task $label as dockerd did',
    ({ spec }) => {
      expect(asJson(taskSpecToDocker(taskSpecFromDocker(Decoder.root(spec, 'TaskSpec'))))).toStrictEqual(spec);
    },
  );
});

describe('serviceToDocker', () => {
  it.each(
    storedServices.map(({ exchange, service, insertDefaults }) => ({
      label: `${exchange.file} ${service['Spec']['Name']}@${versionOf(service)}`,
      service,
      insertDefaults,
    })),
  )('writes $label as dockerd did', ({ service, insertDefaults }) => {
    const status: Json | undefined = service['ServiceStatus'];
    const serviceStatus = status && {
      running: status['RunningTasks'],
      desired: status['DesiredTasks'],
      completed: status['CompletedTasks'],
    };
    expect(asJson(serviceToDocker(serviceFromRecorded(service), { insertDefaults, serviceStatus }))).toStrictEqual(
      atMillisecondPrecision(service),
    );
  });

  it('shows service status only when given, and the previous spec without defaults', () => {
    const spec = serviceSpecFromDocker({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } } });
    const service = Service.create({ id: 'svc', spec, previousSpec: spec });
    const shown = serviceToDocker(service, { insertDefaults: true });
    expect(shown.ServiceStatus).toBeUndefined();
    expect(shown.Spec.UpdateConfig?.Monitor).toBe(5_000_000_000);
    expect(shown.PreviousSpec?.UpdateConfig).toBeUndefined();
    expect(
      serviceToDocker(service, { insertDefaults: false, serviceStatus: { running: 1, desired: 3, completed: 0 } })
        .ServiceStatus,
    ).toStrictEqual({ RunningTasks: 1, DesiredTasks: 3, CompletedTasks: 0 });
  });

  it('leaves out an unknown update state and times that were never set', () => {
    const service = Service.create({
      id: 'svc',
      spec: serviceSpecFromDocker({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox:1' } } }),
      updateStatus: { state: UpdateStatus_UpdateState.UNKNOWN, startedAt: new Date(0), message: '' },
    });
    expect(asJson(serviceToDocker(service, { insertDefaults: false }).UpdateStatus)).toStrictEqual({});
  });
});

/** A request body for a service `web` running busybox, with the given parts of the template and spec. */
function body(container: Json = {}, template: Json = {}, spec: Json = {}): Json {
  return { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox:1', ...container }, ...template }, ...spec };
}

function decodeError(requestBody: unknown): string {
  try {
    serviceSpecFromDocker(requestBody);
  } catch (err) {
    if (hasCode(err, ErrorCode.InvalidArgument)) return err.message;
    throw err;
  }
  throw new Error('the body decoded without an error');
}

describe('serviceSpecFromDocker errors', () => {
  it.each([
    ['a string replica count', body({}, {}, { Mode: { Replicated: { Replicas: '3' } } }), 'string', 'Mode.Replicated.Replicas', 'uint64'],
    ['a negative replica count', body({}, {}, { Mode: { Replicated: { Replicas: -1 } } }), 'number -1', 'Mode.Replicated.Replicas', 'uint64'],
    ['a duration as text', body({ StopGracePeriod: '10s' }), 'string', 'TaskTemplate.ContainerSpec.StopGracePeriod', 'time.Duration'],
    ['a fractional duration', body({}, { RestartPolicy: { Delay: 1.5 } }), 'number 1.5', 'TaskTemplate.RestartPolicy.Delay', 'time.Duration'],
    ['an octal file mode as text', body({ Secrets: [{ File: { Name: 's', Mode: '0444' }, SecretID: 'a', SecretName: 's' }] }), 'string', 'TaskTemplate.ContainerSpec.Secrets.File.Mode', 'fs.FileMode'],
    ['labels as a list', body({}, {}, { Labels: ['a=b'] }), 'array', 'Labels', 'map[string]string'],
    ['a restart condition as a number', body({}, { RestartPolicy: { Condition: 3 } }), 'number', 'TaskTemplate.RestartPolicy.Condition', 'swarm.RestartPolicyCondition'],
    ['a failure ratio as text', body({}, {}, { UpdateConfig: { MaxFailureRatio: '0.5' } }), 'string', 'UpdateConfig.MaxFailureRatio', 'float32'],
    ['a template as text', { Name: 'web', TaskTemplate: 'busybox' }, 'string', 'TaskTemplate', 'swarm.TaskSpec'],
  ])('refuses %s with Go’s unmarshal message', (_case, requestBody, kind, field, goType) => {
    const message = decodeError(requestBody);
    expect(message.startsWith(`json: cannot unmarshal ${kind} into Go struct field `)).toBe(true);
    expect(message.endsWith(`${field} of type ${goType}`)).toBe(true);
  });

  it.each([
    ['restart condition', body({}, { RestartPolicy: { Condition: 'sometimes' } }), 'invalid RestartCondition: "sometimes"'],
    ['update failure action', body({}, {}, { UpdateConfig: { FailureAction: 'explode' } }), 'unrecognized update failure action explode'],
    ['rollback order', body({}, {}, { RollbackConfig: { Order: 'random' } }), 'unrecognized update order random'],
    ['resolution mode', body({}, {}, { EndpointSpec: { Mode: 'roundrobin' } }), 'invalid resolution mode: "roundrobin"'],
    ['port protocol', body({}, {}, { EndpointSpec: { Ports: [{ Protocol: 'icmp', TargetPort: 80 }] } }), 'invalid port protocol: "icmp"'],
    ['publish mode', body({}, {}, { EndpointSpec: { Ports: [{ PublishMode: 'mesh', TargetPort: 80 }] } }), 'invalid port publish mode: "mesh"'],
    ['mount type', body({ Mounts: [{ Type: 'overlay', Target: '/x' }] }), 'invalid MountType: "overlay"'],
    ['mount propagation', body({ Mounts: [{ Type: 'bind', Source: '/x', Target: '/x', BindOptions: { Propagation: 'sideways' } }] }), 'invalid MountPropagation: "sideways"'],
    ['mount consistency', body({ Mounts: [{ Type: 'bind', Source: '/x', Target: '/x', Consistency: 'eventual' }] }), 'invalid MountConsistency: "eventual"'],
    ['isolation', body({ Isolation: 'vm' }), 'invalid isolation: "vm"'],
    ['seccomp mode', body({ Privileges: { Seccomp: { Mode: 'strict' } } }), 'invalid SeccompMode: "strict"'],
    ['AppArmor mode', body({ Privileges: { AppArmor: { Mode: 'enforcing' } } }), 'invalid AppArmorMode: "enforcing"'],
  ])('refuses an unknown %s, naming it', (_case, requestBody, message) => {
    expect(decodeError(requestBody)).toBe(message);
  });

  it.each([
    ['a runtime other than containers', body({}, { Runtime: 'plugin' }), 'unsupported runtime "plugin": only "container" is supported'],
    ['a template without a container', { Name: 'web', TaskTemplate: { Runtime: 'container' } }, 'mismatched Runtime and *Spec fields'],
    ['no template at all', { Name: 'web' }, 'mismatched Runtime and *Spec fields'],
    ['two modes at once', body({}, {}, { Mode: { Replicated: { Replicas: 2 }, Global: {} } }), 'must specify only one service mode'],
    ['a config for both a file and the runtime', body({ Configs: [{ File: { Name: 'f' }, Runtime: {}, ConfigID: 'c', ConfigName: 'c' }] }), 'invalid Config: cannot specify both File and Runtime'],
    ['a config for neither', body({ Configs: [{ ConfigID: 'c', ConfigName: 'c' }] }), 'invalid Config: either File or Runtime should be set'],
    ['a credential spec with no source', body({ Privileges: { CredentialSpec: {} } }), 'invalid CredentialSpec: must either provide "file", "registry", or "config" for credential spec'],
    ['a credential spec with two sources', body({ Privileges: { CredentialSpec: { File: 'f', Registry: 'r' } } }), 'invalid CredentialSpec: cannot specify both "file" and "registry" credential specs'],
    ['a credential spec with three sources', body({ Privileges: { CredentialSpec: { Config: 'c', File: 'f', Registry: 'r' } } }), 'invalid CredentialSpec: cannot specify both "config", "file", and "registry" credential specs'],
    ['a seccomp profile that is not base64', body({ Privileges: { Seccomp: { Mode: 'custom', Profile: 'not base64!' } } }), 'illegal base64 data in ServiceSpec.TaskTemplate.ContainerSpec.Privileges.Seccomp.Profile'],
  ])('refuses %s', (_case, requestBody, message) => {
    expect(decodeError(requestBody)).toBe(message);
  });

  it('refuses tmpfs options that are not [name] or [name, value]', () => {
    const mount = (options: unknown) => body({ Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { Options: options } }] });
    for (const options of ['noexec', [['a', 'b', 'c']], [[]], [['a=b']], [['a', 'x,y']]]) {
      expect(decodeError(mount(options))).toMatch(/^ServiceSpec\.TaskTemplate\.ContainerSpec\.Mounts\.TmpfsOptions\.Options must be a list/);
    }
  });
});

describe('serviceSpecFromDocker normalisation', () => {
  const written = (requestBody: unknown) => asJson(serviceSpecToDocker(serviceSpecFromDocker(requestBody), { insertDefaults: false })) as Json;

  it.each([
    ['no mode', undefined, { Replicated: { Replicas: 1 } }],
    ['a replicated mode without replicas', { Replicated: {} }, { Replicated: { Replicas: 1 } }],
    ['zero replicas', { Replicated: { Replicas: 0 } }, { Replicated: { Replicas: 0 } }],
    ['a replicated job without counts', { ReplicatedJob: {} }, { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } }],
    ['a replicated job running three at once', { ReplicatedJob: { MaxConcurrent: 3 } }, { ReplicatedJob: { MaxConcurrent: 3, TotalCompletions: 3 } }],
    ['a global job', { GlobalJob: {} }, { GlobalJob: {} }],
    ['a global mode beside a null replicated one', { Global: {}, Replicated: null }, { Global: {} }],
  ])('stores %s as dockerd does', (_case, mode, expected) => {
    expect(written(body({}, {}, { Mode: mode }))['Mode']).toStrictEqual(expected);
  });

  it('reads an empty endpoint spec as vip and fills in tcp and ingress for ports that name neither', () => {
    expect(written(body({}, {}, { EndpointSpec: {} }))['EndpointSpec']).toStrictEqual({ Mode: 'vip' });
    expect(written(body())['EndpointSpec']).toBeUndefined();
    const ports = written(body({}, {}, { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { Protocol: 'UDP', TargetPort: 53 }] } }));
    expect(ports['EndpointSpec']).toStrictEqual({
      Mode: 'vip',
      Ports: [
        { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
        { Protocol: 'udp', TargetPort: 53, PublishMode: 'ingress' },
      ],
    });
  });

  it('writes an update config back with pause and stop-first for what was left empty, and no zero monitor', () => {
    const spec = written(body({}, {}, { UpdateConfig: { Parallelism: 1, Delay: 1e9, Monitor: 0, MaxFailureRatio: 0, Order: '' } }));
    expect(spec['UpdateConfig']).toStrictEqual({ Parallelism: 1, Delay: 1e9, FailureAction: 'pause', MaxFailureRatio: 0, Order: 'stop-first' });
  });

  it('keeps a failure ratio as Go prints a float32, also after a trip through the store', () => {
    const spec = serviceSpecFromDocker(body({}, {}, { UpdateConfig: { MaxFailureRatio: 0.1 } }));
    const stored = ServiceSpec.decode(ServiceSpec.encode(spec).finish());
    expect(serviceSpecToDocker(stored, { insertDefaults: false }).UpdateConfig?.MaxFailureRatio).toBe(0.1);
  });

  it('keeps network target names, secret IDs and names, and decimal file modes as given', () => {
    const spec = serviceSpecFromDocker(
      body(
        { Secrets: [{ File: { Name: 's1', UID: '0', GID: '0', Mode: 292 }, SecretID: 'sid', SecretName: 'probe_s1' }] },
        { Networks: [{ Target: 'probe_front', Aliases: ['web'] }] },
      ),
    );
    expect(spec.task?.networks[0]?.target).toBe('probe_front');
    expect(spec.task?.container?.secrets).toStrictEqual([
      { secretId: 'sid', secretName: 'probe_s1', file: { name: 's1', uid: '0', gid: '0', mode: 0o444 } },
    ]);
  });

  it('keeps the pids limit where swarmkit does and shows it under Limits', () => {
    const spec = serviceSpecFromDocker(body({}, { Resources: { Limits: { Pids: 100, MemoryBytes: 64 << 20 } } }));
    expect(spec.task?.container?.pidsLimit).toBe(100n);
    expect(asJson(serviceSpecToDocker(spec, { insertDefaults: false }).TaskTemplate.Resources)).toStrictEqual({
      Limits: { MemoryBytes: 64 << 20, Pids: 100 },
    });
  });

  it('carries mount options through the mount(8) string the proto holds', () => {
    const mounts = [
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024, Mode: 0o1770, Options: [['noexec'], ['uid', '1000']] } },
      { Type: 'bind', Source: '/a', Target: '/b', BindOptions: {} },
      { Type: 'bind', Source: '/a', Target: '/c', BindOptions: { NonRecursive: true } },
      { Type: 'volume', Source: 'v', Target: '/d', VolumeOptions: { Subpath: 'sub', DriverConfig: {} } },
    ];
    const spec = serviceSpecFromDocker(body({ Mounts: mounts }));
    expect(spec.task?.container?.mounts[0]?.tmpfsOptions?.options).toBe('noexec,uid=1000');
    expect(asJson(serviceSpecToDocker(spec, { insertDefaults: false }).TaskTemplate.ContainerSpec?.Mounts)).toStrictEqual([
      mounts[0],
      { Type: 'bind', Source: '/a', Target: '/b' },
      { Type: 'bind', Source: '/a', Target: '/c', BindOptions: { Propagation: 'rprivate', NonRecursive: true } },
      mounts[3],
    ]);
  });

  it('echoes the newer security options and healthcheck start interval, and leaves out an unset NoNewPrivileges', () => {
    const privileges = {
      CredentialSpec: { Config: '', File: 'spec.json', Registry: '' },
      SELinuxContext: null,
      Seccomp: { Mode: 'custom', Profile: Buffer.from('{"defaultAction":"SCMP_ACT_ERRNO"}').toString('base64') },
      AppArmor: { Mode: 'disabled' },
      NoNewPrivileges: true,
    };
    const healthcheck = { Test: ['CMD', 'true'], StartInterval: 2e9, Retries: 3 };
    const container = written(body({ Privileges: privileges, Healthcheck: healthcheck }))['TaskTemplate']['ContainerSpec'];
    expect(container['Privileges']).toStrictEqual(privileges);
    expect(container['Healthcheck']).toStrictEqual(healthcheck);
    expect(written(body({ Privileges: { NoNewPrivileges: false } }))['TaskTemplate']['ContainerSpec']['Privileges']).toStrictEqual({
      CredentialSpec: null,
      SELinuxContext: null,
    });
  });

  it('matches keys case-insensitively and ignores unknown ones, as Go does', () => {
    const spec = serviceSpecFromDocker({ name: 'web', taskTemplate: { containerSpec: { image: 'busybox:1' } }, Colour: 'blue' });
    expect(spec.annotations?.name).toBe('web');
    expect(spec.task?.container?.image).toBe('busybox:1');
  });
});

describe('serviceSpecToDocker with defaults', () => {
  it('fills in what swarmkit applies to a minimal spec, and no endpoint spec', () => {
    const shown = asJson(serviceSpecToDocker(serviceSpecFromDocker(body()), { insertDefaults: true }));
    const updateDefaults = { Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' };
    expect(shown).toStrictEqual({
      Name: 'web',
      Labels: {},
      TaskTemplate: {
        ContainerSpec: { Image: 'busybox:1', StopGracePeriod: 10e9, DNSConfig: {}, Isolation: 'default' },
        Resources: {},
        RestartPolicy: { Condition: 'any', Delay: 5e9, MaxAttempts: 0 },
        Placement: {},
        ForceUpdate: 0,
        Runtime: 'container',
      },
      Mode: { Replicated: { Replicas: 1 } },
      UpdateConfig: updateDefaults,
      RollbackConfig: updateDefaults,
    });
  });

  it('keeps what the user set and completes only the unset parts', () => {
    const spec = serviceSpecFromDocker(
      body(
        { StopGracePeriod: 0 },
        { RestartPolicy: { Condition: 'none' } },
        { UpdateConfig: { Parallelism: 4, Order: 'start-first' } },
      ),
    );
    const shown = serviceSpecToDocker(spec, { insertDefaults: true });
    expect(shown.TaskTemplate.ContainerSpec?.StopGracePeriod).toBe(0);
    expect(asJson(shown.TaskTemplate.RestartPolicy)).toStrictEqual({ Condition: 'none', Delay: 5e9, MaxAttempts: 0 });
    expect(asJson(shown.UpdateConfig)).toStrictEqual({ Parallelism: 4, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'start-first' });
  });
});

const word = fc.stringMatching(/^[a-z][a-z0-9_-]{0,7}$/);
const someWords = fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 });
const someLabels = fc.dictionary(word, fc.string({ maxLength: 6 }), { maxKeys: 3 });
const nanos = fc.integer({ min: -1e12, max: 1e12 });
const count = fc.integer({ min: 0, max: 1e6 });
const bigNumber = fc.integer({ min: -1e15, max: 1e15 });
const port = fc.integer({ min: 0, max: 65535 });
const driver = fc.record({ Name: word, Options: someLabels }, { requiredKeys: [] });
const fileTarget = fc.record({ Name: word, UID: fc.constantFrom('0', '1000'), GID: fc.constantFrom('0', '50'), Mode: fc.integer({ min: 0, max: 0o777 }) });

const mountBody = fc.record(
  {
    Type: fc.constantFrom('bind', 'volume', 'tmpfs', 'npipe', 'BIND'),
    Source: word,
    Target: word.map((name) => `/${name}`),
    ReadOnly: fc.boolean(),
    Consistency: fc.constantFrom('default', 'consistent', 'cached', 'delegated'),
    BindOptions: fc.record(
      {
        Propagation: fc.constantFrom('', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'),
        NonRecursive: fc.boolean(),
        CreateMountpoint: fc.boolean(),
        ReadOnlyNonRecursive: fc.boolean(),
        ReadOnlyForceRecursive: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    VolumeOptions: fc.record({ NoCopy: fc.boolean(), Labels: someLabels, DriverConfig: driver, Subpath: word }, { requiredKeys: [] }),
    TmpfsOptions: fc.record(
      {
        SizeBytes: count,
        Mode: fc.integer({ min: 0, max: 0o7777 }),
        Options: fc.array(fc.oneof(fc.tuple(word), fc.tuple(word, word)), { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['Type'] },
);

const containerBody = fc.record(
  {
    Image: word,
    Labels: someLabels,
    Command: someWords,
    Args: someWords,
    Hostname: word,
    Env: someWords,
    Dir: word,
    User: word,
    Groups: someWords,
    Privileges: fc.record(
      {
        CredentialSpec: fc.option(fc.oneof(fc.record({ Config: word }), fc.record({ File: word }), fc.record({ Registry: word })), { nil: null }),
        SELinuxContext: fc.option(fc.record({ Disable: fc.boolean(), User: word, Role: word, Type: word, Level: word }), { nil: null }),
        Seccomp: fc.record(
          {
            Mode: fc.constantFrom('default', 'unconfined', 'custom'),
            Profile: fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes).toString('base64')),
          },
          { requiredKeys: [] },
        ),
        AppArmor: fc.record({ Mode: fc.constantFrom('default', 'disabled') }, { requiredKeys: [] }),
        NoNewPrivileges: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    Init: fc.boolean(),
    StopSignal: word,
    TTY: fc.boolean(),
    OpenStdin: fc.boolean(),
    ReadOnly: fc.boolean(),
    Mounts: fc.array(mountBody, { maxLength: 2 }),
    StopGracePeriod: nanos,
    Healthcheck: fc.record(
      { Test: someWords, Interval: nanos, Timeout: nanos, StartPeriod: nanos, StartInterval: nanos, Retries: fc.integer({ min: -2, max: 10 }) },
      { requiredKeys: [] },
    ),
    Hosts: someWords,
    DNSConfig: fc.record({ Nameservers: someWords, Search: someWords, Options: someWords }, { requiredKeys: [] }),
    Secrets: fc.array(fc.record({ File: fileTarget, SecretID: word, SecretName: word }), { maxLength: 2 }),
    Configs: fc.array(
      fc.oneof(
        fc.record({ File: fileTarget, ConfigID: word, ConfigName: word }),
        fc.record({ Runtime: fc.constant({}), ConfigID: word, ConfigName: word }),
      ),
      { maxLength: 2 },
    ),
    Isolation: fc.constantFrom('default', 'process', 'hyperv', 'HyperV'),
    Sysctls: someLabels,
    CapabilityAdd: someWords,
    CapabilityDrop: someWords,
    Ulimits: fc.array(fc.record({ Name: word, Soft: bigNumber, Hard: bigNumber }), { maxLength: 2 }),
    OomScoreAdj: fc.integer({ min: -1000, max: 1000 }),
  },
  { requiredKeys: [] },
);

const updateConfigBody = fc.record(
  {
    Parallelism: count,
    Delay: nanos,
    FailureAction: fc.constantFrom('', 'pause', 'continue', 'rollback'),
    Monitor: nanos,
    MaxFailureRatio: fc.float({ min: 0, max: 1, noNaN: true }).map((ratio) => ratio + 0),
    Order: fc.constantFrom('', 'stop-first', 'start-first'),
  },
  { requiredKeys: [] },
);

const networksBody = fc.array(fc.record({ Target: word, Aliases: someWords, DriverOpts: someLabels }, { requiredKeys: [] }), { maxLength: 2 });

/** Request bodies with every field the API carries, in every spelling the converter accepts. */
const serviceSpecBody = fc.record(
  {
    Name: word,
    Labels: someLabels,
    TaskTemplate: fc.record(
      {
        ContainerSpec: containerBody,
        Resources: fc.record(
          {
            Limits: fc.record({ NanoCPUs: bigNumber, MemoryBytes: bigNumber, Pids: bigNumber }, { requiredKeys: [] }),
            Reservations: fc.record(
              {
                NanoCPUs: bigNumber,
                MemoryBytes: bigNumber,
                GenericResources: fc.array(
                  fc.oneof(
                    fc.record({ NamedResourceSpec: fc.record({ Kind: word, Value: word }) }),
                    fc.record({ DiscreteResourceSpec: fc.record({ Kind: word, Value: bigNumber }) }),
                  ),
                  { maxLength: 2 },
                ),
              },
              { requiredKeys: [] },
            ),
            SwapBytes: bigNumber,
            MemorySwappiness: fc.integer({ min: 0, max: 100 }),
          },
          { requiredKeys: [] },
        ),
        RestartPolicy: fc.record(
          { Condition: fc.constantFrom('', 'none', 'on-failure', 'any'), Delay: nanos, MaxAttempts: count, Window: nanos },
          { requiredKeys: [] },
        ),
        Placement: fc.record(
          {
            Constraints: someWords,
            Preferences: fc.array(fc.record({ Spread: fc.record({ SpreadDescriptor: word }) }), { maxLength: 2 }),
            MaxReplicas: count,
            Platforms: fc.array(fc.record({ Architecture: word, OS: word }, { requiredKeys: [] }), { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        Networks: networksBody,
        LogDriver: driver,
        ForceUpdate: count,
        Runtime: fc.constantFrom('', 'container'),
      },
      { requiredKeys: ['ContainerSpec'] },
    ),
    Mode: fc.oneof(
      fc.record({ Replicated: fc.record({ Replicas: count }, { requiredKeys: [] }) }),
      fc.constant({ Global: {} }),
      fc.record({ ReplicatedJob: fc.record({ MaxConcurrent: count, TotalCompletions: count }, { requiredKeys: [] }) }),
      fc.constant({ GlobalJob: {} }),
    ),
    UpdateConfig: updateConfigBody,
    RollbackConfig: updateConfigBody,
    Networks: networksBody,
    EndpointSpec: fc.record(
      {
        Mode: fc.constantFrom('', 'vip', 'dnsrr'),
        Ports: fc.array(
          fc.record(
            {
              Name: word,
              Protocol: fc.constantFrom('', 'tcp', 'udp', 'sctp', 'TCP'),
              TargetPort: port,
              PublishedPort: port,
              PublishMode: fc.constantFrom('', 'ingress', 'host', 'Host'),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['TaskTemplate'] },
);

describe('serviceSpecToDocker round trips', () => {
  it('writes every decodable spec so that it decodes back to the same spec', () => {
    fc.assert(
      fc.property(serviceSpecBody, (requestBody) => {
        const spec = serviceSpecFromDocker(requestBody);
        expect(serviceSpecFromDocker(asJson(serviceSpecToDocker(spec, { insertDefaults: false })))).toEqual(spec);
      }),
    );
  });

  it('writes a spec the same after a trip through the store', () => {
    fc.assert(
      fc.property(serviceSpecBody, fc.boolean(), (requestBody, insertDefaults) => {
        const spec = serviceSpecFromDocker(requestBody);
        const stored = ServiceSpec.decode(ServiceSpec.encode(spec).finish());
        expect(asJson(serviceSpecToDocker(stored, { insertDefaults }))).toStrictEqual(
          asJson(serviceSpecToDocker(spec, { insertDefaults })),
        );
      }),
    );
  });

  it('fills in defaults only once: a spec shown with defaults is already complete', () => {
    fc.assert(
      fc.property(serviceSpecBody, (requestBody) => {
        const shown = asJson(serviceSpecToDocker(serviceSpecFromDocker(requestBody), { insertDefaults: true }));
        const again = serviceSpecFromDocker(shown);
        expect(asJson(serviceSpecToDocker(again, { insertDefaults: true }))).toStrictEqual(shown);
        expect(asJson(serviceSpecToDocker(again, { insertDefaults: false }))).toStrictEqual(shown);
      }),
    );
  });
});
