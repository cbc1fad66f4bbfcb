import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the api service, read once in main.ts. Only the common ones until issue 4 (api) adds its own. */
export const apiConfig = defineConfig({ ...commonSettings });

export type ApiConfig = ReturnType<typeof apiConfig.load>;
