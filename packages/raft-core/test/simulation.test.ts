// Deterministic simulation: clusters of 3 and 5 replicas serving a key-value store through partitions,
// lost, duplicated and reordered messages, crashes and restarts from persisted state, leadership
// transfers and (in some runs) membership changes. After every run, every acknowledged write must be in
// the final state of every member, and the clients' history must be linearizable. Each run also checks,
// as it goes, that all replicas apply the same entry at each index and that no term has two leaders.
//
// A failing run prints its seed; `SHOAL_TEST_SEED=<seed> npx vitest run test/simulation.test.ts`
// replays exactly that run.
import { TEST_SEED_ENV, testSeed } from '@shoal/testkit';
import { describe, expect, it } from 'vitest';
import { runSimulation, scenarioFor, type SimulationStats } from './support/simulation.js';

const RUNS_PER_SIZE = 500;
const replaySeed = process.env[TEST_SEED_ENV];

function replayCommand(seed: string): string {
  return `${TEST_SEED_ENV}=${seed} npx vitest run test/simulation.test.ts`;
}

describe('simulation', () => {
  if (replaySeed !== undefined && replaySeed !== '') {
    it(`replays the run of seed ${replaySeed}`, () => {
      expect(() => runSimulation(scenarioFor(replaySeed))).not.toThrow();
    });
    return;
  }

  const base = testSeed();
  it.each([3, 5])(
    `keeps every acknowledged write and a linearizable history in ${RUNS_PER_SIZE} seeded runs of %i replicas`,
    (replicas) => {
      const failures: string[] = [];
      let firstFailure = '';
      const totals: SimulationStats = { acknowledgedWrites: 0, completedReads: 0, crashes: 0, elections: 0, snapshotsSent: 0, membershipChanges: 0 };
      for (let run = 0; run < RUNS_PER_SIZE; run++) {
        const seed = `${replicas}r-${base}-${run}`;
        try {
          const stats = runSimulation(scenarioFor(seed));
          for (const key of Object.keys(totals) as (keyof SimulationStats)[]) totals[key] += stats[key];
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          failures.push(`seed ${seed}: ${message.split('\n')[0]}\n  replay: ${replayCommand(seed)}`);
          if (firstFailure === '') firstFailure = `seed ${seed}: ${message}`;
        }
      }
      expect(failures, `${failures.join('\n')}\n\nThe first failure in full:\n${firstFailure}`).toEqual([]);
      // The runs did go through what they are meant to test.
      for (const key of Object.keys(totals) as (keyof SimulationStats)[]) expect(totals[key], key).toBeGreaterThan(0);
    },
    120_000,
  );
});
