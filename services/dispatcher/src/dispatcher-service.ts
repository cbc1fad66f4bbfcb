import { ErrorCode, errors, ShoalError, toShoalError } from '@shoal/errors';
import {
  DispatcherService,
  NodeDescription,
  NodeStatus,
  NodeStatus_State,
  TaskStatus,
  type AssignmentsRequest,
  type DispatcherServer,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type ListenSubscriptionsRequest,
  type Node,
  type SessionRequest,
  type Task,
  type UpdateTaskStatusRequest,
  type UpdateTaskStatusResponse,
} from '@shoal/proto';
import { toGrpcError, wrapServerStream, wrapUnary, type CallWithPeer, type RpcServer } from '@shoal/rpc';
import type { Logger } from '@shoal/runtime';
import type { Commit, StoreEvent } from '@shoal/store';
import { durationOfMs, type ClusterState } from '@shoal/store-client';
import { AssignmentStream } from './assignments.js';
import { heartbeatPeriodMs } from './cluster-settings.js';
import type { LogRelay } from './log-relay.js';
import { sameEncoding } from './messages.js';
import { DOWN_AFTER_PERIODS } from './node-health.js';
import { NODE_ROLES, peerAddress, requireClusterPeer } from './peer.js';
import { clusterBroadcast, SessionFeed, type ClusterBroadcast } from './session-feed.js';
import { nodeNotRegistered, type Session, type SessionRegistry } from './sessions.js';
import type { StatusBatcher } from './status-batcher.js';

/** swarmkit's `HeartbeatEpsilon`: the period handed out varies by up to this much either way. */
const HEARTBEAT_JITTER_MS = 500;

/** The parts of a serving dispatcher the Dispatcher service works with. */
export interface DispatcherApiOptions {
  readonly state: ClusterState;
  readonly clusterId: string;
  /** This dispatcher instance, recorded as the node's `status.dispatcher` when it registers here. */
  readonly instance: string;
  readonly sessions: SessionRegistry;
  readonly batcher: StatusBatcher;
  /** Without it (no NATS), log subscriptions never reach the nodes and their lines are refused. */
  readonly logRelay?: LogRelay;
  readonly log: Logger;
}

/**
 * The Dispatcher gRPC service (swarmkit's `manager/dispatcher`): node sessions and heartbeats, task
 * status reports, the Assignments stream and the log RPCs. Every call is made by a node with its
 * certificate: the node ID is the certificate's CN, never anything in the request, and a node that is
 * not in the store (never joined, or `docker node rm`) is NOT_FOUND "node not registered".
 */
export class DispatcherApi {
  readonly #options: DispatcherApiOptions;
  /** The SessionMessage stream of each node's current session. */
  readonly #feeds = new Map<string, SessionFeed>();
  readonly #assignments = new Map<string, Set<AssignmentStream>>();
  #broadcast: ClusterBroadcast | undefined;

  constructor(options: DispatcherApiOptions) {
    this.#options = options;
  }

  /** Adds the Dispatcher service to `server`. */
  register(server: RpcServer): void {
    const { log } = this.#options;
    const handlers: DispatcherServer = {
      session: wrapServerStream(log, (request: SessionRequest, call, signal) => this.#session(request, call, signal)),
      heartbeat: wrapUnary(log, (request: HeartbeatRequest, call) => this.#heartbeat(request, call)),
      updateTaskStatus: wrapUnary(log, (request: UpdateTaskStatusRequest, call) => this.#updateTaskStatus(request, call)),
      assignments: wrapServerStream(log, (request: AssignmentsRequest, call, signal) => this.#assignmentsStream(request, call, signal)),
      listenSubscriptions: wrapServerStream(log, (request: ListenSubscriptionsRequest, call, signal) => this.#listenSubscriptions(request, call, signal)),
      publishLogs: (call, callback) => this.#publishLogs(call, callback),
    };
    server.addService(DispatcherService, handlers);
  }

  /** Follows the store until the returned function is called: session messages, assignments, removed nodes. */
  follow(): () => void {
    return this.#options.state.subscribe((commit) => this.#onCommit(commit));
  }

  /**
   * Registers the node: its status (READY, the caller's address, this instance) and description are
   * written (if they changed) before the first SessionMessage goes out; later messages follow changes
   * of the node, the managers and the root CA. The stream ends when the session does.
   */
  async #session(request: SessionRequest, call: ServerStream<'session'>, cancelled: AbortSignal): Promise<void> {
    const { sessions, batcher, state, instance, log } = this.#options;
    const node = this.#caller(call);
    const session = sessions.register(node.id, peerAddress(call.getPeer()), this.#periodMs() * DOWN_AFTER_PERIODS);
    log.info({ nodeId: node.id, addr: session.addr }, 'node registered');
    const status: NodeStatus = { state: NodeStatus_State.READY, message: '', addr: session.addr, dispatcher: instance };
    let registeredNode: Node | undefined;
    try {
      await batcher.update('node', node.id, (current) => registered(current, status, request.description));
      session.signal.throwIfAborted();
      registeredNode = state.view((tx) => tx.get('node', node.id));
      if (registeredNode === undefined) throw nodeNotRegistered(node.id);
    } catch (err) {
      // A session whose registration did not make it is no session: the node must register again.
      if (sessions.find(node.id) === session) sessions.end(node.id, toShoalError(err));
      throw err;
    }
    const feed = new SessionFeed(session, (message) => call.write(message));
    this.#feeds.set(node.id, feed);
    feed.update(registeredNode, this.#currentBroadcast());
    try {
      await untilEnded(session, cancelled);
    } finally {
      if (this.#feeds.get(node.id) === feed) this.#feeds.delete(node.id);
    }
  }

  /** Moves the session's deadline to 3 periods from now and tells the node when to come back. */
  #heartbeat(request: HeartbeatRequest, call: CallWithPeer): HeartbeatResponse {
    const { sessions } = this.#options;
    const session = sessions.require(this.#caller(call).id, request.sessionId);
    const periodMs = jittered(this.#periodMs());
    sessions.heartbeat(session, periodMs * DOWN_AFTER_PERIODS);
    return { period: durationOfMs(periodMs) };
  }

  /**
   * Queues the statuses for the batched write and returns. The whole request is refused
   * (PERMISSION_DENIED) if any task belongs to another node; tasks no longer in the store are skipped.
   */
  #updateTaskStatus(request: UpdateTaskStatusRequest, call: CallWithPeer): UpdateTaskStatusResponse {
    const { sessions, batcher, state, log } = this.#options;
    const nodeId = this.#caller(call).id;
    sessions.require(nodeId, request.sessionId);
    const updates = state.view((tx) =>
      request.updates.flatMap(({ taskId, status }) => {
        const task = tx.get('task', taskId);
        if (status === undefined || task === undefined) return [];
        if (task.nodeId !== nodeId) {
          throw new ShoalError(ErrorCode.PermissionDenied, 'cannot update a task not assigned this node', { details: { nodeId, taskId } });
        }
        return [{ taskId, status }];
      }),
    );
    for (const { taskId, status } of updates) {
      batcher.update('task', taskId, (task) => reported(task, nodeId, status)).catch((err: unknown) => {
        log.warn({ nodeId, taskId, err: toShoalError(err).message }, 'could not write a task status');
      });
    }
    return {};
  }

  async #assignmentsStream(request: AssignmentsRequest, call: ServerStream<'assignments'>, cancelled: AbortSignal): Promise<void> {
    const nodeId = this.#caller(call).id;
    const session = this.#options.sessions.require(nodeId, request.sessionId);
    const stream = new AssignmentStream({ nodeId, state: this.#options.state, send: (message) => call.write(message) });
    const streams = this.#assignments.get(nodeId) ?? new Set();
    streams.add(stream);
    this.#assignments.set(nodeId, streams);
    try {
      stream.start();
      await untilEnded(session, cancelled);
    } finally {
      stream.close();
      streams.delete(stream);
      if (streams.size === 0) this.#assignments.delete(nodeId);
    }
  }

  async #listenSubscriptions(request: ListenSubscriptionsRequest, call: ServerStream<'listenSubscriptions'>, cancelled: AbortSignal): Promise<void> {
    const nodeId = this.#caller(call).id;
    const session = this.#options.sessions.require(nodeId, request.sessionId);
    const stopListening = this.#options.logRelay?.listen(nodeId, (message) => call.write(message));
    try {
      await untilEnded(session, cancelled);
    } finally {
      stopListening?.();
    }
  }

  /** A client stream, which @shoal/rpc has no wrapper for: each message's lines are relayed as they come. */
  #publishLogs(...[call, callback]: Parameters<DispatcherServer['publishLogs']>): void {
    const { logRelay, log } = this.#options;
    let failed = false;
    const fail = (err: unknown) => {
      failed = true;
      log.debug({ method: call.getPath(), code: toShoalError(err).code, err }, 'call failed');
      callback(toGrpcError(err));
    };
    let nodeId: string;
    try {
      nodeId = this.#caller(call).id;
      if (logRelay === undefined) throw errors.unavailable('this dispatcher relays no logs: it has no NATS connection (SHOAL_NATS_URL)');
    } catch (err) {
      fail(err);
      return;
    }
    call.on('data', (message) => {
      if (failed) return;
      try {
        logRelay.publish(nodeId, message);
      } catch (err) {
        fail(err);
      }
    });
    call.on('end', () => {
      if (!failed) callback(null, {});
    });
    // The node went away: there is nobody left to answer.
    call.on('error', () => (failed = true));
  }

  /** The calling node, from its certificate, provided it is still in the store. */
  #caller(call: CallWithPeer): Node {
    const { state, clusterId } = this.#options;
    const peer = requireClusterPeer(call, clusterId, NODE_ROLES);
    const node = state.view((tx) => tx.get('node', peer.cn));
    if (node === undefined) throw nodeNotRegistered(peer.cn);
    return node;
  }

  #periodMs(): number {
    const { state, clusterId } = this.#options;
    return heartbeatPeriodMs(state.view((tx) => tx.get('cluster', clusterId)));
  }

  #currentBroadcast(): ClusterBroadcast {
    const { state, clusterId } = this.#options;
    this.#broadcast ??= state.view((tx) => clusterBroadcast(tx, clusterId));
    return this.#broadcast;
  }

  #onCommit(commit: Commit): void {
    const resync = commit.events.length === 0;
    const changedNodes = new Set<string>();
    const tasksByNode = new Map<string, StoreEvent[]>();
    let clusterChanged = resync;
    for (const event of commit.events) {
      if (event.kind === 'node') {
        if (event.action === 'delete') this.#options.sessions.end(event.object.id, nodeNotRegistered(event.object.id));
        else changedNodes.add(event.object.id);
      } else if (event.kind === 'cluster') {
        clusterChanged = true;
      } else if (event.kind === 'task') {
        // A task leaving a node is news to that node too.
        for (const nodeId of new Set([event.object.nodeId, event.old?.nodeId ?? event.object.nodeId])) {
          const events = tasksByNode.get(nodeId) ?? [];
          events.push(event);
          tasksByNode.set(nodeId, events);
        }
      }
    }
    for (const [nodeId, streams] of this.#assignments) {
      const events = resync ? [] : tasksByNode.get(nodeId);
      if (events === undefined) continue;
      for (const stream of streams) stream.apply({ version: commit.version, events });
    }
    if (changedNodes.size > 0 || clusterChanged) this.#refreshFeeds(changedNodes, resync);
  }

  /** Sends new SessionMessages where the node or what all sessions share changed. */
  #refreshFeeds(changedNodes: ReadonlySet<string>, everyone: boolean): void {
    const { state, clusterId } = this.#options;
    const previous = this.#broadcast;
    const broadcast = state.view((tx) => clusterBroadcast(tx, clusterId));
    this.#broadcast = broadcast;
    const all = everyone || previous?.fingerprint !== broadcast.fingerprint;
    const feeds = all ? [...this.#feeds.values()] : [...changedNodes].flatMap((nodeId) => this.#feeds.get(nodeId) ?? []);
    if (feeds.length === 0) return;
    state.view((tx) => {
      for (const feed of feeds) {
        const node = tx.get('node', feed.session.nodeId);
        if (node !== undefined) feed.update(node, broadcast);
      }
    });
  }
}

/** The grpc-js call of one of the Dispatcher's server-streaming methods. */
type ServerStream<M extends 'session' | 'assignments' | 'listenSubscriptions'> = Parameters<DispatcherServer[M]>[0];

/** Resolves when the session ends (rejecting with why) or the node cancels the call. */
function untilEnded(session: Session, cancelled: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onEnded = () => reject(session.signal.reason);
    if (session.signal.aborted) return onEnded();
    if (cancelled.aborted) return resolve();
    session.signal.addEventListener('abort', onEnded, { once: true });
    cancelled.addEventListener('abort', () => (session.signal.removeEventListener('abort', onEnded), resolve()), { once: true });
  });
}

/** The node registered with `status` and, when it sent one, `description`; undefined if it already says so. */
function registered(node: Node, status: NodeStatus, description: NodeDescription | undefined): Node | undefined {
  const next = { ...node, status, description: description ?? node.description };
  return sameEncoding(NodeStatus, node.status, status) && sameEncoding(NodeDescription, node.description, next.description) ? undefined : next;
}

/**
 * The task with the node's report applied, unless the task moved to another node, the report says
 * nothing new, or it would move the task's state backwards (swarmkit's monotonic rule).
 */
function reported(task: Task, nodeId: string, status: TaskStatus): Task | undefined {
  if (task.nodeId !== nodeId) return undefined;
  const stored = task.status;
  if (stored !== undefined && (status.state < stored.state || sameEncoding(TaskStatus, asReported(stored), asReported(status)))) return undefined;
  return { ...task, status: { ...status, appliedBy: '', appliedAt: new Date() } };
}

/** A status without the manager's stamp, as a node reports it. */
function asReported(status: TaskStatus): TaskStatus {
  return { ...status, appliedBy: '', appliedAt: undefined };
}

/** The period to hand a node: the cluster's, varied by up to ±0.5 s (never more than a tenth of the period). */
function jittered(periodMs: number): number {
  const spread = Math.min(HEARTBEAT_JITTER_MS, periodMs / 10);
  return Math.round(periodMs + (Math.random() * 2 - 1) * spread);
}
