import { RestartPolicy_RestartCondition, TaskState, type ServiceSpec, type Task, type TaskSpec } from '@shoal/proto';
import { durationOfMs } from '@shoal/store-client';
import { afterEach, expect } from 'vitest';
import { ClusterAudit } from '../src/audit.js';
import { ControlPlane, type ControlPlaneOptions } from '../src/control-plane.js';
import type { PartialOf } from '../src/swarm-objects.js';

interface Simulation {
  readonly plane: ControlPlane;
  readonly audit: ClusterAudit;
}

const simulations: Simulation[] = [];

/**
 * A control plane with a swarm (cluster object and ingress network) and an audit following it from
 * the first commit; stopped after the test, when the audit must have found nothing.
 */
export async function simulate(options: ControlPlaneOptions = {}): Promise<Simulation> {
  const plane = new ControlPlane(options);
  const audit = new ClusterAudit(plane.state);
  simulations.push({ plane, audit });
  await plane.initSwarm();
  return { plane, audit };
}

afterEach(async () => {
  for (const { plane, audit } of simulations.splice(0)) {
    await plane.close();
    audit.close();
    expect(audit.violations).toEqual([]);
    expect(audit.commits).toBeGreaterThan(0);
  }
});

/** What a test adds to {@link replicatedSpec}'s spec: `task` is merged into its task spec, `spec` into the service spec. */
export interface SpecExtras {
  readonly task?: PartialOf<typeof TaskSpec>;
  readonly spec?: PartialOf<typeof ServiceSpec>;
}

/** A service named `name` running `app:1`, restarted at once (no restart delay, so that a replacement does not wait swarmkit's default 5 s). */
function specOf(name: string, extras: SpecExtras): PartialOf<typeof ServiceSpec> {
  return {
    annotations: { name },
    task: { container: { image: 'app:1' }, restart: { condition: RestartPolicy_RestartCondition.ANY, delay: durationOfMs(0) }, ...extras.task },
  };
}

/** A replicated service (see {@link specOf}) with `extras` merged in. */
export function replicatedSpec(name: string, replicas: number, extras: SpecExtras = {}): PartialOf<typeof ServiceSpec> {
  return { ...specOf(name, extras), replicated: { replicas: BigInt(replicas) }, ...extras.spec };
}

/** A global service (see {@link specOf}) with `extras` merged in. */
export function globalSpec(name: string, extras: SpecExtras = {}): PartialOf<typeof ServiceSpec> {
  return { ...specOf(name, extras), global: {}, ...extras.spec };
}

/** `spec` with its tasks running `image`, as `docker service update --image` sends it. */
export function withImage(spec: ServiceSpec, image: string): PartialOf<typeof ServiceSpec> {
  return { ...spec, task: { ...spec.task, container: { ...spec.task?.container, image } } };
}

/** The image a task runs. */
export const imageOf = (task: Task): string | undefined => task.spec?.container?.image;

export const stateOf = (task: Task): TaskState => task.status?.state ?? TaskState.NEW;

/** The tasks the orchestrator means to run (desired RUNNING). */
export const desiredRunning = (tasks: readonly Task[]): Task[] => tasks.filter((task) => task.desiredState === TaskState.RUNNING);

/** The tasks that run and are meant to. */
export const running = (tasks: readonly Task[]): Task[] => desiredRunning(tasks).filter((task) => stateOf(task) === TaskState.RUNNING);

/** The slots of `tasks`, in ascending order. */
export const slotsOf = (tasks: readonly Task[]): number[] => tasks.map((task) => Number(task.slot)).sort((a, b) => a - b);

/** 1, 2, …, n. */
export const oneTo = (n: number): number[] => Array.from({ length: n }, (_, index) => index + 1);

/** How many of `tasks` each of `nodeIds` has. */
export function countPerNode(tasks: readonly Task[], nodeIds: readonly string[]): number[] {
  return nodeIds.map((nodeId) => tasks.filter((task) => task.nodeId === nodeId).length);
}

/**
 * Asserts that a replicated service has converged on `replicas`: exactly that many tasks desired
 * RUNNING, all of them running, each in its own slot, and no other task holding a place on a node.
 */
export function expectConverged(tasks: readonly Task[], replicas: number): void {
  const wanted = desiredRunning(tasks);
  expect(wanted.map(stateOf).filter((state) => state !== TaskState.RUNNING)).toEqual([]);
  expect(new Set(slotsOf(wanted)).size).toBe(replicas);
  expect(wanted).toHaveLength(replicas);
  const leaving = tasks.filter((task) => task.desiredState > TaskState.RUNNING && stateOf(task) >= TaskState.ASSIGNED && stateOf(task) <= TaskState.RUNNING);
  expect(leaving.map((task) => task.id)).toEqual([]);
}
