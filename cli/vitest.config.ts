import { defineConfig } from 'vitest/config';

// The end-to-end test starts nine real processes; give it room on a 2-core machine.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
