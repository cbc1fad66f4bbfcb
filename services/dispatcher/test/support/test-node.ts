import { ErrorCode, hasCode, isShoalError, toShoalError, type ShoalError } from '@shoal/errors';
import { createCertificateRequest, MANAGER_SERVER_NAME } from '@shoal/pki';
import {
  DispatcherClient,
  DispatcherService,
  NodeCAService,
  NodeSpec_Availability,
  type AssignmentsMessage,
  type NodeDescription,
  type PublishLogsMessage,
  type SessionMessage,
  type SubscriptionMessage,
  type TaskStatus,
} from '@shoal/proto';
import { createChannelCredentials, createClient, fromGrpcError, serverStreamCall, unaryCall, type ClientTls } from '@shoal/rpc';
import { defer } from './cleanup.js';
import type { TestSwarm } from './swarm.js';

/** The TLS identity a node holds: its certificate and the key it made for it. */
export interface NodeIdentity {
  readonly nodeId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A gRPC client of the dispatcher at `address` that verifies it against `caCertPem`, as an agent does. */
export function managerClient(address: string, tls: ClientTls) {
  return createClient({ address, credentials: createChannelCredentials(tls), serverName: MANAGER_SERVER_NAME });
}

/**
 * Asks the node CA for a certificate as an agent does: a fresh key and CSR (naming `csrCn` if given),
 * then the certificate from NodeCertificateStatus. With `token` it is a join; with `identity` (and no
 * token) a renewal.
 */
export async function requestCertificate(
  address: string,
  caCertPem: string,
  request: { token?: string; identity?: NodeIdentity; csrCn?: string; availability?: NodeSpec_Availability },
): Promise<NodeIdentity> {
  const { csrPem, keyPem } = createCertificateRequest(request.csrCn === undefined ? {} : { cn: request.csrCn });
  const client = managerClient(address, { ca: caCertPem, cert: request.identity?.certPem, key: request.identity?.keyPem });
  try {
    const { nodeId } = await unaryCall(client, NodeCAService.issueNodeCertificate, {
      role: 0,
      csr: Buffer.from(csrPem),
      token: request.token ?? '',
      availability: request.availability ?? NodeSpec_Availability.ACTIVE,
    });
    const status = await unaryCall(client, NodeCAService.nodeCertificateStatus, { nodeId });
    return { nodeId, certPem: status.certificate?.certificate.toString('utf8') ?? '', keyPem };
  } finally {
    client.close();
  }
}

/** A worker joined to `swarm` through the dispatcher at `address`, talking to it as its agent would; closed after the test. */
export async function joinedWorker(swarm: TestSwarm, address: string): Promise<TestNode> {
  const identity = await requestCertificate(address, swarm.ca.caCertPem, { token: swarm.tokens().worker });
  const node = new TestNode(identity, address, swarm.ca.caCertPem);
  defer(() => node.close());
  return node;
}

/** Joins through `address` once a dispatcher serves the swarm there (it starts when it sees the swarm). */
export async function joinOnceServing(address: string, caCertPem: string, token: string, timeoutMs = 30_000): Promise<NodeIdentity> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await requestCertificate(address, caCertPem, { token });
    } catch (err) {
      if (!hasCode(err, ErrorCode.Unavailable) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The ShoalError a promise rejects with (failing the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<ShoalError> {
  try {
    await promise;
  } catch (err) {
    return isShoalError(err) ? err : toShoalError(err);
  }
  throw new Error('expected the call to fail, and it succeeded');
}

/**
 * The messages of a server stream as they arrive, for a test to take one by one. The stream is read
 * in the background; `close()` cancels it.
 */
export class StreamReader<T> {
  readonly #messages: T[] = [];
  readonly #cancel = new AbortController();
  #wake: () => void = () => {};
  #ended: ShoalError | null | undefined;

  constructor(open: (signal: AbortSignal) => AsyncIterable<T>) {
    void (async () => {
      try {
        for await (const message of open(this.#cancel.signal)) {
          this.#messages.push(message);
          this.#wake();
        }
        this.#ended = null;
      } catch (err) {
        this.#ended = toShoalError(err);
      }
      this.#wake();
    })();
  }

  /** The next message, waiting up to `timeoutMs`; rejects if the stream ends first. */
  async next(timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#messages.shift();
      if (message !== undefined) return message;
      if (this.#ended !== undefined) throw this.#ended ?? new Error('the stream ended');
      if (!(await this.#arrival(deadline))) throw new Error('timed out waiting for a stream message');
    }
  }

  /** How the stream ended: its error, or null for a clean end. Waits up to `timeoutMs`. */
  async end(timeoutMs = 10_000): Promise<ShoalError | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#ended === undefined) {
      this.#messages.length = 0;
      if (!(await this.#arrival(deadline))) throw new Error('timed out waiting for the stream to end');
    }
    return this.#ended;
  }

  /** The messages received and not taken yet. */
  get pending(): readonly T[] {
    return this.#messages;
  }

  close(): void {
    this.#cancel.abort();
  }

  #arrival(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.#wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/**
 * A node as its agent talks to a dispatcher: mTLS with its certificate, a session, heartbeats,
 * status reports, assignments and logs. Close it to end its calls.
 */
export class TestNode {
  readonly client: DispatcherClient;
  readonly #readers: StreamReader<unknown>[] = [];

  constructor(
    readonly identity: NodeIdentity,
    address: string,
    caCertPem: string,
  ) {
    this.client = createClient(
      { address, credentials: createChannelCredentials({ ca: caCertPem, cert: identity.certPem, key: identity.keyPem }), serverName: MANAGER_SERVER_NAME },
      DispatcherClient,
    );
  }

  get id(): string {
    return this.identity.nodeId;
  }

  /** Opens a session; its first message carries the session ID. */
  session(description?: NodeDescription): StreamReader<SessionMessage> {
    return this.#read((signal) => serverStreamCall(this.client, DispatcherService.session, { description, sessionId: '' }, { signal }));
  }

  /** Opens a session and waits for its first message, which names the session. */
  async register(description?: NodeDescription): Promise<{ sessionId: string; first: SessionMessage; messages: StreamReader<SessionMessage> }> {
    const messages = this.session(description);
    const first = await messages.next();
    return { sessionId: first.sessionId, first, messages };
  }

  heartbeat(sessionId: string): Promise<number> {
    return unaryCall(this.client, DispatcherService.heartbeat, { sessionId }).then(({ period }) => Number(period?.seconds ?? 0n) * 1000 + (period?.nanos ?? 0) / 1e6);
  }

  updateTaskStatus(sessionId: string, updates: Array<{ taskId: string; status: TaskStatus }>): Promise<unknown> {
    return unaryCall(this.client, DispatcherService.updateTaskStatus, { sessionId, updates });
  }

  assignments(sessionId: string): StreamReader<AssignmentsMessage> {
    return this.#read((signal) => serverStreamCall(this.client, DispatcherService.assignments, { sessionId }, { signal }));
  }

  listenSubscriptions(sessionId: string): StreamReader<SubscriptionMessage> {
    return this.#read((signal) => serverStreamCall(this.client, DispatcherService.listenSubscriptions, { sessionId }, { signal }));
  }

  /** Sends `messages` on one PublishLogs call and resolves when the dispatcher answers. */
  publishLogs(messages: readonly PublishLogsMessage[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.client.publishLogs((err) => (err === null ? resolve() : reject(fromGrpcError(err))));
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  close(): void {
    for (const reader of this.#readers) reader.close();
    this.client.close();
  }

  #read<T>(open: (signal: AbortSignal) => AsyncIterable<T>): StreamReader<T> {
    const reader = new StreamReader(open);
    this.#readers.push(reader as StreamReader<unknown>);
    return reader;
  }
}
