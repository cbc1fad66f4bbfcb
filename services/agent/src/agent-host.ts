import { errors } from '@shoal/errors';
import type { Logger } from '@shoal/runtime';
import { Agent, type AgentTiming } from './agent.js';
import type { Executor } from './executor.js';
import { verifiedIdentity, type IdentityFile, type IdentityMaterial, type NodeIdentity, type NodeRoleName } from './identity.js';
import { joinCluster, type JoinOptions, type JoinRequest } from './join.js';

/** What `GET /state` answers: whether this host is in a swarm, and as which node. */
export type AgentState =
  | { readonly state: 'inactive' }
  | {
      readonly state: 'active';
      readonly nodeId: string;
      readonly role: NodeRoleName;
      readonly clusterId: string;
      readonly managers: readonly string[];
      /** Whether a session with a dispatcher is up. */
      readonly connected: boolean;
      /** Why the agent is not connected (the last session failure), or why it stopped. */
      readonly error?: string;
    };

/** The node this host became. */
export interface NodeRef {
  readonly nodeId: string;
  readonly role: NodeRoleName;
}

/** How a host's api sets the agent up (the control socket's operations). */
export interface AgentControl {
  state(): AgentState;
  join(request: JoinRequest): Promise<NodeRef>;
  setIdentity(material: IdentityMaterial): Promise<NodeRef>;
  leave(): Promise<void>;
}

export interface AgentHostOptions {
  readonly identityFile: IdentityFile;
  /** The executor for the node (its containers carry the node ID, so it is made once the ID is known). */
  readonly createExecutor: (nodeId: string) => Executor;
  readonly log: Logger;
  readonly timing?: Partial<AgentTiming>;
  /** Retries of an unreachable manager while joining. */
  readonly joinRetries?: Pick<JoinOptions, 'attempts' | 'retryDelayMs'>;
  /**
   * How long a join waits for the first session before answering that it goes on in the background
   * (moby's `swarmConnectTimeout`).
   * @default 20000
   */
  readonly joinTimeoutMs?: number;
}

/** moby's answers, which the docker CLI prints as they are. */
const ALREADY_IN_SWARM = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
const NOT_IN_SWARM = 'This node is not part of a swarm';
const JOIN_TIMEOUT =
  'Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.';

interface ActiveNode {
  readonly agent: Agent;
  /** Why the agent stopped on its own (the swarm dropped the node). */
  stopped?: string;
}

/**
 * This host's membership in a swarm: no identity (inactive), or a node identity kept in the data
 * directory and an {@link Agent} running for it. Joining, taking the identity the api made at
 * `docker swarm init`, and leaving happen one at a time. With an identity on disk, {@link start}
 * reconnects, and the agent adopts the containers its tasks left running.
 */
export class AgentHost implements AgentControl {
  readonly #options: AgentHostOptions;
  #active: ActiveNode | undefined;
  #busy: Promise<unknown> = Promise.resolve();

  constructor(options: AgentHostOptions) {
    this.#options = options;
  }

  /** Resumes the saved identity, if any. */
  async start(): Promise<void> {
    await this.#exclusive(async () => {
      const identity = await this.#options.identityFile.load();
      if (identity !== undefined) this.#run(identity);
    });
  }

  /** Stops the agent for a process shutdown: its containers keep running, for the next start to adopt. */
  async stop(): Promise<void> {
    await this.#exclusive(async () => {
      await this.#active?.agent.stop();
      this.#active = undefined;
    });
  }

  state(): AgentState {
    const active = this.#active;
    if (active === undefined) return { state: 'inactive' };
    const { agent } = active;
    const { nodeId, role, clusterId, managers } = agent.identity;
    const error = active.stopped ?? agent.lastError;
    return { state: 'active', nodeId, role, clusterId, managers, connected: agent.connected, ...(error === undefined ? {} : { error }) };
  }

  /**
   * Joins a swarm (`docker swarm join`): the certificate is issued and saved, the agent started, and
   * the answer waits for its first session. A session that does not come in time is UNAVAILABLE with
   * moby's message, the agent going on in the background.
   */
  join(request: JoinRequest): Promise<NodeRef> {
    return this.#exclusive(async () => {
      this.#requireInactive();
      const identity = await joinCluster(request, this.#options.joinRetries);
      await this.#options.identityFile.save(identity);
      const { agent } = this.#run(identity);
      await this.#untilRegistered(agent);
      return { nodeId: identity.nodeId, role: identity.role };
    });
  }

  /**
   * Takes the identity the api issued for this host at `docker swarm init` (it holds the new CA):
   * checked to chain to the CA and to match its key, saved, and the agent started.
   */
  setIdentity(material: IdentityMaterial): Promise<NodeRef> {
    return this.#exclusive(async () => {
      this.#requireInactive();
      const identity = verifiedIdentity(material);
      await this.#options.identityFile.save(identity);
      this.#run(identity);
      return { nodeId: identity.nodeId, role: identity.role };
    });
  }

  /** Leaves the swarm (`docker swarm leave`): the agent stops, every task's container and secrets are removed, and the identity is deleted. */
  leave(): Promise<void> {
    return this.#exclusive(async () => {
      const active = this.#active;
      if (active === undefined) throw errors.unavailable(NOT_IN_SWARM);
      await active.agent.leave();
      await this.#options.identityFile.remove();
      this.#active = undefined;
    });
  }

  #requireInactive(): void {
    if (this.#active !== undefined) throw errors.failedPrecondition(ALREADY_IN_SWARM);
  }

  #run(identity: NodeIdentity): ActiveNode {
    const { log, identityFile, createExecutor, timing } = this.#options;
    const agent = new Agent({
      identity,
      executor: createExecutor(identity.nodeId),
      log: log.child({ module: 'agent' }),
      saveIdentity: (renewed) => identityFile.save(renewed),
      timing,
    });
    const active: ActiveNode = { agent };
    this.#active = active;
    agent.start().catch((err: unknown) => {
      active.stopped = err instanceof Error ? err.message : String(err);
      log.error({ err, nodeId: identity.nodeId, state: 'stopped' }, 'the agent stopped');
    });
    return active;
  }

  async #untilRegistered(agent: Agent): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errors.unavailable(JOIN_TIMEOUT)), this.#options.joinTimeoutMs ?? 20_000);
    });
    try {
      // A swarm that drops the node before its first session (its agent rejects) fails the join with that error.
      await Promise.race([agent.registered, agent.done.then(() => Promise.reject(errors.unavailable('the agent stopped before its first session'))), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `operation` after the ones before it: joins, identities and leaves never interleave. */
  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#busy.then(operation);
    this.#busy = result.catch(() => undefined);
    return result;
  }
}
