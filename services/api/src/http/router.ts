import { errors } from '@shoal/errors';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a route handler answers: a JSON body (or none), plain text, or a stream it writes itself. */
export type ApiReply =
  | { readonly status: number; readonly json?: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status: number; readonly text: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status: number; readonly serializedJson: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status: number; readonly stream: (response: ServerResponse, closed: AbortSignal) => Promise<void>; readonly headers?: Readonly<Record<string, string>> };

/** A request as handlers see it: the path parameters, the query, the parsed body and the negotiated version. */
export interface ApiRequest {
  readonly method: string;
  /** The path without the `/vX.Y` prefix. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The API version the client asked for in its path prefix, or the server's when it sent none. */
  readonly apiVersion: string;
  /** The body parsed as JSON with Go's rules; `undefined` when empty. */
  readonly body: unknown;
  readonly raw: IncomingMessage;
}

export type Handler = (request: ApiRequest) => Promise<ApiReply>;

/** A path segment with its `%XX` escapes decoded; INVALID_ARGUMENT with Go's message for a malformed escape. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    const escape = /%(?![0-9a-fA-F]{2}).{0,2}/.exec(segment)?.[0] ?? segment;
    throw errors.invalidArgument(`invalid URL escape ${JSON.stringify(escape)}`);
  }
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handler: Handler;
}

/** A match of a request against the routes. */
export type RouteMatch = { readonly handler: Handler; readonly params: Record<string, string> } | 'no-route' | 'wrong-method';

/**
 * Method and path routing with `{name}` segments, and `{name...}` for a tail that may hold slashes
 * (image names in `/distribution/{name...}/json`).
 */
export class Router {
  readonly #routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const source = path.replace(/\{(\w+)(\.\.\.)?\}/g, (_match, name: string, rest: string | undefined) => {
      names.push(name);
      return rest === undefined ? '([^/]+)' : '(.+)';
    });
    this.#routes.push({ method, pattern: new RegExp(`^${source}/?$`), names, handler });
    return this;
  }

  match(method: string, path: string): RouteMatch {
    let pathMatched = false;
    for (const route of this.#routes) {
      const found = route.pattern.exec(path);
      if (found === null) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, index) => (params[name] = decodePathSegment(found[index + 1] ?? '')));
      return { handler: route.handler, params };
    }
    return pathMatched ? 'wrong-method' : 'no-route';
  }
}
