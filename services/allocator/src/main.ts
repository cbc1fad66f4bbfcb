import { hostname } from 'node:os';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { newId } from '@shoal/proto';
import { createLogger, loadConfigOrExit, runProcess, type Component } from '@shoal/runtime';
import { createStoreClient, holdLease, StoreMirror } from '@shoal/store-client';
import { Allocator } from './allocator.js';
import { allocatorConfig } from './config.js';

const config = loadConfigOrExit(allocatorConfig, 'allocator');
const log = createLogger({ service: 'allocator', level: config.logLevel });
const store = createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const mirror = new StoreMirror(store, log.child({ module: 'mirror' }));
/** This instance, as the lease names its holder. */
const instance = `${hostname()}/${newId()}`;

const allocator: Component = {
  name: 'allocator',
  async run({ signal, ready, log: componentLog }) {
    // Ready means running: the allocator serves nothing, and a standby is as ready as the leader.
    ready();
    // Compete for the lease only with a copy of the store to allocate from.
    const { following, snapshotTaken } = mirror.follow(signal);
    await snapshotTaken;
    if (!signal.aborted) {
      await holdLease({ api: store, name: 'allocator', holder: instance, ttlMs: config.leaseTtlMs, log: componentLog }, signal, async (leadership) => {
        // Allocating on a view without the previous leader's last writes could hand out an address twice.
        await mirror.catchUp(leadership.lost);
        await new Allocator({ state: mirror, fence: leadership.fence, log: componentLog }).run(leadership.lost);
      });
    }
    await following;
  },
};

try {
  await runProcess({ service: 'allocator', log, shutdownGraceMs: config.shutdownGraceMs, components: [allocator] });
} finally {
  store.close();
}
