import { isDeepStrictEqual } from 'node:util';
import { TaskState, taskStateName, UpdateConfig_UpdateOrder, type NetworkAttachment, type Node, type Service, type Task } from '@shoal/proto';
import type { Commit, ReadTx } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';

const stateOf = (task: Task): TaskState => task.status?.state ?? TaskState.NEW;

/** A task holds its reservations on its node from ASSIGNED up to RUNNING (the scheduler's accounting). */
const holdsPlace = (task: Task): boolean => task.nodeId !== '' && stateOf(task) >= TaskState.ASSIGNED && stateOf(task) <= TaskState.RUNNING;

/** A task keeps its addresses until it is past RUNNING (the allocator frees them then). */
const holdsAddresses = (task: Task): boolean => stateOf(task) <= TaskState.RUNNING;

/** The address of a record's `a.b.c.d/nn`. */
const hostPart = (address: string): string => address.split('/')[0]!;

/** Where a task stands in for one instance: its slot, or its node for a global service (slot 0). */
const placeOf = (task: Task): string => (task.slot === 0n ? `node ${task.nodeId}` : `slot ${task.slot}`);

/** A start-first rollout runs a slot's old and new task side by side on purpose. */
function overlapsOnUpdate(service: Service | undefined): boolean {
  const startFirst = UpdateConfig_UpdateOrder.START_FIRST;
  return service?.spec?.update?.order === startFirst || service?.spec?.rollback?.order === startFirst;
}

/**
 * Checks the control plane's invariants on every state the store passes through. It keeps its own
 * copy of the tasks, nodes and services, brought forward by each commit's events, so every
 * intermediate state is checked however quickly the next commit follows:
 *
 * - no slot (a node, for a global service) has two tasks desired RUNNING, except for a service
 *   whose rollouts start the new task first;
 * - no node holds tasks (ASSIGNED up to RUNNING) reserving more CPU or memory than it has;
 * - no network address is held twice among service VIPs, node attachments and the tasks that
 *   still hold theirs (up to RUNNING);
 * - a task is placed once: once on a node it never moves, and nothing assigns it again;
 * - a task's state and desired state never move backwards.
 *
 * Each violation is reported once, with the version of the commit that first showed it.
 */
export class ClusterAudit {
  readonly #state: ClusterState;
  readonly #tasks = new Map<string, Task>();
  readonly #nodes = new Map<string, Node>();
  readonly #services = new Map<string, Service>();
  readonly #violations: string[] = [];
  readonly #reported = new Set<string>();
  readonly #unsubscribe: () => void;
  #commits = 0;

  /** Starts following `state`; the view and the commits after it are one consistent history. */
  constructor(state: ClusterState) {
    this.#state = state;
    state.view((tx) => this.#load(tx));
    this.#unsubscribe = state.subscribe((commit) => this.#audit(commit));
  }

  /** What went wrong so far, in the order it was seen. */
  get violations(): readonly string[] {
    return this.#violations;
  }

  /** How many commits have been checked. */
  get commits(): number {
    return this.#commits;
  }

  /** Stops following the state. */
  close(): void {
    this.#unsubscribe();
  }

  #load(tx: ReadTx): void {
    this.#tasks.clear();
    this.#nodes.clear();
    this.#services.clear();
    for (const task of tx.list('task')) this.#tasks.set(task.id, task);
    for (const node of tx.list('node')) this.#nodes.set(node.id, node);
    for (const service of tx.list('service')) this.#services.set(service.id, service);
  }

  #audit(commit: Commit): void {
    this.#commits++;
    // A commit without events says the state was replaced wholesale: start again from the view.
    if (commit.events.length === 0) this.#state.view((tx) => this.#load(tx));
    for (const event of commit.events) {
      if (event.kind === 'task') {
        if (event.action === 'delete') this.#tasks.delete(event.object.id);
        else {
          const before = this.#tasks.get(event.object.id);
          if (before !== undefined) this.#checkTransition(commit.version, before, event.object);
          this.#tasks.set(event.object.id, event.object);
        }
      } else if (event.kind === 'node') {
        if (event.action === 'delete') this.#nodes.delete(event.object.id);
        else this.#nodes.set(event.object.id, event.object);
      } else if (event.kind === 'service') {
        if (event.action === 'delete') this.#services.delete(event.object.id);
        else this.#services.set(event.object.id, event.object);
      }
    }
    this.#checkSlots(commit.version);
    this.#checkReservations(commit.version);
    this.#checkAddresses(commit.version);
  }

  #checkTransition(version: bigint, before: Task, after: Task): void {
    const id = after.id;
    if (before.nodeId !== '' && after.nodeId !== before.nodeId) this.#report(version, `task ${id} moved from node ${before.nodeId} to node ${after.nodeId}`);
    if (stateOf(after) < stateOf(before)) {
      this.#report(version, `task ${id}'s state went back from ${taskStateName(stateOf(before))} to ${taskStateName(stateOf(after))}`);
    }
    if (after.desiredState < before.desiredState) {
      this.#report(version, `task ${id}'s desired state went back from ${taskStateName(before.desiredState)} to ${taskStateName(after.desiredState)}`);
    }
    if (stateOf(after) === TaskState.ASSIGNED && stateOf(before) >= TaskState.ASSIGNED && !isDeepStrictEqual(after.status, before.status)) {
      this.#report(version, `task ${id} was assigned again`);
    }
  }

  #checkSlots(version: bigint): void {
    const running = new Map<string, string[]>();
    for (const task of this.#tasks.values()) {
      if (task.desiredState !== TaskState.RUNNING || overlapsOnUpdate(this.#services.get(task.serviceId))) continue;
      const key = `${placeOf(task)} of service ${task.serviceId}`;
      running.set(key, [...(running.get(key) ?? []), task.id]);
    }
    for (const [place, ids] of running) {
      if (ids.length > 1) this.#report(version, `${place} has ${ids.length} tasks desired RUNNING: ${ids.sort().join(', ')}`);
    }
  }

  #checkReservations(version: bigint): void {
    const reserved = new Map<string, { nanoCpus: bigint; memoryBytes: bigint }>();
    for (const task of this.#tasks.values()) {
      if (!holdsPlace(task)) continue;
      const wants = task.spec?.resources?.reservations;
      const sum = reserved.get(task.nodeId) ?? { nanoCpus: 0n, memoryBytes: 0n };
      reserved.set(task.nodeId, { nanoCpus: sum.nanoCpus + (wants?.nanoCpus ?? 0n), memoryBytes: sum.memoryBytes + (wants?.memoryBytes ?? 0n) });
    }
    for (const [nodeId, sum] of reserved) {
      const has = this.#nodes.get(nodeId)?.description?.resources;
      if (has === undefined) continue;
      if (sum.nanoCpus > has.nanoCpus) this.#report(version, `node ${nodeId} is over-committed: ${sum.nanoCpus} nano CPUs reserved of ${has.nanoCpus}`);
      if (sum.memoryBytes > has.memoryBytes) this.#report(version, `node ${nodeId} is over-committed: ${sum.memoryBytes} bytes of memory reserved of ${has.memoryBytes}`);
    }
  }

  #checkAddresses(version: bigint): void {
    const holders = new Map<string, string>();
    const hold = (holder: string, networkId: string, address: string) => {
      const key = `${hostPart(address)} on network ${networkId}`;
      const other = holders.get(key);
      if (other === undefined) holders.set(key, holder);
      else if (other !== holder) this.#report(version, `address ${key} is held by both ${other} and ${holder}`);
    };
    const holdAttachments = (holder: string, attachments: readonly NetworkAttachment[]) => {
      for (const { network, addresses } of attachments) for (const address of addresses) if (network !== undefined) hold(holder, network.id, address);
    };
    for (const service of this.#services.values()) {
      for (const vip of service.endpoint?.virtualIps ?? []) if (vip.addr !== '') hold(`service ${service.id}`, vip.networkId, vip.addr);
    }
    for (const node of this.#nodes.values()) holdAttachments(`node ${node.id}`, node.attachments);
    for (const task of this.#tasks.values()) if (holdsAddresses(task)) holdAttachments(`task ${task.id}`, task.networks);
  }

  #report(version: bigint, violation: string): void {
    if (this.#reported.has(violation)) return;
    this.#reported.add(violation);
    this.#violations.push(`at version ${version}: ${violation}`);
  }
}
