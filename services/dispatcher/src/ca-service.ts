import { ErrorCode, errors, ShoalError } from '@shoal/errors';
import { MANAGER_ROLE, WORKER_ROLE, nodeCertificateSubject, readCertificateRequest, type CertificateAuthority } from '@shoal/pki';
import {
  CAService,
  IssuanceStatus_State,
  newId,
  Node,
  NodeCAService,
  NodeRole,
  NodeSpec_Membership,
  NodeStatus_State,
  type CAServer,
  type Certificate,
  type Cluster,
  type GetUnlockKeyResponse,
  type IssueNodeCertificateRequest,
  type IssueNodeCertificateResponse,
  type NodeCAServer,
  type NodeCertificateStatusRequest,
  type NodeCertificateStatusResponse,
} from '@shoal/proto';
import { clusterUnlockKey } from '@shoal/raft-storage';
import { wrapUnary, type CallWithPeer, type RpcServer } from '@shoal/rpc';
import type { Logger } from '@shoal/runtime';
import type { Precondition } from '@shoal/store';
import type { ClusterState } from '@shoal/store-client';
import { nodeCertificateValidityMs } from './cluster-settings.js';
import { roleOfJoinToken } from './join-tokens.js';
import { NODE_ROLES, requireClusterPeer } from './peer.js';
import type { StatusBatcher } from './status-batcher.js';

/** What the CA services read, sign with and write through. */
export interface CaServicesOptions {
  readonly state: ClusterState;
  readonly clusterId: string;
  /** The cluster's root CA, loaded with its key. */
  readonly ca: CertificateAuthority;
  /** Node writes go through it, so a renewal and a status write of the same node do not conflict. */
  readonly batcher: StatusBatcher;
  /** Carried by the write that creates a joining node. */
  readonly fence?: Precondition;
  readonly log: Logger;
}

/**
 * Registers swarmkit's CA services on `server`: `CA` (the root certificate for anyone, the unlock key
 * for managers) and `NodeCA` (join with a token, renewal with the node's certificate, certificate
 * status). Shoal signs at once, so a certificate is ISSUED by the time the call returns.
 */
export function addCaServices(server: RpcServer, options: CaServicesOptions): void {
  const authority = new NodeCertificateAuthority(options);
  const { log } = options;
  const ca: CAServer = {
    getRootCaCertificate: wrapUnary(log, () => ({ certificate: Buffer.from(authority.cluster().rootCa?.caCert ?? []) })),
    getUnlockKey: wrapUnary(log, (_request, call) => authority.unlockKey(call)),
  };
  const nodeCa: NodeCAServer = {
    issueNodeCertificate: wrapUnary(log, (request: IssueNodeCertificateRequest, call) =>
      request.token === '' ? authority.renew(request, call) : authority.join(request),
    ),
    nodeCertificateStatus: wrapUnary(log, (request: NodeCertificateStatusRequest) => authority.certificateStatus(request.nodeId)),
  };
  server.addService(CAService, ca);
  server.addService(NodeCAService, nodeCa);
}

class NodeCertificateAuthority {
  readonly #options: CaServicesOptions;

  constructor(options: CaServicesOptions) {
    this.#options = options;
  }

  cluster(): Cluster {
    const { state, clusterId } = this.#options;
    const cluster = state.view((tx) => tx.get('cluster', clusterId));
    if (cluster === undefined) throw errors.unavailable('this swarm has been removed; the dispatcher is stopping', { clusterId });
    return cluster;
  }

  /** A join: creates the node with the role the token grants and a certificate for it, in one write. */
  async join(request: IssueNodeCertificateRequest): Promise<IssueNodeCertificateResponse> {
    const cluster = this.cluster();
    const role = roleOfJoinToken(cluster, request.token);
    const csrPem = request.csr.toString('utf8');
    if (readCertificateRequest(csrPem).cn !== undefined) throw errors.invalidArgument('a joining node cannot choose its node ID');
    const nodeId = newId();
    const node = Node.fromPartial({
      id: nodeId,
      spec: { desiredRole: role, membership: NodeSpec_Membership.ACCEPTED, availability: request.availability },
      role,
      status: { state: NodeStatus_State.UNKNOWN },
      certificate: this.#sign(csrPem, request.csr, nodeId, role, cluster),
    });
    const { state, fence, log } = this.#options;
    await state.commit({ changes: [{ action: 'create', kind: 'node', object: node }], preconditions: fence === undefined ? [] : [fence] });
    log.info({ nodeId, role: roleName(role) }, 'node joined');
    return { nodeId, nodeMembership: NodeSpec_Membership.ACCEPTED };
  }

  /**
   * A renewal by a node presenting its certificate: a new certificate for the same node ID with the
   * role the node has now (which is how a promotion or demotion reaches the node's certificate).
   */
  async renew(request: IssueNodeCertificateRequest, call: CallWithPeer): Promise<IssueNodeCertificateResponse> {
    const cluster = this.cluster();
    const peer = requireClusterPeer(call, cluster.id, NODE_ROLES);
    const csrPem = request.csr.toString('utf8');
    const { cn } = readCertificateRequest(csrPem);
    if (cn !== undefined && cn !== peer.cn) {
      throw new ShoalError(ErrorCode.PermissionDenied, 'a node may only renew its own certificate', { details: { nodeId: peer.cn, requested: cn } });
    }
    const notFound = () => errors.notFound(`node ${peer.cn} not found when attempting to renew certificate`, { nodeId: peer.cn });
    if (this.#options.state.view((tx) => tx.get('node', peer.cn)) === undefined) throw notFound();
    let renewed: Node | undefined;
    await this.#options.batcher.update('node', peer.cn, (node) => {
      // Signed when written, so the certificate carries the role the node has in the store.
      renewed = { ...node, certificate: this.#sign(csrPem, request.csr, node.id, node.role, cluster) };
      return renewed;
    });
    if (renewed === undefined) throw notFound();
    this.#options.log.info({ nodeId: peer.cn, role: roleName(renewed.role) }, 'node certificate renewed');
    return { nodeId: peer.cn, nodeMembership: renewed.spec?.membership ?? NodeSpec_Membership.ACCEPTED };
  }

  certificateStatus(nodeId: string): NodeCertificateStatusResponse {
    const node = this.#options.state.view((tx) => tx.get('node', nodeId));
    if (node === undefined) throw errors.notFound(`node ${nodeId} not found`, { nodeId });
    return { status: node.certificate?.status, certificate: node.certificate };
  }

  /** The key that unlocks autolocked managers (empty when autolock is off), for managers of this swarm only. */
  unlockKey(call: CallWithPeer): GetUnlockKeyResponse {
    const cluster = this.cluster();
    requireClusterPeer(call, cluster.id, [MANAGER_ROLE]);
    return { unlockKey: Buffer.from(clusterUnlockKey(cluster) ?? '', 'utf8'), version: cluster.meta?.version };
  }

  #sign(csrPem: string, csr: Buffer, nodeId: string, role: NodeRole, cluster: Cluster): Certificate {
    const certPem = this.#options.ca.signRequest(csrPem, nodeCertificateSubject(nodeId, roleName(role), cluster.id), {
      validityMs: nodeCertificateValidityMs(cluster),
    });
    return { role, csr, status: { state: IssuanceStatus_State.ISSUED, err: '' }, certificate: Buffer.from(certPem, 'utf8'), cn: nodeId };
  }
}

/** The certificate OU of a node role. */
function roleName(role: NodeRole): typeof MANAGER_ROLE | typeof WORKER_ROLE {
  return role === NodeRole.MANAGER ? MANAGER_ROLE : WORKER_ROLE;
}
