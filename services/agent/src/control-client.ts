import { request as httpRequest } from 'node:http';
import { ErrorCode, ShoalError, errors, isErrorCode } from '@shoal/errors';
import type { AgentState, NodeRef } from './agent-host.js';
import type { IdentityMaterial } from './identity.js';
import type { JoinRequest } from './join.js';

/**
 * A client of an agent's control socket (see `ControlSocket`), for this host's api. Every method
 * resolves with the agent's answer or rejects with a ShoalError carrying the agent's code and
 * message; an agent that is not running is UNAVAILABLE.
 */
export class AgentControlClient {
  readonly #socketPath: string;

  constructor(socketPath: string) {
    this.#socketPath = socketPath;
  }

  /** Whether this host is in a swarm, as which node, and whether its agent is connected. */
  state(): Promise<AgentState> {
    return this.#call<AgentState>('GET', '/state');
  }

  /** Joins a swarm; resolves once the node has its certificate and its first session. */
  join(request: JoinRequest): Promise<NodeRef> {
    return this.#call<NodeRef>('POST', '/join', request);
  }

  /** Hands the agent the node identity made for this host at `docker swarm init`. */
  identity(request: IdentityMaterial): Promise<NodeRef> {
    return this.#call<NodeRef>('POST', '/identity', request);
  }

  /** Leaves the swarm: tasks removed, identity deleted. */
  async leave(): Promise<void> {
    await this.#call<unknown>('POST', '/leave', {});
  }

  #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const call = httpRequest(
        {
          socketPath: this.#socketPath,
          method,
          path,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            try {
              const answer: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              if (response.statusCode === 200) resolve(answer as T);
              else reject(agentError(answer, response.statusCode ?? 0));
            } catch {
              reject(errors.internal(`the agent answered ${method} ${path} with something that is not JSON (status ${response.statusCode ?? 0})`));
            }
          });
        },
      );
      call.on('error', (err) => {
        reject(new ShoalError(ErrorCode.Unavailable, `cannot reach the agent at ${this.#socketPath}: ${err.message}`, { cause: err }));
      });
      call.end(payload);
    });
  }
}

function agentError(answer: unknown, status: number): ShoalError {
  const { message, code } = (typeof answer === 'object' && answer !== null ? answer : {}) as { message?: unknown; code?: unknown };
  return new ShoalError(isErrorCode(code) ? code : ErrorCode.Internal, typeof message === 'string' ? message : `the agent answered status ${status}`);
}
