import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the orchestrator service, read once in main.ts. Only the common ones until issue 5 (control loops) adds its own. */
export const orchestratorConfig = defineConfig({ ...commonSettings });

export type OrchestratorConfig = ReturnType<typeof orchestratorConfig.load>;
