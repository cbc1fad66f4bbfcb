import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError, errors, hasCode } from '@shoal/errors';
import { Supervisor } from '@shoal/runtime';
import { captureLogs } from '@shoal/runtime/testing';
import { createTestPki, type TestCertificate } from '@shoal/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createChannelCredentials,
  createClient,
  createServer,
  grpcServerComponent,
  peerIdentity,
  requirePeerRole,
  serverStreamCall,
  unaryCall,
  wrapServerStream,
  wrapUnary,
  type ClientTls,
  type RpcServer,
} from '../src/index.js';
import { TestService, type CountRequest, type CountResponse, type EchoRequest, type EchoResponse } from './support/test-service.js';

const SERVER_NAME = 'swarm-manager';

const pki = createTestPki();
// As in swarmkit, the server is verified by role name, not by the address it is dialled at.
const serverIdentity = pki.ca.issue({ cn: 'manager-node', ou: 'swarm-manager', o: 'cluster-1', serverNames: [SERVER_NAME] });
const manager = pki.ca.issue({ cn: 'node-1', ou: 'swarm-manager', o: 'cluster-1' });
const worker = pki.ca.issue({ cn: 'node-2', ou: 'swarm-worker', o: 'cluster-1' });
const foreign = pki.foreignCa.issue({ cn: 'intruder', ou: 'swarm-manager', o: 'cluster-1' });
const ca = pki.ca.caCertPem;

/** mTLS client material for `identity`, trusting the cluster CA. */
const as = (identity: TestCertificate): ClientTls => ({ ca, cert: identity.certPem, key: identity.keyPem });

/** What the test service's handlers do, swappable per test. */
let behaviour: {
  echo: (request: EchoRequest, call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>) => Promise<EchoResponse> | EchoResponse;
  count: (request: CountRequest, call: grpc.ServerWritableStream<CountRequest, CountResponse>, signal: AbortSignal) => Promise<void>;
};
let calls = 0;

function startServer(logs: ReturnType<typeof captureLogs>, clientCertificates: 'required' | 'requested' = 'required'): RpcServer {
  const required = clientCertificates === 'required';
  const server = createServer({
    log: logs.log,
    tls: { ca, cert: serverIdentity.certPem, key: serverIdentity.keyPem, requireClientCert: required, requestClientCert: !required },
  });
  server.addService(TestService, {
    echo: wrapUnary(logs.log, (request: EchoRequest, call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>) => {
      calls += 1;
      return behaviour.echo(request, call);
    }),
    managersOnly: wrapUnary(logs.log, (request: EchoRequest, call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>) => {
      const peer = requirePeerRole(call, ['swarm-manager']);
      return { text: `${request.text} from ${peer.cn}` };
    }),
    count: wrapServerStream(logs.log, (request: CountRequest, call: grpc.ServerWritableStream<CountRequest, CountResponse>, signal: AbortSignal) =>
      behaviour.count(request, call, signal),
    ),
  });
  return server;
}

const open: { clients: grpc.Client[]; servers: RpcServer[] } = { clients: [], servers: [] };

/** A server of the test's own, stopped after the test even if it fails first. */
function ownServer(logs = captureLogs(), clientCertificates: 'required' | 'requested' = 'required'): RpcServer {
  const server = startServer(logs, clientCertificates);
  open.servers.push(server);
  return server;
}

function connect(port: number, tls: ClientTls): grpc.Client {
  const client = createClient({ address: `127.0.0.1:${port}`, credentials: createChannelCredentials(tls), serverName: SERVER_NAME });
  open.clients.push(client);
  return client;
}

let shared: { server: RpcServer; logs: ReturnType<typeof captureLogs>; port: number };
beforeAll(async () => {
  const logs = captureLogs();
  const server = startServer(logs);
  shared = { server, logs, port: await server.bind('127.0.0.1:0') };
});
afterAll(async () => {
  await shared.server.stop(1_000);
});

beforeEach(() => {
  calls = 0;
  behaviour = {
    echo: (request, call) => ({ text: request.text, peer: peerIdentity(call) }),
    async count(request, call) {
      for (let n = 1; n <= request.upTo; n++) call.write({ n });
    },
  };
});
afterEach(async () => {
  for (const client of open.clients.splice(0)) client.close();
  await Promise.all(open.servers.splice(0).map((s) => s.stop(1_000)));
});

describe('mutual TLS', () => {
  it('serves a client with a certificate from the cluster CA and reads its CN, OU and O', async () => {
    const client = connect(shared.port, as(manager));
    const response = await unaryCall(client, TestService.echo, { text: 'hello' });
    expect(response).toEqual({ text: 'hello', peer: { cn: 'node-1', ou: 'swarm-manager', o: 'cluster-1' } });
  });

  it('rejects a client that presents no certificate before any handler runs', async () => {
    const client = connect(shared.port, { ca });
    await expect(unaryCall(client, TestService.echo, { text: 'hello' })).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
    expect(calls).toBe(0);
  });

  it('rejects a client whose certificate comes from another CA before any handler runs', async () => {
    const client = connect(shared.port, as(foreign));
    await expect(unaryCall(client, TestService.echo, { text: 'hello' })).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
    expect(calls).toBe(0);
  });

  it('lets a handler refuse a role: a worker calling a managers-only method gets PERMISSION_DENIED', async () => {
    const asWorker = connect(shared.port, as(worker));
    const asManager = connect(shared.port, as(manager));
    await expect(unaryCall(asWorker, TestService.managersOnly, { text: 'hi' })).rejects.toMatchObject({
      code: ErrorCode.PermissionDenied,
      details: { nodeId: 'node-2', role: 'swarm-worker' },
    });
    expect(await unaryCall(asManager, TestService.managersOnly, { text: 'hi' })).toEqual({ text: 'hi from node-1' });
  });

  it('serves callers without a certificate on a server that only requests one, telling them apart from verified peers', async () => {
    const server = ownServer(captureLogs(), 'requested');
    const port = await server.bind('127.0.0.1:0');
    behaviour.echo = (request, call) => {
      try {
        return { text: request.text, peer: peerIdentity(call) };
      } catch (err) {
        return { text: `${request.text}: ${hasCode(err, ErrorCode.Unauthenticated) ? 'unauthenticated' : 'other'}` };
      }
    };
    expect(await unaryCall(connect(port, { ca }), TestService.echo, { text: 'anonymous' })).toEqual({ text: 'anonymous: unauthenticated' });
    expect(await unaryCall(connect(port, as(manager)), TestService.echo, { text: 'member' })).toEqual({
      text: 'member',
      peer: { cn: 'node-1', ou: 'swarm-manager', o: 'cluster-1' },
    });
  });

  it('treats a certificate from another CA as no certificate on a server that only requests one', async () => {
    const server = ownServer(captureLogs(), 'requested');
    const port = await server.bind('127.0.0.1:0');
    await expect(unaryCall(connect(port, as(foreign)), TestService.managersOnly, { text: 'forged' })).rejects.toSatisfy((err) =>
      hasCode(err, ErrorCode.Unauthenticated),
    );
  });

  it('refuses a client certificate without its key', () => {
    expect(() => createChannelCredentials({ ca, cert: manager.certPem })).toThrow(ShoalError);
  });
});

describe('errors at the edge', () => {
  it.each([
    new ShoalError(ErrorCode.Conflict, 'task t1 changed since version 41', { details: { taskId: 't1', version: 2n ** 64n - 1n, retry: true } }),
    errors.nameConflict('service name web is taken', { name: 'web' }),
    errors.compacted('changes before index 100 are gone', { index: 100n }),
    errors.notFound('no such node'),
  ])('delivers a ShoalError thrown in a handler to the client with the same code, message and details ($code)', async (thrown) => {
    behaviour.echo = () => {
      throw thrown;
    };
    const client = connect(shared.port, as(manager));
    const received = await unaryCall(client, TestService.echo, { text: 'x' }).catch((err: unknown) => err);
    expect(received).toBeInstanceOf(ShoalError);
    expect(received).toMatchObject({ code: thrown.code, message: thrown.message, details: thrown.details });
  });

  it('answers a non-Shoal error with INTERNAL and a fixed message, and logs the real error with the method', async () => {
    behaviour.echo = () => {
      throw new Error('db password is hunter2');
    };
    const client = connect(shared.port, as(manager));
    const received = await unaryCall(client, TestService.echo, { text: 'x' }).catch((err: unknown) => err);
    expect(received).toMatchObject({ code: ErrorCode.Internal, message: 'internal error' });
    expect(JSON.stringify((received as ShoalError).cause)).not.toContain('hunter2');
    expect(shared.logs.entries).toContainEqual(
      expect.objectContaining({ level: 'error', method: '/shoal.test.v1.Test/Echo', code: 'INTERNAL', err: expect.objectContaining({ message: 'db password is hunter2' }) }),
    );
  });

  it('cancels a call whose signal aborts, reporting CANCELLED', async () => {
    behaviour.echo = () => new Promise(() => {});
    const client = connect(shared.port, as(manager));
    const controller = new AbortController();
    const call = unaryCall(client, TestService.echo, { text: 'x' }, { signal: controller.signal });
    await expect.poll(() => calls).toBe(1);
    controller.abort();
    await expect(call).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Cancelled));
  });

  it('reports a deadline that passes as DEADLINE_EXCEEDED', async () => {
    behaviour.echo = () => new Promise(() => {});
    const client = connect(shared.port, as(manager));
    await expect(unaryCall(client, TestService.echo, { text: 'x' }, { deadlineMs: 50 })).rejects.toSatisfy((err) => hasCode(err, ErrorCode.DeadlineExceeded));
  });
});

describe('server streams', () => {
  it('delivers every message of a stream, then ends it', async () => {
    const client = connect(shared.port, as(manager));
    const received: number[] = [];
    for await (const { n } of serverStreamCall(client, TestService.count, { upTo: 5 })) received.push(n);
    expect(received).toEqual([1, 2, 3, 4, 5]);
  });

  it('ends the stream with the ShoalError the handler threw after some messages', async () => {
    behaviour.count = async (_request, call) => {
      call.write({ n: 1 });
      throw errors.compacted('resync from a snapshot', { index: 7n });
    };
    const client = connect(shared.port, as(manager));
    const received: number[] = [];
    const failure = await (async () => {
      for await (const { n } of serverStreamCall(client, TestService.count, { upTo: 0 })) received.push(n);
    })().catch((err: unknown) => err);
    expect(received).toEqual([1]);
    expect(failure).toMatchObject({ code: ErrorCode.Compacted, details: { index: 7n } });
  });

  it('aborts the handler when the client stops reading', async () => {
    let handlerSignal: AbortSignal | undefined;
    const handlerDone = new Promise<void>((resolve) => {
      behaviour.count = async (_request, call, signal) => {
        handlerSignal = signal;
        call.write({ n: 1 });
        await new Promise((wake) => signal.addEventListener('abort', wake, { once: true }));
        resolve();
      };
    });
    const client = connect(shared.port, as(manager));
    for await (const message of serverStreamCall(client, TestService.count, { upTo: 0 })) {
      expect(message).toEqual({ n: 1 });
      break;
    }
    await handlerDone;
    expect(handlerSignal?.aborted).toBe(true);
  });
});

describe('server lifecycle', () => {
  it('lets a call in flight finish when stopped, then refuses new calls', async () => {
    const server = ownServer();
    const port = await server.bind('127.0.0.1:0');
    let release!: () => void;
    const entered = new Promise<void>((resolve) => {
      behaviour.echo = (request) =>
        new Promise((respond) => {
          release = () => respond({ text: request.text });
          resolve();
        });
    });
    const client = connect(port, as(manager));
    const inFlight = unaryCall(client, TestService.echo, { text: 'slow' });
    await entered;

    const stopped = server.stop(10_000);
    release();
    expect(await inFlight).toEqual({ text: 'slow' });
    await stopped;
    const late = connect(port, as(manager));
    await expect(unaryCall(late, TestService.echo, { text: 'late' })).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
  });

  it('cancels a stream that outlives the stop grace period, so stopping cannot hang', async () => {
    const server = ownServer();
    const port = await server.bind('127.0.0.1:0');
    behaviour.count = async (_request, call, signal) => {
      call.write({ n: 1 });
      await new Promise((wake) => signal.addEventListener('abort', wake, { once: true }));
    };
    const client = connect(port, as(manager));
    const stream = serverStreamCall(client, TestService.count, { upTo: 0 });
    expect((await stream.next()).value).toEqual({ n: 1 });

    await server.stop(100);
    await expect(stream.next()).rejects.toBeInstanceOf(ShoalError);
  });

  it('fails with UNAVAILABLE when its address is taken', async () => {
    const server = ownServer();
    await expect(server.bind(`127.0.0.1:${shared.port}`)).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
  });

  it('runs under the supervisor: ready once listening, closed once stopped', async () => {
    const logs = captureLogs();
    const server = ownServer(logs);
    const component = grpcServerComponent({ server, address: '127.0.0.1:0', stopGraceMs: 1_000 });
    const supervisor = new Supervisor({ log: logs.log, components: [component], shutdownGraceMs: 5_000 });
    expect(() => component.port).toThrow(/not listening yet/);
    await supervisor.start();

    const client = connect(component.port, as(manager));
    expect(await unaryCall(client, TestService.echo, { text: 'up' })).toMatchObject({ text: 'up' });
    expect(await supervisor.stop()).toEqual({ ok: true, failures: [], timedOut: [] });
    const late = connect(component.port, as(manager));
    await expect(unaryCall(late, TestService.echo, { text: 'down' })).rejects.toSatisfy((err) => hasCode(err, ErrorCode.Unavailable));
  });
});
