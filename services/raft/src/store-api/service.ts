import { once } from 'node:events';
import { subjects } from '@shoal/bus';
import { MANAGER_ROLE } from '@shoal/pki';
import { ErrorCode, ShoalError, errors } from '@shoal/errors';
import {
  Consistency,
  objectKindName,
  toStoreObject,
  type AnyObject,
  type LeaseResponse,
  type ObjectKindName,
  type StoreServer,
  type WatchMessage,
  type WatchRequest,
} from '@shoal/proto';
import { requirePeerRole, wrapServerStream, wrapUnary, type CallWithPeer } from '@shoal/rpc';
import type { Logger } from '@shoal/runtime';
import type { ReadTx, Selector, Transaction, Watch, WatchFilter, WatchOptions, WriteTx } from '@shoal/store';
import type { Consensus } from './consensus.js';
import { acquireLease, releaseLease, renewLease } from './leases.js';
import { toStoreSelector } from './selectors.js';
import { prepareAtLeaderTime, prepareCommit } from './transactions.js';
import { actionsOfMask, snapshotParts, toWatchMessage } from '@shoal/store-client';

/** Where commit nudges go: a NATS connection (`BusConnection.nc`) fits. */
export interface NudgePublisher {
  publish(subject: string, payload: string): void;
}

/** Bounds on what one caller can make the Store API hold. */
export interface StoreApiLimits {
  /**
   * The longest TTL a lease may be acquired or renewed for, in milliseconds.
   * @default 300000 (5 minutes): a holder that dies keeps its standbys waiting at most this long
   */
  readonly maxLeaseTtlMs: number;
  /**
   * How many commits may wait for a watch client that is not reading before its watch ends with
   * RESOURCE_EXHAUSTED (it then resumes from the last version it read).
   * @default 20000, the store's own default per watch: twice the history a watch can resume from
   */
  readonly maxWatchBacklog: number;
}

/** The limits used where {@link StoreServiceDeps.limits} leaves one out. */
export const defaultStoreApiLimits: StoreApiLimits = { maxLeaseTtlMs: 300_000, maxWatchBacklog: 20_000 };

/** The certificate roles allowed to call the Store API: managers only, as worker hosts never reach the store. */
const STORE_API_ROLES: readonly string[] = [MANAGER_ROLE];

export interface StoreServiceDeps {
  consensus: Consensus;
  log: Logger;
  /** Receives a nudge (the version, in decimal) after every commit this service makes; best effort. */
  bus?: NudgePublisher;
  limits?: Partial<StoreApiLimits>;
  /**
   * Aborts when the service is being stopped. Open watches then end with UNAVAILABLE, so their
   * clients watch again elsewhere, instead of holding the server's shutdown for its whole grace period.
   */
  stopping?: AbortSignal;
}

function resolveLimits(overrides: Partial<StoreApiLimits> | undefined): StoreApiLimits {
  const limits = { ...defaultStoreApiLimits, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw errors.invalidArgument(`Store API limit ${name} must be a whole number of at least 1, not ${value}`, { [name]: value });
    }
  }
  return limits;
}

/** Aborts when the client of a unary call cancels it or goes away. */
function cancellationOf(call: Pick<NodeJS.EventEmitter, 'once'>): AbortSignal {
  const cancelled = new AbortController();
  call.once('cancelled', () => cancelled.abort(new ShoalError(ErrorCode.Cancelled, 'the client cancelled the call')));
  return cancelled.signal;
}

/** The objects of `kind` that every selector selects (all of them when there are none). */
function selectAll(tx: ReadTx, kind: ObjectKindName, selectors: readonly Selector[]): AnyObject[] {
  const [first, ...rest] = selectors;
  if (first === undefined) return tx.list(kind);
  const alsoSelected = rest.map((selector) => new Set(tx.find(kind, selector).map((object) => object.id)));
  return tx.find(kind, first).filter((object) => alsoSelected.every((ids) => ids.has(object.id)));
}

/** The part of a grpc-js server stream a watch or snapshot writes to. */
type StreamCall<M> = { write(message: M): boolean } & NodeJS.EventEmitter;
type WatchCall = StreamCall<WatchMessage>;

/** Writes one message to a stream, waiting while grpc-js's buffer is full; rejects if `signal` aborts meanwhile. */
async function send<M>(call: StreamCall<M>, message: M, signal: AbortSignal): Promise<void> {
  if (!call.write(message)) await once(call, 'drain', { signal });
}

/** The store watch a Watch request asks for. Throws INVALID_ARGUMENT for an unknown kind, action bit or a malformed selector. */
function watchOptionsOf(request: WatchRequest): WatchOptions {
  const filters = request.entries.map(
    (entry): WatchFilter => ({
      kind: objectKindName(entry.kind),
      actions: actionsOfMask(entry.actionMask),
      selectors: entry.selectors.map(toStoreSelector),
    }),
  );
  return { filters, fromVersion: request.resumeFrom?.index };
}

/**
 * Streams a watch: first an empty message at `startsAfter`, the version the watch starts after, then
 * one message per commit. Returns once the watch or `ended` ends it, and rethrows what the watch fails
 * with (RESOURCE_EXHAUSTED, COMPACTED); the watch is closed either way.
 */
async function streamCommits(watch: Watch, startsAfter: bigint, includeOldObjects: boolean, call: WatchCall, ended: AbortSignal): Promise<void> {
  try {
    await send(call, { events: [], version: { index: startsAfter } }, ended);
    for await (const committed of watch) await send(call, toWatchMessage(committed, includeOldObjects), ended);
  } catch (err) {
    // A send cut short by the client going away or by the shutdown ends the watch; it is no failure.
    if (!ended.aborted) throw err;
  } finally {
    watch.close();
  }
}

/**
 * The Store API's gRPC handlers over `deps.consensus`. Every call must come from a `swarm-manager`
 * certificate (PERMISSION_DENIED otherwise), so serve it only over mutual TLS, as
 * {@link storeApiComponent} does. Handlers throw ShoalErrors; `@shoal/rpc` turns them into statuses.
 *
 * - Commit checks the transaction against the local replica (`store.prepare`), so a bad or stale one
 *   is refused before anything is proposed, then proposes it and answers the version it committed at.
 * - Get, List and Snapshot wait for the read barrier unless the request asks for a STALE read.
 * - Watch sends an empty message at the version it starts after, then one message per committed
 *   transaction with matching changes; a client that stops reading holds at most
 *   `maxWatchBacklog` commits before its watch ends with RESOURCE_EXHAUSTED.
 * - Leases are ordinary transactions; see `leases.ts`.
 */
export function createStoreService(deps: StoreServiceDeps): StoreServer {
  const { consensus, log, bus, stopping } = deps;
  const { store } = consensus;
  const limits = resolveLimits(deps.limits);

  const unary = <Req, Res>(handler: (request: Req, call: CallWithPeer & NodeJS.EventEmitter) => Promise<Res>) =>
    wrapUnary<Req, Res>(log, (request, call) => {
      requirePeerRole(call, STORE_API_ROLES);
      return handler(request, call);
    });

  /** Waits for the read barrier unless the caller accepts a stale read. */
  const awaitConsistency = async (consistency: Consistency, call: NodeJS.EventEmitter): Promise<void> => {
    if (consistency === Consistency.STALE) return;
    if (consistency !== Consistency.LINEARIZABLE) throw errors.invalidArgument(`unknown read consistency ${consistency}`, { consistency });
    await consensus.readBarrier(cancellationOf(call));
  };

  const publishNudge = (version: bigint): void => {
    try {
      bus?.publish(subjects.storeCommit, version.toString());
    } catch (err) {
      log.warn({ err, version }, 'could not publish a commit nudge; watchers still get the commit from their watch');
    }
  };

  const commit = async (transaction: Transaction): Promise<bigint> => {
    const version = await consensus.propose(transaction);
    publishNudge(version);
    return version;
  };

  /** A lease call: one transaction from `write`, answered with the lease as stored once it has committed. */
  const leaseCall = <Req>(write: (tx: WriteTx, request: Req, now: Date) => string) =>
    unary<Req, LeaseResponse>(async (request) => {
      let leaseId = '';
      await commit(prepareAtLeaderTime(consensus, (tx, now) => (leaseId = write(tx, request, now))));
      return { lease: store.view((tx) => tx.get('lease', leaseId)) };
    });

  return {
    commit: unary(async (request) => ({ version: { index: await commit(prepareCommit(consensus, request)) } })),

    get: unary(async (request, call) => {
      const kind = objectKindName(request.kind);
      if (request.id === '') throw errors.invalidArgument(`a get must name the ${kind} by id`, { kind });
      await awaitConsistency(request.consistency, call);
      const object = store.view((tx) => tx.get(kind, request.id));
      if (object === undefined) throw errors.notFound(`${kind} ${request.id} does not exist`, { kind, id: request.id });
      return { object: toStoreObject(kind, object) };
    }),

    list: unary(async (request, call) => {
      const kind = objectKindName(request.kind);
      const selectors = request.selectors.map(toStoreSelector);
      await awaitConsistency(request.consistency, call);
      const { objects, version } = store.view((tx) => ({ objects: selectAll(tx, kind, selectors), version: tx.version }));
      return { objects: objects.map((object) => toStoreObject(kind, object)), version: { index: version } };
    }),

    snapshot: wrapServerStream(log, async (request, call, signal) => {
      requirePeerRole(call, STORE_API_ROLES);
      await awaitConsistency(request.consistency, call);
      for (const part of snapshotParts(store.snapshot())) await send(call, part, signal);
    }),

    watch: wrapServerStream(log, async (request, call, signal) => {
      requirePeerRole(call, STORE_API_ROLES);
      const ended = stopping === undefined ? signal : AbortSignal.any([signal, stopping]);
      const options = watchOptionsOf(request);
      const watch = store.watch({ ...options, signal: ended, maxQueuedCommits: limits.maxWatchBacklog });
      await streamCommits(watch, options.fromVersion ?? store.version, request.includeOldObject, call, ended);
      if (stopping?.aborted === true) {
        throw errors.unavailable('this store replica is shutting down; watch again, from the last version read, on another replica');
      }
    }),

    acquireLease: leaseCall((tx, request, now) => acquireLease(tx, request, now, limits.maxLeaseTtlMs)),
    renewLease: leaseCall((tx, request, now) => renewLease(tx, request, now, limits.maxLeaseTtlMs)),
    releaseLease: leaseCall(releaseLease),
  };
}
