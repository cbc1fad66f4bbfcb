import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShoalHost } from './support/shoal-host.js';
import { readTranscript } from './support/transcripts.js';

/*
 * What the API does with input no docker CLI sends: malformed and oversized bodies, wrong types,
 * unknown names, bad filters, versions and paths. Every refusal is a 4xx with a `{"message"}` that
 * says what is wrong, nothing is created or changed, and the server keeps serving.
 */

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/**
 * Kept-alive connections, as the docker CLI uses: with `Connection: close` the server may close a
 * connection it has not read a large body from, and the reset can reach the client before the answer.
 */
const agent = new Agent({ keepAlive: true });

/**
 * One request with the path sent byte for byte (fetch would normalise `..` and refuses a body on a
 * GET); a string or Buffer body is sent with its length, an iterable one chunked.
 */
function send(baseUrl: string, method: string, path: string, body?: string | Buffer | Iterable<Buffer>, via = agent): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const sized = typeof body === 'string' || Buffer.isBuffer(body);
    const outgoing = httpRequest(
      {
        host: hostname,
        port,
        method,
        path,
        agent: via,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json', ...(sized ? { 'Content-Length': Buffer.byteLength(body) } : {}) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    // The server may answer and stop reading before a large body is all sent: the answer counts.
    let answered = false;
    outgoing.on('response', () => (answered = true));
    outgoing.on('error', (err) => (answered ? undefined : reject(err)));
    if (body === undefined || sized) {
      outgoing.end(body);
      return;
    }
    for (const chunk of body) outgoing.write(chunk);
    outgoing.end();
  });
}

/** The `{"message"}` of a refusal, checking it is one: a 4xx with a JSON body holding a non-empty message. */
function messageOf(answer: Answer): string {
  expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
  expect(answer.status, answer.text).toBeLessThan(500);
  expect(answer.headers['content-type']).toBe('application/json');
  const { message } = JSON.parse(answer.text) as { message?: unknown };
  expect(message).toBeTypeOf('string');
  expect(message).not.toBe('');
  return message as string;
}

const V = '/v1.41';
const encodeFilters = (filters: string) => `filters=${encodeURIComponent(filters)}`;

/**
 * A service spec as CLI 28 sends it for `service create --name NAME swarmtest/busybox:1 sleep 1d`,
 * with some of its top-level fields replaced.
 */
function serviceSpec(name: string, replaced: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Name: name,
    Labels: {},
    TaskTemplate: { ContainerSpec: { Image: 'swarmtest/busybox:1', Args: ['sleep', '1d'] }, ForceUpdate: 0 },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Mode: 'vip' },
    ...replaced,
  };
}

/** Everything the API lists, with versions, to show that refused requests changed nothing. */
async function everything(baseUrl: string): Promise<Record<string, unknown>> {
  const lists: Record<string, unknown> = {};
  for (const kind of ['services', 'networks', 'secrets', 'configs', 'nodes', 'tasks']) {
    const answer = await send(baseUrl, 'GET', `${V}/${kind}`);
    expect(answer.status, answer.text).toBe(200);
    lists[kind] = (JSON.parse(answer.text) as { ID?: string; Id?: string; Version?: unknown }[]).map((item) => [item.ID ?? item.Id, item.Version]);
  }
  const swarm = JSON.parse((await send(baseUrl, 'GET', `${V}/swarm`)).text) as { Version: unknown };
  lists['swarm'] = swarm.Version;
  return lists;
}

describe('the API fed hostile input', () => {
  let host: ShoalHost;
  let baseUrl: string;
  /** The objects the write refusals below aim at, made before the first of them. */
  const targets: Record<'service' | 'secret' | 'config' | 'node', string> = { service: '', secret: '', config: '', node: '' };
  let before: Record<string, unknown>;

  const post = (path: string, body: unknown) => send(baseUrl, 'POST', `${V}${path}`, typeof body === 'string' ? body : JSON.stringify(body));

  beforeAll(async () => {
    host = await ShoalHost.start();
    baseUrl = host.baseUrl;
    const init = readTranscript('sw_init_plain_28').exchanges.find((exchange) => exchange.path === '/swarm/init');
    const initialised = await post('/swarm/init', init?.requestBody);
    expect(initialised.status, initialised.text).toBe(200);
    targets.node = JSON.parse(initialised.text) as string;
    const created = {
      service: await post('/services/create', serviceSpec('probe_hostile')),
      secret: await post('/secrets/create', { Name: 'probe_hostile', Data: Buffer.from('s').toString('base64') }),
      config: await post('/configs/create', { Name: 'probe_hostile', Data: Buffer.from('c').toString('base64') }),
    };
    for (const [kind, answer] of Object.entries(created)) {
      expect(answer.status, answer.text).toBe(201);
      targets[kind as keyof typeof created] = (JSON.parse(answer.text) as { ID: string }).ID;
    }
    before = await everything(baseUrl);
  });

  afterAll(async () => {
    agent.destroy();
    await host?.stop();
  });

  describe('malformed JSON bodies', () => {
    // Each of the errors of Go's encoding/json scanner, with its exact text, which the CLI prints.
    const cases: [body: string, message: string][] = [
      ['}', "invalid character '}' looking for beginning of value"],
      ['{"Name": }', "invalid character '}' looking for beginning of value"],
      ['{Name: "x"}', "invalid character 'N' looking for beginning of object key string"],
      ['{"Name" "x"}', `invalid character '"' after object key`],
      ['{"Name": "x" "Labels": {}}', `invalid character '"' after object key:value pair`],
      ['{"Args": ["a" "b"]}', `invalid character '"' after array element`],
      ['{"Name": "a\tb"}', String.raw`invalid character '\t' in string literal`],
      ['{"Name": "\\q"}', "invalid character 'q' in string escape code"],
      ['{"Name": "\\u12G4"}', String.raw`invalid character 'G' in \u hexadecimal character escape`],
      ['{"Replicas": -x}', "invalid character 'x' in numeric literal"],
      ['{"Replicas": 1.}', "invalid character '}' after decimal point in numeric literal"],
      ['{"Replicas": 1e+}', "invalid character '}' in exponent of numeric literal"],
      ['{"Init": tru}', "invalid character '}' in literal true (expecting 'e')"],
      ['{"Init": fals3}', "invalid character '3' in literal false (expecting 'e')"],
      ['{"Init": nul}', "invalid character '}' in literal null (expecting 'l')"],
      ['{"Name": "probe_cut', 'unexpected EOF'],
      ['\u00e9', "invalid character 'Ã' looking for beginning of value"],
    ];

    it.each(cases)('refuses %j with Go’s message %j', async (body, message) => {
      expect(messageOf(await post('/services/create', body))).toBe(message);
      expect(messageOf(await post('/secrets/create', body))).toBe(message);
    });

    it('refuses an empty create body as dockerd does: got EOF while reading request body', async () => {
      for (const path of ['/services/create', '/secrets/create', '/configs/create']) {
        expect.soft(messageOf(await send(baseUrl, 'POST', `${V}${path}`, '')), path).toBe('got EOF while reading request body');
      }
    });
  });

  describe('oversized and deep bodies', () => {
    const fiveMiB = 5 * 1024 * 1024;

    it('refuses a 5 MiB body it is told the length of with 413, naming the limit', async () => {
      const body = `{"Name":"probe_big","Data":"${'A'.repeat(fiveMiB)}"}`;
      const answer = await post('/secrets/create', body);
      expect(answer.status).toBe(413);
      expect(messageOf(answer)).toBe('request body is larger than 4 MiB');
    });

    // The timeout bounds a connection left hanging, and asserts nothing about speed.
    it('refuses a 5 MiB body sent in chunks of unannounced length with 413, and answers the next request on that connection', { timeout: 20_000 }, async () => {
      const oneConnection = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const chunk = Buffer.alloc(64 * 1024, 'A');
        const chunks = [Buffer.from('{"Name":"probe_big","Data":"'), ...Array.from({ length: fiveMiB / chunk.length }, () => chunk), Buffer.from('"}')];
        const answer = await send(baseUrl, 'POST', `${V}/secrets/create`, chunks, oneConnection);
        expect(answer.status).toBe(413);
        expect(messageOf(answer)).toBe('request body is larger than 4 MiB');
        expect((await send(baseUrl, 'GET', '/_ping', undefined, oneConnection)).status).toBe(200);
      } finally {
        oneConnection.destroy();
      }
    });

    it('refuses arrays nested a million deep with Go’s depth error, without overflowing its stack', async () => {
      expect(messageOf(await post('/services/create', '['.repeat(1_000_000)))).toBe("invalid character '[' exceeded max depth");
    });

    it('refuses objects nested a hundred deep with Go’s depth error', async () => {
      const deep = `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`;
      expect(messageOf(await post('/networks/create', deep))).toBe("invalid character '{' exceeded max depth");
    });
  });

  describe('fields of the wrong type', () => {
    const cases: [what: string, replaced: Record<string, unknown>, message: string][] = [
      ['Name: 5', { Name: 5 }, 'json: cannot unmarshal number into Go struct field ServiceSpec.Name of type string'],
      [
        'Mode.Replicated.Replicas: "3"',
        { Mode: { Replicated: { Replicas: '3' } } },
        'json: cannot unmarshal string into Go struct field ServiceSpec.Mode.Replicated.Replicas of type uint64',
      ],
      ['Labels: []', { Labels: [] }, 'json: cannot unmarshal array into Go struct field ServiceSpec.Labels of type map[string]string'],
      ['TaskTemplate: "x"', { TaskTemplate: 'x' }, 'json: cannot unmarshal string into Go struct field ServiceSpec.TaskTemplate of type swarm.TaskSpec'],
      [
        'Mode.Replicated.Replicas: -1',
        { Mode: { Replicated: { Replicas: -1 } } },
        'json: cannot unmarshal number -1 into Go struct field ServiceSpec.Mode.Replicated.Replicas of type uint64',
      ],
    ];

    it.each(cases)('refuses a service spec with %s, naming the field and both types', async (_what, replaced, message) => {
      expect(messageOf(await post('/services/create', serviceSpec('probe_typed', replaced)))).toBe(message);
    });

    it('refuses a secret whose data is not base64, naming the byte', async () => {
      expect(messageOf(await post('/secrets/create', { Name: 'probe_b64', Data: 'no!' }))).toBe('illegal base64 data at input byte 2');
    });

    it('refuses a body that is not an object at all', async () => {
      expect.soft(messageOf(await post('/services/create', '[1, 2]'))).toBe('json: cannot unmarshal array into Go value of type swarm.ServiceSpec');
      expect.soft(messageOf(await post('/secrets/create', '"x"'))).toBe('json: cannot unmarshal string into Go value of type swarm.SecretSpec');
    });
  });

  describe('names no enum knows', () => {
    const image = 'swarmtest/busybox:1';
    const cases: [what: string, replaced: Record<string, unknown>, value: string][] = [
      ['EndpointSpec.Mode', { EndpointSpec: { Mode: 'anycast' } }, 'anycast'],
      ['UpdateConfig.FailureAction', { UpdateConfig: { Parallelism: 1, FailureAction: 'explode' } }, 'explode'],
      ['UpdateConfig.Order', { UpdateConfig: { Parallelism: 1, Order: 'sideways' } }, 'sideways'],
      ['TaskTemplate.RestartPolicy.Condition', { TaskTemplate: { ContainerSpec: { Image: image }, RestartPolicy: { Condition: 'sometimes' } } }, 'sometimes'],
      ['EndpointSpec.Ports[].Protocol', { EndpointSpec: { Ports: [{ Protocol: 'icmp', TargetPort: 80 }] } }, 'icmp'],
      ['TaskTemplate.ContainerSpec.Mounts[].Type', { TaskTemplate: { ContainerSpec: { Image: image, Mounts: [{ Type: 'nfs', Target: '/data' }] } } }, 'nfs'],
    ];

    it.each(cases)('refuses an unknown %s, quoting it', async (_what, replaced, value) => {
      expect(messageOf(await post('/services/create', serviceSpec('probe_enum', replaced)))).toContain(value);
    });

    it('refuses an unknown node role and availability, quoting them', async () => {
      const node = JSON.parse((await send(baseUrl, 'GET', `${V}/nodes/${targets.node}`)).text) as { Version: { Index: number } };
      const update = (spec: unknown) => post(`/nodes/${targets.node}/update?version=${node.Version.Index}`, spec);
      expect(messageOf(await update({ Role: 'king', Availability: 'active' }))).toBe('invalid Role: "king"');
      expect(messageOf(await update({ Role: 'manager', Availability: 'nap' }))).toBe('invalid Availability: "nap"');
    });
  });

  describe('bad filters', () => {
    const lists = ['services', 'networks', 'secrets', 'configs', 'nodes', 'tasks'];

    it.each(lists)('GET /%s refuses filters that are not JSON with Go’s message', async (list) => {
      expect(messageOf(await send(baseUrl, 'GET', `${V}/${list}?${encodeFilters('notjson')}`))).toBe(
        "invalid character 'o' in literal null (expecting 'u')",
      );
    });

    it.each(lists)('GET /%s refuses a filter key it does not know, naming it', async (list) => {
      expect(messageOf(await send(baseUrl, 'GET', `${V}/${list}?${encodeFilters('{"bogus":{"x":true}}')}`))).toBe("Invalid filter 'bogus'");
    });

    it.each(lists)('GET /%s refuses a filter whose values are not a set, with Go’s type error', async (list) => {
      expect(messageOf(await send(baseUrl, 'GET', `${V}/${list}?${encodeFilters('{"label":5}')}`))).toBe(
        'json: cannot unmarshal number into Go value of type map[string]bool',
      );
    });
  });

  describe('bad ?version= on updates', () => {
    const swarmSpec = readTranscript('sw_update_28').exchanges.find((exchange) => exchange.path === '/swarm/update')?.requestBody;

    const updates = () => [
      { noun: 'service', path: `/services/${targets.service}/update`, body: serviceSpec('probe_hostile') },
      { noun: 'secret', path: `/secrets/${targets.secret}/update`, body: { Name: 'probe_hostile', Labels: { x: 'y' } } },
      { noun: 'config', path: `/configs/${targets.config}/update`, body: { Name: 'probe_hostile', Labels: { x: 'y' } } },
      { noun: 'node', path: `/nodes/${targets.node}/update`, body: { Role: 'manager', Availability: 'pause' } },
      { noun: 'swarm', path: '/swarm/update', body: swarmSpec },
    ];

    it('refuses a missing, non-numeric or negative version with Go’s ParseUint message', async () => {
      for (const { noun, path, body } of updates()) {
        expect.soft(messageOf(await post(path, body))).toBe(`invalid ${noun} version '': strconv.ParseUint: parsing "": invalid syntax`);
        expect.soft(messageOf(await post(`${path}?version=abc`, body))).toBe(`invalid ${noun} version 'abc': strconv.ParseUint: parsing "abc": invalid syntax`);
        expect.soft(messageOf(await post(`${path}?version=-1`, body))).toBe(`invalid ${noun} version '-1': strconv.ParseUint: parsing "-1": invalid syntax`);
        expect.soft(messageOf(await post(`${path}?version=${'9'.repeat(20)}`, body))).toBe(
          `invalid ${noun} version '${'9'.repeat(20)}': strconv.ParseUint: parsing "${'9'.repeat(20)}": value out of range`,
        );
      }
    });

    it('refuses a stale version with 409, naming the object and both versions', async () => {
      for (const { noun, path, body } of updates()) {
        const answer = await post(`${path}?version=1`, body);
        expect.soft(answer.status, noun).toBe(409);
        expect.soft(messageOf(answer)).toMatch(new RegExp(`^update out of sequence: ${noun} \\w+ has version \\d+, the request was based on version 1$`));
      }
    });
  });

  describe('paths', () => {
    it.each([
      ['a name nothing has', '/services/probe_nothing', 'service probe_nothing not found'],
      ['a non-ASCII name', `/secrets/${encodeURIComponent('probe_🐟')}`, 'secret probe_🐟 not found'],
      ['an escaped slash and dot segments', '/networks/..%2F..%2Fetc%2Fpasswd', 'network ../../etc/passwd not found'],
      ['an 8 KiB ID', `/configs/${'a'.repeat(8192)}`, `config ${'a'.repeat(8192)} not found`],
      ['an escaped NUL', '/nodes/%00', 'node \u0000 not found'],
    ])('answers 404 for %s, naming it', async (_what, path, message) => {
      const answer = await send(baseUrl, 'GET', `${V}${path}`);
      expect(answer.status).toBe(404);
      expect(messageOf(answer)).toBe(message);
    });

    it('refuses a malformed percent-escape with 400 rather than failing', async () => {
      const answer = await send(baseUrl, 'GET', `${V}/services/%ZZ`);
      expect(answer.status).toBe(400);
      expect(messageOf(answer)).toContain('%ZZ');
    });

    it.each(['/containers/json', '/images/json', '/services/x/y/z', '/swarm/destroy', '/v1.41'])('answers 404 page not found for the unknown route %s', async (path) => {
      expect(messageOf(await send(baseUrl, 'GET', `${V}${path}`))).toBe('page not found');
    });

    it('refuses a method a route does not have with 405, naming both', async () => {
      const answer = await send(baseUrl, 'DELETE', `${V}/swarm`);
      expect(answer.status).toBe(405);
      expect(messageOf(answer)).toBe('method DELETE is not allowed on /swarm');
    });

    it('refuses an API version newer than its own with dockerd’s message', async () => {
      expect(messageOf(await send(baseUrl, 'GET', '/v1.99/version'))).toBe('client version 1.99 is too new. Maximum supported API version is 1.41');
      expect(messageOf(await send(baseUrl, 'POST', '/v1.99/services/create', JSON.stringify(serviceSpec('probe_v199'))))).toBe(
        'client version 1.99 is too new. Maximum supported API version is 1.41',
      );
    });
  });

  describe('methods and bodies the routes do not expect', () => {
    it('answers HEAD /_ping with 200, the API version and no body', async () => {
      const answer = await send(baseUrl, 'HEAD', '/_ping');
      expect(answer.status).toBe(200);
      expect(answer.headers['api-version']).toBe('1.41');
      expect(answer.text).toBe('');
    });

    it('ignores a body on a GET, as dockerd does, malformed or not', async () => {
      for (const body of ['{"Name": "x"}', '{not json', '['.repeat(100)]) {
        const answer = await send(baseUrl, 'GET', `${V}/services`, body);
        expect.soft(answer.status, `${body}: ${answer.text}`).toBe(200);
        if (answer.status === 200) expect((JSON.parse(answer.text) as { Spec: { Name: string } }[]).map((service) => service.Spec.Name)).toEqual(['probe_hostile']);
      }
    });
  });

  it('created and changed nothing, and still serves GET /v1.41/services', async () => {
    expect(await everything(baseUrl)).toEqual(before);
    const services = await send(baseUrl, 'GET', `${V}/services`);
    expect(services.status).toBe(200);
    expect(JSON.parse(services.text)).toHaveLength(1);
  });
});
