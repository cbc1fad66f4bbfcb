import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ShoalError, errors, hasCode } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import {
  AssignmentsMessage_Type,
  DispatcherClient,
  DispatcherService,
  type Duration,
  type NodeDescription,
  type SessionMessage,
} from '@shoal/proto';
import { createChannelCredentials, createClient, serverStreamCall, unaryCall } from '@shoal/rpc';
import { untilAborted, type Logger } from '@shoal/runtime';
import type { NodeIdentity } from './identity.js';
import { LogPublisher } from './log-publisher.js';
import type { StatusReporter, StatusSender } from './status-reporter.js';
import type { Worker } from './worker.js';

/** Timings of a session; swarmkit's values by default. */
export interface SessionTiming {
  /**
   * How long the dispatcher may take to send the first session message (swarmkit's `dispatcherRPCTimeout`).
   * @default 5000
   */
  readonly registrationTimeoutMs: number;
  /**
   * Deadline of each heartbeat and status call.
   * @default 5000
   */
  readonly callDeadlineMs: number;
}

export const DEFAULT_SESSION_TIMING: SessionTiming = { registrationTimeoutMs: 5_000, callDeadlineMs: 5_000 };

/** swarmkit's heartbeat period, for a dispatcher that answers without one. */
const DEFAULT_HEARTBEAT_PERIOD_MS = 5_000;

export interface SessionOptions {
  /** The manager to talk to (`host:port`). */
  readonly address: string;
  readonly identity: NodeIdentity;
  readonly description: NodeDescription;
  /** The previous session's ID, so the dispatcher knows this is a reconnect; empty at first. */
  readonly previousSessionId: string;
  readonly worker: Worker;
  readonly reporter: StatusReporter;
  readonly log: Logger;
  readonly timing: SessionTiming;
  /** Called once the dispatcher has registered the node, with the new session's ID. */
  readonly registered: (sessionId: string) => void;
  /** Every session message, the first one included: managers, this node, the root CA. */
  readonly message: (message: SessionMessage) => void;
}

/**
 * Runs one session with one dispatcher (swarmkit's `session`): opens `Session` with the node's
 * description, waits for the first message (the registration), then runs the heartbeat, assignments,
 * session-message and log-subscription loops together, with task statuses flowing through the
 * reporter. Resolves when `signal` aborts; rejects with the first failure of any loop (the agent then
 * backs off and tries a manager again).
 */
export async function runSession(options: SessionOptions, signal: AbortSignal): Promise<void> {
  const { identity, timing } = options;
  const client = createClient(
    {
      address: options.address,
      credentials: createChannelCredentials({ ca: identity.caCertPem, cert: identity.certPem, key: identity.keyPem }),
      serverName: MANAGER_SERVER_NAME,
    },
    DispatcherClient,
  );
  const session = new AbortController();
  const stopSession = () => session.abort();
  signal.addEventListener('abort', stopSession, { once: true });
  let sendStatuses: StatusSender | undefined;
  try {
    const messages = serverStreamCall(client, DispatcherService.session, { description: options.description, sessionId: options.previousSessionId }, { signal: session.signal });
    const first = await firstMessage(messages, timing.registrationTimeoutMs, session);
    const { sessionId } = first;
    options.message(first);
    options.registered(sessionId);
    const calls = { client, sessionId, signal: session.signal, deadlineMs: timing.callDeadlineMs };
    sendStatuses = async (updates) => {
      await unaryCall(client, DispatcherService.updateTaskStatus, { sessionId, updates }, { deadlineMs: calls.deadlineMs, signal: calls.signal });
    };
    options.reporter.attach(sendStatuses);
    await untilOneFails(session, [
      () => heartbeats(calls),
      () => followAssignments(calls, options),
      () => followSessionMessages(messages, options),
      () => followLogSubscriptions(calls, options),
    ]);
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    signal.removeEventListener('abort', stopSession);
    session.abort();
    if (sendStatuses !== undefined) options.reporter.detach(sendStatuses);
    client.close();
  }
}

/** What every call of a session needs; `deadlineMs` bounds unary calls only (streams last as long as the session). */
interface SessionCalls {
  readonly client: DispatcherClient;
  readonly sessionId: string;
  readonly signal: AbortSignal;
  readonly deadlineMs: number;
}

/** Heartbeats at the period each answer gives; a failed one ends the session. */
async function heartbeats(calls: SessionCalls): Promise<never> {
  for (;;) {
    const { period } = await unaryCall(calls.client, DispatcherService.heartbeat, { sessionId: calls.sessionId }, { deadlineMs: calls.deadlineMs, signal: calls.signal });
    await sleep(msOfDuration(period) || DEFAULT_HEARTBEAT_PERIOD_MS, undefined, { signal: calls.signal });
  }
}

/** Passes on the session messages after the first: new manager lists, changes to this node. */
async function followSessionMessages(messages: AsyncGenerator<SessionMessage>, options: SessionOptions): Promise<never> {
  for await (const message of messages) options.message(message);
  throw errors.unavailable('the dispatcher ended the session');
}

/** Publishes logs for the subscriptions the dispatcher sends, for as long as the session lasts. */
async function followLogSubscriptions(calls: SessionCalls, options: SessionOptions): Promise<void> {
  const publisher = new LogPublisher({
    nodeId: options.identity.nodeId,
    worker: options.worker,
    openStream: () =>
      calls.client.publishLogs((err) => {
        if (err !== null && !calls.signal.aborted) options.log.debug({ err }, 'the dispatcher ended a log stream');
      }),
    log: options.log,
  });
  try {
    for await (const subscription of serverStreamCall(calls.client, DispatcherService.listenSubscriptions, { sessionId: calls.sessionId }, { signal: calls.signal })) {
      publisher.handle(subscription);
    }
    throw errors.unavailable('the dispatcher ended the log subscriptions stream');
  } catch (err) {
    // A dispatcher without log support still runs tasks; the session goes on without logs.
    if (!hasCode(err, ErrorCode.Unimplemented)) throw err;
    await untilAborted(calls.signal);
  } finally {
    publisher.stopAll();
  }
}

/** The first session message, or DEADLINE_EXCEEDED when none comes in time (the session is then aborted). */
async function firstMessage(messages: AsyncGenerator<SessionMessage>, timeoutMs: number, session: AbortController): Promise<SessionMessage> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    session.abort();
  }, timeoutMs);
  try {
    const first = await messages.next();
    if (first.done === true) throw errors.unavailable('the dispatcher ended the session before registering the node');
    return first.value;
  } catch (err) {
    if (timedOut) throw new ShoalError(ErrorCode.DeadlineExceeded, `the dispatcher sent no session message within ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Follows the node's assignments, reopening the stream whenever a message does not chain onto the last one. */
async function followAssignments(calls: SessionCalls, options: SessionOptions): Promise<never> {
  for (;;) {
    let resultsIn: string | undefined;
    let gap = false;
    for await (const message of serverStreamCall(calls.client, DispatcherService.assignments, { sessionId: calls.sessionId }, { signal: calls.signal })) {
      const complete = message.type === AssignmentsMessage_Type.COMPLETE;
      if (!complete && message.appliesTo !== resultsIn) {
        options.log.warn({ reason: `applies to ${message.appliesTo}, have ${resultsIn ?? 'nothing'}` }, 'assignments out of sequence; reopening the stream');
        gap = true;
        break;
      }
      await options.worker.apply(message.changes, complete);
      resultsIn = message.resultsIn;
    }
    if (!gap) throw errors.unavailable('the dispatcher ended the assignments stream');
  }
}

/** Runs `loops` until `session` aborts; the first one to fail (or to end, which they must not) aborts the rest and rejects. */
async function untilOneFails(session: AbortController, loops: readonly (() => Promise<unknown>)[]): Promise<void> {
  let failure: unknown;
  await Promise.all(
    loops.map(async (loop) => {
      try {
        await loop();
      } catch (err) {
        if (!session.signal.aborted) failure = err;
      }
      session.abort();
    }),
  );
  if (failure !== undefined) throw failure;
}

function msOfDuration(duration: Duration | undefined): number {
  return duration === undefined ? 0 : Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}
