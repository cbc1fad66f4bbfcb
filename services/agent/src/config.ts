import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the agent service, read once in main.ts. Only the common ones until issue 6 (nodes) adds its own. */
export const agentConfig = defineConfig({ ...commonSettings });

export type AgentConfig = ReturnType<typeof agentConfig.load>;
