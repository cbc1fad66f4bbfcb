import type { TaskLogLine } from '../executor.js';

type LogStream = TaskLogLine['stream'];
/** The engine's output: a stream of chunks when following, one buffer otherwise. */
type LogOutput = AsyncIterable<Buffer | string> | Iterable<Buffer | string>;

/** One log message as the engine sends it with `timestamps=1`: `<RFC 3339 nano time> <text>`. */
interface LogMessage {
  readonly stream: LogStream;
  readonly payload: Buffer;
}

const FRAME_HEADER_BYTES = 8;
const STDERR_FRAME = 2;
const NEWLINE = 0x0a;
const SPACE = 0x20;

/**
 * Splits a container's log output, as the engine streams it with timestamps, into lines. Without a TTY
 * the output is multiplexed into frames (an 8-byte header naming the stream and the payload length);
 * with one it is raw text, all of it stdout. A message without a newline (the engine splits lines
 * longer than 16 KiB, and a process may end without one) is kept until the rest of its line arrives,
 * and the line takes the time of its first part; whatever is left when the output ends is a line too.
 */
export async function* logLines(output: LogOutput, options: { readonly tty: boolean }): AsyncGenerator<TaskLogLine> {
  const lines = { stdout: new LineAssembler('stdout', options.tty), stderr: new LineAssembler('stderr', options.tty) };
  const chunks = bytesOf(output);
  const messages = options.tty ? rawMessages(chunks) : framedMessages(chunks);
  for await (const message of messages) yield* lines[message.stream].add(message.payload);
  yield* lines.stdout.flush();
  yield* lines.stderr.flush();
}

async function* bytesOf(output: LogOutput): AsyncGenerator<Buffer> {
  for await (const chunk of output) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
}

async function* framedMessages(chunks: AsyncIterable<Buffer>): AsyncGenerator<LogMessage> {
  let buffered: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= FRAME_HEADER_BYTES) {
      const end = FRAME_HEADER_BYTES + buffered.readUInt32BE(4);
      if (buffered.length < end) break;
      yield { stream: buffered[0] === STDERR_FRAME ? 'stderr' : 'stdout', payload: buffered.subarray(FRAME_HEADER_BYTES, end) };
      buffered = buffered.subarray(end);
    }
  }
}

/** A TTY's output has no frames: every line (ended by a newline) is one timestamped message. */
async function* rawMessages(chunks: AsyncIterable<Buffer>): AsyncGenerator<LogMessage> {
  let buffered: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (let newline = buffered.indexOf(NEWLINE); newline !== -1; newline = buffered.indexOf(NEWLINE)) {
      yield { stream: 'stdout', payload: buffered.subarray(0, newline + 1) };
      buffered = buffered.subarray(newline + 1);
    }
  }
  if (buffered.length > 0) yield { stream: 'stdout', payload: buffered };
}

/** Joins one stream's messages into whole lines, decoding each line only once it is complete (so no UTF-8 character is cut). */
class LineAssembler {
  private pending: { readonly time: string; readonly parts: Buffer[] } | undefined;

  constructor(
    private readonly stream: LogStream,
    /** A TTY ends lines with CRLF; the CR is not part of the line. */
    private readonly tty: boolean,
  ) {}

  *add(message: Buffer): Generator<TaskLogLine> {
    const space = message.indexOf(SPACE);
    const time = message.subarray(0, space === -1 ? message.length : space).toString('latin1');
    let text = space === -1 ? Buffer.alloc(0) : message.subarray(space + 1);
    for (let newline = text.indexOf(NEWLINE); newline !== -1; newline = text.indexOf(NEWLINE)) {
      this.append(time, text.subarray(0, newline));
      yield* this.flush();
      text = text.subarray(newline + 1);
    }
    if (text.length > 0) this.append(time, text);
  }

  *flush(): Generator<TaskLogLine> {
    if (this.pending === undefined) return;
    const { time, parts } = this.pending;
    this.pending = undefined;
    const line = Buffer.concat(parts).toString('utf8');
    yield { stream: this.stream, time, line: this.tty && line.endsWith('\r') ? line.slice(0, -1) : line };
  }

  private append(time: string, part: Buffer): void {
    this.pending ??= { time, parts: [] };
    this.pending.parts.push(part);
  }
}
