import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errors } from '@shoal/errors';

/**
 * Reader of the recorded docker CLI ↔ dockerd traffic in shared/reference/docker-api-transcripts,
 * for contract tests. A file looks like this (bodies indented by three spaces; JSON re-indented by
 * the recorder, other bodies as text, or as a Python bytes literal when not UTF-8):
 *
 * ```
 * ############################## sec_create_28
 * [cli.stdout] pm24wy734bqbbg1bw5ut799fe
 * [cli.rc] 0
 * -> +0.01s POST /v1.41/secrets/create
 *    body: {
 *     "Name": "probe_secret_28", …
 *    }
 * <- 201 Created  [application/json]
 *    {
 *     "ID": "pm24wy734bqbbg1bw5ut799fe"
 *    }
 * ```
 *
 * The recorder cut long bodies (`...[truncated 522 chars]`) and, once, a run of thousands of
 * identical polls (`...[transcript truncated: …]`); both are kept visible in the result.
 */

/** One request and its response. */
export interface Exchange {
  method: string;
  /** The path without query and without the version prefix: `/secrets/create`, `/_ping`. */
  path: string;
  /** `/v1.41` when the CLI sent one; `versionPrefix + path` is the path as sent. */
  versionPrefix?: string;
  /** The query, whose values the recorder already URL-decoded. */
  query: URLSearchParams;
  /** The parsed JSON body; see {@link RecordedBody} for the other shapes. */
  requestBody?: RecordedBody;
  requestBodyTruncated: boolean;
  status: number;
  statusText: string;
  /** Absent when the response had no Content-Type (e.g. log streams from dockerd 20.10). */
  contentType?: string;
  responseBody?: RecordedBody;
  responseBodyTruncated: boolean;
}

/**
 * A recorded body: the parsed value when it is JSON, a `Buffer` of the exact bytes when it is not
 * (log streams), and the recorded prefix as a `string` when the recorder truncated it.
 */
export type RecordedBody = unknown;

/** What the CLI printed and how it exited. */
export interface CliResult {
  stdout: string;
  stderr: string;
  /** Absent when the recorder stopped the CLI (`service logs -f`). */
  rc: number | undefined;
}

export interface Transcript {
  name: string;
  cli: CliResult;
  exchanges: Exchange[];
  /** The recorder's notes where it left exchanges out, in order; the exchange before each is cut short. */
  omissions: string[];
}

/** The reference directory: `$SHOAL_REFERENCE_DIR`, else `<root>/shared/reference` beside the repository at `<root>/main`. */
function referenceDir(): string {
  return process.env['SHOAL_REFERENCE_DIR'] ?? fileURLToPath(new URL('../../../../../shared/reference/', import.meta.url));
}

function transcriptsDir(): string {
  return join(referenceDir(), 'docker-api-transcripts');
}

/** The names of all transcripts (file names without `.txt`), sorted. */
export function listTranscripts(): string[] {
  return readdirSync(transcriptsDir())
    .filter((file) => file.endsWith('.txt'))
    .map((file) => file.slice(0, -'.txt'.length))
    .sort();
}

/** Reads and parses one transcript by name (`sec_create_28`). */
export function readTranscript(name: string): Transcript {
  return parseTranscript(name, readFileSync(join(transcriptsDir(), `${name}.txt`), 'utf8'));
}

const HEADER = /^#{30} (\S+)$/;
const CLI_LINE = /^\[cli\.(stdout|stderr|rc)\] ?(.*)$/;
const REQUEST_LINE = /^-> \+\d+(?:\.\d+)?s ([A-Z]+) (\S+)$/;
const RESPONSE_LINE = /^<- (\d{3}) (.*?) {2}\[(.*)\]$/;
const REQUEST_BODY_START = '   body: ';
const BODY_INDENT = '   ';
const TRUNCATED_BODY = /^\.\.\.\[truncated \d+ chars\]$/;
const OMISSION = /^\.\.\.\[transcript truncated: (.*)\]$/;
const VERSION_PREFIX = /^\/v\d+\.\d+(?=\/)/;

/** Parses the text of a transcript; `name` is the file's name and must match its header. */
export function parseTranscript(name: string, text: string): Transcript {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const fail = (index: number, problem: string) => errors.invalidArgument(`${name}.txt:${index + 1}: ${problem}`, { transcript: name, line: index + 1 });

  const header = HEADER.exec(lines[0] ?? '');
  if (header?.[1] !== name) throw fail(0, `expected the header "${'#'.repeat(30)} ${name}"`);

  let index = 1;
  const cliLines: Record<'stdout' | 'stderr' | 'rc', string[]> = { stdout: [], stderr: [], rc: [] };
  let section: keyof typeof cliLines | undefined;
  for (; index < lines.length && !REQUEST_LINE.test(lines[index] ?? ''); index++) {
    const line = lines[index] ?? '';
    const start = CLI_LINE.exec(line);
    if (start !== null) {
      section = start[1] as keyof typeof cliLines;
      cliLines[section].push(start[2] ?? '');
    } else if (section === 'stdout' || section === 'stderr') {
      cliLines[section].push(line);
    } else {
      throw fail(index, 'expected CLI output or the first request');
    }
  }
  const rcText = cliLines.rc.join('\n');
  if (rcText !== '' && !/^\d+$/.test(rcText)) throw fail(index, `CLI exit code "${rcText}" is not a number`);
  const cli: CliResult = {
    stdout: cliLines.stdout.join('\n'),
    stderr: cliLines.stderr.join('\n'),
    rc: rcText === '' ? undefined : Number(rcText),
  };

  const exchanges: Exchange[] = [];
  const omissions: string[] = [];
  while (index < lines.length) {
    const request = REQUEST_LINE.exec(lines[index] ?? '');
    if (request === null) throw fail(index, 'expected a request line "-> +0.00s METHOD /path"');
    const [, method = '', target = ''] = request;
    index++;

    const requestBodyLines: string[] = [];
    if (lines[index]?.startsWith(REQUEST_BODY_START)) {
      requestBodyLines.push((lines[index] ?? '').slice(REQUEST_BODY_START.length));
      index++;
      index = collectIndented(lines, index, requestBodyLines);
    }

    const response = RESPONSE_LINE.exec(lines[index] ?? '');
    if (response === null) throw fail(index, 'expected a response line "<- STATUS Text  [content-type]"');
    const [, status = '', statusText = '', contentType = ''] = response;
    index++;
    const responseBodyLines: string[] = [];
    index = collectIndented(lines, index, responseBodyLines);

    const omission = OMISSION.exec(lines[index] ?? '');
    if (omission !== null) {
      omissions.push(omission[1] ?? '');
      // What follows the note is the tail of an unidentified later response: skip to the next request.
      do index++;
      while (index < lines.length && !REQUEST_LINE.test(lines[index] ?? ''));
    }

    const requestBody = readBody(requestBodyLines);
    const responseBody = readBody(responseBodyLines, omission !== null);
    const queryStart = target.indexOf('?');
    const fullPath = queryStart === -1 ? target : target.slice(0, queryStart);
    const versionPrefix = VERSION_PREFIX.exec(fullPath)?.[0];
    exchanges.push({
      method,
      path: versionPrefix === undefined ? fullPath : fullPath.slice(versionPrefix.length),
      ...(versionPrefix === undefined ? {} : { versionPrefix }),
      query: parseDecodedQuery(queryStart === -1 ? '' : target.slice(queryStart + 1)),
      ...(requestBody.value === undefined ? {} : { requestBody: requestBody.value }),
      requestBodyTruncated: requestBody.truncated,
      status: Number(status),
      statusText,
      ...(contentType === '' ? {} : { contentType }),
      ...(responseBody.value === undefined ? {} : { responseBody: responseBody.value }),
      responseBodyTruncated: responseBody.truncated,
    });
  }
  return { name, cli, exchanges, omissions };
}

/** Appends the indented lines from `index` on (indent removed) and returns the index after them. */
function collectIndented(lines: readonly string[], index: number, into: string[]): number {
  let next = index;
  while (next < lines.length && (lines[next] ?? '').startsWith(BODY_INDENT)) {
    into.push((lines[next] ?? '').slice(BODY_INDENT.length));
    next++;
  }
  return next;
}

function readBody(lines: string[], cutShort = false): { value: RecordedBody; truncated: boolean } {
  if (lines.length === 0) return { value: undefined, truncated: cutShort };
  const truncated = cutShort || TRUNCATED_BODY.test(lines.at(-1) ?? '');
  const text = (TRUNCATED_BODY.test(lines.at(-1) ?? '') ? lines.slice(0, -1) : lines).join('\n');
  if (truncated) return { value: text, truncated };
  const bytes = lines.length === 1 ? parseBytesLiteral(text) : undefined;
  if (bytes !== undefined) return { value: bytes, truncated };
  try {
    return { value: JSON.parse(text) as unknown, truncated };
  } catch {
    // Not JSON: the recorder printed the bytes as text, one line per line.
    return { value: Buffer.from(text, 'utf8'), truncated };
  }
}

/** Python's repr of bytes (`b'\x01\x00…line 29\n'`), which the recorder used for bodies that were not UTF-8. */
function parseBytesLiteral(text: string): Buffer | undefined {
  const quote = text[1];
  if (text[0] !== 'b' || (quote !== "'" && quote !== '"') || text.at(-1) !== quote || text.length < 3) return undefined;
  const bytes: number[] = [];
  const body = text.slice(2, -1);
  for (let i = 0; i < body.length; i++) {
    const char = body[i] ?? '';
    if (char !== '\\') {
      bytes.push(char.charCodeAt(0));
      continue;
    }
    const escape = body[++i] ?? '';
    if (escape === 'x') {
      bytes.push(Number.parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const simple = pythonEscapes[escape];
      if (simple === undefined) throw errors.invalidArgument(`unknown escape \\${escape} in a recorded bytes literal`);
      bytes.push(simple);
    }
  }
  return Buffer.from(bytes);
}

const pythonEscapes: Readonly<Record<string, number>> = { n: 0x0a, r: 0x0d, t: 0x09, '\\': 0x5c, "'": 0x27, '"': 0x22 };

/** The recorder wrote queries decoded (`filters={"label":…}`), so values are taken literally, `+` included. */
function parseDecodedQuery(query: string): URLSearchParams {
  const params = new URLSearchParams();
  if (query === '') return params;
  for (const pair of query.split('&')) {
    const separator = pair.indexOf('=');
    if (separator === -1) params.append(pair, '');
    else params.append(pair.slice(0, separator), pair.slice(separator + 1));
  }
  return params;
}
