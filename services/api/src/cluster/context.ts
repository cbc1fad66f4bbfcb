import type { AgentControlClient } from '@shoal/agent/control';
import type { BusConnection } from '@shoal/bus';
import { ErrorCode, errors, hasCode, toShoalError, type ShoalError } from '@shoal/errors';
import { NodeRole, type Cluster, type Node } from '@shoal/proto';
import type { Logger } from '@shoal/runtime';
import type { Change, Precondition, ReadTx } from '@shoal/store';
import type { StoreMirror } from '@shoal/store-client';
import type { SystemFacts } from '../convert/system.js';
import type { LocalNodeFile } from './local-node.js';

/** What the API knows about its own host, for `/info`, `/version` and the node it creates at `swarm init`. */
export interface HostFacts extends SystemFacts {
  /** The address other nodes reach this host at, when `swarm init` names none. */
  readonly advertiseAddr: string;
  /** The port of this host's dispatcher (the manager port other nodes join through). */
  readonly managerPort: number;
  /** The API's data directory. */
  readonly dataDir: string;
}

/**
 * This host's agent, through its local control socket: the API joins and leaves swarms through it
 * and, at `swarm init`, hands it the certificate of this host's node (the API holds the new CA then).
 */
export type AgentControl = Pick<AgentControlClient, 'state' | 'join' | 'identity' | 'leave'>;

/** Everything a route needs: the store (read model and writes) and this host. */
export interface ApiContext {
  /**
   * The read model, which also commits (through the Store API) and waits for its writes to show;
   * absent on a host that runs no manager services (`shoal up --worker`).
   */
  readonly cache: StoreMirror | undefined;
  /** This host's agent; absent when the API runs without one (then `swarm join` is unavailable). */
  readonly agent: AgentControl | undefined;
  readonly local: LocalNodeFile;
  readonly host: HostFacts;
  readonly log: Logger;
  /** Relays `docker swarm unlock` to the local raft replica. */
  readonly unlock: (unlockKey: string) => Promise<void>;
  /** NATS, which carries log streams; without it logs are unavailable. */
  readonly bus?: BusConnection;
}

export const NOT_A_MANAGER_MESSAGE =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const WORKER_MESSAGE =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
export const ALREADY_IN_SWARM_MESSAGE = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
export const NOT_IN_SWARM_MESSAGE = 'This node is not part of a swarm';

/** This host's standing in the swarm, as `Info.Swarm.LocalNodeState` and `ControlAvailable` report it. */
export type LocalSwarm =
  | { readonly state: 'inactive' }
  | { readonly state: 'locked' }
  /** This host's node is in the store this host reads: a manager, or a manager's node since demoted. */
  | { readonly state: 'active'; readonly cluster: Cluster; readonly node: Node; readonly manager: boolean; readonly cache: StoreMirror }
  /** This host's agent belongs to a swarm whose store this host cannot read: a worker. */
  | { readonly state: 'joined'; readonly nodeId: string; readonly managers: readonly string[] }
  /** This host's standing cannot be known now: its agent does not answer (it may be restarting). */
  | { readonly state: 'error'; readonly error: string };

/**
 * Where this host stands: from the store copy when this host's node is in it (a locked replica:
 * locked), else from the agent when it has joined a swarm, else inactive.
 */
export async function localSwarm(context: ApiContext): Promise<LocalSwarm> {
  const { cache, agent } = context;
  if (cache?.state.kind === 'locked') return { state: 'locked' };
  const nodeId = context.local.nodeId;
  if (cache !== undefined && nodeId !== undefined) {
    const local = await cache.read((tx) => localSwarmIn(tx, nodeId, cache));
    if (local.state !== 'inactive') return local;
  }
  if (agent === undefined) return { state: 'inactive' };
  let agentState: Awaited<ReturnType<AgentControl['state']>>;
  try {
    agentState = await agent.state();
  } catch (err) {
    // Docker's `info` reports a node it cannot account for as in error rather than failing itself.
    return { state: 'error', error: `this host's agent does not answer: ${toShoalError(err).message}` };
  }
  return agentState.state === 'active' ? { state: 'joined', nodeId: agentState.nodeId, managers: agentState.managers } : { state: 'inactive' };
}

function localSwarmIn(tx: ReadTx, nodeId: string, cache: StoreMirror): LocalSwarm {
  const cluster = tx.list('cluster')[0];
  const node = tx.get('node', nodeId);
  if (cluster === undefined || node === undefined) return { state: 'inactive' };
  // The role the node has (a raft member), not the one it is asked to take: a demotion takes effect
  // once the node has left raft, as in swarmkit.
  return { state: 'active', cluster, node, manager: node.role === NodeRole.MANAGER && node.managerStatus !== undefined, cache };
}

/** The cluster, this manager's node and the store copy; 503 with Docker's message on a host that is no manager. */
export async function requireManager(context: ApiContext): Promise<{ cluster: Cluster; node: Node; cache: StoreMirror }> {
  const local = await localSwarm(context);
  if (local.state === 'locked') throw errors.unavailable('Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.');
  if (local.state === 'inactive') throw errors.unavailable(NOT_A_MANAGER_MESSAGE);
  if (local.state === 'error') throw errors.unavailable(local.error);
  if (local.state === 'joined' || !local.manager) throw errors.unavailable(WORKER_MESSAGE);
  return local;
}

/** The store copy, on a host that has one; 503 (not a manager) on one that runs no manager services. */
export function storeOf(context: ApiContext): StoreMirror {
  if (context.cache === undefined) throw errors.unavailable(NOT_A_MANAGER_MESSAGE);
  return context.cache;
}

/** Commits a transaction and waits until the read model shows it, so the client's next read sees its write. */
export async function commit(context: ApiContext, changes: readonly Change[], preconditions: readonly Precondition[] = []): Promise<bigint> {
  return storeOf(context).commit({ changes, preconditions });
}

/**
 * Creates an object whose name must be unique, answering a taken name (the store's NAME_CONFLICT,
 * the one authority on it, also against a concurrent create) with the route's own Docker message.
 */
export async function createNamed(context: ApiContext, change: Change & { action: 'create' }, taken: () => ShoalError): Promise<bigint> {
  return commit(context, [change]).catch((err: unknown) => {
    if (hasCode(err, ErrorCode.NameConflict)) throw taken();
    throw err;
  });
}

/** Reads the store copy as a manager must: after checking this host is one. */
export async function managerRead<R>(context: ApiContext, read: (tx: ReadTx) => R): Promise<R> {
  const { cache } = await requireManager(context);
  return cache.read(read);
}
