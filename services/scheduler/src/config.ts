import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { resolveStoreAccess, storeAccessSettings, type StoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  natsUrl: setting.optionalString(
    'SHOAL_NATS_URL',
    'NATS server the scheduler instances find each other through, to share the services; unset: this instance places every service.',
  ),
  heartbeatMs: setting.duration('SHOAL_SCHEDULER_HEARTBEAT', 1_000, 'How often an instance announces itself on NATS; one silent for three heartbeats is gone.'),
});

export type SchedulerConfig = Omit<ReturnType<typeof settings.load>, 'storeAddress' | 'tlsCa' | 'tlsCert' | 'tlsKey'> & { readonly store: StoreAccess };

/** Settings of the scheduler service, read once in main.ts. */
export const schedulerConfig: ConfigDefinition<SchedulerConfig> = {
  ...settings,
  load(env = process.env) {
    const { storeAddress, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    return { ...rest, store: resolveStoreAccess({ storeAddress, tlsCa, tlsCert, tlsKey }, 'scheduler') };
  },
};
