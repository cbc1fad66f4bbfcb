import { resolve as resolvePath } from 'node:path';
import { ErrorCode, errors, hasCode } from '@shoal/errors';

/** The outcome of reading one setting's raw value. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; problem: string };

/**
 * One environment variable a service reads: its name, its documentation, its default and how to parse
 * it. An unset or empty variable takes the default; an invalid one is reported, never silently replaced.
 */
export interface Setting<T> {
  readonly env: string;
  readonly doc: string;
  /** The default as it would be written in the environment (`10s`, `info`), for `describe()`. */
  readonly defaultText: string;
  read(raw: string | undefined): ParseResult<T>;
}

/** A service's settings, read together so that every problem is reported at once. */
export interface ConfigDefinition<T> {
  /**
   * Reads every setting from `env` (default: `process.env`). Throws one INVALID_ARGUMENT ShoalError that
   * lists every invalid setting, one per line (`  SHOAL_X=abc: must be an integer`), with the same
   * problems in `details` keyed by variable name.
   */
  load(env?: NodeJS.ProcessEnv): T;
  /** Every setting's variable, default and documentation, in definition order (for `--help` and READMEs). */
  describe(): { env: string; default: string; doc: string }[];
}

/**
 * Declares a service's configuration. Each key of the result is read from the setting given for it:
 * `defineConfig({ port: setting.int('SHOAL_API_PORT', 2377, 'TCP port of the API', { min: 1, max: 65535 }) })`.
 */
export function defineConfig<T>(settings: { [K in keyof T]: Setting<T[K]> }): ConfigDefinition<T> {
  const entries = Object.entries(settings) as [keyof T & string, Setting<unknown>][];
  const seen = new Set<string>();
  for (const [, { env }] of entries) {
    if (seen.has(env)) throw errors.invalidArgument(`the configuration reads ${env} twice`, { env });
    seen.add(env);
  }
  return {
    load(env = process.env) {
      const config: Partial<Record<keyof T, unknown>> = {};
      const problems: { env: string; raw: string | undefined; problem: string }[] = [];
      for (const [key, setting] of entries) {
        const raw = env[setting.env];
        const result = setting.read(raw);
        if (result.ok) config[key] = result.value;
        else problems.push({ env: setting.env, raw, problem: result.problem });
      }
      if (problems.length > 0) {
        const lines = problems.map((p) => `  ${p.env}=${p.raw ?? ''}: ${p.problem}`);
        throw errors.invalidArgument(`invalid configuration:\n${lines.join('\n')}`, Object.fromEntries(problems.map((p) => [p.env, p.problem])));
      }
      return config as T;
    },
    describe() {
      return entries.map(([, s]) => ({ env: s.env, default: s.defaultText, doc: s.doc }));
    },
  };
}

/**
 * Loads a process's configuration in its `main.ts`. Invalid settings are the operator's mistake, not a
 * crash: every one of them is printed and the process exits with code 2 before it starts anything.
 */
export function loadConfigOrExit<T>(definition: ConfigDefinition<T>, service: string, env: NodeJS.ProcessEnv = process.env): T {
  try {
    return definition.load(env);
  } catch (err) {
    if (!hasCode(err, ErrorCode.InvalidArgument)) throw err;
    process.stderr.write(`${service}: ${err.message}\n`);
    process.exit(2);
  }
}

const valid = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const invalid = <T>(problem: string): ParseResult<T> => ({ ok: false, problem });

/** Builds a setting whose default is `fallback` and whose non-empty raw values go through `parse`. */
function makeSetting<T>(env: string, doc: string, fallback: T, defaultText: string, parse: (raw: string) => ParseResult<T>): Setting<T> {
  return {
    env,
    doc,
    defaultText,
    read: (raw) => (raw === undefined || raw.trim() === '' ? valid(fallback) : parse(raw.trim())),
  };
}

const durationUnitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
type DurationUnit = keyof typeof durationUnitsMs;
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** Parses `500ms`, `5s`, `1.5m`, `2h` or a plain number of milliseconds; undefined if it is none of these. */
export function parseDurationMs(text: string): number | undefined {
  const match = durationPattern.exec(text);
  if (match === null) return undefined;
  const unit = (match[2] ?? 'ms') as DurationUnit;
  return Math.round(Number(match[1]) * durationUnitsMs[unit]);
}

/** Writes milliseconds in the largest unit that divides them exactly: 10000 → `10s`, 1500 → `1500ms`. */
export function formatDurationMs(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const size = durationUnitsMs[unit];
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function describeIntRange(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `must be an integer between ${min} and ${max}`;
  if (min !== undefined) return `must be an integer >= ${min}`;
  if (max !== undefined) return `must be an integer <= ${max}`;
  return 'must be an integer';
}

const booleanWords = new Map([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
  ['yes', true],
  ['no', false],
  ['on', true],
  ['off', false],
]);
const hostPortPattern = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/;

/** Constructors for the kinds of setting a service can read. */
export const setting = {
  /** Any non-empty text. */
  string(env: string, fallback: string, doc: string): Setting<string> {
    return makeSetting(env, doc, fallback, fallback, valid);
  },

  /** A decimal integer, optionally bounded (both bounds inclusive). */
  int(env: string, fallback: number, doc: string, bounds: { min?: number; max?: number } = {}): Setting<number> {
    const { min, max } = bounds;
    return makeSetting(env, doc, fallback, String(fallback), (raw) => {
      const value = Number(raw);
      const inRange = (min === undefined || value >= min) && (max === undefined || value <= max);
      return /^[+-]?\d+$/.test(raw) && Number.isSafeInteger(value) && inRange ? valid(value) : invalid(describeIntRange(min, max));
    });
  },

  /** A duration, read as milliseconds: `500ms`, `5s`, `1m`, `2h`, or a plain number of milliseconds. */
  duration(env: string, fallbackMs: number, doc: string): Setting<number> {
    return makeSetting(env, doc, fallbackMs, formatDurationMs(fallbackMs), (raw) => {
      const ms = parseDurationMs(raw);
      return ms === undefined ? invalid('must be a duration such as 500ms, 5s, 1m, 2h or a number of milliseconds') : valid(ms);
    });
  },

  /** `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case. */
  boolean(env: string, fallback: boolean, doc: string): Setting<boolean> {
    return makeSetting(env, doc, fallback, String(fallback), (raw) => {
      const value = booleanWords.get(raw.toLowerCase());
      return value === undefined ? invalid(`must be one of ${[...booleanWords.keys()].join(', ')}`) : valid(value);
    });
  },

  /** Exactly one of `values` (case-sensitive). */
  oneOf<const V extends string>(env: string, values: readonly V[], fallback: V, doc: string): Setting<V> {
    return makeSetting(env, doc, fallback, fallback, (raw) =>
      (values as readonly string[]).includes(raw) ? valid(raw as V) : invalid(`must be one of ${values.join(', ')}`),
    );
  },

  /** An absolute URL such as `nats://127.0.0.1:4222`, returned as written. */
  url(env: string, fallback: string, doc: string): Setting<string> {
    return makeSetting(env, doc, fallback, fallback, (raw) =>
      URL.canParse(raw) ? valid(raw) : invalid('must be an absolute URL such as nats://127.0.0.1:4222'),
    );
  },

  /** `host:port` (IPv6 hosts in brackets, port 0-65535), returned as written, ready for a bind or dial. */
  hostPort(env: string, fallback: string, doc: string): Setting<string> {
    return makeSetting(env, doc, fallback, fallback, (raw) => {
      const match = hostPortPattern.exec(raw);
      return match !== null && Number(match[2]) <= 65535 ? valid(raw) : invalid('must be host:port with a port between 0 and 65535');
    });
  },

  /** A filesystem path, resolved against the working directory (the default too). */
  path(env: string, fallback: string, doc: string): Setting<string> {
    return makeSetting(env, doc, resolvePath(fallback), fallback, (raw) => valid(resolvePath(raw)));
  },

  /** Text that may be absent: `undefined` when the variable is unset or empty. */
  optionalString(env: string, doc: string): Setting<string | undefined> {
    return makeSetting<string | undefined>(env, doc, undefined, '', valid);
  },
};

/** The pino levels, from loudest to quietest, plus `silent`. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Settings every service reads; spread them into its `defineConfig`. */
export const commonSettings = {
  logLevel: setting.oneOf('SHOAL_LOG_LEVEL', logLevels, 'info', 'Least severe log level written to stdout.'),
  shutdownGraceMs: setting.duration(
    'SHOAL_SHUTDOWN_GRACE',
    10_000,
    'Time allowed for all components together to stop after SIGTERM before the process gives up on them and exits 1 (10s is what `docker stop` waits before SIGKILL).',
  ),
};
