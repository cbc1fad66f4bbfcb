import { errors } from '@shoal/errors';

/**
 * Docker's multiplexed log stream (moby pkg/stdcopy) and the payload layout dockerd writes into it
 * (api/server/httputils/write_log_stream.go). The docker CLI splits each payload on its first spaces
 * to find the timestamp and the details, so the layout has to be byte-exact.
 */

/** The streams a frame can carry; `system` carries dockerd's own errors (`Error grabbing logs: …`). */
export type LogStreamName = 'stdout' | 'stderr' | 'system';

/** stdcopy's stream type bytes (Stdout = 1, Stderr = 2, Systemerr = 3). */
const streamTypes: Readonly<Record<LogStreamName, number>> = { stdout: 1, stderr: 2, system: 3 };
const streamNames: ReadonlyMap<number, LogStreamName> = new Map(
  Object.entries(streamTypes).map(([name, type]) => [type, name as LogStreamName]),
);

/** `[type][0 0 0][payload length, uint32 big-endian]`. */
const HEADER_LENGTH = 8;
const MAX_PAYLOAD_LENGTH = 0xffff_ffff;

/** One frame of a multiplexed stream: `[type][0,0,0][uint32 BE length][payload]`. */
export function encodeFrame(stream: LogStreamName, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > MAX_PAYLOAD_LENGTH) {
    throw errors.invalidArgument(`a log frame holds at most ${MAX_PAYLOAD_LENGTH} bytes, not ${body.length}`);
  }
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt8(streamTypes[stream], 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** One frame read back from a multiplexed stream. */
export interface LogFrame {
  stream: LogStreamName;
  payload: Buffer;
}

/**
 * Splits a complete multiplexed stream into its frames.
 *
 * @throws ShoalError INVALID_ARGUMENT for an unknown stream type (stdcopy's `Unrecognized input
 *   header: 7`) or a stream that ends inside a frame, which stdcopy would drop without a word.
 */
export function decodeFrames(buffer: Buffer): LogFrame[] {
  const frames: LogFrame[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < HEADER_LENGTH) {
      throw errors.invalidArgument(`the stream ends inside a frame header at byte ${offset}`);
    }
    const type = buffer.readUInt8(offset);
    const stream = streamNames.get(type);
    if (stream === undefined) throw errors.invalidArgument(`Unrecognized input header: ${type}`);
    const length = buffer.readUInt32BE(offset + 4);
    const start = offset + HEADER_LENGTH;
    if (buffer.length - start < length) {
      throw errors.invalidArgument(`the stream ends inside the ${length}-byte payload of the frame at byte ${offset}`);
    }
    frames.push({ stream, payload: buffer.subarray(start, start + length) });
    offset = start + length;
  }
  return frames;
}

/** One log line as the API writes it. */
export interface LogLine {
  timestamp: Date;
  /**
   * Nanoseconds within the second (0–999,999,999), for a source more precise than `Date`'s
   * milliseconds; it replaces the fraction of `timestamp`.
   */
  nanoseconds?: number;
  /** The details: for swarm logs at least `com.docker.swarm.node.id`, `.service.id` and `.task.id`. */
  attrs: Readonly<Record<string, string>>;
  /** The line. A trailing `\n` is its terminator, not part of it: one is always written, never two. */
  text: string;
}

export interface LogLineOptions {
  /** `details=1`: put the attrs before the line. */
  details: boolean;
  /** `timestamps=1`: put the timestamp first. */
  timestamps: boolean;
}

/**
 * The payload dockerd writes for one line: `[<timestamp> ][<attrs> ]<text>\n`, where the timestamp is
 * RFC 3339 in UTC with exactly nine fractional digits (`2026-11-21T19:45:15.431126636Z`, Go's
 * RFC3339NanoFixed) and the attrs are `key=value` pairs sorted by key, both sides escaped as Go's
 * url.QueryEscape, joined by `,`. With `details` and no attrs the line starts with a lone space, as
 * dockerd's does.
 */
export function formatLogLine(line: LogLine, options: LogLineOptions): string {
  let payload = line.text.endsWith('\n') ? line.text : `${line.text}\n`;
  if (options.details) payload = `${formatAttrs(line.attrs)} ${payload}`;
  if (options.timestamps) payload = `${formatTimestamp(line.timestamp, line.nanoseconds)} ${payload}`;
  return payload;
}

/** Go's RFC3339NanoFixed in UTC: `2006-01-02T15:04:05.000000000Z`. */
function formatTimestamp(timestamp: Date, nanoseconds: number | undefined): string {
  if (Number.isNaN(timestamp.getTime())) throw errors.invalidArgument('a log line needs a valid timestamp');
  const fraction = nanoseconds ?? timestamp.getUTCMilliseconds() * 1_000_000;
  if (!Number.isInteger(fraction) || fraction < 0 || fraction > 999_999_999) {
    throw errors.invalidArgument(`nanoseconds within a second must be an integer from 0 to 999999999, not ${fraction}`);
  }
  const seconds = timestamp.toISOString().slice(0, 19);
  return `${seconds}.${String(fraction).padStart(9, '0')}Z`;
}

/** dockerd's attrsByteSlice: sorted by key (bytewise, as Go compares strings), query-escaped, comma-joined. */
function formatAttrs(attrs: Readonly<Record<string, string>>): string {
  return Object.entries(attrs)
    .map(([key, value]) => ({ key: Buffer.from(key, 'utf8'), value }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ key, value }) => `${queryEscape(key)}=${queryEscape(Buffer.from(value, 'utf8'))}`)
    .join(',');
}

/** Go's url.QueryEscape: unreserved bytes as they are, space as `+`, every other byte as `%XX`. */
function queryEscape(bytes: Buffer): string {
  let escaped = '';
  for (const byte of bytes) {
    if (isUnreserved(byte)) escaped += String.fromCharCode(byte);
    else if (byte === 0x20) escaped += '+';
    else escaped += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return escaped;
}

/** RFC 3986 unreserved: `A-Z a-z 0-9 - _ . ~`. */
function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d ||
    byte === 0x5f ||
    byte === 0x2e ||
    byte === 0x7e
  );
}
