import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { resolveStoreAccess, storeAccessSettings, type StoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  leaseTtlMs: setting.duration(
    'SHOAL_ALLOCATOR_LEASE_TTL',
    10_000,
    'How long the allocator lease lasts unrenewed: a standby allocator takes over at most this long after the active one dies.',
  ),
});

export type AllocatorConfig = Omit<ReturnType<typeof settings.load>, 'storeAddress' | 'tlsCa' | 'tlsCert' | 'tlsKey'> & { readonly store: StoreAccess };

/** Settings of the allocator service, read once in main.ts. */
export const allocatorConfig: ConfigDefinition<AllocatorConfig> = {
  ...settings,
  load(env = process.env) {
    const { storeAddress, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    return { ...rest, store: resolveStoreAccess({ storeAddress, tlsCa, tlsCert, tlsKey }, 'allocator') };
  },
};
