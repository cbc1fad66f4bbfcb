import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errors, httpStatusByCode, toShoalError, type ErrorCode, type ShoalError } from '@shoal/errors';
import type { Logger } from '@shoal/runtime';
import { parseJsonBody } from './json-body.js';
import type { ApiReply, Router } from './router.js';

/** The API version Shoal speaks: Docker 20.10's, whose CLI traffic the reference recorded. CLI 28 negotiates down to it. */
export const API_VERSION = '1.41';
/** The oldest version dockerd 20.10 still serves. */
export const MIN_API_VERSION = '1.24';
/** Request bodies beyond this are refused before parsing (a secret is at most 500 KiB, ~683 KiB in base64). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Deeper JSON is refused: no Docker object nests beyond a dozen levels. */
export const MAX_BODY_DEPTH = 64;

/**
 * The HTTP status of each error code, at this edge only. Where Docker's status is a historical
 * accident we answer better and say so: a stale `?version=` is a 409 conflict (dockerd: 500
 * "update out of sequence"), so clients can tell it from a server fault.
 */
const statusByCode: Readonly<Record<ErrorCode, number>> = {
  ...httpStatusByCode,
  // dockerd answers swarmkit's FailedPrecondition (node rm of a manager, network in use, rollback
  // without a previous spec, demoting the last manager) and exhausted resources with 400.
  FAILED_PRECONDITION: 400,
  RESOURCE_EXHAUSTED: 400,
  // A watch that cannot resume is the API's problem, not the client's.
  COMPACTED: 500,
};

/** The HTTP status an error is answered with. */
export function httpStatusOf(error: ShoalError): number {
  return statusByCode[error.code];
}

const versionPrefix = /^\/v(\d+)\.(\d+)(\/.*)$/;

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number);
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

/** Splits `/v1.41/services` into the version and the path; dockerd's messages for versions out of range. */
function negotiate(pathname: string): { apiVersion: string; path: string } {
  const found = versionPrefix.exec(pathname);
  if (found === null) return { apiVersion: API_VERSION, path: pathname };
  const apiVersion = `${found[1]}.${found[2]}`;
  if (compareVersions(apiVersion, API_VERSION) > 0) {
    throw errors.invalidArgument(`client version ${apiVersion} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(apiVersion, MIN_API_VERSION) < 0) {
    throw errors.invalidArgument(
      `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  return { apiVersion, path: found[3] ?? '/' };
}

class BodyTooLarge extends Error {}

/**
 * How much of a refused body is still read and thrown away so that the client, still sending, gets
 * the 413 rather than a broken pipe, and its keep-alive connection stays usable. Beyond this the
 * connection is closed instead.
 */
const MAX_DISCARDED_BYTES = 64 * 1024 * 1024;

async function readBody(request: IncomingMessage): Promise<string> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_DISCARDED_BYTES) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  // Not `break`ing out of the iteration: that would destroy the socket under a half-read request.
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DISCARDED_BYTES) throw new BodyTooLarge();
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
  return Buffer.concat(chunks).toString('utf8');
}

/** Headers dockerd puts on every routed response; the CLI reads them from `/_ping`. */
function commonHeaders(serverVersion: string): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `Shoal/${serverVersion} (linux)`,
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const text = body === undefined ? '' : `${JSON.stringify(body)}\n`;
  const contentHeaders: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(text) };
  if (body !== undefined) contentHeaders['Content-Type'] = 'application/json';
  response.writeHead(status, { ...headers, ...contentHeaders });
  response.end(text);
}

export interface ApiServerOptions {
  readonly router: Router;
  readonly log: Logger;
  /** Shoal's version, for the Server header. */
  readonly serverVersion: string;
}

/**
 * The request listener of an HTTP(S) server speaking the Docker Engine API's conventions: `/vX.Y` prefixes (and unversioned
 * paths), `{"message"}` errors with the status of their code, 404 `page not found` for unknown routes,
 * bodies parsed with Go's rules and bounded in size and depth. Errors never stop the server.
 */
export function createApiHandler(options: ApiServerOptions): RequestListener {
  const { router, log, serverVersion } = options;
  const headers = commonHeaders(serverVersion);

  const fail = (response: ServerResponse, status: number, message: string) => sendJson(response, status, { message }, headers);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://docker');
    const method = request.method ?? 'GET';
    const { apiVersion, path } = negotiate(url.pathname);
    const matched = router.match(method, path);
    if (matched === 'no-route') return fail(response, 404, 'page not found');
    if (matched === 'wrong-method') return fail(response, 405, `method ${method} is not allowed on ${path}`);
    // dockerd reads a body only where a route takes one; a GET's body is ignored.
    let body: unknown;
    if (method === 'POST') {
      let text: string;
      try {
        text = await readBody(request);
      } catch (err) {
        if (!(err instanceof BodyTooLarge)) throw err;
        // Unless the body was read to its end, the rest is still on its way: close after answering.
        if (!request.complete) response.setHeader('Connection', 'close');
        return fail(response, 413, `request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`);
      }
      body = parseJsonBody(text, { maxDepth: MAX_BODY_DEPTH });
    }
    const closed = new AbortController();
    response.on('close', () => closed.abort());
    const reply: ApiReply = await matched.handler({ method, path, params: matched.params, query: url.searchParams, apiVersion, body, raw: request });
    if ('stream' in reply) {
      response.writeHead(reply.status, { ...headers, ...reply.headers });
      response.flushHeaders();
      await reply.stream(response, closed.signal);
      response.end();
      return;
    }
    if (method === 'HEAD') {
      response.writeHead(reply.status, { ...headers, 'Content-Length': 0, ...reply.headers });
      response.end();
      return;
    }
    if ('serializedJson' in reply) {
      response.writeHead(reply.status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(reply.serializedJson) });
      response.end(reply.serializedJson);
      return;
    }
    if ('text' in reply) {
      response.writeHead(reply.status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(reply.text), ...reply.headers });
      response.end(reply.text);
      return;
    }
    sendJson(response, reply.status, reply.json, { ...headers, ...reply.headers });
  };

  return (request, response) => {
    handle(request, response).catch((err: unknown) => {
      const error = toShoalError(err);
      const status = httpStatusOf(error);
      if (status >= 500) log.error({ err: error, method: request.method, url: request.url }, 'request failed');
      else log.debug({ code: error.code, method: request.method, url: request.url }, error.message);
      if (response.headersSent) {
        response.destroy();
        return;
      }
      // A request whose body was not read (refused before reading) must not leave it in the socket.
      request.resume();
      fail(response, status, error.message);
    });
  };
}
