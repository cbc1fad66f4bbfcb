import { setTimeout as sleep } from 'node:timers/promises';
import { toShoalError } from '@shoal/errors';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { newId } from '@shoal/proto';
import { createLogger, loadConfigOrExit, runProcess, type Component } from '@shoal/runtime';
import { createStoreClient, holdLease, StoreMirror } from '@shoal/store-client';
import { orchestratorConfig } from './config.js';
import { orchestrate } from './orchestration.js';

const config = loadConfigOrExit(orchestratorConfig, 'orchestrator');
const log = createLogger({ service: 'orchestrator', level: config.logLevel });
const store = createStoreClient({ ...config.store, serverName: MANAGER_SERVER_NAME });
const mirror = new StoreMirror(store, log.child({ module: 'mirror' }));
// Each process is its own lease holder, so a restarted process never mistakes an old lease for its own.
const holder = newId();
/** How long to wait before trying again to catch up with the store after failing to. */
const CATCH_UP_RETRY_MS = 1_000;

const components: Component[] = [
  { name: 'store-mirror', run: ({ signal, ready }) => mirror.run(signal, ready) },
  {
    name: 'orchestrator',
    async run({ signal, ready, log: componentLog }) {
      ready();
      const lease = { api: store, name: 'orchestrator', holder, ttlMs: config.leaseTtlMs, log: componentLog };
      await holdLease(lease, signal, async (leadership) => {
        try {
          // The previous leader's last writes must be in the view before this one plans on it.
          await mirror.catchUp(leadership.lost);
        } catch (err) {
          if (leadership.lost.aborted) return;
          componentLog.warn({ err: toShoalError(err).message }, 'could not catch up with the store; retrying');
          // Returning lets holdLease take the lease again (at the same epoch) and lead again.
          await sleep(CATCH_UP_RETRY_MS, undefined, { signal: leadership.lost }).catch(() => undefined);
          return;
        }
        await orchestrate({ state: mirror, fence: leadership.fence, log: componentLog }, leadership.lost);
      });
    },
  },
];

try {
  await runProcess({ service: 'orchestrator', log, shutdownGraceMs: config.shutdownGraceMs, components });
} finally {
  store.close();
}
