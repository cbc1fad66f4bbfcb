import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import { untilAborted, type Component, type ComponentContext, type Logger } from '@shoal/runtime';

export interface BusOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  url: string | string[];
  /** Shown for this connection in the NATS server's monitoring, e.g. `scheduler`. */
  name: string;
  log: Logger;
}

/** An open NATS connection. Publish and subscribe on `nc`; end it with {@link BusConnection.close}. */
export interface BusConnection {
  readonly nc: NatsConnection;
  /**
   * Drains the connection: stops the subscriptions taking new messages, delivers the ones already
   * received to their handlers, flushes everything published so far to the server, then closes.
   * While the server is unreachable it just closes (nothing pending could be delivered). Safe to call
   * more than once.
   */
  close(): Promise<void>;
}

/**
 * Connects to NATS. The first connection must succeed (UNAVAILABLE otherwise, so a misconfigured URL
 * fails the process at startup); after that the client reconnects forever, because a NATS outage
 * costs latency, never correctness, and must not take the service down.
 */
export async function connectBus(opts: BusOptions): Promise<BusConnection> {
  const servers = Array.isArray(opts.url) ? opts.url.join(',') : opts.url;
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: opts.url, name: opts.name, maxReconnectAttempts: -1 });
  } catch (err) {
    throw new ShoalError(ErrorCode.Unavailable, `cannot connect to NATS at ${servers}`, { details: { server: servers }, cause: err });
  }
  const { log } = opts;
  log.info({ state: 'connected', server: nc.getServer() }, 'NATS connection state changed');
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') connected = false;
      if (status.type === 'reconnect') connected = true;
      logStatus(log, status);
    }
  })();

  // Draining needs the server; without one, nothing pending can be delivered anyway, and a shutdown
  // during a NATS outage must still finish (NATS carries nothing that cannot be lost).
  const closeUndrained = (err?: unknown): Promise<void> => {
    log.warn({ state: 'closing', err }, 'closing the NATS connection without draining it: the server is unreachable');
    return nc.close();
  };
  let closing: Promise<void> | undefined;
  return {
    nc,
    close() {
      if (nc.isClosed()) return Promise.resolve();
      closing ??= connected ? nc.drain().catch(closeUndrained) : closeUndrained();
      return closing;
    },
  };
}

function logStatus(log: Logger, status: Status): void {
  const message = 'NATS connection state changed';
  switch (status.type) {
    case 'disconnect':
      return log.warn({ state: 'disconnected', server: status.server }, message);
    case 'reconnecting':
      return log.debug({ state: 'reconnecting' }, message);
    case 'reconnect':
      return log.info({ state: 'reconnected', server: status.server }, message);
    case 'ldm':
      return log.warn({ state: 'server-entering-lame-duck-mode', server: status.server }, message);
    case 'staleConnection':
      return log.warn({ state: 'stale' }, message);
    case 'error':
      return log.error({ state: 'error', err: status.error }, message);
    case 'slowConsumer':
      return log.warn({ state: 'slow-consumer', subject: status.sub.getSubject() }, 'a subscription is falling behind; messages may be dropped');
    case 'close':
      return log.info({ state: 'closed' }, message);
    default:
      // pings, cluster updates and forced reconnects are routine and not worth a line each.
      return;
  }
}

/** Like {@link BusOptions}; the component logs through the supervisor's logger. */
export interface BusComponentOptions extends Omit<BusOptions, 'log'> {
  /** The component's name in the process, for logs and the supervisor's result. @default `bus` */
  componentName?: string;
}

/**
 * Keeps a NATS connection open for as long as the process runs: connects on start, is ready once
 * connected, and drains on stop. Components after it in the supervisor's list may use
 * {@link BusComponent.connection}; since they stop before it, their last messages are still delivered.
 * If the connection closes by itself (the server refused it for good), the component fails.
 */
export class BusComponent implements Component {
  readonly name: string;
  readonly #url: string | string[];
  readonly #connectionName: string;
  #connection: BusConnection | undefined;

  constructor(opts: BusComponentOptions) {
    this.name = opts.componentName ?? 'bus';
    this.#url = opts.url;
    this.#connectionName = opts.name;
  }

  /** The open connection. Throws FAILED_PRECONDITION before the component is ready. */
  get connection(): BusConnection {
    if (this.#connection === undefined) throw errors.failedPrecondition(`${this.name} is not connected yet`);
    return this.#connection;
  }

  async run(ctx: ComponentContext): Promise<void> {
    const connection = await connectBus({ url: this.#url, name: this.#connectionName, log: ctx.log });
    this.#connection = connection;
    ctx.ready();
    const closedByItself = connection.nc.closed().then((err) => ({ err }));
    const outcome = await Promise.race([untilAborted(ctx.signal), closedByItself]);
    if (outcome === undefined) return connection.close();
    throw new ShoalError(ErrorCode.Unavailable, 'the NATS connection closed by itself', { cause: outcome.err });
  }
}

/** Creates a {@link BusComponent}. */
export function busComponent(opts: BusComponentOptions): BusComponent {
  return new BusComponent(opts);
}
