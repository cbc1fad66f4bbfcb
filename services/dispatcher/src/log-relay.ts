import { subjects, type BusConnection, type LogPublication, type LogSubscription, type LogSubscriptionEnd } from '@shoal/bus';
import { ErrorCode, errors, ShoalError, toShoalError } from '@shoal/errors';
import { LogStream, type PublishLogsMessage, type SubscriptionMessage } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';

/** How long a non-following subscription waits for the nodes asked here; the api gives up after 10 s of silence. */
const UNANSWERED_SUBSCRIPTION_TTL_MS = 60_000;

type Send = (message: SubscriptionMessage) => void;

/** A subscription some of whose nodes hold their session here. */
interface RelayedSubscription {
  readonly message: SubscriptionMessage;
  /** The nodes the reader expects answers from. */
  readonly nodeIds: ReadonlySet<string>;
  /** The nodes this dispatcher asked that have not finished answering. */
  readonly asked: Set<string>;
  readonly expiry: NodeJS.Timeout | undefined;
}

/**
 * swarmkit's log broker, over NATS: relays the api's log subscriptions to the ListenSubscriptions
 * streams of the nodes whose sessions this dispatcher holds, and their PublishLogs lines back to the
 * reader's subject, tagged with the node (from its certificate), service and task.
 *
 * Every dispatcher sees every subscription and answers for its own sessions only. A node with no
 * session anywhere answers nobody: a non-following reader stops waiting for it after its own timeout
 * and says so. A following subscription is relayed to its nodes as they connect, until the reader
 * publishes its end.
 */
export class LogRelay {
  readonly #bus: BusConnection;
  readonly #log: Logger;
  readonly #listeners = new Map<string, Set<Send>>();
  readonly #relayed = new Map<string, RelayedSubscription>();
  #subscription: ReturnType<BusConnection['nc']['subscribe']> | undefined;

  constructor(bus: BusConnection, log: Logger) {
    this.#bus = bus;
    this.#log = log;
  }

  /** Starts taking subscriptions from NATS. */
  start(): void {
    this.#subscription = this.#bus.nc.subscribe(subjects.logSubscribe, {
      callback: (err, message) => {
        if (err !== null) {
          this.#log.warn({ err }, 'log subscriptions are not being received');
          return;
        }
        try {
          this.#receive(message.json<LogSubscription | LogSubscriptionEnd>());
        } catch (error) {
          this.#log.warn({ err: toShoalError(error).message }, 'ignoring a malformed log subscription');
        }
      },
    });
  }

  /** Stops taking subscriptions and forgets them. */
  close(): void {
    this.#subscription?.unsubscribe();
    for (const relayed of this.#relayed.values()) clearTimeout(relayed.expiry);
    this.#relayed.clear();
  }

  /**
   * Sends the node's subscriptions to `send` (a ListenSubscriptions stream) from now on, starting with
   * the following ones already open, until the returned function is called.
   */
  listen(nodeId: string, send: Send): () => void {
    const listeners = this.#listeners.get(nodeId) ?? new Set();
    listeners.add(send);
    this.#listeners.set(nodeId, listeners);
    for (const relayed of this.#relayed.values()) {
      if (relayed.message.options?.follow !== true || !relayed.nodeIds.has(nodeId)) continue;
      send(relayed.message);
      relayed.asked.add(nodeId);
    }
    return () => {
      listeners.delete(send);
      if (listeners.size === 0) this.#listeners.delete(nodeId);
    };
  }

  /**
   * Publishes what node `nodeId` sent for a subscription: NOT_FOUND for a subscription it was not
   * asked for (here), PERMISSION_DENIED for lines claiming another node.
   */
  publish(nodeId: string, message: PublishLogsMessage): void {
    const relayed = this.#relayed.get(message.subscriptionId);
    if (relayed === undefined || !relayed.nodeIds.has(nodeId)) {
      throw errors.notFound(`unknown subscription ID ${message.subscriptionId}`, { nodeId, subscriptionId: message.subscriptionId });
    }
    if (message.messages.some((line) => line.context?.nodeId !== nodeId)) {
      throw new ShoalError(ErrorCode.PermissionDenied, 'a node may only publish the logs of its own tasks', { details: { nodeId } });
    }
    const subject = subjects.logStream(message.subscriptionId);
    for (const line of message.messages) {
      const publication: LogPublication = {
        nodeId,
        serviceId: line.context?.serviceId ?? '',
        taskId: line.context?.taskId ?? '',
        stream: line.stream === LogStream.STDERR ? 'stderr' : 'stdout',
        time: (line.timestamp ?? new Date()).toISOString(),
        line: line.data.toString('utf8').replace(/\r?\n$/, ''),
      };
      this.#bus.nc.publish(subject, JSON.stringify(publication));
    }
    if (!message.close) return;
    const done: LogPublication = { nodeId, done: true };
    this.#bus.nc.publish(subject, JSON.stringify(done));
    relayed.asked.delete(nodeId);
    if (relayed.message.options?.follow !== true && relayed.asked.size === 0) this.#forget(message.subscriptionId);
  }

  #receive(received: LogSubscription | LogSubscriptionEnd): void {
    if (typeof received.id !== 'string' || received.id === '') throw errors.invalidArgument('a log subscription needs an id');
    if ('close' in received) this.#end(received.id);
    else this.#relay(received);
  }

  #relay(subscription: LogSubscription): void {
    const message = subscriptionMessage(subscription);
    const nodeIds = new Set(subscription.nodeIds);
    const asked = new Set<string>();
    for (const nodeId of nodeIds) {
      const listeners = this.#listeners.get(nodeId);
      if (listeners === undefined) continue;
      for (const send of listeners) send(message);
      asked.add(nodeId);
    }
    // A follower is kept for the nodes that connect later; a one-off read only while answers are due.
    if (!subscription.follow && asked.size === 0) return;
    const expiry = subscription.follow ? undefined : setTimeout(() => this.#forget(subscription.id), UNANSWERED_SUBSCRIPTION_TTL_MS);
    this.#relayed.set(subscription.id, { message, nodeIds, asked, expiry });
  }

  /** The reader went away: the nodes asked here stop publishing for it. */
  #end(id: string): void {
    const relayed = this.#relayed.get(id);
    if (relayed === undefined) return;
    const close: SubscriptionMessage = { id, selector: undefined, options: undefined, close: true };
    for (const nodeId of relayed.asked) for (const send of this.#listeners.get(nodeId) ?? []) send(close);
    this.#forget(id);
  }

  #forget(id: string): void {
    clearTimeout(this.#relayed.get(id)?.expiry);
    this.#relayed.delete(id);
  }
}

/**
 * The agent's form of a subscription. The selector names the tasks alone: swarmkit's selector picks a
 * task matching any of its lists, and the reader wants exactly these tasks, not every task of their
 * services.
 */
function subscriptionMessage(subscription: LogSubscription): SubscriptionMessage {
  const streams = [...(subscription.stdout ? [LogStream.STDOUT] : []), ...(subscription.stderr ? [LogStream.STDERR] : [])];
  const { taskIds, serviceIds, follow, tail, sinceMs } = subscription;
  return {
    id: subscription.id,
    selector: taskIds.length > 0 ? { serviceIds: [], nodeIds: [], taskIds: [...taskIds] } : { serviceIds: [...serviceIds], nodeIds: [], taskIds: [] },
    options: {
      streams,
      follow,
      tail: tail !== undefined && Number.isSafeInteger(tail) ? BigInt(tail) : -1n,
      since: sinceMs === undefined ? undefined : new Date(sinceMs),
    },
    close: false,
  };
}
