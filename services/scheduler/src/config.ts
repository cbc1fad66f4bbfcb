import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { storeAccessSettings, withStoreAccess, type WithStoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  natsUrl: setting.optionalString(
    'SHOAL_NATS_URL',
    'NATS server the scheduler instances find each other through, to share the services; unset: this instance places every service.',
  ),
  heartbeatMs: setting.duration('SHOAL_SCHEDULER_HEARTBEAT', 1_000, 'How often an instance announces itself on NATS; one silent for three heartbeats is gone.'),
});

/** The scheduler's settings, with the Store API identity read from its PEM files. */
export type SchedulerConfig = WithStoreAccess<ReturnType<typeof settings.load>>;

/** Settings of the scheduler service, read once in main.ts. */
export const schedulerConfig: ConfigDefinition<SchedulerConfig> = withStoreAccess(settings, 'scheduler');
