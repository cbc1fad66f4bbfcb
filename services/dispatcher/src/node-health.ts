import { setTimeout as sleep } from 'node:timers/promises';
import { NodeStatus_State, type Node } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import { isLeaseHeld, type ClusterState } from '@shoal/store-client';
import { heartbeatPeriodMs } from './cluster-settings.js';
import type { SessionRegistry, Session } from './sessions.js';
import type { StatusBatcher } from './status-batcher.js';

/** swarmkit's message for a node that missed its heartbeats. */
export const HEARTBEAT_FAILURE = 'heartbeat failure';
/** swarmkit's message for a node whose dispatcher went away (`markNodesUnknown`). */
export const UNKNOWN_AFTER_DISPATCHER_CHANGE = 'Node moved to "unknown" state due to leadership change in cluster';
/** A node's lapse of 3 heartbeat periods makes it DOWN (swarmkit's `GracePeriodMultiplier`). */
export const DOWN_AFTER_PERIODS = 3;
/** An UNKNOWN node nobody holds a session for gets twice as long (swarmkit's `gracePeriodMultiplierUnknown`). */
const UNKNOWN_DOWN_AFTER_PERIODS = 6;
/** Every dispatcher instance holds the lease `dispatcher.<instance>` while it serves. */
export const INSTANCE_LEASE_PREFIX = 'dispatcher.';

/** The parts of a serving dispatcher {@link NodeHealth} judges and writes with. */
export interface NodeHealthOptions {
  readonly state: ClusterState;
  readonly clusterId: string;
  /** This dispatcher instance, as `status.dispatcher` names it. */
  readonly instance: string;
  readonly sessions: SessionRegistry;
  readonly batcher: StatusBatcher;
  readonly log: Logger;
}

/**
 * Writes what a node's silence means: DOWN "heartbeat failure" when a session held here misses its
 * heartbeats, and, for nodes nobody watches any more (their dispatcher's lease lapsed or was
 * released, or this instance restarted and lost its sessions), UNKNOWN with swarmkit's failover
 * message, then DOWN if they have not registered anywhere within 6 heartbeat periods.
 *
 * Several dispatchers sweep the same nodes; every write is computed from the node as stored when the
 * batch is written and conditional on its version, so they conflict instead of flapping and the
 * node ends in one state.
 */
export class NodeHealth {
  readonly #options: NodeHealthOptions;
  /** When this instance first saw each UNKNOWN node without a dispatcher. */
  readonly #unownedSince = new Map<string, number>();

  constructor(options: NodeHealthOptions) {
    this.#options = options;
  }

  /** A session held here missed its heartbeats: the node is DOWN, unless it registered again or moved on. */
  sessionExpired(session: Session): void {
    const { instance, sessions, log } = this.#options;
    log.info({ nodeId: session.nodeId }, 'node missed its heartbeats');
    this.#write(session.nodeId, (node) => {
      const stillOurs = node.status?.dispatcher === instance && sessions.find(node.id) === undefined;
      return stillOurs && node.status?.state !== NodeStatus_State.DOWN ? withStatus(node, NodeStatus_State.DOWN, HEARTBEAT_FAILURE) : undefined;
    });
  }

  /** Sweeps the nodes once a heartbeat period until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.#sweep();
      this.#options.sessions.forgetOldRegistrations();
      await sleep(this.#periodMs(), undefined, { signal }).catch(() => undefined);
    }
  }

  /** Marks nodes nobody watches UNKNOWN, and DOWN those that stayed so for 6 periods. */
  #sweep(now = Date.now()): void {
    const nodes = this.#options.state.view((tx) => tx.list('node'));
    const liveInstances = this.#liveInstances(new Date(now));
    const downAfterMs = this.#periodMs() * UNKNOWN_DOWN_AFTER_PERIODS;
    const seen = new Set<string>();
    for (const node of nodes) {
      if (this.#isUnwatched(node, liveInstances)) {
        // Judged again when written: the node may have registered somewhere meanwhile.
        this.#write(node.id, (current) =>
          this.#isUnwatched(current, this.#liveInstances()) ? withStatus(current, NodeStatus_State.UNKNOWN, UNKNOWN_AFTER_DISPATCHER_CHANGE) : undefined,
        );
      }
      if (!isUnownedUnknown(node)) continue;
      seen.add(node.id);
      const since = this.#unownedSince.get(node.id) ?? now;
      this.#unownedSince.set(node.id, since);
      if (now - since >= downAfterMs) {
        this.#write(node.id, (current) => (isUnownedUnknown(current) ? withStatus(current, NodeStatus_State.DOWN, HEARTBEAT_FAILURE) : undefined));
      }
    }
    for (const nodeId of this.#unownedSince.keys()) if (!seen.has(nodeId)) this.#unownedSince.delete(nodeId);
  }

  /**
   * Whether the node counts as up (READY, DISCONNECTED) or waits for its dispatcher (UNKNOWN with one)
   * while no live dispatcher holds its session.
   */
  #isUnwatched(node: Node, liveInstances: ReadonlySet<string>): boolean {
    const state = node.status?.state ?? NodeStatus_State.UNKNOWN;
    const owner = node.status?.dispatcher ?? '';
    if (state === NodeStatus_State.DOWN) return false;
    if (owner === '') return state === NodeStatus_State.READY || state === NodeStatus_State.DISCONNECTED;
    if (owner === this.#options.instance) return this.#options.sessions.find(node.id) === undefined;
    return !liveInstances.has(owner);
  }

  /** The dispatcher instances whose lease is held and unexpired (by this host's clock). */
  #liveInstances(now = new Date()): Set<string> {
    const leases = this.#options.state.view((tx) => tx.list('lease'));
    return new Set(
      leases
        .filter((lease) => lease.name.startsWith(INSTANCE_LEASE_PREFIX) && isLeaseHeld(lease, now))
        .map((lease) => lease.name.slice(INSTANCE_LEASE_PREFIX.length)),
    );
  }

  #periodMs(): number {
    const { state, clusterId } = this.#options;
    return heartbeatPeriodMs(state.view((tx) => tx.get('cluster', clusterId)));
  }

  #write(nodeId: string, mutation: (node: Node) => Node | undefined): void {
    this.#options.batcher.update('node', nodeId, mutation).catch((err: unknown) => {
      this.#options.log.warn({ nodeId, err }, 'could not write the node status');
    });
  }
}

function isUnownedUnknown(node: Node): boolean {
  return (node.status?.state ?? NodeStatus_State.UNKNOWN) === NodeStatus_State.UNKNOWN && (node.status?.dispatcher ?? '') === '';
}

/** The node with a status no dispatcher watches any more: `state` and `message`, its last address kept. */
function withStatus(node: Node, state: NodeStatus_State, message: string): Node {
  return { ...node, status: { addr: '', ...node.status, state, message, dispatcher: '' } };
}
