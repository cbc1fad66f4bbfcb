/**
 * Property test: random sequences of scalings, task failures, agents reporting tasks running, time
 * passing and the orchestrator being killed and replaced (sometimes before it settled) against one
 * replicated service. After every commit the orchestrator makes, no slot may hold two tasks it means
 * to run; once the failures stop, the service must converge to exactly `replicas` running slots.
 */
import { TaskState, type Task } from '@shoal/proto';
import type { ClusterState } from '@shoal/store-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { node, service, TestCluster } from './support/harness.js';

type Step =
  | { readonly kind: 'scale'; readonly replicas: number }
  | { readonly kind: 'fail'; readonly pick: number }
  | { readonly kind: 'run' }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'replace-orchestrator' };

const stepArbitrary = fc.record({
  step: fc.oneof(
    fc.record({ kind: fc.constant('scale' as const), replicas: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ kind: fc.constant('fail' as const), pick: fc.nat() }),
    fc.constant({ kind: 'run' as const }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 6_000 }) }),
    fc.constant({ kind: 'replace-orchestrator' as const }),
  ),
  /** Whether to let the orchestrator settle before the next step. */
  settle: fc.boolean(),
});

const NODES = ['n1', 'n2', 'n3'];

/** Slots holding more than one task the orchestrator means to run (desired READY or RUNNING). */
function doublyRunSlots(tasks: readonly Task[]): string[] {
  const bySlot = new Map<bigint, string[]>();
  for (const task of tasks) {
    if (task.desiredState <= TaskState.RUNNING) bySlot.set(task.slot, [...(bySlot.get(task.slot) ?? []), task.id]);
  }
  return [...bySlot].filter(([, ids]) => ids.length > 1).map(([slot, ids]) => `slot ${slot}: ${ids.join(', ')}`);
}

/** What the scheduler and the agents do: every task desired RUNNING that is not running yet starts, spread over the nodes. */
function runEverything(cluster: TestCluster): void {
  for (const task of cluster.tasks('web')) {
    const state = task.status?.state ?? TaskState.NEW;
    if (task.desiredState === TaskState.RUNNING && state < TaskState.RUNNING) {
      cluster.report(task.id, TaskState.RUNNING, task.nodeId || NODES[Number(task.slot) % NODES.length]);
    }
  }
}

async function apply(cluster: TestCluster, step: Step): Promise<void> {
  if (step.kind === 'scale') {
    cluster.scale('web', step.replicas);
  } else if (step.kind === 'fail') {
    const running = cluster.tasks('web').filter((task) => task.desiredState <= TaskState.RUNNING && (task.status?.state ?? 0) <= TaskState.RUNNING);
    const victim = running[step.pick % Math.max(1, running.length)];
    if (victim !== undefined) cluster.report(victim.id, TaskState.FAILED, victim.nodeId || 'n1');
  } else if (step.kind === 'run') {
    runEverything(cluster);
  } else if (step.kind === 'wait') {
    cluster.clock.advance(step.ms);
  } else {
    await cluster.stop();
    await cluster.start();
  }
}

describe('replicated service convergence', () => {
  it('never runs two tasks in one slot, and converges to the replica count once failures stop', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 6 }), fc.array(stepArbitrary, { maxLength: 30 }), async (initialReplicas, steps) => {
        const violations: string[] = [];
        let cluster: TestCluster | undefined;
        const checkEveryCommit = (state: ClusterState): ClusterState => ({
          get version() {
            return state.version;
          },
          view: (read) => state.view(read),
          subscribe: (listener) => state.subscribe(listener),
          commit: async (write) => {
            const version = await state.commit(write);
            violations.push(...doublyRunSlots(cluster?.tasks('web') ?? []));
            return version;
          },
        });
        cluster = new TestCluster(checkEveryCommit);
        await using _ = cluster;
        cluster.create('node', ...NODES.map((id) => node(id)));
        cluster.create('service', service('web', { replicated: { replicas: BigInt(initialReplicas) } }));
        await cluster.start();

        let replicas = initialReplicas;
        for (const { step, settle } of steps) {
          await apply(cluster, step);
          if (step.kind === 'scale') replicas = step.replicas;
          if (settle) await cluster.settle();
          violations.push(...doublyRunSlots(cluster.tasks('web')));
        }
        // Failures stop: agents run what they are given, and time passes beyond every restart delay and wait.
        for (let round = 0; round < 3; round++) {
          runEverything(cluster);
          await cluster.advance(70_000);
        }
        runEverything(cluster);
        await cluster.settle();

        expect(violations).toEqual([]);
        const running = cluster.tasks('web').filter((task) => task.desiredState === TaskState.RUNNING);
        expect(running).toHaveLength(replicas);
        expect(new Set(running.map((task) => task.slot)).size).toBe(replicas);
        expect(running.every((task) => task.status?.state === TaskState.RUNNING)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
