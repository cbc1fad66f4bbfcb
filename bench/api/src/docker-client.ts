import { Agent, request } from 'node:http';
import { errors } from '@shoal/errors';

/** The `filters` query parameter of a list request, as the docker CLI encodes it. */
export function filtersQuery(filters: Readonly<Record<string, Readonly<Record<string, boolean>>>>): string {
  return `filters=${encodeURIComponent(JSON.stringify(filters))}`;
}

/** One HTTP response, its body kept as the chunks it arrived in (a bench reading megabytes need not join them). */
export interface DockerResponse {
  readonly status: number;
  readonly bytes: number;
  /** The body as text (joined on demand). */
  text(): string;
}

/**
 * A minimal Docker Engine API client over plain HTTP/1.1 with keep-alive connections, as the docker
 * CLI holds one: each call reuses an idle connection of `agent` or opens one, up to `agent.maxSockets`.
 */
export class DockerClient {
  readonly #url: URL;
  readonly #agent: Agent;

  constructor(baseUrl: string, connections: number) {
    this.#url = new URL(baseUrl);
    this.#agent = new Agent({ keepAlive: true, maxSockets: connections });
  }

  /** Sends one request and reads the whole response; a JSON `body` is sent with its content type. */
  send(method: string, path: string, body?: unknown): Promise<DockerResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: this.#url.hostname,
          port: this.#url.port,
          method,
          path,
          agent: this.#agent,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          incoming.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            bytes += chunk.length;
          });
          incoming.once('end', () => resolve({ status: incoming.statusCode ?? 0, bytes, text: () => Buffer.concat(chunks).toString('utf8') }));
          incoming.once('error', reject);
        },
      );
      outgoing.once('error', reject);
      outgoing.end(payload);
    });
  }

  /** {@link send}, then the body parsed as JSON; fails with the API's message unless the status is 2xx. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    const text = response.text();
    if (response.status < 200 || response.status > 299) throw errors.internal(`${method} ${path} answered ${response.status}: ${text.trim()}`, { status: response.status });
    return JSON.parse(text) as T;
  }

  /** Closes the idle connections. */
  close(): void {
    this.#agent.destroy();
  }
}
