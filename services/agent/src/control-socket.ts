import { chmod, lstat, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ErrorCode, errors, isShoalError, type ShoalError } from '@shoal/errors';
import type { Logger } from '@shoal/runtime';
import type { AgentControl } from './agent-host.js';
import type { IdentityMaterial } from './identity.js';
import type { AvailabilityName, JoinRequest } from './join.js';

/** The HTTP status the control socket answers each error code with; anything not listed is 500. */
const statusByCode: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.PermissionDenied]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.AlreadyExists]: 409,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.FailedPrecondition]: 409,
  [ErrorCode.Unavailable]: 503,
};

/** Largest request body accepted: an identity (three PEMs) is a few KiB. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The agent's local control socket: how this host's api sets the agent up. HTTP/1.1 with JSON bodies
 * on a unix socket that only its owner may use (mode 0600):
 *
 * - `GET /state` → the {@link AgentState}
 * - `POST /join` `{token, remoteAddrs, availability}` → `{nodeId, role}`
 * - `POST /identity` `{certPem, keyPem, caCertPem, managers}` → `{nodeId, role}`
 * - `POST /leave` → `{}`
 *
 * Errors are `{"message", "code"}` with the status of their code.
 */
export class ControlSocket {
  readonly #server: Server;
  readonly #path: string;
  readonly #log: Logger;

  constructor(options: { path: string; control: AgentControl; log: Logger }) {
    this.#path = options.path;
    this.#log = options.log;
    this.#server = createServer((request, response) => {
      void answer(options.control, request, response, options.log);
    });
  }

  /** Listens on the socket path, replacing a socket a previous run left there. */
  async listen(): Promise<void> {
    const stale = await lstat(this.#path).catch(() => undefined);
    if (stale !== undefined) {
      if (!stale.isSocket()) throw errors.failedPrecondition(`${this.#path} exists and is not a socket`);
      await rm(this.#path);
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#path, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.#path, 0o600);
    this.#log.info({ address: this.#path, state: 'listening' }, 'agent control socket listening');
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    await rm(this.#path, { force: true });
  }
}

async function answer(control: AgentControl, request: IncomingMessage, response: ServerResponse, log: Logger): Promise<void> {
  const call = `${request.method ?? ''} ${request.url ?? ''}`;
  try {
    send(response, 200, await route(control, call, request));
  } catch (err) {
    const failure: ShoalError = isShoalError(err) ? err : errors.internal('internal error');
    if (failure.code === ErrorCode.Internal) log.error({ err, reason: call }, 'control request failed');
    send(response, statusByCode[failure.code] ?? 500, { message: failure.message, code: failure.code });
  }
}

async function route(control: AgentControl, call: string, request: IncomingMessage): Promise<unknown> {
  switch (call) {
    case 'GET /state':
      return control.state();
    case 'POST /join':
      return control.join(joinRequest(await readJson(request)));
    case 'POST /identity':
      return control.setIdentity(identityMaterial(await readJson(request)));
    case 'POST /leave':
      await control.leave();
      return {};
    default:
      throw errors.notFound(`no such control operation: ${call}`);
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw errors.invalidArgument(`request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw errors.invalidArgument('request body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw errors.invalidArgument('request body is not a JSON object');
  return parsed as Record<string, unknown>;
}

function text(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '') throw errors.invalidArgument(`"${key}" must be a non-empty string`);
  return value;
}

function addresses(body: Record<string, unknown>, key: string): string[] {
  const value = body[key];
  if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string' && item !== '')) {
    throw errors.invalidArgument(`"${key}" must be a non-empty list of host:port addresses`);
  }
  return value as string[];
}

const availabilities: readonly AvailabilityName[] = ['active', 'pause', 'drain'];

function joinRequest(body: Record<string, unknown>): JoinRequest {
  const availability = body['availability'] ?? 'active';
  if (!availabilities.includes(availability as AvailabilityName)) throw errors.invalidArgument(`"availability" must be one of ${availabilities.join(', ')}`);
  return { token: text(body, 'token'), remoteAddrs: addresses(body, 'remoteAddrs'), availability: availability as AvailabilityName };
}

function identityMaterial(body: Record<string, unknown>): IdentityMaterial {
  return { certPem: text(body, 'certPem'), keyPem: text(body, 'keyPem'), caCertPem: text(body, 'caCertPem'), managers: addresses(body, 'managers') };
}
