import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, errors, hasCode, type ShoalError } from '@shoal/errors';
import { MANAGER_SERVER_NAME, createCertificateRequest } from '@shoal/pki';
import { CAService, IssuanceStatus_State, NodeCAService, NodeSpec_Availability } from '@shoal/proto';
import { createChannelCredentials, createClient, unaryCall } from '@shoal/rpc';

/** How long one CA call may take (swarmkit's 5 s RPC timeout); status polls may wait on the server a while longer. */
const CALL_DEADLINE_MS = 5_000;
const STATUS_POLL_DEADLINE_MS = 15_000;
/** Pause between status polls the server answered PENDING, so a server that does not wait cannot be spun on. */
const STATUS_POLL_PAUSE_MS = 200;

/** TLS material to reach a manager with: the CA to check it against, and this node's certificate when it has one. */
export interface ManagerTls {
  readonly caCertPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

/** A client for a manager at `address`, verified as `swarm-manager` (whatever address it is dialled at) against `tls.caCertPem`. */
export function managerClient(address: string, tls: ManagerTls): grpc.Client {
  return createClient({
    address,
    credentials: createChannelCredentials({ ca: tls.caCertPem, cert: tls.certPem, key: tls.keyPem }),
    serverName: MANAGER_SERVER_NAME,
  });
}

/**
 * The root CA certificate the manager at `address` presents, fetched WITHOUT verifying the manager:
 * a joining node does not trust anything yet. This is safe only because the caller checks the answer
 * against the CA digest in its join token before trusting it or sending anything (swarmkit's
 * `GetRemoteCA`); every other call verifies the manager against that CA.
 */
export async function fetchRootCaUnverified(address: string, signal: AbortSignal): Promise<string> {
  const client = createClient({
    address,
    credentials: grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false }),
    // Verified or not, the TLS server name is the manager's role name: an IP address is no valid one.
    serverName: MANAGER_SERVER_NAME,
  });
  try {
    const response = await unaryCall(client, CAService.getRootCaCertificate, {}, { deadlineMs: CALL_DEADLINE_MS, signal });
    return response.certificate.toString('utf8');
  } finally {
    client.close();
  }
}

/** What a node asks the CA for: a join (with a token) or a renewal (without, authenticated by its certificate). */
export interface CertificateRequest {
  /** The join token; absent for a renewal. */
  readonly token?: string;
  /** The node's own ID, named in the CSR of a renewal; a joiner does not know its ID yet. */
  readonly nodeId?: string;
  readonly availability?: NodeSpec_Availability;
}

/** A certificate the CA issued, with the fresh key it was issued for. */
export interface IssuedNodeCertificate {
  readonly nodeId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Asks the manager behind `client` for a node certificate (swarmkit's `GetRemoteSignedCertificate`):
 * a fresh key and CSR go with `IssueNodeCertificate`, then `NodeCertificateStatus` is polled until the
 * certificate is ISSUED. Manager errors keep their code and message; a FAILED issuance is
 * FAILED_PRECONDITION with the manager's reason.
 */
export async function requestNodeCertificate(client: grpc.Client, request: CertificateRequest, signal: AbortSignal): Promise<IssuedNodeCertificate> {
  const { csrPem, keyPem } = createCertificateRequest(request.nodeId === undefined ? {} : { cn: request.nodeId });
  const { nodeId } = await unaryCall(
    client,
    NodeCAService.issueNodeCertificate,
    { role: 0, csr: Buffer.from(csrPem, 'utf8'), token: request.token ?? '', availability: request.availability ?? NodeSpec_Availability.ACTIVE },
    { deadlineMs: CALL_DEADLINE_MS, signal },
  );
  for (;;) {
    const response = await unaryCall(client, NodeCAService.nodeCertificateStatus, { nodeId }, { deadlineMs: STATUS_POLL_DEADLINE_MS, signal });
    const state = response.status?.state ?? IssuanceStatus_State.UNKNOWN;
    if (state === IssuanceStatus_State.ISSUED) {
      const certificate = response.certificate?.certificate;
      if (certificate === undefined || certificate.length === 0) throw errors.internal('the manager reported the certificate issued but sent none', { nodeId });
      return { nodeId, certPem: certificate.toString('utf8'), keyPem };
    }
    if (state === IssuanceStatus_State.FAILED) {
      throw errors.failedPrecondition(`the manager did not issue the certificate: ${response.status?.err || 'no reason given'}`, { nodeId });
    }
    await sleep(STATUS_POLL_PAUSE_MS, undefined, { signal });
  }
}

/** Whether `err` says the manager could not be reached (as opposed to an answer from it). */
export function isUnreachable(err: unknown): err is ShoalError {
  return hasCode(err, ErrorCode.Unavailable) || hasCode(err, ErrorCode.DeadlineExceeded);
}
