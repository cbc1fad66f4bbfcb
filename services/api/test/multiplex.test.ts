import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrame, formatLogLine, type LogLine, type LogLineOptions } from '../src/logs/multiplex.js';
import { listTranscripts, readTranscript, type Exchange } from './support/transcripts.js';

/** Matches the INVALID_ARGUMENT ShoalError of a refusal, by its exact message or a pattern. */
const invalid = (message: string | RegExp) =>
  expect.objectContaining({ code: 'INVALID_ARGUMENT', message: typeof message === 'string' ? message : expect.stringMatching(message) });

describe('encodeFrame and decodeFrames', () => {
  it('writes the stream type, three zero bytes and the big-endian payload length before the payload', () => {
    expect([...encodeFrame('stdout', 'line 1\n')]).toEqual([1, 0, 0, 0, 0, 0, 0, 7, ...Buffer.from('line 1\n')]);
    expect(encodeFrame('stderr', '').subarray(0, 8)).toEqual(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]));
    expect(encodeFrame('system', Buffer.alloc(0x01_02_03)).subarray(0, 8)).toEqual(Buffer.from([3, 0, 0, 0, 0, 0x01, 0x02, 0x03]));
  });

  it('counts the payload length in UTF-8 bytes', () => {
    expect(encodeFrame('stdout', 'é\n').readUInt32BE(4)).toBe(3);
  });

  it('reads back the frames it writes, in order', () => {
    const stream = Buffer.concat([encodeFrame('stdout', 'out\n'), encodeFrame('stderr', 'err\n'), encodeFrame('system', 'Error grabbing logs: x\n')]);
    expect(decodeFrames(stream).map(({ stream: name, payload }) => [name, payload.toString()])).toEqual([
      ['stdout', 'out\n'],
      ['stderr', 'err\n'],
      ['system', 'Error grabbing logs: x\n'],
    ]);
    expect(decodeFrames(Buffer.alloc(0))).toEqual([]);
  });

  it('refuses an unknown stream type with stdcopy’s message', () => {
    expect(() => decodeFrames(Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]))).toThrow(invalid('Unrecognized input header: 7'));
  });

  it('refuses a stream that ends inside a header or a payload', () => {
    const frame = encodeFrame('stdout', 'line\n');
    expect(() => decodeFrames(frame.subarray(0, 5))).toThrow(invalid(/ends inside a frame header at byte 0/));
    expect(() => decodeFrames(Buffer.concat([frame, frame.subarray(0, 10)]))).toThrow(invalid(/ends inside the 5-byte payload of the frame at byte 13/));
  });
});

const swarmAttrs = {
  'com.docker.swarm.task.id': 'xvzjx0fydd4zgw3rqn0of25if',
  'com.docker.swarm.node.id': 'plm4mybsj4rzwpzo2a7oe05kw',
  'com.docker.swarm.service.id': 'mb6b37cx8ev7fzc0dqbnzg59t',
};
const line: LogLine = { timestamp: new Date('2026-11-21T19:45:15.431Z'), attrs: swarmAttrs, text: 'line 29' };
const details = 'com.docker.swarm.node.id=plm4mybsj4rzwpzo2a7oe05kw,com.docker.swarm.service.id=mb6b37cx8ev7fzc0dqbnzg59t,com.docker.swarm.task.id=xvzjx0fydd4zgw3rqn0of25if';

describe('formatLogLine', () => {
  it.each<[LogLineOptions, string]>([
    [{ details: false, timestamps: false }, 'line 29\n'],
    [{ details: true, timestamps: false }, `${details} line 29\n`],
    [{ details: false, timestamps: true }, '2026-11-21T19:45:15.431000000Z line 29\n'],
    [{ details: true, timestamps: true }, `2026-11-21T19:45:15.431000000Z ${details} line 29\n`],
  ])('lays out the payload for %j as dockerd does', (options, payload) => {
    expect(formatLogLine(line, options)).toBe(payload);
  });

  it('writes exactly nine fractional digits, from nanoseconds when the source has them', () => {
    const options = { details: false, timestamps: true };
    expect(formatLogLine({ ...line, nanoseconds: 431_126_636 }, options)).toBe('2026-11-21T19:45:15.431126636Z line 29\n');
    expect(formatLogLine({ ...line, nanoseconds: 5 }, options)).toBe('2026-11-21T19:45:15.000000005Z line 29\n');
    expect(formatLogLine({ ...line, timestamp: new Date('2026-01-02T03:04:05Z') }, options)).toBe('2026-01-02T03:04:05.000000000Z line 29\n');
  });

  it('refuses nanoseconds outside one second and an invalid date', () => {
    const options = { details: false, timestamps: true };
    expect(() => formatLogLine({ ...line, nanoseconds: 1_000_000_000 }, options)).toThrow(invalid(/integer from 0 to 999999999/));
    expect(() => formatLogLine({ ...line, timestamp: new Date(Number.NaN) }, options)).toThrow(invalid(/valid timestamp/));
  });

  it('escapes attrs as Go’s url.QueryEscape and sorts them by key bytes', () => {
    // Expected output from Go 1.19's url.QueryEscape for the same strings.
    const attrs = { 'b key': 'a b', 'a=key': 'x,y', é: '!*\'()~-_.', Z: 'a/b?c&d', 'ÿ': '😀' };
    expect(formatLogLine({ ...line, attrs }, { details: true, timestamps: false })).toBe(
      'Z=a%2Fb%3Fc%26d,a%3Dkey=x%2Cy,b+key=a+b,%C3%A9=%21%2A%27%28%29~-_.,%C3%BF=%F0%9F%98%80 line 29\n',
    );
  });

  it('ends the payload with one newline whether or not the text carries its own', () => {
    expect(formatLogLine({ ...line, text: 'line 29\n' }, { details: false, timestamps: false })).toBe('line 29\n');
    expect(formatLogLine({ ...line, text: '' }, { details: false, timestamps: false })).toBe('\n');
  });

  it('leaves a lone space before the line when details are asked for and there are none, as dockerd does', () => {
    expect(formatLogLine({ ...line, attrs: {} }, { details: true, timestamps: false })).toBe(' line 29\n');
  });
});

/** Reads a recorded payload back into the line it was made from, the way the CLI splits it. */
function parsePayload(payload: string, options: LogLineOptions): LogLine {
  let rest = payload.slice(0, -1);
  let timestamp = new Date(0);
  let nanoseconds: number | undefined;
  if (options.timestamps) {
    const [stamp = '', ...tail] = rest.split(' ');
    timestamp = new Date(`${stamp.slice(0, 19)}Z`);
    nanoseconds = Number(stamp.slice(20, 29));
    rest = tail.join(' ');
  }
  const attrs: Record<string, string> = {};
  if (options.details) {
    const [encoded = '', ...tail] = rest.split(' ');
    for (const pair of encoded.split(',')) {
      const [key = '', value = ''] = pair.split('=').map((part) => decodeURIComponent(part.replaceAll('+', ' ')));
      attrs[key] = value;
    }
    rest = tail.join(' ');
  }
  return { timestamp, ...(nanoseconds === undefined ? {} : { nanoseconds }), attrs, text: rest };
}

function logExchanges(): { name: string; exchange: Exchange }[] {
  return listTranscripts().flatMap((name) =>
    readTranscript(name)
      .exchanges.filter((exchange) => exchange.path.endsWith('/logs') && exchange.responseBody !== undefined)
      .map((exchange) => ({ name, exchange })),
  );
}

describe('the recorded dockerd log streams', () => {
  const recorded = logExchanges();

  it('cover raw, details and timestamps layouts in several transcripts', () => {
    const names = recorded.map(({ name }) => name);
    expect(names).toEqual(expect.arrayContaining(['svc_logs_28', 'svc_logs_raw_20', 'svc_logs_ts_28', 'svc_logs_details_20', 'v150_svc_logs']));
  });

  it.each(recorded.map(({ name, exchange }) => [name, exchange] as const))('%s is re-encoded byte for byte', (_name, exchange) => {
    const body = exchange.responseBody;
    if (!Buffer.isBuffer(body)) throw new Error('a log stream is recorded as bytes');
    const options = { details: exchange.query.get('details') === '1', timestamps: exchange.query.get('timestamps') === '1' };
    const frames = decodeFrames(body);
    expect(frames.length).toBeGreaterThan(0);
    const reencoded = frames.map(({ stream, payload }) => encodeFrame(stream, formatLogLine(parsePayload(payload.toString('utf8'), options), options)));
    expect(Buffer.concat(reencoded).equals(body)).toBe(true);
  });
});
