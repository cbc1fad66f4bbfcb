import {
  NodeSpec_Availability,
  NodeStatus_State,
  PortConfig_PublishMode,
  TaskState,
  type GenericResource,
  type Node,
  type PortConfig,
  type Resources,
  type Task,
} from '@shoal/proto';
import { GenericResourcePool } from './generic-resources.js';

/** Failures of one service version on one node, within {@link FAILURE_WINDOW_MS}, that make the node a last resort for it (swarmkit's `maxFailures`). */
export const MAX_RECENT_FAILURES = 5;
/** How far back failures count (swarmkit's `monitorFailures`). */
export const FAILURE_WINDOW_MS = 5 * 60 * 1000;

/** What a task placed on a node holds there, kept so that removing the task gives exactly that back. */
interface HeldByTask {
  readonly serviceId: string;
  /** Desired state at most COMPLETE: the task counts towards spreading and max-replicas limits. */
  active: boolean;
  readonly nanoCpus: bigint;
  readonly memoryBytes: bigint;
  readonly genericResources: readonly GenericResource[];
  readonly hostPorts: readonly number[];
}

const noReservations: Resources = { nanoCpus: 0n, memoryBytes: 0n, generic: [] };

/** The resources a task reserves on its node; the scheduler ignores limits, as swarmkit does. */
export function reservationsOf(task: Task): Resources {
  return task.spec?.resources?.reservations ?? noReservations;
}

const noPorts: readonly number[] = [];

/** The host-mode ports a task publishes on its node, as keys of {@link hostPortKey}; published port 0 means "any" and holds nothing. */
export function hostPortsOf(task: Task): readonly number[] {
  const ports = task.endpoint?.ports;
  if (ports === undefined || ports.length === 0) return noPorts;
  const keys: number[] = [];
  for (const port of ports) {
    if (port.publishMode === PortConfig_PublishMode.HOST && port.publishedPort !== 0) keys.push(hostPortKey(port));
  }
  return keys;
}

/** One number per (protocol, published port): TCP 80 and UDP 80 are different ports. */
function hostPortKey(port: PortConfig): number {
  return port.protocol * 65536 + port.publishedPort;
}

/** Key of a service version in failure tracking; a task without a spec version counts as version 0, as in swarmkit. */
export function serviceVersionKey(task: Task): string {
  return `${task.serviceId}\u0000${task.specVersion?.index ?? 0n}`;
}

/**
 * The scheduler's bookkeeping for one node (swarmkit's `NodeInfo`): the node as last seen, what is
 * left of its resources after the reservations of the tasks placed on it, how many active tasks it
 * runs in total and per service, the host-mode ports those tasks publish, and recent task failures
 * per service version. Every figure changes only through {@link addTask}, {@link removeTask},
 * {@link replaceNode} and {@link recordFailure}.
 */
export class NodeInfo {
  private current: Node;
  private readyForTasks = false;
  private totalNanoCpus = 0n;
  private totalMemoryBytes = 0n;
  private freeNanoCpus = 0n;
  private freeMemoryBytes = 0n;
  private genericPool = GenericResourcePool.of([]);
  private activeTaskCount = 0;
  // The maps below are made on first use: a cluster can have 100,000 nodes, most with few tasks and no failures.
  private activeByService: Map<string, number> | undefined;
  private held: Map<string, HeldByTask> | undefined;
  /** Tasks publishing each host port: a count, so two tasks placed on one port in spite of the filter free it only together. */
  private hostPortUsers: Map<number, number> | undefined;
  /** Failure times (ms) per service version, oldest first. */
  private failures: Map<string, number[]> | undefined;

  constructor(node: Node) {
    this.current = node;
    this.replaceNode(node);
  }

  get id(): string {
    return this.current.id;
  }

  get node(): Node {
    return this.current;
  }

  /** Status READY and availability ACTIVE: the node takes new tasks. */
  get isReady(): boolean {
    return this.readyForTasks;
  }

  /** CPU the reservations of placed tasks leave, in billionths of a core; negative when the node shrank under its tasks. */
  get availableNanoCpus(): bigint {
    return this.freeNanoCpus;
  }

  /** Memory the reservations of placed tasks leave; negative when the node shrank under its tasks. */
  get availableMemoryBytes(): bigint {
    return this.freeMemoryBytes;
  }

  /** Generic resources no placed task holds. */
  get genericResources(): GenericResourcePool {
    return this.genericPool;
  }

  /** Tasks placed here whose desired state is at most COMPLETE. */
  get activeTasks(): number {
    return this.activeTaskCount;
  }

  /** Takes a new version of the node, recomputing what is left of its (possibly changed) resources. */
  replaceNode(node: Node): void {
    this.current = node;
    this.readyForTasks = isReadyForTasks(node);
    const resources = node.description?.resources;
    const nanoCpus = resources?.nanoCpus ?? 0n;
    const memoryBytes = resources?.memoryBytes ?? 0n;
    this.freeNanoCpus += nanoCpus - this.totalNanoCpus;
    this.freeMemoryBytes += memoryBytes - this.totalMemoryBytes;
    this.totalNanoCpus = nanoCpus;
    this.totalMemoryBytes = memoryBytes;
    this.genericPool = GenericResourcePool.of(resources?.generic ?? []);
    for (const task of this.held?.values() ?? []) this.genericPool.take(task.genericResources);
  }

  /** Active tasks of `serviceId` on this node. */
  activeTasksOf(serviceId: string): number {
    return this.activeByService?.get(serviceId) ?? 0;
  }

  /** Whether a task placed here publishes the host port `key` (from {@link hostPortsOf}). */
  publishes(key: number): boolean {
    return this.hostPortUsers?.has(key) === true;
  }

  /** The IDs of the tasks accounted here. */
  taskIds(): Iterable<string> {
    return this.held?.keys() ?? [];
  }

  /**
   * Accounts a task placed on this node and returns the generic resources it holds here: those in
   * `task.assignedGenericResources` when it has some (it was placed earlier), otherwise the ones
   * claimed now for its reservations. Adding a task already accounted only takes its new desired
   * state into account, as a task keeps its resources until it is removed.
   */
  addTask(task: Task): readonly GenericResource[] {
    const active = task.desiredState <= TaskState.COMPLETE;
    const known = this.held?.get(task.id);
    if (known !== undefined) {
      if (known.active !== active) {
        this.countActive(known.serviceId, active ? 1 : -1);
        known.active = active;
      }
      return known.genericResources;
    }
    const reservations = reservationsOf(task);
    let genericResources: readonly GenericResource[] = task.assignedGenericResources;
    if (genericResources.length > 0) this.genericPool.take(genericResources);
    else genericResources = this.genericPool.claim(reservations.generic);
    const hostPorts = hostPortsOf(task);
    if (hostPorts.length > 0) {
      const users = (this.hostPortUsers ??= new Map());
      for (const key of hostPorts) users.set(key, (users.get(key) ?? 0) + 1);
    }
    this.freeNanoCpus -= reservations.nanoCpus;
    this.freeMemoryBytes -= reservations.memoryBytes;
    if (active) this.countActive(task.serviceId, 1);
    (this.held ??= new Map()).set(task.id, {
      serviceId: task.serviceId,
      active,
      nanoCpus: reservations.nanoCpus,
      memoryBytes: reservations.memoryBytes,
      genericResources,
      hostPorts,
    });
    return genericResources;
  }

  /** Gives back everything the task held here. Returns false if it was not accounted on this node. */
  removeTask(taskId: string): boolean {
    const task = this.held?.get(taskId);
    if (task === undefined) return false;
    this.held?.delete(taskId);
    if (task.active) this.countActive(task.serviceId, -1);
    this.freeNanoCpus += task.nanoCpus;
    this.freeMemoryBytes += task.memoryBytes;
    this.genericPool.release(task.genericResources);
    for (const key of task.hostPorts) {
      const users = (this.hostPortUsers?.get(key) ?? 0) - 1;
      if (users > 0) this.hostPortUsers?.set(key, users);
      else this.hostPortUsers?.delete(key);
    }
    return true;
  }

  /** Records that a task of the service version `key` failed (or was rejected) here at `now` (ms). */
  recordFailure(key: string, now: number): void {
    const times = this.failures?.get(key);
    if (times === undefined) {
      (this.failures ??= new Map()).set(key, [now]);
      return;
    }
    times.push(now);
    times.splice(0, countExpired(times, now));
  }

  /** Failures of the service version `key` here within {@link FAILURE_WINDOW_MS} before `now`. */
  recentFailures(key: string, now: number): number {
    const times = this.failures?.get(key);
    if (times === undefined) return 0;
    const expired = countExpired(times, now);
    if (expired === times.length) this.failures?.delete(key);
    return times.length - expired;
  }

  private countActive(serviceId: string, delta: number): void {
    this.activeTaskCount += delta;
    const byService = (this.activeByService ??= new Map());
    const count = (byService.get(serviceId) ?? 0) + delta;
    if (count === 0) byService.delete(serviceId);
    else byService.set(serviceId, count);
  }
}

/** Failure times at the front of `times` (oldest first) that are older than the window. */
function countExpired(times: readonly number[], now: number): number {
  let expired = 0;
  while (expired < times.length && now - (times[expired] as number) > FAILURE_WINDOW_MS) expired++;
  return expired;
}

function isReadyForTasks(node: Node): boolean {
  return (
    node.status?.state === NodeStatus_State.READY &&
    (node.spec?.availability ?? NodeSpec_Availability.ACTIVE) === NodeSpec_Availability.ACTIVE
  );
}
