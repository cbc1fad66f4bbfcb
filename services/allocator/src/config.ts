import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the allocator service, read once in main.ts. Only the common ones until issue 5 (control loops) adds its own. */
export const allocatorConfig = defineConfig({ ...commonSettings });

export type AllocatorConfig = ReturnType<typeof allocatorConfig.load>;
