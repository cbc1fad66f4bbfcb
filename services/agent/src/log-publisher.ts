import { once } from 'node:events';
import type { ClientWritableStream } from '@grpc/grpc-js';
import { untilAborted, type Logger } from '@shoal/runtime';
import { LogStream, type LogMessage, type LogSelector, type LogSubscriptionOptions, type PublishLogsMessage, type SubscriptionMessage, type Task } from '@shoal/proto';
import type { TaskLogLine, TaskLogOptions } from './executor.js';
import type { RunningTask, Worker } from './worker.js';

/** Opens a `PublishLogs` client stream on the current session (one per subscription). */
export type PublishStreamOpener = () => ClientWritableStream<PublishLogsMessage>;

export interface LogPublisherOptions {
  readonly nodeId: string;
  readonly worker: Worker;
  readonly openStream: PublishStreamOpener;
  readonly log: Logger;
}

/**
 * Answers the log subscriptions a dispatcher sends (swarmkit's `worker.Subscribe`): for each, the
 * matching tasks of this node publish their lines on one `PublishLogs` stream, each line tagged with
 * its service, node and task. A subscription that does not follow ends with a `close` message once
 * every matching task's existing lines are sent; a following one also picks up matching tasks that
 * start later, and runs until the dispatcher closes it or the session ends.
 */
export class LogPublisher {
  readonly #options: LogPublisherOptions;
  readonly #subscriptions = new Map<string, AbortController>();

  constructor(options: LogPublisherOptions) {
    this.#options = options;
  }

  /** Starts (or, for a `close` message, stops) publishing for a subscription. */
  handle(subscription: SubscriptionMessage): void {
    if (subscription.close) {
      this.#subscriptions.get(subscription.id)?.abort();
      return;
    }
    if (this.#subscriptions.has(subscription.id)) return;
    const stop = new AbortController();
    this.#subscriptions.set(subscription.id, stop);
    this.#publish(subscription, stop.signal)
      .catch((err: unknown) => {
        if (!stop.signal.aborted) this.#options.log.warn({ err, reason: subscription.id }, 'publishing logs failed');
      })
      .finally(() => this.#subscriptions.delete(subscription.id));
  }

  /** Stops every subscription: the session they came from has ended. */
  stopAll(): void {
    for (const stop of this.#subscriptions.values()) stop.abort();
  }

  async #publish(subscription: SubscriptionMessage, signal: AbortSignal): Promise<void> {
    const { worker, openStream, log } = this.#options;
    const selected = selects(subscription.selector);
    const options = taskLogOptions(subscription.options);
    const stream = openStream();
    const failed = new AbortController();
    stream.on('error', (err: Error) => {
      if (!signal.aborted) log.debug({ err, reason: subscription.id }, 'log stream closed by the dispatcher');
      failed.abort();
    });
    const publishing = AbortSignal.any([signal, failed.signal]);
    const send = async (message: PublishLogsMessage) => {
      if (!stream.write(message)) await once(stream, 'drain', { signal: publishing });
    };
    const pumps: Promise<void>[] = [];
    const pump = (running: RunningTask) => {
      if (!selected(running.task)) return;
      pumps.push(
        (async () => {
          for await (const line of running.controller.logs(options, publishing)) {
            await send({ subscriptionId: subscription.id, messages: [this.#message(running.task, line)], close: false });
          }
        })().catch((err: unknown) => {
          if (!publishing.aborted) log.warn({ err, taskId: running.task.id }, 'reading task logs failed');
        }),
      );
    };
    try {
      worker.runningTasks().forEach(pump);
      if (options.follow) {
        const stopFollowing = worker.onNewTask(pump);
        await untilAborted(publishing);
        stopFollowing();
      }
      await Promise.all(pumps);
      if (!publishing.aborted) await send({ subscriptionId: subscription.id, messages: [], close: true });
    } finally {
      stream.end();
    }
  }

  #message(task: Task, line: TaskLogLine): LogMessage {
    return {
      context: { serviceId: task.serviceId, nodeId: this.#options.nodeId, taskId: task.id },
      timestamp: parseLogTime(line.time),
      stream: line.stream === 'stdout' ? LogStream.STDOUT : LogStream.STDERR,
      data: Buffer.from(line.line, 'utf8'),
      attrs: [],
    };
  }
}

/** Whether a selector picks a task: an ID in any of its lists does (swarmkit's `worker.Subscribe`). */
function selects(selector: LogSelector | undefined): (task: Task) => boolean {
  const taskIds = new Set(selector?.taskIds);
  const serviceIds = new Set(selector?.serviceIds);
  const nodeIds = new Set(selector?.nodeIds);
  return (task) => taskIds.has(task.id) || serviceIds.has(task.serviceId) || nodeIds.has(task.nodeId);
}

/** The executor's reading of a subscription: no streams named means both; a negative tail means everything. */
function taskLogOptions(options: LogSubscriptionOptions | undefined): TaskLogOptions {
  const streams = options?.streams ?? [];
  const wants = (stream: LogStream) => streams.length === 0 || streams.includes(stream);
  return {
    follow: options?.follow ?? false,
    sinceMs: options?.since?.getTime(),
    tail: options === undefined || options.tail < 0n ? undefined : Number(options.tail),
    stdout: wants(LogStream.STDOUT),
    stderr: wants(LogStream.STDERR),
  };
}

/** An RFC 3339 time with up to nanoseconds, to the millisecond a Date holds. */
function parseLogTime(time: string): Date {
  return new Date(time.replace(/(\.\d{3})\d+/, '$1'));
}
