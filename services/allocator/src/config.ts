import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { storeAccessSettings, withStoreAccess, type WithStoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  leaseTtlMs: setting.duration(
    'SHOAL_ALLOCATOR_LEASE_TTL',
    10_000,
    'How long the allocator lease lasts unrenewed: a standby allocator takes over at most this long after the active one dies.',
  ),
});

/** The allocator's settings, with the Store API identity read from its PEM files. */
export type AllocatorConfig = WithStoreAccess<ReturnType<typeof settings.load>>;

/** Settings of the allocator service, read once in main.ts. */
export const allocatorConfig: ConfigDefinition<AllocatorConfig> = withStoreAccess(settings, 'allocator');
