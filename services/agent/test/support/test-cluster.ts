import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import {
  MANAGER_ROLE,
  MANAGER_SERVER_NAME,
  WORKER_ROLE,
  createCertificateAuthority,
  generateJoinToken,
  nodeCertificateSubject,
  readCertificateRequest,
  type CertificateAuthority,
} from '@shoal/pki';
import {
  AssignmentChange_AssignmentAction,
  AssignmentsMessage_Type,
  CAService,
  DispatcherService,
  IssuanceStatus_State,
  Node,
  NodeCAService,
  NodeRole,
  Task,
  newId,
  type AssignmentChange,
  type AssignmentsMessage,
  type Config,
  type IssueNodeCertificateRequest,
  type LogMessage,
  type NodeDescription,
  type PublishLogsMessage,
  type PublishLogsResponse,
  type Secret,
  type SessionMessage,
  type SubscriptionMessage,
  type TaskStatus,
} from '@shoal/proto';
import { createServer, peerIdentity, requirePeerRole, wrapServerStream, wrapUnary, type RpcServer } from '@shoal/rpc';
import { untilAborted, type Logger } from '@shoal/runtime';
import { verifiedIdentity, type NodeIdentity } from '../../src/identity.js';

/** What the test swarm knows of a node. */
export interface TestNode {
  role: 'manager' | 'worker';
  removed: boolean;
  certPem: string;
  description?: NodeDescription;
}

/** What agents published for one log subscription. */
export interface PublishedLogs {
  readonly messages: LogMessage[];
  /** An agent sent `close`: it has sent everything for the subscription. */
  closed: boolean;
  /** An agent ended its PublishLogs stream. */
  ended: boolean;
}

/** A session open on one of the test managers. */
interface OpenSession {
  readonly id: string;
  readonly nodeId: string;
  readonly manager: TestManager;
  readonly end: AbortController;
  session?: grpc.ServerWritableStream<unknown, SessionMessage>;
  assignments?: { stream: grpc.ServerWritableStream<unknown, AssignmentsMessage>; resultsIn: number };
  subscriptions?: grpc.ServerWritableStream<unknown, SubscriptionMessage>;
}

/** swarmkit's answer to a join with a token it does not know. */
export const INVALID_TOKEN_MESSAGE = 'A valid join token is necessary to join this cluster';

/**
 * A swarm for agent tests: a CA with join tokens, its nodes, their tasks, secrets and configs, and
 * what agents reported, served by one or more {@link TestManager}s over real mutual TLS. It does what
 * the dispatcher and the CA do for an agent, in the simplest way that keeps the protocol: the
 * session, heartbeats, COMPLETE then chained INCREMENTAL assignments, status updates, log
 * subscriptions and published logs, joins with a token, renewals with a certificate.
 */
export class TestCluster {
  readonly ca: CertificateAuthority;
  readonly clusterId = newId();
  readonly workerToken: string;
  readonly managerToken: string;
  readonly nodes = new Map<string, TestNode>();
  readonly tasks = new Map<string, Task>();
  readonly secrets = new Map<string, Secret>();
  readonly configs = new Map<string, Config>();
  /** The updates of every UpdateTaskStatus call, one array per call, in arrival order. */
  readonly statusCalls: { taskId: string; status: TaskStatus }[][] = [];
  /** How many certificate signing requests arrived with a join token. */
  joinRequests = 0;
  /** How many Assignments streams agents opened. */
  assignmentStreams = 0;
  /** When set, joins are refused with this error. */
  refuseJoins: Error | undefined;
  readonly published = new Map<string, PublishedLogs>();
  readonly sessions = new Set<OpenSession>();
  /** The managers serving, each listed in every session message. */
  readonly managers = new Set<TestManager>();
  /** The heartbeat period the managers hand out. */
  heartbeatPeriodMs = 500;

  constructor(ca: CertificateAuthority = createCertificateAuthority('Shoal agent test CA')) {
    this.ca = ca;
    this.workerToken = generateJoinToken(ca.caCertPem);
    this.managerToken = generateJoinToken(ca.caCertPem);
  }

  /** Makes a node of this swarm without the join flow: its identity, reaching the swarm through `managers`. */
  enrol(role: 'manager' | 'worker', managers: readonly TestManager[], options: { validityMs?: number } = {}): NodeIdentity {
    const nodeId = newId();
    const issued = this.ca.issue(nodeCertificateSubject(nodeId, role === 'manager' ? MANAGER_ROLE : WORKER_ROLE, this.clusterId), options);
    this.nodes.set(nodeId, { role, removed: false, certPem: issued.certPem });
    return verifiedIdentity({ ...issued, managers: managers.map((manager) => manager.address) });
  }

  /** The latest status an agent reported for a task. */
  latestStatus(taskId: string): TaskStatus | undefined {
    return this.statusCalls.flat().filter((update) => update.taskId === taskId).at(-1)?.status;
  }

  /** The node's session, if it has one. */
  sessionOf(nodeId: string): OpenSession | undefined {
    return [...this.sessions].find((session) => session.nodeId === nodeId && !session.end.signal.aborted);
  }

  /** Creates or updates a task (and sends it to its node, if connected). */
  putTask(task: Task): void {
    this.tasks.set(task.id, task);
    this.#sendIncremental(task.nodeId, [{ assignment: { task }, action: AssignmentChange_AssignmentAction.UPDATE }]);
  }

  /** Deletes a task (and tells its node). */
  deleteTask(taskId: string): void {
    const task = this.tasks.get(taskId);
    if (task === undefined) return;
    this.tasks.delete(taskId);
    this.#sendIncremental(task.nodeId, [{ assignment: { task: Task.fromPartial({ id: taskId }) }, action: AssignmentChange_AssignmentAction.REMOVE }]);
  }

  /** Sends an INCREMENTAL message that does not chain onto the last one, as after a lost message. */
  sendOutOfSequence(nodeId: string): void {
    const assignments = this.sessionOf(nodeId)?.assignments;
    if (assignments === undefined) throw errors.failedPrecondition(`node ${nodeId} has no assignments stream`);
    assignments.resultsIn += 1;
    assignments.stream.write({ type: AssignmentsMessage_Type.INCREMENTAL, appliesTo: 'gone', resultsIn: String(assignments.resultsIn), changes: [] });
  }

  /** Changes a node's role (`docker node promote/demote`) and tells its session. */
  setRole(nodeId: string, role: 'manager' | 'worker'): void {
    this.#node(nodeId).role = role;
    const session = this.sessionOf(nodeId);
    session?.session?.write(this.sessionMessage(session));
  }

  /** Removes a node from the swarm (`docker node rm`): its session ends and it cannot register again. */
  removeNode(nodeId: string): void {
    this.#node(nodeId).removed = true;
    this.sessionOf(nodeId)?.end.abort();
  }

  /** Sends a log subscription to every connected node. */
  subscribe(subscription: SubscriptionMessage): void {
    if (!subscription.close) this.published.set(subscription.id, { messages: [], closed: false, ended: false });
    for (const session of this.sessions) if (!session.end.signal.aborted) session.subscriptions?.write(subscription);
  }

  /** The first session message: the session ID, the node, the managers, the root CA. */
  sessionMessage(session: OpenSession): SessionMessage {
    const node = this.#node(session.nodeId);
    return {
      sessionId: session.id,
      node: Node.fromPartial({ id: session.nodeId, role: node.role === 'manager' ? NodeRole.MANAGER : NodeRole.WORKER, description: node.description }),
      managers: [...this.managers].map((manager) => ({ peer: { nodeId: manager.nodeId, addr: manager.address }, weight: 10n })),
      networkBootstrapKeys: [],
      rootCa: Buffer.from(this.ca.caCertPem),
    };
  }

  /** The node's assignments, complete. */
  completeSet(nodeId: string): AssignmentChange[] {
    const tasks = [...this.tasks.values()].filter((task) => task.nodeId === nodeId);
    const references = tasks.flatMap((task) => [...(task.spec?.container?.secrets ?? []).map((ref) => ref.secretId), ...(task.spec?.container?.configs ?? []).map((ref) => ref.configId)]);
    const update = AssignmentChange_AssignmentAction.UPDATE;
    return [
      ...[...this.secrets.values()].filter((secret) => references.includes(secret.id)).map((secret) => ({ assignment: { secret }, action: update })),
      ...[...this.configs.values()].filter((config) => references.includes(config.id)).map((config) => ({ assignment: { config }, action: update })),
      ...tasks.map((task) => ({ assignment: { task }, action: update })),
    ];
  }

  #sendIncremental(nodeId: string, changes: AssignmentChange[]): void {
    const assignments = this.sessionOf(nodeId)?.assignments;
    if (assignments === undefined) return;
    const appliesTo = String(assignments.resultsIn);
    assignments.resultsIn += 1;
    assignments.stream.write({ type: AssignmentsMessage_Type.INCREMENTAL, appliesTo, resultsIn: String(assignments.resultsIn), changes });
  }

  #node(nodeId: string): TestNode {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw errors.notFound(`no test node ${nodeId}`);
    return node;
  }
}

/**
 * One manager of a {@link TestCluster}: a gRPC server on 127.0.0.1 with the CA, NodeCA and
 * Dispatcher services, asking for client certificates without requiring them (a joining node has
 * none), as on Docker's port 2377. {@link stop} is a manager going away.
 */
export class TestManager {
  private constructor(
    readonly cluster: TestCluster,
    readonly nodeId: string,
    readonly address: string,
    private readonly server: RpcServer,
  ) {}

  static async start(cluster: TestCluster, log: Logger): Promise<TestManager> {
    const nodeId = newId();
    const identity = cluster.ca.issue({ cn: nodeId, ou: MANAGER_ROLE, o: cluster.clusterId, serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
    const server = createServer({ log, tls: { ca: cluster.ca.caCertPem, cert: identity.certPem, key: identity.keyPem, requireClientCert: false, requestClientCert: true } });
    const port = await server.bind('127.0.0.1:0');
    const manager = new TestManager(cluster, nodeId, `127.0.0.1:${port}`, server);
    manager.#serve(log);
    cluster.managers.add(manager);
    return manager;
  }

  /** Stops serving at once: every session with this manager breaks. */
  async stop(): Promise<void> {
    this.cluster.managers.delete(this);
    for (const session of this.cluster.sessions) if (session.manager === this) session.end.abort();
    await this.server.stop(0);
  }

  #serve(log: Logger): void {
    const { cluster } = this;
    this.server.addService(CAService, {
      getRootCaCertificate: wrapUnary(log, () => ({ certificate: Buffer.from(cluster.ca.caCertPem) })),
      getUnlockKey: wrapUnary(log, () => {
        throw errors.failedPrecondition('not in these tests');
      }),
    });
    this.server.addService(NodeCAService, {
      issueNodeCertificate: wrapUnary(log, (request: IssueNodeCertificateRequest, call: grpc.ServerUnaryCall<unknown, unknown>) => this.#issue(request, call)),
      nodeCertificateStatus: wrapUnary(log, ({ nodeId }: { nodeId: string }) => {
        const node = cluster.nodes.get(nodeId);
        if (node === undefined) throw errors.notFound(`node ${nodeId} not found`);
        return { status: { state: IssuanceStatus_State.ISSUED, err: '' }, certificate: { role: 0, csr: Buffer.alloc(0), status: undefined, certificate: Buffer.from(node.certPem), cn: nodeId } };
      }),
    });
    this.server.addService(DispatcherService, {
      session: wrapServerStream(log, async (request: { description?: NodeDescription }, call: grpc.ServerWritableStream<unknown, SessionMessage>, signal: AbortSignal) => {
        const nodeId = requirePeerRole(call, [MANAGER_ROLE, WORKER_ROLE]).cn;
        const node = cluster.nodes.get(nodeId);
        if (node === undefined || node.removed) throw errors.notFound('node not registered');
        node.description = request.description;
        const session: OpenSession = { id: newId(), nodeId, manager: this, end: new AbortController(), session: call };
        for (const other of cluster.sessions) if (other.nodeId === nodeId) other.end.abort();
        cluster.sessions.add(session);
        call.write(cluster.sessionMessage(session));
        await untilAborted(AbortSignal.any([signal, session.end.signal]));
        cluster.sessions.delete(session);
        if (!signal.aborted) throw errors.unavailable('node must disconnect');
      }),
      heartbeat: wrapUnary(log, (request: { sessionId: string }, call: grpc.ServerUnaryCall<unknown, unknown>) => {
        this.#session(request.sessionId, call);
        return { period: { seconds: 0n, nanos: cluster.heartbeatPeriodMs * 1_000_000 } };
      }),
      updateTaskStatus: wrapUnary(log, (request: { sessionId: string; updates: { taskId: string; status?: TaskStatus }[] }, call: grpc.ServerUnaryCall<unknown, unknown>) => {
        this.#session(request.sessionId, call);
        cluster.statusCalls.push(request.updates.map(({ taskId, status }) => ({ taskId, status: status! })));
        return {};
      }),
      assignments: wrapServerStream(log, async (request: { sessionId: string }, call: grpc.ServerWritableStream<unknown, AssignmentsMessage>, signal: AbortSignal) => {
        const session = this.#session(request.sessionId, call);
        session.assignments = { stream: call, resultsIn: 1 };
        cluster.assignmentStreams += 1;
        call.write({ type: AssignmentsMessage_Type.COMPLETE, appliesTo: '', resultsIn: '1', changes: cluster.completeSet(session.nodeId) });
        await untilAborted(AbortSignal.any([signal, session.end.signal]));
        if (!signal.aborted) throw errors.unavailable('node must disconnect');
      }),
      listenSubscriptions: wrapServerStream(log, async (request: { sessionId: string }, call: grpc.ServerWritableStream<unknown, SubscriptionMessage>, signal: AbortSignal) => {
        const session = this.#session(request.sessionId, call);
        session.subscriptions = call;
        await untilAborted(AbortSignal.any([signal, session.end.signal]));
        if (!signal.aborted) throw errors.unavailable('node must disconnect');
      }),
      publishLogs: (call: grpc.ServerReadableStream<PublishLogsMessage, PublishLogsResponse>, callback: grpc.sendUnaryData<PublishLogsResponse>) => {
        let published: PublishedLogs | undefined;
        call.on('data', (message: PublishLogsMessage) => {
          published = cluster.published.get(message.subscriptionId);
          if (published === undefined) return;
          published.messages.push(...message.messages);
          if (message.close) published.closed = true;
        });
        call.on('end', () => {
          if (published !== undefined) published.ended = true;
          callback(null, {});
        });
      },
    });
  }

  /** A join (token, no certificate) or a renewal (certificate, no token), as swarmkit's CA server tells them apart. */
  #issue(request: IssueNodeCertificateRequest, call: grpc.ServerUnaryCall<unknown, unknown>): { nodeId: string; nodeMembership: number } {
    const { cluster } = this;
    const csrPem = request.csr.toString('utf8');
    let renewing: string | undefined;
    try {
      renewing = peerIdentity(call).cn;
    } catch {
      renewing = undefined;
    }
    if (renewing !== undefined) {
      const node = cluster.nodes.get(renewing);
      if (node === undefined) throw errors.notFound('node not registered');
      if (readCertificateRequest(csrPem).cn !== renewing) throw new ShoalError(ErrorCode.PermissionDenied, 'the certificate signing request names another node');
      node.certPem = cluster.ca.signRequest(csrPem, nodeCertificateSubject(renewing, node.role === 'manager' ? MANAGER_ROLE : WORKER_ROLE, cluster.clusterId));
      return { nodeId: renewing, nodeMembership: 1 };
    }
    cluster.joinRequests += 1;
    if (cluster.refuseJoins !== undefined) throw cluster.refuseJoins;
    const role = request.token === cluster.workerToken ? 'worker' : request.token === cluster.managerToken ? 'manager' : undefined;
    if (role === undefined) throw errors.invalidArgument(INVALID_TOKEN_MESSAGE);
    const nodeId = newId();
    const certPem = cluster.ca.signRequest(csrPem, nodeCertificateSubject(nodeId, role === 'manager' ? MANAGER_ROLE : WORKER_ROLE, cluster.clusterId));
    cluster.nodes.set(nodeId, { role, removed: false, certPem });
    return { nodeId, nodeMembership: 1 };
  }

  /** The caller's open session with this ID; INVALID_ARGUMENT "session invalid" otherwise, as swarmkit answers. */
  #session(sessionId: string, call: Parameters<typeof peerIdentity>[0]): OpenSession {
    const nodeId = peerIdentity(call).cn;
    const session = [...this.cluster.sessions].find((open) => open.id === sessionId && open.nodeId === nodeId && open.manager === this);
    if (session === undefined || session.end.signal.aborted) throw errors.invalidArgument('session invalid');
    return session;
  }
}
