import { setTimeout as sleep } from 'node:timers/promises';
import { toShoalError } from '@shoal/errors';
import { NodeRole, type Node } from '@shoal/proto';
import { untilAborted, type Logger } from '@shoal/runtime';
import type { Precondition } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';

/** How long a role change that could not be written waits before it is tried again. */
const RETRY_MS = 1_000;

/** What a {@link RoleManager} reads and writes with. */
export interface RoleManagerOptions {
  readonly state: ClusterState;
  /** The `dispatcher-role-manager` lease: one dispatcher reconciles roles at a time. */
  readonly fence?: Precondition;
  readonly log: Logger;
}

/**
 * swarmkit's role manager, simplified: a node whose `spec.desiredRole` (what `docker node
 * promote/demote` set) differs from its `role` gets `role = desiredRole`, and a demoted node loses
 * its `managerStatus`. The node's agent sees its new role in its next SessionMessage and renews its
 * certificate, which the CA then issues with the new OU. Raft membership is not touched here: the
 * raft-store manages its own members.
 */
export class RoleManager {
  readonly #options: RoleManagerOptions;
  readonly #writing = new Set<string>();
  /** Nodes that changed while a write for them was under way, to look at again once it ends. */
  readonly #stale = new Set<string>();

  constructor(options: RoleManagerOptions) {
    this.#options = options;
  }

  /** Reconciles every node now and each changed node from then on, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { state } = this.#options;
    const unsubscribe = state.subscribe((commit) => {
      const changed = commit.events.length === 0 ? state.view((tx) => tx.list('node')) : commit.events.flatMap((event) => (event.kind === 'node' && event.action !== 'delete' ? [event.object] : []));
      for (const node of changed) this.#reconcile(node.id, signal);
    });
    try {
      for (const node of state.view((tx) => tx.list('node'))) this.#reconcile(node.id, signal);
      await untilAborted(signal);
    } finally {
      unsubscribe();
    }
  }

  #reconcile(nodeId: string, signal: AbortSignal): void {
    if (signal.aborted) return;
    if (this.#writing.has(nodeId)) {
      this.#stale.add(nodeId);
      return;
    }
    const node = this.#options.state.view((tx) => tx.get('node', nodeId));
    const desiredRole = node?.spec?.desiredRole;
    if (node === undefined || desiredRole === undefined || desiredRole === node.role) return;
    this.#writing.add(nodeId);
    void this.#write(withRole(node, desiredRole), signal).finally(() => {
      this.#writing.delete(nodeId);
      if (this.#stale.delete(nodeId)) this.#reconcile(nodeId, signal);
    });
  }

  async #write(node: Node, signal: AbortSignal): Promise<void> {
    const { state, fence, log } = this.#options;
    try {
      await state.commit({ changes: [{ action: 'update', kind: 'node', object: node }], preconditions: fence === undefined ? [] : [fence] });
      log.info({ nodeId: node.id, role: NodeRole[node.role] }, 'node role changed');
    } catch (err) {
      // A newer version of the node, the store out of reach, a lost lease: look again after a pause.
      log.debug({ nodeId: node.id, err: toShoalError(err).message }, 'could not change the node role yet');
      await sleep(RETRY_MS, undefined, { signal }).catch(() => undefined);
      this.#stale.add(node.id);
    }
  }
}

function withRole(node: Node, role: NodeRole): Node {
  return role === NodeRole.MANAGER ? { ...node, role } : { ...node, role, managerStatus: undefined };
}
