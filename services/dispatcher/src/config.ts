import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the dispatcher service, read once in main.ts. Only the common ones until issue 6 (nodes) adds its own. */
export const dispatcherConfig = defineConfig({ ...commonSettings });

export type DispatcherConfig = ReturnType<typeof dispatcherConfig.load>;
