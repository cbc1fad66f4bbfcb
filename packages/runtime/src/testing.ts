/**
 * Test helpers for code that logs: `@shoal/runtime/testing`. Not for production code.
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from './logger.js';

/** One parsed log line. */
export type LogEntry = Record<string, unknown> & { level: string; msg: string };

/**
 * A real logger (same fields, serializers and redaction as production) whose lines are parsed into
 * `entries` as they are written, so a test can assert on what was logged. `raw` keeps the exact text,
 * for assertions JSON.parse would blur (bigints beyond 2^53).
 */
export function captureLogs(opts: { service?: string; level?: string } = {}): { log: Logger; entries: LogEntry[]; raw: string[] } {
  const entries: LogEntry[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        raw.push(line);
        entries.push(JSON.parse(line) as LogEntry);
      }
      callback();
    },
  });
  const log = createLogger({ service: opts.service ?? 'test', level: opts.level ?? 'trace', destination });
  return { log, entries, raw };
}
