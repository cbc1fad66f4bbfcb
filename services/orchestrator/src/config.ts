import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { resolveStoreAccess, storeAccessSettings, type StoreAccess } from '@shoal/store-client';

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
export type OrchestratorConfig = Omit<ReturnType<typeof settings.load>, 'storeAddress' | 'tlsCa' | 'tlsCert' | 'tlsKey'> & { readonly store: StoreAccess };

/** Settings of the orchestrator service, read once in main.ts. */
export const orchestratorConfig: ConfigDefinition<OrchestratorConfig> = {
  ...settings,
  load(env = process.env) {
    const { storeAddress, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    return { ...rest, store: resolveStoreAccess({ storeAddress, tlsCa, tlsCert, tlsKey }, 'orchestrator') };
  },
};
