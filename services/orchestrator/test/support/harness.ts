import {
  Node,
  NodeRole,
  NodeSpec,
  NodeStatus,
  NodeStatus_State,
  type NodeSpec_Availability,
  Service,
  ServiceSpec,
  Task,
  TaskState,
  TaskStatus,
  type ObjectKindName,
  type ObjectTypes,
  type TaskSpec,
} from '@shoal/proto';
import { captureLogs } from '@shoal/runtime/testing';
import { all, byServiceId, MemoryStore, type Precondition } from '@shoal/store';
import { LocalClusterState, type ClusterState } from '@shoal/store-client';
import { FakeClock } from '@shoal/testkit';
import { Orchestrator } from '../../src/orchestrator.js';
import type { ServiceUpdater } from '../../src/update/updater.js';

/** What `fromPartial` of a message accepts: any subset of its fields, at any depth. */
export type PartialOf<T extends { fromPartial(object: never): unknown }> = Parameters<T['fromPartial']>[0];

/** Where every test's fake clock starts. */
export const START_MS = Date.parse('2025-01-01T00:00:00.000Z');

type ModeSpec = Pick<ServiceSpec, 'replicated' | 'global' | 'replicatedJob' | 'globalJob'>;

/** A service at spec version 1 running busybox, in `mode`, with `task` merged into its task spec. */
export function service(id: string, mode: Partial<ModeSpec>, task: PartialOf<typeof TaskSpec> = {}, extra: PartialOf<typeof Service> = {}): Service {
  return Service.fromPartial({
    id,
    specVersion: { index: 1n },
    ...extra,
    spec: { annotations: { name: id }, task: { container: { image: 'busybox' }, ...task }, ...mode },
  });
}

/** A READY, ACTIVE worker named after its ID, with 4 cores and 8 GiB, unless `overrides` says otherwise. */
export function node(id: string, overrides: PartialOf<typeof Node> = {}): Node {
  return Node.fromPartial({
    id,
    role: NodeRole.WORKER,
    status: { state: NodeStatus_State.READY },
    description: { hostname: id, resources: { nanoCpus: 4_000_000_000n, memoryBytes: 8n << 30n } },
    ...overrides,
  });
}

/**
 * A task of `serviceId` in `slot` at spec version 1, desired RUNNING and RUNNING on `nodeId` since
 * the clock's start, unless `overrides` says otherwise: what the store holds once a task is up.
 */
export function task(id: string, serviceId: string, slot: number, nodeId: string, overrides: PartialOf<typeof Task> = {}): Task {
  return Task.fromPartial({
    id,
    serviceId,
    slot: BigInt(slot),
    nodeId,
    specVersion: { index: 1n },
    spec: { container: { image: 'busybox' } },
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.RUNNING, timestamp: new Date(START_MS) },
    ...overrides,
  });
}

/** An updater that only records what it is asked to do. */
export class RecordingUpdater implements ServiceUpdater {
  /** Each update call: the service and the IDs of the tasks of each slot. */
  readonly updates: { serviceId: string; slots: string[][] }[] = [];
  readonly cancelled: string[] = [];

  update(service: Service, slots: Task[][]): void {
    this.updates.push({ serviceId: service.id, slots: slots.map((slot) => slot.map((task) => task.id)) });
  }

  cancel(serviceId: string): void {
    this.cancelled.push(serviceId);
  }
}

export interface StartOptions {
  readonly fence?: Precondition;
  /** The updater to drive instead of {@link TestCluster.updater}, which only records. */
  readonly updater?: ServiceUpdater;
}

/**
 * An in-process cluster for one test: a MemoryStore on a fake clock, an orchestrator following it,
 * and the moves the other components would make (scheduler, agents, API) as direct store writes.
 */
export class TestCluster {
  readonly clock = new FakeClock({ startMs: START_MS });
  readonly store = new MemoryStore({ clock: () => this.now() });
  readonly state: ClusterState;
  readonly updater = new RecordingUpdater();
  readonly logs = captureLogs({ level: 'warn' });
  #running: { orchestrator: Orchestrator; stop: AbortController; done: Promise<void> } | undefined;

  /** @param wrap Lets a test put a decorator between the orchestrator and the store. */
  constructor(wrap: (state: ClusterState) => ClusterState = (state) => state) {
    this.state = wrap(new LocalClusterState(this.store));
  }

  now(): Date {
    return new Date(this.clock.now());
  }

  /** Starts an orchestrator and waits until it has reconciled what the store holds. */
  async start(options: StartOptions = {}): Promise<Orchestrator> {
    const orchestrator = new Orchestrator({
      state: this.state,
      fence: options.fence,
      clock: () => this.now(),
      timers: this.clock,
      log: this.logs.log,
      updater: options.updater ?? this.updater,
    });
    const stop = new AbortController();
    this.#running = { orchestrator, stop, done: orchestrator.run(stop.signal) };
    await this.settle();
    return orchestrator;
  }

  /** The running orchestrator's `run`, which settles when it stops. */
  get finished(): Promise<void> | undefined {
    return this.#running?.done;
  }

  /** Stops the orchestrator (as a kill would, between two of its writes) and waits for it to be done. */
  async stop(): Promise<void> {
    const running = this.#running;
    this.#running = undefined;
    running?.stop.abort();
    await running?.done;
  }

  /** Waits until the orchestrator has handled everything committed so far. */
  async settle(): Promise<void> {
    await this.#running?.orchestrator.settled();
  }

  /** Moves time on (firing due restart delays) and waits for the orchestrator to settle. */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await this.settle();
  }

  create<K extends ObjectKindName>(kind: K, ...objects: ObjectTypes[K][]): void {
    this.store.update((tx) => {
      for (const object of objects) tx.create(kind, object);
    });
  }

  /** Rewrites a stored object with `change` applied to it as stored. */
  update<K extends ObjectKindName>(kind: K, id: string, change: (object: ObjectTypes[K]) => ObjectTypes[K]): void {
    this.store.update((tx) => {
      const object = tx.get(kind, id);
      if (object === undefined) throw new Error(`no ${kind} ${id} to update`);
      tx.update(kind, change(object));
    });
  }

  delete(kind: ObjectKindName, id: string): void {
    this.store.update((tx) => tx.delete(kind, id, tx.get(kind, id)?.meta?.version?.index ?? 0n));
  }

  /** Every task, or the service's, by slot, then oldest first. */
  tasks(serviceId?: string): Task[] {
    const tasks = this.store.view((tx) => tx.find('task', serviceId === undefined ? all : byServiceId(serviceId)));
    return tasks.sort(
      (a, b) => Number(a.slot - b.slot) || (a.meta?.createdAt?.getTime() ?? 0) - (b.meta?.createdAt?.getTime() ?? 0) || a.id.localeCompare(b.id),
    );
  }

  /** The service's tasks by the node they are on (global services). */
  tasksByNode(serviceId: string): Record<string, Task[]> {
    const byNode: Record<string, Task[]> = {};
    for (const task of this.tasks(serviceId)) (byNode[task.nodeId] ??= []).push(task);
    return byNode;
  }

  /** The service's tasks the orchestrator means to run (desired READY or RUNNING, COMPLETE for a job). */
  liveTasks(serviceId: string): Task[] {
    return this.tasks(serviceId).filter((task) => task.desiredState <= TaskState.COMPLETE);
  }

  task(id: string): Task {
    const task = this.store.view((tx) => tx.get('task', id));
    if (task === undefined) throw new Error(`no task ${id}`);
    return task;
  }

  /** What `docker service scale` does. */
  scale(serviceId: string, replicas: number): void {
    this.update('service', serviceId, (scaled) => ({ ...scaled, spec: ServiceSpec.fromPartial({ ...scaled.spec, replicated: { replicas: BigInt(replicas) } }) }));
  }

  /** What the user does with `docker node update --availability`. */
  setAvailability(nodeId: string, availability: NodeSpec_Availability): void {
    this.update('node', nodeId, (node) => ({ ...node, spec: NodeSpec.fromPartial({ ...node.spec, availability }) }));
  }

  /** What `docker node update --label-add/--label-rm` leaves: exactly `labels`. */
  setLabels(nodeId: string, labels: Record<string, string>): void {
    this.update('node', nodeId, (node) => ({ ...node, spec: NodeSpec.fromPartial({ ...node.spec, annotations: { ...node.spec?.annotations, labels } }) }));
  }

  /** What the dispatcher writes when it hears from a node, or stops hearing from it. */
  setNodeState(nodeId: string, state: NodeStatus_State): void {
    this.update('node', nodeId, (node) => ({ ...node, status: NodeStatus.fromPartial({ ...node.status, state }) }));
  }

  /** What an agent reports: the task reached `state` on `nodeId` (the scheduler's placement, for a replicated task) now. */
  report(taskId: string, state: TaskState, nodeId?: string): void {
    this.update('task', taskId, (task) => ({
      ...task,
      nodeId: nodeId ?? task.nodeId,
      status: TaskStatus.fromPartial({ ...task.status, state, timestamp: this.now() }),
    }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** The slots of `tasks`, in order. */
export const slotsOf = (tasks: readonly Task[]): number[] => tasks.map((task) => Number(task.slot));
