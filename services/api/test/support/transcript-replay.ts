import { type Exchange, readTranscript } from './transcripts.js';

/**
 * Replays recorded docker CLI ↔ dockerd exchanges against a live Shoal API and lists every way
 * Shoal's answers differ from dockerd's: the status, the content type, the JSON shape (every key
 * dockerd sent is there with the same JSON type, recursively), the text of error messages, and
 * the values of the fields the caller names (what the replay itself wrote, such as service specs).
 *
 * Recorded IDs are rewritten to Shoal's as the replay learns them: from create responses, and from
 * objects that stand for the same thing in both answers (the object a GET names, list entries with
 * the same ID or name). `?version=` is rewritten to the object's current version, read just before.
 */

/** What to do with the exchanges a rule matches, and why; {@link ReplayOptions.rules}. */
export interface ReplayRule {
  /** The transcripts it applies to; all when absent. */
  readonly transcripts?: RegExp;
  readonly method?: string;
  /** Matched against the recorded path without its version prefix. */
  readonly path: RegExp;
  /**
   * `skip`: not sent. `status`: sent, and only the status compared (the recorded body was made up
   * by the recording proxy). A number: sent, and Shoal must answer with that status and a
   * `{"message"}` instead of the recorded one.
   */
  readonly action: 'skip' | 'status' | number;
  readonly reason: string;
}

/** A field of a recorded response that Shoal may leave out or type differently, and why. */
export interface FieldException {
  /** Matched against the recorded request path without its version prefix. */
  readonly path: RegExp;
  /** Matched against the field's JSON path: `$.Spec.Labels`, `$[].Endpoint.VirtualIPs` for list entries. */
  readonly field: RegExp;
  readonly reason: string;
}

/** Fields of some answers whose values, not only their shape, must be dockerd's; {@link ReplayOptions.sameValues}. */
export interface ValueCheck {
  /** The transcripts it applies to; all when absent. */
  readonly transcripts?: RegExp;
  /** Matched against the recorded request path without its version prefix. */
  readonly path: RegExp;
  /** Matched against the field's JSON path: `$.Spec`, `$[].Spec`. */
  readonly field: RegExp;
}

export interface ReplayOptions {
  /** The first matching rule decides; exchanges no rule matches are replayed and fully compared. */
  readonly rules: readonly ReplayRule[];
  readonly fieldExceptions: readonly FieldException[];
  /**
   * Fields the replay wrote as dockerd's session did (a service's spec), whose values must then
   * read back as dockerd's, recorded IDs read as Shoal's. Empty and null maps and lists are alike.
   */
  readonly sameValues: readonly ValueCheck[];
  /**
   * Recorded IDs and names of objects this replay cannot have (made outside the recorded
   * sessions, or by an orchestrator Shoal does not run yet), each with the reason. An exchange
   * whose path or filters name one is skipped; a list entry that is one is not looked for.
   */
  readonly foreign: Readonly<Record<string, string>>;
}

/** The outcome of replaying one transcript. */
export interface ReplayReport {
  readonly transcript: string;
  /** `#2 POST /v1.41/secrets/create`, for each exchange sent. */
  readonly replayed: string[];
  /** `#5 GET /v1.41/tasks/x: <reason>`, for each exchange not sent. */
  readonly skipped: string[];
  /** `#2 POST /v1.41/secrets/create: status 500, recorded 201 (message)`, for each difference. */
  readonly mismatches: string[];
}

/** An answer of the API, its body parsed when it is JSON. */
export interface ApiAnswer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly text: string;
  readonly json: unknown;
}

/** Recorded and Shoal IDs: 25 lowercase base-36 characters. */
const OBJECT_ID = /^[a-z0-9]{25}$/;
/** dockerd relays swarmkit's gRPC errors with this prefix; Shoal's API is the edge and has no gRPC status to show. */
const GRPC_PREFIX = /^rpc error: code = \w+ desc = /;
const JSON_CONTENT = 'application/json';

/** Replays transcripts in order against one Shoal API, keeping what it learned between them. */
export class TranscriptReplayer {
  readonly #baseUrl: string;
  readonly #options: ReplayOptions;
  /** Recorded ID (or hostname) → Shoal's. */
  readonly #ours = new Map<string, string>();
  /** Shoal's ID (or hostname) → recorded, to read Shoal's messages in the recording's terms. */
  readonly #recorded = new Map<string, string>();
  /** The rules and field exceptions that decided something, so a table cannot keep entries nothing needs. */
  readonly #used = new Set<ReplayRule | FieldException>();

  constructor(baseUrl: string, options: ReplayOptions) {
    this.#baseUrl = baseUrl;
    this.#options = options;
  }

  /** The reasons of the rules and field exceptions no replay so far has needed. */
  unused(): string[] {
    return [...this.#options.rules, ...this.#options.fieldExceptions].filter((entry) => !this.#used.has(entry)).map((entry) => entry.reason);
  }

  async replay(transcript: string): Promise<ReplayReport> {
    const report: ReplayReport = { transcript, replayed: [], skipped: [], mismatches: [] };
    const { exchanges } = readTranscript(transcript);
    for (const [index, exchange] of exchanges.entries()) {
      const label = `#${index} ${exchange.method} ${exchange.versionPrefix ?? ''}${exchange.path}`;
      const rule = this.#options.rules.find(
        (candidate) =>
          (candidate.transcripts === undefined || candidate.transcripts.test(transcript)) &&
          (candidate.method === undefined || candidate.method === exchange.method) &&
          candidate.path.test(exchange.path),
      );
      if (rule !== undefined) this.#used.add(rule);
      if (rule?.action === 'skip') {
        report.skipped.push(`${label}: ${rule.reason}`);
        continue;
      }
      const request = this.#translate(exchange);
      if ('foreign' in request) {
        report.skipped.push(`${label}: names ${request.foreign}`);
        continue;
      }
      if ('unknown' in request) {
        report.mismatches.push(`${label}: names the recorded object ${request.unknown}, which this replay never learned`);
        continue;
      }
      const query = await this.#withCurrentVersion(exchange, request.path, request.query);
      const answer = await this.send(exchange.method, `${exchange.versionPrefix ?? ''}${request.path}`, request.body, query);
      report.replayed.push(label);
      const problems = rule === undefined ? this.#compare(transcript, exchange, answer) : this.#compareByRule(exchange, answer, rule.action);
      report.mismatches.push(...problems.map((problem) => `${label}: ${problem}`));
    }
    return report;
  }

  /** Sends one request to the API: `path` with its version prefix, `body` as JSON. */
  async send(method: string, path: string, body?: unknown, query = new URLSearchParams()): Promise<ApiAnswer> {
    const search = query.toString() === '' ? '' : `?${query}`;
    const response = await fetch(`${this.#baseUrl}${path}${search}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': JSON_CONTENT } }),
    });
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? undefined;
    const json = contentType === JSON_CONTENT && text.trim() !== '' ? (JSON.parse(text) as unknown) : undefined;
    return { status: response.status, contentType, text, json };
  }

  /** The request as Shoal's IDs spell it, or what it names that this replay does not have. */
  #translate(exchange: Exchange): { path: string; query: URLSearchParams; body: unknown } | { foreign: string } | { unknown: string } {
    const segments = exchange.path.split('/').map((segment) => this.#ours.get(segment) ?? segment);
    const query = new URLSearchParams();
    for (const [key, value] of exchange.query) {
      query.append(key, key === 'filters' ? JSON.stringify(this.toOurs(JSON.parse(value))) : (this.#ours.get(value) ?? value));
    }
    const named = [...segments, ...filterTerms(query)];
    // A name or ID dockerd did not find is one Shoal does not have either: the 404 is worth comparing.
    const absentToo = exchange.status === 404;
    for (const term of named) {
      const foreign = this.#options.foreign[term];
      if (foreign !== undefined && !absentToo) return { foreign: `${term} (${foreign})` };
      if (OBJECT_ID.test(term) && !this.#recorded.has(term) && !absentToo) return { unknown: term };
    }
    return { path: segments.join('/'), query, body: this.toOurs(exchange.requestBody) };
  }

  /** `?version=` set to what Shoal holds now: the update paths are their object's path plus `/update`. */
  async #withCurrentVersion(exchange: Exchange, path: string, query: URLSearchParams): Promise<URLSearchParams> {
    if (!query.has('version') || !path.endsWith('/update')) return query;
    const current = await this.send('GET', `${exchange.versionPrefix ?? ''}${path.slice(0, -'/update'.length)}`);
    const index = (current.json as { Version?: { Index?: unknown } } | undefined)?.Version?.Index;
    if (typeof index === 'number') query.set('version', String(index));
    return query;
  }

  #compareByRule(exchange: Exchange, answer: ApiAnswer, action: 'status' | number): string[] {
    const expected = action === 'status' ? exchange.status : action;
    if (answer.status !== expected) return [`status ${answer.status}, expected ${expected} (${describe(answer)})`];
    if (action === 'status') return [];
    const message = (answer.json as { message?: unknown } | undefined)?.message;
    return typeof message === 'string' && message !== '' ? [] : [`no {"message"} in the answer: ${answer.text}`];
  }

  #compare(transcript: string, exchange: Exchange, answer: ApiAnswer): string[] {
    if (answer.status !== exchange.status) return [`status ${answer.status}, recorded ${exchange.status} (${describe(answer)})`];
    const problems: string[] = [];
    if (exchange.contentType !== undefined && answer.contentType !== exchange.contentType) {
      problems.push(`content type ${answer.contentType ?? 'none'}, recorded ${exchange.contentType}`);
    }
    const recorded = exchange.responseBody;
    if (recorded === undefined) {
      if (answer.text !== '' && exchange.method !== 'HEAD') problems.push(`a body where dockerd sent none: ${answer.text.trim()}`);
      return problems;
    }
    // Log streams (bytes) and bodies the recorder cut short have no shape to compare.
    if (exchange.responseBodyTruncated || Buffer.isBuffer(recorded)) return problems;
    if (answer.json === undefined) return [...problems, `no JSON body, recorded ${JSON.stringify(recorded).slice(0, 80)}`];
    this.#learn(recorded, answer.json);
    const context = { transcript, path: exchange.path };
    for (const { field, problem } of this.#shapeMismatches(context, answer.json, recorded, '$')) {
      if (!this.#excepted(exchange.path, field)) problems.push(`${field}: ${problem}`);
    }
    if (exchange.status >= 400) problems.push(...this.#messageMismatch(answer.json, recorded));
    return problems;
  }

  /** Error texts, read with the recorded IDs, must be dockerd's (without its gRPC prefix). */
  #messageMismatch(ours: unknown, recorded: unknown): string[] {
    const recordedMessage = (recorded as { message?: unknown }).message;
    const ourMessage = (ours as { message?: unknown }).message;
    if (typeof recordedMessage !== 'string' || typeof ourMessage !== 'string') return [];
    const expected = recordedMessage.replace(GRPC_PREFIX, '');
    const readBack = ourMessage.replace(/[a-z0-9]{25}/g, (id) => this.#recorded.get(id) ?? id);
    return readBack === expected ? [] : [`message ${JSON.stringify(ourMessage)}, recorded ${JSON.stringify(recordedMessage)}`];
  }

  /**
   * Every key of `recorded` must be in `ours` with the same JSON type, recursively. List entries
   * are paired by ID (or name); other arrays element by element. Go prints a nil slice, map or
   * pointer as `null` and an empty one as `[]` or `{}`, which every client reads alike: a recorded
   * `null` says nothing about the type, and Shoal's `null` stands for a recorded `[]` or `{}`.
   */
  #shapeMismatches(context: AnswerContext, ours: unknown, recorded: unknown, field: string): FieldMismatch[] {
    const values = this.#valueChecked(context, field) ? valueMismatches(ours, this.toOurs(recorded), field) : [];
    return [...values, ...this.#kindMismatches(context, ours, recorded, field)];
  }

  #kindMismatches(context: AnswerContext, ours: unknown, recorded: unknown, field: string): FieldMismatch[] {
    if (recorded === null || (ours === null && isEmpty(recorded))) return [];
    const recordedKind = jsonKind(recorded);
    const ourKind = jsonKind(ours);
    if (recordedKind !== ourKind) return [{ field, problem: `${ourKind}, recorded ${recordedKind}` }];
    if (Array.isArray(recorded) && Array.isArray(ours)) return this.#arrayMismatches(context, ours, recorded, `${field}[]`);
    if (recordedKind !== 'object') return [];
    const ourObject = ours as Record<string, unknown>;
    return Object.entries(recorded as Record<string, unknown>).flatMap(([key, value]) =>
      key in ourObject ? this.#shapeMismatches(context, ourObject[key], value, `${field}.${key}`) : [{ field: `${field}.${key}`, problem: 'missing' }],
    );
  }

  #arrayMismatches(context: AnswerContext, ours: unknown[], recorded: unknown[], field: string): FieldMismatch[] {
    if (recorded.length === 0) return [];
    if (!recorded.every(isIdentified)) {
      if (ours.length === 0) return [{ field, problem: `no elements, recorded ${recorded.length}` }];
      return recorded.slice(0, ours.length).flatMap((item, index) => this.#shapeMismatches(context, ours[index], item, field));
    }
    return recorded.flatMap((item) => {
      if (this.#isForeign(item)) return [];
      const counterpart = this.#counterpart(item, ours);
      if (counterpart === undefined) return [{ field, problem: `no entry for ${describeEntry(item)}` }];
      this.#learn(item, counterpart);
      return this.#shapeMismatches(context, counterpart, item, field);
    });
  }

  #valueChecked(context: AnswerContext, field: string): boolean {
    return this.#options.sameValues.some(
      (check) => (check.transcripts === undefined || check.transcripts.test(context.transcript)) && check.path.test(context.path) && check.field.test(field),
    );
  }

  /** Whether a listed exception covers a field of the answer to `requestPath`. */
  #excepted(requestPath: string, field: string): boolean {
    const exception = this.#options.fieldExceptions.find((candidate) => candidate.path.test(requestPath) && candidate.field.test(field));
    if (exception !== undefined) this.#used.add(exception);
    return exception !== undefined;
  }

  /** Shoal's entry for a recorded one: the one with its learned ID, else the one with its name. */
  #counterpart(recorded: Identified, ours: unknown[]): unknown {
    const ourId = this.#ours.get(idOf(recorded));
    const byId = ours.find((item) => isIdentified(item) && idOf(item) === ourId);
    if (byId !== undefined || ourId !== undefined) return byId;
    const name = nameOf(recorded);
    return name === undefined ? undefined : ours.find((item) => isIdentified(item) && nameOf(item) === name);
  }

  /** Objects made outside the replayed sessions, and tasks, which only an orchestrator makes. */
  #isForeign(recorded: Identified): boolean {
    const name = nameOf(recorded);
    return isTask(recorded) || this.#options.foreign[idOf(recorded)] !== undefined || (name !== undefined && this.#options.foreign[name] !== undefined);
  }

  /** Learns the IDs (and a node's hostname) of an object both answers show. */
  #learn(recorded: unknown, ours: unknown): void {
    if (typeof recorded === 'string' && typeof ours === 'string' && OBJECT_ID.test(recorded) && OBJECT_ID.test(ours)) {
      this.#pair(recorded, ours);
      return;
    }
    if (!isIdentified(recorded) || !isIdentified(ours) || isTask(recorded)) return;
    this.#pair(idOf(recorded), idOf(ours));
    const recordedHost = hostnameOf(recorded);
    const ourHost = hostnameOf(ours);
    if (recordedHost !== undefined && ourHost !== undefined) this.#pair(recordedHost, ourHost);
    const recordedNode = (recorded as { Swarm?: { NodeID?: unknown } }).Swarm?.NodeID;
    const ourNode = (ours as { Swarm?: { NodeID?: unknown } }).Swarm?.NodeID;
    if (typeof recordedNode === 'string' && typeof ourNode === 'string' && recordedNode !== '') this.#pair(recordedNode, ourNode);
  }

  #pair(recorded: string, ours: string): void {
    if (this.#ours.has(recorded)) return;
    this.#ours.set(recorded, ours);
    this.#recorded.set(ours, recorded);
  }

  /** A recorded value with every learned ID (strings and object keys) replaced by Shoal's. */
  toOurs(value: unknown): unknown {
    if (typeof value === 'string') return this.#ours.get(value) ?? value;
    if (Array.isArray(value)) return value.map((item) => this.toOurs(item));
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [this.#ours.get(key) ?? key, this.toOurs(item)]));
  }
}

/** Which answer a comparison is about. */
interface AnswerContext {
  readonly transcript: string;
  /** The recorded request path without its version prefix. */
  readonly path: string;
}

/**
 * Where Shoal's values differ from dockerd's (`recorded` already in Shoal's IDs): leaves of the
 * same kind with other values, arrays of other lengths, and keys dockerd did not send. Keys
 * dockerd sent that Shoal lacks, and values of another kind, are the shape comparison's to report.
 */
function valueMismatches(ours: unknown, recorded: unknown, field: string): FieldMismatch[] {
  if (isEmptyOrNull(ours) && isEmptyOrNull(recorded)) return [];
  if (recorded === null || jsonKind(ours) !== jsonKind(recorded)) {
    return recorded === null ? [{ field, problem: `${JSON.stringify(ours)}, recorded null` }] : [];
  }
  if (Array.isArray(ours) && Array.isArray(recorded)) {
    if (ours.length !== recorded.length) return [{ field, problem: `${JSON.stringify(ours)}, recorded ${JSON.stringify(recorded)}` }];
    return ours.flatMap((item, index) => valueMismatches(item, recorded[index], `${field}[${index}]`));
  }
  if (typeof ours === 'object' && ours !== null) {
    const recordedObject = recorded as Record<string, unknown>;
    return Object.entries(ours).flatMap(([key, value]) =>
      key in recordedObject
        ? valueMismatches(value, recordedObject[key], `${field}.${key}`)
        : isEmptyOrNull(value)
          ? []
          : [{ field: `${field}.${key}`, problem: `${JSON.stringify(value)}, not in the recording` }],
    );
  }
  return ours === recorded ? [] : [{ field, problem: `${JSON.stringify(ours)}, recorded ${JSON.stringify(recorded)}` }];
}

function isEmptyOrNull(value: unknown): boolean {
  return value === null || isEmpty(value);
}

/** Where a field of Shoal's answer differs from dockerd's: `$.Spec.Labels`, `missing`. */
interface FieldMismatch {
  readonly field: string;
  readonly problem: string;
}

type Identified = Record<string, unknown> & ({ ID: string } | { Id: string });

function isIdentified(value: unknown): value is Identified {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const object = value as Record<string, unknown>;
  return typeof object['ID'] === 'string' || typeof object['Id'] === 'string';
}

function idOf(value: Identified): string {
  return (value as { ID?: string }).ID ?? (value as { Id: string }).Id;
}

/** A service's, secret's or config's `Spec.Name`, a network's `Name`. */
function nameOf(value: Identified): string | undefined {
  const name = (value as { Spec?: { Name?: unknown } }).Spec?.Name ?? (value as { Name?: unknown }).Name;
  return typeof name === 'string' ? name : undefined;
}

function hostnameOf(value: Identified): string | undefined {
  const hostname = (value as { Description?: { Hostname?: unknown } }).Description?.Hostname;
  return typeof hostname === 'string' ? hostname : undefined;
}

function isTask(value: Identified): boolean {
  return 'DesiredState' in value;
}

function describeEntry(value: Identified): string {
  const name = nameOf(value);
  return name === undefined ? idOf(value) : `${idOf(value)} (${name})`;
}

/** The keys and values of a `filters` query: the names and IDs it may carry. */
function filterTerms(query: URLSearchParams): string[] {
  const filters = query.get('filters');
  if (filters === null) return [];
  const document = JSON.parse(filters) as Record<string, Record<string, unknown> | string[]>;
  return Object.values(document).flatMap((values) => (Array.isArray(values) ? values : Object.keys(values)));
}

function isEmpty(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function describe(answer: ApiAnswer): string {
  const message = (answer.json as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : answer.text.trim().slice(0, 120) || 'no body';
}
