import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the raft service, read once in main.ts. Only the common ones until issue 3 (raft-store) adds its own. */
export const raftConfig = defineConfig({ ...commonSettings });

export type RaftConfig = ReturnType<typeof raftConfig.load>;
