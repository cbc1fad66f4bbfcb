import { once } from 'node:events';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Component } from '@shoal/runtime';
import type { ApiContext } from './cluster/context.js';
import type { TlsMaterial } from './config.js';
import { createApiHandler } from './http/server.js';
import { apiRouter } from './routes/index.js';

/** Where the API listens: TCP (HTTP, or HTTPS with client certificates) and/or a unix socket. */
export interface ApiListeners {
  /** `host:port`; empty for none. Port 0 picks a free one (see `onListening`). */
  readonly tcp: string;
  readonly socket: string;
  readonly tls: TlsMaterial | undefined;
  /** Called with each bound address once listening (`tcp://127.0.0.1:2375`, `unix:///run/shoal/docker.sock`). */
  readonly onListening?: (endpoint: string) => void;
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(hostPort.slice(at + 1)) };
}

/**
 * How long an idle keep-alive connection stays open. Node's 5 s default can close a connection that
 * has a request waiting when a long answer held the event loop past it (the client sees a reset).
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

async function listen(server: Server, target: { host: string; port: number } | string): Promise<void> {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  if (typeof target === 'string') server.listen(target);
  else server.listen(target.port, target.host);
  await once(server, 'listening');
}

async function close(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  // Keep-alive connections idle between CLI calls would hold the close open.
  server.closeAllConnections();
  await closed;
}

/**
 * The Docker Engine API as a component: the store copy is taken first (ready only once reads can be
 * answered), then the listeners open; stopping closes the listeners, then the copy stops following.
 */
export function apiComponent(context: ApiContext, listeners: ApiListeners): Component {
  return {
    name: 'docker-api',
    async run({ signal, ready, log }) {
      // A host without manager services has no store copy to follow.
      const following = context.cache?.run(signal, () => undefined) ?? once(signal, 'abort').then(() => undefined);
      const router = apiRouter(context);
      const handler = createApiHandler({ router, log, serverVersion: context.host.shoalVersion });
      const servers: Server[] = [];
      try {
        if (listeners.tcp !== '') {
          const { tls } = listeners;
          const server =
            tls === undefined
              ? createServer(handler)
              : createTlsServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true }, handler);
          await listen(server, splitHostPort(listeners.tcp));
          servers.push(server);
          const address = server.address();
          const port = typeof address === 'object' && address !== null ? address.port : splitHostPort(listeners.tcp).port;
          listeners.onListening?.(`tcp://${splitHostPort(listeners.tcp).host}:${port}`);
        }
        if (listeners.socket !== '') {
          await rm(listeners.socket, { force: true });
          const server = createServer(handler);
          await listen(server, listeners.socket);
          // Whoever can open the socket controls the swarm, as with /var/run/docker.sock.
          await chmod(listeners.socket, 0o660);
          servers.push(server);
          listeners.onListening?.(`unix://${listeners.socket}`);
        }
        ready();
        await Promise.race([following, once(signal, 'abort')]);
      } finally {
        await Promise.all(servers.map(close));
        await following;
      }
    },
  };
}
