import { hostname } from 'node:os';
import { busComponent } from '@shoal/bus';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { newId } from '@shoal/proto';
import { createLogger, loadConfigOrExit, runProcess, type Component } from '@shoal/runtime';
import { createStoreClient, StoreMirror } from '@shoal/store-client';
import { schedulerConfig } from './config.js';
import { Membership } from './membership.js';
import { SchedulingLoop } from './scheduling-loop.js';

const config = loadConfigOrExit(schedulerConfig, 'scheduler');
const log = createLogger({ service: 'scheduler', level: config.logLevel });
const store = createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const mirror = new StoreMirror(store, log.child({ module: 'mirror' }));
const bus = config.natsUrl === undefined ? undefined : busComponent({ url: config.natsUrl, name: 'scheduler' });
/** This instance, as its heartbeats name it. */
const instanceId = `${hostname()}/${newId()}`;

const scheduler: Component = {
  name: 'scheduler',
  async run({ signal, ready, log: componentLog }) {
    // Ready means running: the scheduler serves nothing.
    ready();
    const { following, snapshotTaken } = mirror.follow(signal);
    await snapshotTaken;
    if (!signal.aborted) {
      if (bus === undefined) componentLog.warn('SHOAL_NATS_URL is not set: this instance places the tasks of every service');
      const membership =
        bus === undefined
          ? undefined
          : new Membership({
              nc: bus.connection.nc,
              instanceId,
              log: componentLog.child({ module: 'membership' }),
              heartbeatMs: config.heartbeatMs,
              onChange: () => loop.rebalance(),
            });
      const loop = new SchedulingLoop({
        state: mirror,
        owns: membership === undefined ? () => true : (serviceId) => membership.owns(serviceId),
        log: componentLog,
      });
      await Promise.all([membership?.run(signal), loop.run(signal)]);
    }
    await following;
  },
};

try {
  await runProcess({
    service: 'scheduler',
    log,
    shutdownGraceMs: config.shutdownGraceMs,
    components: bus === undefined ? [scheduler] : [bus, scheduler],
  });
} finally {
  store.close();
}
