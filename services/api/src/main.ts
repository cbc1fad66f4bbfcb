import { createRequire } from 'node:module';
import { busComponent } from '@shoal/bus';
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

const store = createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const unlockClient = createClient(
  { address: config.store.address, credentials: createChannelCredentials(config.store.tls), serverName: MANAGER_SERVER_NAME },
  RaftUnlockClient,
);
const bus = config.natsUrl === undefined ? undefined : busComponent({ url: config.natsUrl, name: 'api' });

const context = {
  cache: new StoreMirror(store, log.child({ module: 'mirror' })),
  local: await LocalNodeFile.open(config.dataDir),
  log,
  get bus() {
    return bus?.connection;
  },
  unlock: async (unlockKey: string) => {
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
  store.close();
  unlockClient.close();
}
