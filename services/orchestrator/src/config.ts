import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { storeAccessSettings, withStoreAccess, type WithStoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  leaseTtlMs: setting.duration(
    'SHOAL_LEASE_TTL',
    10_000,
    'How long the orchestrator lease lasts unrenewed: the longest a standby waits to take over from an active instance that died.',
  ),
});

/** The orchestrator's settings, with the Store API identity read from its PEM files. */
export type OrchestratorConfig = WithStoreAccess<ReturnType<typeof settings.load>>;

/** Settings of the orchestrator service, read once in main.ts. */
export const orchestratorConfig: ConfigDefinition<OrchestratorConfig> = withStoreAccess(settings, 'orchestrator');
