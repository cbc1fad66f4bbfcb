import { errors } from '@shoal/errors';
import {
  Consistency,
  objectKindByName,
  StoreClient,
  StoreService,
  type Lease,
  type LeaseResponse,
  type ObjectKindName,
  type ObjectTypes,
  type Selector as WireSelector,
  type StoreObject,
  type StoreSnapshot,
  type Version,
} from '@shoal/proto';
import { createChannelCredentials, createClient, serverStreamCall, unaryCall, type CallOptions, type ClientTls } from '@shoal/rpc';
import { toStoreTransaction, type Change, type Commit, type Precondition, type WatchFilter, type WatchOptions } from '@shoal/store';
import { actionMaskOf, durationOfMs, fromWatchMessage, joinSnapshotParts } from './wire.js';

export interface StoreApiClientOptions {
  /** `host:port` of a raft-store replica. */
  address: string;
  /** The cluster CA and this manager's certificate and key: the Store API only serves `swarm-manager` certificates. */
  tls: ClientTls;
  /** The name the server's certificate must carry, when it differs from the host in `address`. */
  serverName?: string;
}

/** How fresh a read must be: `linearizable` (the default) reflects every earlier commit; `stale` is the replica's state as it is. */
export type ReadConsistency = 'linearizable' | 'stale';

export interface ReadOptions extends CallOptions {
  /** @default 'linearizable' */
  consistency?: ReadConsistency;
}

/** A transaction to commit, in the store's own terms (see `@shoal/store`'s `Change` and `Precondition`). */
export interface CommitInput {
  readonly changes: readonly Change[];
  readonly preconditions?: readonly Precondition[];
}

/** Which changes of one kind a remote watch wants: the store's `WatchFilter`, with wire selectors (all must select). */
export interface RemoteWatchFilter extends Omit<WatchFilter, 'selectors'> {
  readonly selectors?: readonly WireSelector[];
}

/** What a remote watch follows: the store's `WatchOptions` (filters, `fromVersion`), plus old objects on request. */
export interface RemoteWatchOptions extends Pick<WatchOptions, 'fromVersion'> {
  /** A change is delivered if any filter passes it. No filters: every change of every kind. */
  readonly filters?: readonly RemoteWatchFilter[];
  /** Deliver each updated object's previous value as the event's `old`. */
  readonly includeOld?: boolean;
}

/** A lease as its holder knows it. */
export interface LeaseHolding {
  readonly name: string;
  readonly holder: string;
  readonly epoch: bigint;
}

const consistencyOf = (options: ReadOptions): Consistency =>
  options.consistency === 'stale' ? Consistency.STALE : Consistency.LINEARIZABLE;

function objectOfKind<K extends ObjectKindName>(kind: K, stored: StoreObject | undefined): ObjectTypes[K] {
  const object = stored?.[kind] as ObjectTypes[K] | undefined;
  if (object === undefined) throw errors.internal(`the store answered without the ${kind} asked for`, { kind });
  return object;
}

/** The version a response carries; a Store API server always sets it. */
function versionIn(response: { version?: Version | undefined }, call: string): bigint {
  if (response.version === undefined) throw errors.internal(`the store answered a ${call} without its version`);
  return response.version.index;
}

function leaseOf(name: string, response: LeaseResponse): Lease {
  if (response.lease === undefined) throw errors.notFound(`lease ${JSON.stringify(name)} was deleted as soon as it was written`, { name });
  return response.lease;
}

/**
 * A typed client of the Store API. Every method rejects with the ShoalError the server raised (same
 * code, message and details) or, for transport failures, the closest one (UNAVAILABLE, …).
 */
export class StoreApiClient {
  readonly #client: StoreClient;

  constructor(options: StoreApiClientOptions) {
    const { address, tls, serverName } = options;
    this.#client = createClient({ address, credentials: createChannelCredentials(tls), serverName }, StoreClient);
  }

  /**
   * Commits the changes atomically if every precondition holds and resolves with the version they
   * committed at. Fails with CONFLICT naming the object when a version or lease epoch is stale,
   * NOT_FOUND, ALREADY_EXISTS or NAME_CONFLICT as the changes dictate, RESOURCE_EXHAUSTED over a
   * size limit; nothing is changed then.
   */
  async commit(write: CommitInput, options: CallOptions = {}): Promise<bigint> {
    // The wire form of changes is the raft entry's; the proposer's bookkeeping (request id, proposal
    // time) is the leader's to fill in, so the placeholders here are dropped.
    const asEntry = { changes: write.changes, preconditions: write.preconditions ?? [], proposedAt: new Date(0) };
    const { changes, preconditions } = toStoreTransaction(asEntry, 0n);
    return versionIn(await unaryCall(this.#client, StoreService.commit, { changes, preconditions }, options), 'commit');
  }

  /** The object of `kind` with `id`; NOT_FOUND if there is none. */
  async get<K extends ObjectKindName>(kind: K, id: string, options: ReadOptions = {}): Promise<ObjectTypes[K]> {
    const request = { kind: objectKindByName[kind], id, consistency: consistencyOf(options) };
    return objectOfKind(kind, (await unaryCall(this.#client, StoreService.get, request, options)).object);
  }

  /**
   * The objects of `kind` that every selector selects, and the version they were read at (watch from
   * it to follow later changes with no gap).
   */
  async list<K extends ObjectKindName>(
    kind: K,
    selectors: readonly WireSelector[] = [],
    options: ReadOptions = {},
  ): Promise<{ objects: ObjectTypes[K][]; version: bigint }> {
    const request = { kind: objectKindByName[kind], selectors: [...selectors], consistency: consistencyOf(options) };
    const response = await unaryCall(this.#client, StoreService.list, request, options);
    return { objects: response.objects.map((object) => objectOfKind(kind, object)), version: versionIn(response, 'list') };
  }

  /** Every object in the store at one version. */
  async snapshot(options: ReadOptions = {}): Promise<StoreSnapshot> {
    const parts: StoreSnapshot[] = [];
    for await (const part of serverStreamCall(this.#client, StoreService.snapshot, { consistency: consistencyOf(options) }, options)) {
      parts.push(part);
    }
    return joinSnapshotParts(parts);
  }

  /**
   * Follows committed transactions. The first commit has no events: it says the watch is in place
   * and carries the version it starts after. Then comes one commit per committed transaction with
   * matching changes, in order. Stop with `break` or `options.signal`. Fails with COMPACTED when
   * `fromVersion` is too old (resync from a snapshot), and RESOURCE_EXHAUSTED when this reader fell
   * too far behind (watch again from the last version read).
   */
  async *watch(what: RemoteWatchOptions = {}, options: CallOptions = {}): AsyncGenerator<Commit, void, undefined> {
    const request = {
      entries: (what.filters ?? []).map((filter) => ({
        kind: objectKindByName[filter.kind],
        actionMask: actionMaskOf(filter.actions),
        selectors: [...(filter.selectors ?? [])],
      })),
      resumeFrom: what.fromVersion === undefined ? undefined : { index: what.fromVersion },
      includeOldObject: what.includeOld ?? false,
    };
    for await (const message of serverStreamCall(this.#client, StoreService.watch, request, options)) yield fromWatchMessage(message);
  }

  /**
   * Takes the lease `name` for `holder` for `ttlMs` (or renews it if `holder` already has it) and
   * resolves with it; fence writes with its `epoch`. Fails with FAILED_PRECONDITION, naming the
   * holder and the expiry, while another holder has it.
   */
  async acquireLease(name: string, holder: string, ttlMs: number, options: CallOptions = {}): Promise<Lease> {
    return leaseOf(name, await unaryCall(this.#client, StoreService.acquireLease, { name, holder, ttl: durationOfMs(ttlMs) }, options));
  }

  /** Extends a held lease to `ttlMs` from now. Fails with CONFLICT if it lapsed or changed hands. */
  async renewLease(lease: LeaseHolding, ttlMs: number, options: CallOptions = {}): Promise<Lease> {
    const request = { name: lease.name, holder: lease.holder, epoch: lease.epoch, ttl: durationOfMs(ttlMs) };
    return leaseOf(lease.name, await unaryCall(this.#client, StoreService.renewLease, request, options));
  }

  /** Gives a held lease up so a standby can take it at once. Fails with CONFLICT if it changed hands. */
  async releaseLease(lease: LeaseHolding, options: CallOptions = {}): Promise<Lease> {
    const request = { name: lease.name, holder: lease.holder, epoch: lease.epoch };
    return leaseOf(lease.name, await unaryCall(this.#client, StoreService.releaseLease, request, options));
  }

  /** Closes the client's channel; stop open watches first. */
  close(): void {
    this.#client.close();
  }
}

/** Creates a {@link StoreApiClient}. */
export function createStoreClient(options: StoreApiClientOptions): StoreApiClient {
  return new StoreApiClient(options);
}
