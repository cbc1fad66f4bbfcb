import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError } from '@shoal/errors';

/** PEM text, as read from a file or produced by the cluster CA. */
export type Pem = string | Buffer;

/**
 * A server's TLS material. With `requireClientCert`, a client must present a certificate signed by `ca`
 * (mutual TLS); every Shoal service does, except the endpoint where a joining node, which has no
 * certificate yet, asks for one. That one sets `requestClientCert`: the server asks for a certificate
 * and still serves callers without one; a certificate that does not chain to `ca` counts as none
 * (grpc-js shows a handler only verified peers), so {@link peerIdentity} is UNAUTHENTICATED for both.
 */
export interface ServerTls {
  ca: Pem;
  cert: Pem;
  key: Pem;
  requireClientCert: boolean;
  requestClientCert?: boolean;
}

/**
 * Fixed TLS material in the shape grpc-js's certificate-provider credentials take. Listeners hear
 * from it on the next microtask: grpc-js registers the server's watcher only after subscribing, so a
 * synchronous answer would reach nobody and the server would drop every connection.
 */
class StaticCertificateProvider implements grpc.experimental.CertificateProvider {
  constructor(
    private readonly caCertificate: Buffer,
    private readonly certificate: Buffer,
    private readonly privateKey: Buffer,
  ) {}

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    queueMicrotask(() => listener({ caCertificate: this.caCertificate }));
  }

  removeCaCertificateListener(): void {}

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    queueMicrotask(() => listener({ certificate: this.certificate, privateKey: this.privateKey }));
  }

  removeIdentityCertificateListener(): void {}
}

/**
 * A client's TLS material: the CA that must have signed the server's certificate, and the client's own
 * certificate and key for mutual TLS (absent only for a node that has not joined yet).
 */
export interface ClientTls {
  ca: Pem;
  cert?: Pem;
  key?: Pem;
}

const toBuffer = (pem: Pem): Buffer => (typeof pem === 'string' ? Buffer.from(pem, 'utf8') : pem);

/** Server credentials for `tls`; `'insecure'` is plaintext, for tests and a host's local socket only. */
export function createServerCredentials(tls: ServerTls | 'insecure'): grpc.ServerCredentials {
  if (tls === 'insecure') return grpc.ServerCredentials.createInsecure();
  if (!tls.requireClientCert && tls.requestClientCert === true) {
    // createSsl either demands a client certificate or never asks for one; only a certificate
    // provider can ask without demanding.
    const provider = new StaticCertificateProvider(toBuffer(tls.ca), toBuffer(tls.cert), toBuffer(tls.key));
    return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
  }
  return grpc.ServerCredentials.createSsl(toBuffer(tls.ca), [{ cert_chain: toBuffer(tls.cert), private_key: toBuffer(tls.key) }], tls.requireClientCert);
}

/** Channel credentials for `tls`; `'insecure'` is plaintext, for tests and a host's local socket only. */
export function createChannelCredentials(tls: ClientTls | 'insecure'): grpc.ChannelCredentials {
  if (tls === 'insecure') return grpc.credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ShoalError(ErrorCode.InvalidArgument, 'a client certificate needs its key, and a key its certificate');
  }
  return grpc.credentials.createSsl(toBuffer(tls.ca), tls.key === undefined ? null : toBuffer(tls.key), tls.cert === undefined ? null : toBuffer(tls.cert));
}

/**
 * Who is calling, from the subject of the client certificate: as in swarmkit, CN is the node ID, OU the
 * role (`swarm-manager` or `swarm-worker`) and O the cluster ID.
 */
export interface PeerIdentity {
  cn: string;
  ou: string;
  o: string;
}

/** The part of a server call that carries the TLS peer; every kind of grpc-js server call has it. */
export type CallWithPeer = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>;

/**
 * The verified identity of the client of `call`. Throws UNAUTHENTICATED when the connection carries no
 * client certificate (a plaintext server, or one that does not require client certificates).
 */
export function peerIdentity(call: CallWithPeer): PeerIdentity {
  const subject = call.getAuthContext().sslPeerCertificate?.subject;
  if (subject === undefined) throw new ShoalError(ErrorCode.Unauthenticated, 'the caller presented no client certificate');
  return { cn: firstValue(subject.CN), ou: firstValue(subject.OU), o: firstValue(subject.O) };
}

/**
 * The identity of the client of `call`, provided its role (OU) is one of `roles`; otherwise throws
 * PERMISSION_DENIED naming the role it has. This is swarmkit's per-RPC `tls_authorization`.
 */
export function requirePeerRole(call: CallWithPeer, roles: readonly string[]): PeerIdentity {
  const peer = peerIdentity(call);
  if (!roles.includes(peer.ou)) {
    throw new ShoalError(ErrorCode.PermissionDenied, `role ${peer.ou || '(none)'} may not call this; allowed: ${roles.join(', ')}`, {
      details: { nodeId: peer.cn, role: peer.ou },
    });
  }
  return peer;
}

/** Node reports a subject attribute given several times as an array, despite its typings. */
function firstValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}
