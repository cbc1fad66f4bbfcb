import { busComponent } from '@shoal/bus';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { createLogger, loadConfigOrExit, runProcess, type Component } from '@shoal/runtime';
import { createStoreClient, StoreMirror } from '@shoal/store-client';
import { dispatcherConfig } from './config.js';
import { dispatcherComponent } from './dispatcher-component.js';

const config = loadConfigOrExit(dispatcherConfig, 'dispatcher');
const log = createLogger({ service: 'dispatcher', level: config.logLevel });
const store = createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const mirror = new StoreMirror(store, log.child({ module: 'mirror' }));
const bus = config.natsUrl === undefined ? undefined : busComponent({ url: config.natsUrl, name: 'dispatcher' });

const dispatcher = dispatcherComponent(() => ({
  state: mirror,
  leases: store,
  bus: bus?.connection,
  listen: config.listen,
  instance: config.instance,
  leaseTtlMs: config.leaseTtlMs,
  log,
}));
// Stopped in reverse: the dispatcher first (ending sessions, writing what it queued), then the mirror its writes wait on.
const components: Component[] = [
  ...(bus === undefined ? [] : [bus]),
  { name: 'store-mirror', run: ({ signal, ready }) => mirror.run(signal, ready) },
  dispatcher,
];
if (bus === undefined) log.warn('SHOAL_NATS_URL is not set: `docker service logs` gets nothing from the nodes of this dispatcher');

try {
  await runProcess({
    service: 'dispatcher',
    log,
    shutdownGraceMs: config.shutdownGraceMs,
    components,
    // Before the swarm exists the dispatcher does not listen yet: it will on the configured address.
    endpoints: () => ({ dispatcher: dispatcher.address ?? config.listen }),
  });
} finally {
  store.close();
}
