import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** The process logger. Library code receives one (or a child of one) and never creates its own. */
export type Logger = PinoLogger;

/**
 * The field names Shoal logs use, so the same thing is always called the same (never `task_id` in one
 * place and `taskId` in another). Pass them as the first argument: `log.info({ taskId, nodeId }, 'task assigned')`.
 */
export interface LogFields {
  /** The process, e.g. `scheduler`; set once on the root logger by {@link createLogger}. */
  service?: string;
  /** A part of a service's code, e.g. `scheduler/filters`; set with `log.child({ module })`. */
  module?: string;
  /** A supervised {@link Component}'s name; set by the supervisor on the logger it hands the component. */
  component?: string;
  taskId?: string;
  nodeId?: string;
  serviceId?: string;
  networkId?: string;
  /** An object or store version. */
  version?: bigint | string;
  /** A raft term. */
  term?: bigint;
  /** A raft log index. */
  index?: bigint;
  /** A lifecycle state, logged whenever something changes state: `starting`, `ready`, `stopping`, `stopped`, `failed`. */
  state?: string;
  /** Why a state change happened, e.g. `received SIGTERM`. */
  reason?: string;
  /** A fully qualified gRPC method, e.g. `/shoal.v1.Store/Get`. */
  method?: string;
  /** A Shoal error code, for failures reported without the whole error. */
  code?: string;
  /** A NATS subject. */
  subject?: string;
  /** A remote server's address (a NATS server, a gRPC peer). */
  server?: string;
  /** An address this process listens on, as configured (`0.0.0.0:4242`). */
  address?: string;
  /** The TCP port actually bound (differs from `address` when that asked for port 0). */
  port?: number;
  /** Anything thrown; serialized with its code, details, stack and cause chain. */
  err?: unknown;
}

/**
 * Key paths whose values are replaced by `[redacted]` wherever they appear at the top level or one level
 * down. Secrets have no business in logs, but a whole request or config object logged by accident should
 * not leak the ones it carries.
 */
const secretKeys = ['password', 'passphrase', 'secret', 'token', 'joinToken', 'privateKey', 'unlockKey', 'authorization'];
const redactPaths = secretKeys.flatMap((key) => [key, `*.${key}`]);

/**
 * Creates the process's root logger. Every line is one JSON object with these fixed fields: `level` (a
 * label such as `info`), `time` (ISO 8601), `service`, `pid` and `msg`, plus whatever {@link LogFields}
 * the call passes. `bigint`s are written as exact JSON numbers. `err` is serialized with its `code`,
 * `details`, stack and `cause` chain. Logs go to stdout unless `destination` is given (tests pass a stream).
 */
export function createLogger(opts: { service: string; level?: string; destination?: DestinationStream }): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { service: opts.service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
    redact: { paths: redactPaths, censor: '[redacted]' },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}

/** Resolves once everything `log` has accepted is written out; call it before the process exits. */
export function flushLogger(log: Logger): Promise<void> {
  // A failed flush (stdout closed) must not keep the process from exiting, so its error is dropped.
  return new Promise((resolve) => log.flush(() => resolve()));
}
