import { createHash } from 'node:crypto';
import { NodeRole, SessionMessage, type Node, type WeightedPeer } from '@shoal/proto';
import { byRole, versionOf, type ReadTx } from '@shoal/store';
import type { Session } from './sessions.js';

/** swarmkit's `remotes.DefaultObservationWeight`, the weight every manager is announced with. */
const MANAGER_WEIGHT = 10n;

/** What every node's session messages share: where the managers are, the cluster's keys and root CA. */
export interface ClusterBroadcast {
  readonly content: Pick<SessionMessage, 'managers' | 'networkBootstrapKeys' | 'rootCa'>;
  /** Equal for equal content, so a change is noticed without comparing field by field. */
  readonly fingerprint: string;
}

/** The managers (by their `managerStatus.addr`) and the cluster's keys and root CA, as the store has them. */
export function clusterBroadcast(tx: ReadTx, clusterId: string): ClusterBroadcast {
  const managers = tx
    .find('node', byRole(NodeRole.MANAGER))
    .filter((node) => (node.managerStatus?.addr ?? '') !== '')
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((node): WeightedPeer => ({ peer: { nodeId: node.id, addr: node.managerStatus!.addr }, weight: MANAGER_WEIGHT }));
  const cluster = tx.get('cluster', clusterId);
  const content = { managers, networkBootstrapKeys: cluster?.networkBootstrapKeys ?? [], rootCa: Buffer.from(cluster?.rootCa?.caCert ?? []) };
  const encoded = SessionMessage.encode({ sessionId: '', node: undefined, ...content }).finish();
  return { content, fingerprint: createHash('sha256').update(encoded).digest('hex') };
}

/**
 * The SessionMessages of one session: the first once the node's registration is in the store, then
 * one whenever the node's object, the manager list or the root CA (or network keys) change.
 */
export class SessionFeed {
  readonly session: Session;
  readonly #send: (message: SessionMessage) => void;
  #sentNodeVersion: bigint | undefined;
  #sentFingerprint: string | undefined;

  constructor(session: Session, send: (message: SessionMessage) => void) {
    this.session = session;
    this.#send = send;
  }

  /** Sends a message unless the last one already said all this. */
  update(node: Node, broadcast: ClusterBroadcast): void {
    const nodeVersion = versionOf(node);
    if (nodeVersion === this.#sentNodeVersion && broadcast.fingerprint === this.#sentFingerprint) return;
    this.#sentNodeVersion = nodeVersion;
    this.#sentFingerprint = broadcast.fingerprint;
    this.#send({ sessionId: this.session.id, node, ...broadcast.content });
  }
}
