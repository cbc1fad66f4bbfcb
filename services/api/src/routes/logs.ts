import { subjects, type LogPublication, type LogSubscription, type LogSubscriptionEnd } from '@shoal/bus';
import { errors } from '@shoal/errors';
import { newId, type Task } from '@shoal/proto';
import { byServiceId } from '@shoal/store';
import type { ServerResponse } from 'node:http';
import { managerRead, type ApiContext } from '../cluster/context.js';
import { resolve } from '../cluster/resolve.js';
import type { ApiRequest, Router } from '../http/router.js';
import { encodeFrame, formatLogLine } from '../logs/multiplex.js';
import { queryFlag } from './request-rules.js';

/** How long a non-following read waits for a node that has not finished answering. */
const NODE_ANSWER_TIMEOUT_MS = 10_000;

/** An engine timestamp (RFC 3339, up to nine fractional digits) as a Date plus the nanoseconds it would lose. */
function parseEngineTime(text: string): { timestamp: Date; nanoseconds?: number } {
  const fraction = /\.(\d{1,9})Z$/.exec(text)?.[1];
  return { timestamp: new Date(text), nanoseconds: fraction === undefined ? undefined : Number(fraction.padEnd(9, '0')) };
}

/** The log lines of `tasks` from the nodes that ran them, written to `response` as Docker's multiplexed stream. */
async function streamLogs(context: ApiContext, request: ApiRequest, tasks: readonly Task[], response: ServerResponse, closed: AbortSignal): Promise<void> {
  const { query } = request;
  const follow = queryFlag(query, 'follow');
  const format = { details: queryFlag(query, 'details'), timestamps: queryFlag(query, 'timestamps') };
  const tty = tasks.some((task) => task.spec?.container?.tty === true);
  const tail = query.get('tail');
  const since = query.get('since');
  const nodeIds = [...new Set(tasks.map((task) => task.nodeId).filter((id) => id !== ''))];
  const subscription: LogSubscription = {
    id: newId(),
    nodeIds,
    serviceIds: [...new Set(tasks.map((task) => task.serviceId))],
    taskIds: tasks.map((task) => task.id),
    follow,
    sinceMs: since === null || since === '' ? undefined : Math.round(Number(since) * 1000),
    tail: tail === null || tail === '' || tail === 'all' ? undefined : Number(tail),
    stdout: queryFlag(query, 'stdout'),
    stderr: queryFlag(query, 'stderr'),
  };
  if (!follow && nodeIds.length === 0) return;
  const nc = context.bus?.nc;
  if (nc === undefined) throw errors.unavailable('logs travel over NATS, and this API has no NATS connection (SHOAL_NATS_URL)');
  const pending = new Set(nodeIds);
  const wantedTasks = new Set(subscription.taskIds);
  const inbox = nc.subscribe(subjects.logStream(subscription.id));
  const stop = () => inbox.unsubscribe();
  closed.addEventListener('abort', stop, { once: true });
  let quiet = follow ? undefined : setTimeout(stop, NODE_ANSWER_TIMEOUT_MS);
  try {
    nc.publish(subjects.logSubscribe, JSON.stringify(subscription));
    for await (const message of inbox) {
      const publication = message.json<LogPublication>();
      if ('done' in publication) {
        if (publication.error !== undefined) response.write(encodeFrame('system', `Error grabbing logs: ${publication.error}\n`));
        pending.delete(publication.nodeId);
        if (!follow && pending.size === 0) break;
        continue;
      }
      if (!wantedTasks.has(publication.taskId)) continue;
      const attrs = {
        'com.docker.swarm.node.id': publication.nodeId,
        'com.docker.swarm.service.id': publication.serviceId,
        'com.docker.swarm.task.id': publication.taskId,
      };
      const payload = formatLogLine({ ...parseEngineTime(publication.time), attrs, text: publication.line }, format);
      response.write(tty ? payload : encodeFrame(publication.stream, payload));
      if (quiet !== undefined) {
        clearTimeout(quiet);
        quiet = setTimeout(stop, NODE_ANSWER_TIMEOUT_MS);
      }
    }
    if (!follow && pending.size > 0 && !closed.aborted) {
      response.write(encodeFrame('system', `Error grabbing logs: no answer from node ${[...pending].sort().join(', ')}\n`));
    }
  } finally {
    clearTimeout(quiet);
    closed.removeEventListener('abort', stop);
    stop();
    // Following nodes send until told the reader is gone.
    if (follow) nc.publish(subjects.logSubscribe, JSON.stringify({ id: subscription.id, close: true } satisfies LogSubscriptionEnd));
  }
}

/** `/services/{id}/logs` and `/tasks/{id}/logs`: lines from every task (shut-down ones included), as a multiplexed stream. */
export function logRoutes(router: Router, context: ApiContext): void {
  const logsOf = (select: (request: ApiRequest) => Promise<Task[]>) => async (request: ApiRequest) => {
    const tasks = await select(request);
    return {
      status: 200,
      stream: (response: ServerResponse, closed: AbortSignal) => streamLogs(context, request, tasks, response, closed),
    };
  };
  router.on(
    'GET',
    '/services/{id}/logs',
    logsOf(({ params }) => managerRead(context, (tx) => tx.find('task', byServiceId(resolve(tx, 'service', params.id!).id)))),
  );
  router.on(
    'GET',
    '/tasks/{id}/logs',
    logsOf(({ params }) => managerRead(context, (tx) => [resolve(tx, 'task', params.id!)])),
  );
}
