import { Agent, request, type RequestOptions } from 'node:http';
import { errors } from '@shoal/errors';

/** The Docker Engine API version both systems are asked in: dockerd 20.10's, which Shoal's API serves too. */
const API_VERSION = 'v1.41';

/** A task as `GET /tasks` lists it, reduced to what the bench reads. */
export interface EngineTask {
  readonly ID: string;
  readonly DesiredState: string;
  readonly Status: { readonly State: string };
}

/** A container as `GET /containers/json` lists it, reduced to what the bench reads. */
export interface EngineContainer {
  readonly Id: string;
  readonly Labels: Readonly<Record<string, string>>;
}

/**
 * The reads the bench polls, against one Docker Engine API: Shoal's API (`tcp://…`) or dockerd's own
 * socket (`unix://…`), with one keep-alive connection, as the docker CLI holds one. The same code asks
 * both systems, so neither is timed through a different client.
 */
export class EngineClient {
  readonly #target: Pick<RequestOptions, 'socketPath' | 'host' | 'port'>;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });

  /** `dockerHost` as DOCKER_HOST spells it: `unix:///var/run/docker.sock` or `tcp://127.0.0.1:2375`. */
  constructor(readonly dockerHost: string) {
    const url = new URL(dockerHost);
    if (url.protocol === 'unix:') this.#target = { socketPath: url.pathname };
    else if (url.protocol === 'tcp:') this.#target = { host: url.hostname, port: url.port };
    else throw errors.invalidArgument(`unsupported DOCKER_HOST ${dockerHost}: expected unix:// or tcp://`);
  }

  /** Every task of the service named `service` (its history included), as `docker service ps` asks for them. */
  tasksOf(service: string): Promise<EngineTask[]> {
    return this.#get(`/tasks?${filtersQuery({ service: [service] })}`);
  }

  /** The containers carrying every one of `labels` (`key=value`): the running ones, or with `all` every one dockerd still has. */
  containers(labels: readonly string[], options: { all?: boolean } = {}): Promise<EngineContainer[]> {
    return this.#get(`/containers/json?${options.all === true ? 'all=true&' : ''}${filtersQuery({ label: labels })}`);
  }

  /** Closes the connection. */
  close(): void {
    this.#agent.destroy();
  }

  #get<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const outgoing = request({ ...this.#target, agent: this.#agent, method: 'GET', path: `/${API_VERSION}${path}` }, (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.once('error', reject);
        incoming.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = incoming.statusCode ?? 0;
          if (status < 200 || status > 299) reject(errors.internal(`GET ${path} on ${this.dockerHost} answered ${status}: ${text.trim()}`, { status }));
          else resolve(JSON.parse(text) as T);
        });
      });
      outgoing.once('error', reject);
      outgoing.end();
    });
  }
}

/** The `filters` query parameter as the docker CLI encodes it. */
function filtersQuery(filters: Readonly<Record<string, readonly string[]>>): string {
  return `filters=${encodeURIComponent(JSON.stringify(filters))}`;
}
