import { createRequire } from 'node:module';
import { AgentControlClient } from '@shoal/agent/control';
import { busComponent } from '@shoal/bus';
import { errors } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { RaftUnlockClient, RaftUnlockService } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall } from '@shoal/rpc';
import { createLogger, loadConfigOrExit, runProcess, type Component } from '@shoal/runtime';
import { createStoreClient, StoreMirror } from '@shoal/store-client';
import { LocalNodeFile } from './cluster/local-node.js';
import { apiComponent } from './component.js';
import { apiConfig } from './config.js';
import { hostSystemFacts } from './convert/system.js';

const config = loadConfigOrExit(apiConfig, 'api');
const log = createLogger({ service: 'api', level: config.logLevel });
const { version: shoalVersion } = createRequire(import.meta.url)('../package.json') as { version: string };

// A worker-only host has no store to reach: its API answers from this host's agent alone.
const store = config.store === undefined ? undefined : createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const unlockClient =
  config.store === undefined
    ? undefined
    : createClient({ address: config.store.address, credentials: createChannelCredentials(config.store.tls), serverName: MANAGER_SERVER_NAME }, RaftUnlockClient);
const bus = config.natsUrl === undefined ? undefined : busComponent({ url: config.natsUrl, name: 'api' });

const context = {
  cache: store === undefined ? undefined : new StoreMirror(store, log.child({ module: 'mirror' })),
  agent: config.agentSocket === undefined ? undefined : new AgentControlClient(config.agentSocket),
  local: await LocalNodeFile.open(config.dataDir),
  log,
  get bus() {
    return bus?.connection;
  },
  unlock: async (unlockKey: string) => {
    if (unlockClient === undefined) throw errors.unavailable('this host runs no raft replica to unlock');
    await unaryCall(unlockClient, RaftUnlockService.unlock, { unlockKey });
  },
  host: {
    ...hostSystemFacts(shoalVersion),
    advertiseAddr: config.advertiseAddr,
    managerPort: config.managerPort,
    dataDir: config.dataDir,
  },
};

const endpoints: Record<string, string> = {};
const api = apiComponent(context, {
  tcp: config.listen,
  socket: config.socket,
  tls: config.apiTls,
  // `shoal env` points DOCKER_HOST at the first one: TCP when served, else the socket.
  onListening: (endpoint) => (endpoints['docker'] ??= endpoint),
});
const components: Component[] = bus === undefined ? [api] : [bus, api];
try {
  await runProcess({ service: 'api', log, shutdownGraceMs: config.shutdownGraceMs, components, endpoints: () => endpoints });
} finally {
  store?.close();
  unlockClient?.close();
}
