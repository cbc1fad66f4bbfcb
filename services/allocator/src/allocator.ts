import { ErrorCode, errors, isShoalError, ShoalError, toShoalError } from '@shoal/errors';
import { DEFAULT_ADDRESS_POOLS, DEFAULT_SUBNET_SIZE, formatCidr, parseCidr, type SubnetPoolOptions } from '@shoal/ipam';
import { encodeObject, TaskState, TaskStatus, type Cluster, type Network, type ObjectTypes, type Service, type Task } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { byTaskState, type Change, type Commit, type Precondition, type ReadTx, type StoreEvent, MAX_CHANGES_PER_TRANSACTION } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { allocateNodeAttachments, allocateTaskNetworks, isNodeAllocated, nodeHolder, nodeNetworks, taskHolder } from './attachments.js';
import { allocateEndpoint, isServiceAllocated, serviceHolder } from './endpoint.js';
import { Ledger, type SyncOutcome } from './ledger.js';
import { allocateNetwork, findIngressNetwork, isNetworkAllocated, syncNetwork } from './network.js';
import { HOLDER_KINDS, holderKey, isLive, nodeHoldings, serviceHoldings, taskHoldings, type Holder, type HolderKind, type Resource } from './resources.js';

/** The status message of a task the allocator hands on to the scheduler (swarmkit's). */
export const PENDING_MESSAGE = 'pending task scheduling';

/** Kept well under the store's 1.5 MiB per transaction, which also counts what the objects are framed in. */
const MAX_TRANSACTION_BYTES = 1024 * 1024;
/** How long to wait before trying again after a write failed for a reason other than a race (the store unreachable). */
const RETRY_DELAY_MS = 1_000;

export interface AllocatorOptions {
  /** The store, as a consistent view with conditional commits and a stream of commits. */
  readonly state: ClusterState;
  /** Added to the preconditions of every write: the lease this allocator leads under. */
  readonly fence?: Precondition;
  readonly log: Logger;
  /** Stamps the status of tasks moved to PENDING. Default: the system clock. */
  readonly clock?: () => Date;
}

/** An object the allocator writes. */
type Update = { [K in HolderKind]: { readonly kind: K; readonly object: ObjectTypes[K] } }[HolderKind];

/** An object as the store has it now: `object` undefined if it is gone. */
type StoredRecord = { [K in HolderKind]: { readonly kind: K; readonly id: string; readonly object: ObjectTypes[K] | undefined } }[HolderKind];

type IdSets = Record<HolderKind, Set<string>>;

const emptyIdSets = (): IdSets => ({ network: new Set(), service: new Set(), task: new Set(), node: new Set() });

/**
 * Shoal's allocator, after swarmkit's (`manager/allocator`): gives networks their subnet, gateway
 * and VXLAN ID, services their published ingress ports and virtual IPs, tasks an address on each
 * of their networks, nodes a load-balancer address on each network their tasks use, and moves each
 * NEW task to PENDING once all of that is done for it. A task that cannot be allocated (a full
 * subnet, a port another service holds) stays NEW with the reason in its `status.err`, and is tried
 * again whenever something is freed.
 *
 * It keeps the allocations in memory (a {@link Ledger}), rebuilt from the store when it starts (every
 * recorded subnet, VXLAN ID, port and address is reserved first, so nothing held is handed out
 * again) and kept equal to the store's records by following every commit: what a record stops
 * naming (a task past RUNNING, a deleted service) goes back to the pools. Each pass allocates what
 * the commits touched, networks first, then services, tasks and nodes, each kind written before the
 * next is planned, in transactions of at most 200 changes carrying the object versions read and the
 * lease fence.
 */
export class Allocator {
  readonly #state: ClusterState;
  readonly #fence: Precondition | undefined;
  readonly #log: Logger;
  readonly #clock: () => Date;
  #ledger = new Ledger({});
  /** The cluster's address pools and subnet size the ledger was built for; a change means a rebuild. */
  #addressPoolsKey = '';
  #rebuildNeeded = true;
  /** Objects a commit touched since the last pass. */
  #dirty = emptyIdSets();
  #allNodesDirty = false;
  /** Objects that could not be allocated, tried again when something is freed or allocated. */
  #waiting = emptyIdSets();
  /** Why a waiting network or service could not be allocated, by holder key: what its tasks report. */
  readonly #reasons = new Map<string, string>();
  /** The node of each live task with attachments, so a task leaving or ending there has the node reviewed. */
  readonly #taskNodes = new Map<string, string>();
  /** Set during a pass when a record sync freed something or opened an address space. */
  #capacityGained = false;
  #seenVersion = 0n;
  /** After losing a race: the version the view must show (the winner's write) before planning again on it. */
  #awaitedVersion = 0n;
  #running = false;
  #passing = false;
  #backOff = false;
  #wake: (() => void) | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: AllocatorOptions) {
    this.#state = options.state;
    this.#fence = options.fence;
    this.#log = options.log;
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Allocates until `signal` aborts, or until a write is refused because the fence is stale (another
   * allocator leads now), whichever comes first; then resolves.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.#running = true;
    const unsubscribe = this.#state.subscribe((commit) => this.#observe(commit));
    this.#seenVersion = this.#state.version;
    try {
      while (!signal.aborted) {
        if (!this.#hasWork()) {
          this.#releaseIdleWaiters();
          await this.#nextWake(signal);
          continue;
        }
        if (this.#state.version < this.#awaitedVersion) {
          // Planning again on a view without the write that won would only lose again.
          await this.#nextWake(signal);
          continue;
        }
        this.#passing = true;
        try {
          if (this.#rebuildNeeded) this.#rebuild();
          await this.#pass();
        } catch (err) {
          if (this.#isFenceError(err)) {
            this.#log.warn({ err }, 'another allocator holds the lease now; stopping');
            return;
          }
          const error = toShoalError(err);
          this.#log[error.code === ErrorCode.Unavailable ? 'warn' : 'error']({ err: error }, 'allocation pass failed; rebuilding from the store');
          this.#rebuildNeeded = true;
          this.#backOff = true;
        } finally {
          this.#passing = false;
        }
        if (this.#backOff) {
          this.#backOff = false;
          await sleep(RETRY_DELAY_MS, signal);
        }
      }
    } finally {
      unsubscribe();
      this.#running = false;
      this.#releaseIdleWaiters();
    }
  }

  /**
   * Resolves once the allocator has handled every commit its view shows and has nothing left to do
   * (objects waiting for resources may remain), or when it is not running. For tests and simulations.
   */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#releaseIdleWaiters();
    });
  }

  #hasWork(): boolean {
    return this.#rebuildNeeded || this.#allNodesDirty || HOLDER_KINDS.some((kind) => this.#dirty[kind].size > 0);
  }

  #releaseIdleWaiters(): void {
    if (this.#running && (this.#passing || this.#hasWork() || this.#seenVersion < this.#state.version)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #nextWake(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener('abort', wake);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = wake;
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /** Notes what a commit touched; the work happens in the next pass. Never throws: it runs in the store's delivery loop. */
  #observe(commit: Commit): void {
    if (commit.version > this.#seenVersion) this.#seenVersion = commit.version;
    // A commit without events is a resync: anything may have changed.
    if (commit.events.length === 0) this.#rebuildNeeded = true;
    for (const event of commit.events) this.#note(event);
    if (this.#hasWork()) this.#wake?.();
    else this.#releaseIdleWaiters();
  }

  #note(event: StoreEvent): void {
    switch (event.kind) {
      case 'network':
        this.#dirty.network.add(event.object.id);
        // Every node has an address on ingress, and none on a network that is gone.
        if (event.action === 'delete' || event.object.spec?.ingress === true) this.#allNodesDirty = true;
        return;
      case 'service':
      case 'task':
      case 'node':
        this.#dirty[event.kind].add(event.object.id);
        return;
      case 'cluster':
        if (addressPoolsKey(event.object) !== this.#addressPoolsKey) this.#rebuildNeeded = true;
        return;
      default:
        return;
    }
  }

  /** Starts over from the store: every recorded allocation reserved, then everything looked at again. */
  #rebuild(): void {
    this.#state.view((tx) => {
      const cluster = tx.list('cluster')[0];
      this.#ledger = new Ledger(subnetPoolOptions(cluster));
      this.#addressPoolsKey = addressPoolsKey(cluster);
      this.#reasons.clear();
      this.#taskNodes.clear();
      this.#waiting = emptyIdSets();
      const stored = { network: tx.list('network'), service: tx.list('service'), task: tx.list('task'), node: tx.list('node') };
      const records = HOLDER_KINDS.flatMap((kind) => stored[kind].map((object) => ({ kind, id: object.id, object }) as StoredRecord));
      this.#syncRecords(records, new Set());
      this.#dirty = {
        network: new Set(stored.network.map(({ id }) => id)),
        service: new Set(stored.service.map(({ id }) => id)),
        task: new Set(tx.find('task', byTaskState(TaskState.NEW)).map(({ id }) => id)),
        node: new Set(stored.node.map(({ id }) => id)),
      };
      this.#allNodesDirty = false;
      this.#log.info(
        { version: tx.version, networks: stored.network.length, services: stored.service.length, tasks: stored.task.length, nodes: stored.node.length },
        'rebuilt the allocations from the store',
      );
    });
    this.#rebuildNeeded = false;
  }

  async #pass(): Promise<void> {
    const work = this.#dirty;
    this.#dirty = emptyIdSets();
    this.#state.view((tx) => {
      if (this.#allNodesDirty) for (const node of tx.list('node')) work.node.add(node.id);
      this.#allNodesDirty = false;
      this.#capacityGained = this.#syncRecords(recordsOf(tx, work), work.node);
    });
    const allocated = (await this.#allocateNetworks(work)) + (await this.#allocateServices(work));
    await this.#allocateTasks(work);
    await this.#allocateNodes(work);
    // Waiting objects may fit now: something was freed, a network got a subnet, or a service its endpoint.
    if (allocated > 0 || this.#capacityGained) this.#retryWaiting();
  }

  async #allocateNetworks(work: IdSets): Promise<number> {
    const updates = this.#state.view((tx) =>
      [...work.network].flatMap((id): Update[] => {
        const network = tx.get('network', id);
        if (network === undefined || isNetworkAllocated(network)) return this.#settled('network', id);
        return this.#planned('network', network, () => allocateNetwork(network, this.#ledger));
      }),
    );
    return this.#write(updates, work.node);
  }

  async #allocateServices(work: IdSets): Promise<number> {
    const updates = this.#state.view((tx) => {
      const ingressId = findIngressNetwork(tx)?.id;
      return [...work.service].flatMap((id): Update[] => {
        const service = tx.get('service', id);
        if (service === undefined || isServiceAllocated(service, this.#ledger, ingressId)) return this.#settled('service', id);
        return this.#planned('service', service, () => ({ ...service, endpoint: allocateEndpoint(service, tx, this.#ledger, ingressId) }));
      });
    });
    return this.#write(updates, work.node);
  }

  async #allocateTasks(work: IdSets): Promise<void> {
    const updates = this.#state.view((tx) => {
      const ingress = findIngressNetwork(tx);
      return [...work.task].flatMap((id): Update[] => {
        const task = tx.get('task', id);
        if (task === undefined || (task.status?.state ?? TaskState.NEW) !== TaskState.NEW || task.desiredState > TaskState.RUNNING) return this.#settled('task', id);
        const service = task.serviceId === '' ? undefined : tx.get('service', task.serviceId);
        // A task whose service is gone is the orchestrator's to remove.
        if (task.serviceId !== '' && service === undefined) return this.#settled('task', id);
        try {
          return this.#planned('task', task, () => this.#readyForScheduling(task, service, tx, ingress));
        } catch (err) {
          const message = toShoalError(err).message;
          // Stays NEW, saying why: a task must never wait silently.
          return task.status?.err === message ? [] : [{ kind: 'task', object: { ...task, status: TaskStatus.fromPartial({ ...task.status, err: message }) } }];
        }
      });
    });
    await this.#write(updates, work.node);
  }

  #readyForScheduling(task: Task, service: Service | undefined, tx: ReadTx, ingress: Network | undefined): Task {
    if (service !== undefined && !isServiceAllocated(service, this.#ledger, ingress?.id)) {
      const reason = this.#reasons.get(holderKey(serviceHolder(service)));
      throw errors.failedPrecondition(reason ?? `service ${service.id} has pending allocations`, { serviceId: service.id });
    }
    return {
      ...task,
      networks: allocateTaskNetworks(task, service, tx, this.#ledger, ingress),
      endpoint: service?.endpoint ?? task.endpoint,
      status: TaskStatus.fromPartial({ state: TaskState.PENDING, message: PENDING_MESSAGE, timestamp: this.#clock() }),
    };
  }

  async #allocateNodes(work: IdSets): Promise<void> {
    const updates = this.#state.view((tx) => {
      const ingress = findIngressNetwork(tx);
      return [...work.node].flatMap((id): Update[] => {
        const node = tx.get('node', id);
        if (node === undefined) return this.#settled('node', id);
        const networks = nodeNetworks(node, tx, this.#ledger, ingress);
        if (isNodeAllocated(node, networks, this.#ledger)) return this.#settled('node', id);
        return this.#planned('node', node, () => ({ ...node, attachments: allocateNodeAttachments(node, networks, this.#ledger) }));
      });
    });
    await this.#write(updates, work.node);
  }

  /** Nothing (more) to allocate for the object. */
  #settled(kind: HolderKind, id: string): [] {
    this.#waiting[kind].delete(id);
    this.#reasons.delete(holderKey({ kind, id }));
    return [];
  }

  /**
   * Runs `allocate` for the object and returns the update to write. If it throws, whatever it took goes
   * back (the object is synced to its record again), the object waits for a retry with the reason
   * kept, and for a task the error is rethrown for its status.
   */
  #planned<K extends HolderKind>(kind: K, object: ObjectTypes[K], allocate: () => ObjectTypes[K]): Update[] {
    try {
      const updated = allocate();
      this.#settled(kind, object.id);
      return [{ kind, object: updated } as Update];
    } catch (err) {
      const error = this.#explained(toShoalError(err));
      this.#syncRecords([{ kind, id: object.id, object } as StoredRecord], new Set());
      this.#waiting[kind].add(object.id);
      const key = holderKey({ kind, id: object.id });
      // Logged once per reason: a waiting object is tried again each time anything is freed.
      if (this.#reasons.get(key) !== error.message) {
        this.#log.warn({ [`${kind}Id`]: object.id, err: error }, `could not allocate ${kind} ${object.id}; it waits until something is freed`);
      }
      this.#reasons.set(key, error.message);
      if (kind === 'task') throw error;
      return [];
    }
  }

  /** Adds to an error about a network without a subnet why that network could not get one, if known. */
  #explained(error: ShoalError): ShoalError {
    const networkId = error.details.networkId;
    const why = typeof networkId === 'string' ? this.#reasons.get(holderKey({ kind: 'network', id: networkId })) : undefined;
    return why === undefined ? error : new ShoalError(error.code, `${error.message}: ${why}`, { details: error.details, cause: error });
  }

  #retryWaiting(): void {
    for (const kind of HOLDER_KINDS) {
      for (const id of this.#waiting[kind]) this.#dirty[kind].add(id);
      this.#waiting[kind].clear();
    }
  }

  /**
   * Writes the updates in transactions of at most {@link MAX_CHANGES_PER_TRANSACTION} changes, each
   * fenced, and returns how many were written. After each transaction the ledger is synced to what
   * was written (giving back what the objects no longer name) or, if it failed, to what the store
   * holds (giving back what was taken for it), and its objects are planned again.
   *
   * @throws the store's error if the fence is stale.
   */
  async #write(updates: readonly Update[], nodesToReview: Set<string>): Promise<number> {
    let written = 0;
    for (const transaction of transactions(updates)) {
      try {
        await this.#state.commit({
          changes: transaction.map(({ kind, object }) => ({ action: 'update', kind, object }) as Change),
          preconditions: this.#fence === undefined ? [] : [this.#fence],
        });
      } catch (err) {
        if (this.#isFenceError(err)) throw err;
        this.#recoverFromFailedWrite(transaction, toShoalError(err), nodesToReview);
        continue;
      }
      const records = transaction.map(({ kind, object }) => ({ kind, id: object.id, object }) as StoredRecord);
      if (this.#syncRecords(records, nodesToReview)) this.#capacityGained = true;
      written += transaction.length;
    }
    return written;
  }

  #recoverFromFailedWrite(transaction: readonly Update[], error: ShoalError, nodesToReview: Set<string>): void {
    // CONFLICT or NOT_FOUND: another writer changed or removed one of the objects first. Anything else
    // (the store unreachable, a limit) is worth a pause before trying again.
    const raced = error.code === ErrorCode.Conflict || error.code === ErrorCode.NotFound;
    if (raced) {
      this.#log.debug({ err: error, changes: transaction.length }, 'an object changed under the allocator; planning again once the view shows it');
      const held = error.details['version'];
      if (held !== undefined && BigInt(String(held)) > this.#awaitedVersion) this.#awaitedVersion = BigInt(String(held));
    } else {
      this.#log.warn({ err: error, changes: transaction.length }, 'could not write allocations; trying again');
      this.#backOff = true;
    }
    this.#state.view((tx) =>
      this.#syncRecords(
        transaction.map(({ kind, object }) => ({ kind, id: object.id, object: tx.get(kind, object.id) }) as StoredRecord),
        nodesToReview,
      ),
    );
    for (const { kind, object } of transaction) this.#dirty[kind].add(object.id);
  }

  /**
   * Makes the ledger hold exactly what each record names (networks first, as the others' addresses
   * live in their address spaces) and returns whether that freed something or opened an address
   * space. A node whose live tasks' networks may have changed is added to `nodesToReview`. Records
   * naming what another object holds are reported, not fixed: the store is the truth, and the object
   * waits until it is allocated again.
   */
  #syncRecords(records: readonly StoredRecord[], nodesToReview: Set<string>): boolean {
    const outcomes: SyncOutcome[] = [];
    const holdings: Array<[Holder, Resource[]]> = [];
    for (const record of records) {
      switch (record.kind) {
        case 'network':
          outcomes.push(syncNetwork(this.#ledger, record.id, record.object));
          break;
        case 'service':
          holdings.push([record.object === undefined ? { kind: 'service', id: record.id, name: '' } : serviceHolder(record.object), record.object === undefined ? [] : serviceHoldings(record.object)]);
          break;
        case 'task':
          holdings.push([taskHolder(record), record.object === undefined ? [] : taskHoldings(record.object)]);
          this.#trackTaskNode(record.id, record.object, nodesToReview);
          break;
        case 'node':
          holdings.push([nodeHolder(record), record.object === undefined ? [] : nodeHoldings(record.object)]);
          break;
      }
    }
    outcomes.push(this.#ledger.sync(holdings));
    for (const conflict of outcomes.flatMap((outcome) => outcome.conflicts)) {
      this.#log.warn({ err: conflict }, 'the store records an allocation that cannot be reserved');
    }
    return outcomes.some((outcome) => outcome.capacityGained);
  }

  #trackTaskNode(taskId: string, task: Task | undefined, nodesToReview: Set<string>): void {
    const before = this.#taskNodes.get(taskId);
    const after = task !== undefined && isLive(task) && task.nodeId !== '' && task.networks.length > 0 ? task.nodeId : undefined;
    if (before === after) return;
    if (before !== undefined) nodesToReview.add(before);
    if (after === undefined) this.#taskNodes.delete(taskId);
    else {
      this.#taskNodes.set(taskId, after);
      nodesToReview.add(after);
    }
  }

  #isFenceError(err: unknown): boolean {
    return this.#fence !== undefined && isShoalError(err) && err.details.kind === 'lease' && err.details.id === this.#fence.id;
  }
}

/** The stored records of the objects named in `ids`, networks first. */
function recordsOf(tx: ReadTx, ids: IdSets): StoredRecord[] {
  return HOLDER_KINDS.flatMap((kind) => [...ids[kind]].map((id) => ({ kind, id, object: tx.get(kind, id) }) as StoredRecord));
}

/** Splits updates into transactions within the store's limits, in order. */
function* transactions(updates: readonly Update[]): Generator<Update[]> {
  let transaction: Update[] = [];
  let bytes = 0;
  for (const update of updates) {
    const size = encodeObject(update).length;
    if (transaction.length > 0 && (transaction.length === MAX_CHANGES_PER_TRANSACTION || bytes + size > MAX_TRANSACTION_BYTES)) {
      yield transaction;
      transaction = [];
      bytes = 0;
    }
    transaction.push(update);
    bytes += size;
  }
  if (transaction.length > 0) yield transaction;
}

/** The cluster's `defaultAddressPool` and `subnetSize`, as the subnet pool takes them (empty and 0 mean libnetwork's defaults). */
function subnetPoolOptions(cluster: Cluster | undefined): SubnetPoolOptions {
  return { pools: (cluster?.defaultAddressPool ?? []).map(parseCidr), subnetSize: cluster?.subnetSize };
}

/** Names the cluster's address pool settings with the defaults filled in, without parsing (it runs on every cluster commit). */
function addressPoolsKey(cluster: Cluster | undefined): string {
  const pools = cluster?.defaultAddressPool ?? [];
  return `${(pools.length > 0 ? pools : DEFAULT_ADDRESS_POOLS.map(formatCidr)).join(',')}/${cluster?.subnetSize || DEFAULT_SUBNET_SIZE}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
