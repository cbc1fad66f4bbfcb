import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the scheduler service, read once in main.ts. Only the common ones until issue 5 (control loops) adds its own. */
export const schedulerConfig = defineConfig({ ...commonSettings });

export type SchedulerConfig = ReturnType<typeof schedulerConfig.load>;
