import { X509Certificate } from 'node:crypto';
import { errors, isShoalError } from '@shoal/errors';
import { type Cidr, DEFAULT_ADDRESS_POOLS, DEFAULT_SUBNET_SIZE, formatCidr, parseCidr } from '@shoal/ipam';
import { parseJoinToken } from '@shoal/pki';
import { type CAConfig, type Cluster, type ClusterSpec, type Duration, ExternalCA_CAProtocol, type NodeSpec_Availability, type RaftConfig } from '@shoal/proto';
import { clusterUnlockKey } from '@shoal/raft-storage';
import { Decoder } from './decode.js';
import { type DockerAnnotations, type DockerDriver, annotationsToDocker, driverFromDocker, driverToDocker } from './network.js';
import { availabilityFromDocker, type DockerTLSInfo, tlsInfoToDocker } from './node.js';
import { type DockerMeta, dockerMeta, durationOfNanos, nanosOf } from './wire.js';

/*
 * The cluster object and the swarm-level request bodies as dockerd 20.10 handles them
 * (daemon/cluster/convert/swarm.go, daemon/cluster/swarm.go), with swarmkit's defaults and
 * validation (manager/controlapi/cluster.go) and dockerd's messages.
 */

/** The cluster object's only allowed name. */
export const DEFAULT_CLUSTER_NAME = 'default';
/** The VXLAN UDP port when `swarm init` names none. */
export const DEFAULT_DATA_PATH_PORT = 4789;
/** Port of a swarm address that names none (`docker swarm init --listen-addr eth0`). */
export const DEFAULT_SWARM_PORT = 2377;

const SECOND_NS = 1_000_000_000;
const HOUR_NS = 3600 * SECOND_NS;
/** swarmkit's defaults (manager/manager.go, manager/state/raft/raft.go, ca/certificates.go). */
const DEFAULT_TASK_HISTORY_RETENTION_LIMIT = 5n;
const DEFAULT_RAFT: Readonly<RaftConfig> = {
  snapshotInterval: 10_000n,
  keepOldSnapshots: 0n,
  logEntriesForSlowFollowers: 500n,
  heartbeatTick: 1,
  electionTick: 10,
};
const DEFAULT_HEARTBEAT_PERIOD_NS = 5 * SECOND_NS;
/** Swarm's node certificate lifetime, 90 days (2160h). */
const DEFAULT_NODE_CERT_EXPIRY_NS = 2160 * HOUR_NS;
/** swarmkit refuses shorter node certificate lifetimes (`ca.MinNodeCertExpiration`). */
const MIN_NODE_CERT_EXPIRY_NS = HOUR_NS;
/** The smallest subnet dockerd accepts: 8 addresses, 4 of which the load balancer and gateway use. */
const MAX_SUBNET_SIZE = 29;
/** dockerd allows the IANA registered-port range for the VXLAN port. */
const DATA_PATH_PORT_RANGE = { min: 1024, max: 49151 };

/** `GET /swarm` without the join tokens: also `Info.Swarm.Cluster`. */
export interface DockerClusterInfo extends DockerMeta {
  Spec: DockerSwarmSpec;
  TLSInfo: DockerTLSInfo;
  RootRotationInProgress: boolean;
  DefaultAddrPool: string[] | null;
  SubnetSize: number;
  DataPathPort: number;
}

/** `GET /swarm`. */
export interface DockerSwarm extends DockerClusterInfo {
  JoinTokens: { Worker: string; Manager: string };
}

export interface DockerSwarmSpec extends DockerAnnotations {
  Orchestration: { TaskHistoryRetentionLimit: number };
  Raft: {
    SnapshotInterval?: number;
    KeepOldSnapshots: number;
    LogEntriesForSlowFollowers?: number;
    ElectionTick: number;
    HeartbeatTick: number;
  };
  Dispatcher: { HeartbeatPeriod?: number };
  /** The signing CA's certificate and key are never shown (dockerd redacts them). */
  CAConfig: {
    NodeCertExpiry?: number;
    ExternalCAs?: { Protocol: string; URL: string; Options?: Record<string, string>; CACert: string }[];
    ForceRotate?: number;
  };
  TaskDefaults: { LogDriver?: DockerDriver };
  EncryptionConfig: { AutoLockManagers: boolean };
}

/** `POST /swarm/init`, read, with dockerd's defaults filled in. */
export interface SwarmInitRequest {
  /** `host:port` the manager listens on (default port 2377). */
  listenAddr: string;
  /** As written; empty means "choose one". */
  advertiseAddr: string;
  dataPathAddr: string;
  dataPathPort: number;
  forceNewCluster: boolean;
  /** swarmkit's defaults overlaid with every non-zero field of the request's spec. */
  spec: ClusterSpec;
  availability: NodeSpec_Availability;
  defaultAddrPool: string[];
  subnetSize: number;
}

/** `POST /swarm/join`, read. */
export interface SwarmJoinRequest {
  listenAddr: string;
  advertiseAddr: string;
  dataPathAddr: string;
  /** `host:port` of managers to try, at least one. */
  remoteAddrs: string[];
  /** A well-formed join token (checked against the cluster by the manager). */
  joinToken: string;
  availability: NodeSpec_Availability;
}

/** swarmkit's cluster spec for a new swarm. */
export function defaultClusterSpec(): ClusterSpec {
  return {
    annotations: { name: DEFAULT_CLUSTER_NAME, labels: {}, indices: [] },
    orchestration: { taskHistoryRetentionLimit: DEFAULT_TASK_HISTORY_RETENTION_LIMIT },
    raft: { ...DEFAULT_RAFT },
    dispatcher: { heartbeatPeriod: durationOfNanos(DEFAULT_HEARTBEAT_PERIOD_NS) },
    caConfig: {
      nodeCertExpiry: durationOfNanos(DEFAULT_NODE_CERT_EXPIRY_NS),
      externalCas: [],
      signingCaCert: Buffer.alloc(0),
      signingCaKey: Buffer.alloc(0),
      forceRotate: 0n,
    },
    taskDefaults: { logDriver: undefined },
    encryptionConfig: { autoLockManagers: false },
  };
}

/**
 * The body of `POST /swarm/update`: the full swarm spec from `GET /swarm` with the flagged fields
 * changed. As in dockerd, a zero or absent field takes its default (swarmkit treats zero as "use the
 * default"), so the stored spec is always complete. Errors are INVALID_ARGUMENT: a name other than
 * `default`, a certificate lifetime under an hour, a negative heartbeat period, an unknown external
 * CA protocol, an election tick not above the heartbeat tick.
 */
export function clusterSpecFromDocker(body: unknown): ClusterSpec {
  return clusterSpecOverDefaults(Decoder.root(body, 'Spec'));
}

/**
 * The body of `POST /swarm/init`. Zero values mean dockerd's defaults (election tick 10, heartbeat
 * tick 1, certificates for 90 days, heartbeats every 5 s, pool 10.0.0.0/8 in /24s, VXLAN port
 * 4789); `AutoLockManagers` at the top level or in the spec turns autolock on. Errors are
 * INVALID_ARGUMENT with dockerd's messages.
 */
export function swarmInitRequestFromDocker(body: unknown): SwarmInitRequest {
  const decoder = Decoder.root(body, 'InitRequest');
  const listenAddr = swarmAddress('ListenAddr', decoder.string('ListenAddr') ?? '');
  const spec = clusterSpecOverDefaults(decoder.object('Spec', 'swarm.Spec') ?? Decoder.root(null, 'Spec'));
  if (decoder.boolean('AutoLockManagers') === true) spec.encryptionConfig = { autoLockManagers: true };
  const pool = (decoder.stringArray('DefaultAddrPool') ?? []).map((cidr) => cidr.trim());
  const defaultAddrPool = pool.length > 0 ? pool : DEFAULT_ADDRESS_POOLS.map(formatCidr);
  const subnetSize = decoder.integer('SubnetSize', 'uint32') || DEFAULT_SUBNET_SIZE;
  validateAddressPool(defaultAddrPool, subnetSize);
  return {
    listenAddr,
    advertiseAddr: decoder.string('AdvertiseAddr') ?? '',
    dataPathAddr: decoder.string('DataPathAddr') ?? '',
    dataPathPort: dataPathPort(decoder.integer('DataPathPort', 'uint32') ?? 0),
    forceNewCluster: decoder.boolean('ForceNewCluster') ?? false,
    spec,
    availability: availabilityFromDocker(decoder.string('Availability') || 'active'),
    defaultAddrPool,
    subnetSize,
  };
}

/**
 * The body of `POST /swarm/join`: at least one remote manager address, and a join token that parses
 * (INVALID_ARGUMENT `invalid join token` otherwise; whether it belongs to the cluster is for the
 * manager to say). Addresses without a port get 2377.
 */
export function swarmJoinRequestFromDocker(body: unknown): SwarmJoinRequest {
  const decoder = Decoder.root(body, 'JoinRequest');
  const listenAddr = swarmAddress('ListenAddr', decoder.string('ListenAddr') ?? '');
  const remoteAddrs = (decoder.stringArray('RemoteAddrs') ?? []).map((address) => swarmAddress('remoteAddr', address));
  if (remoteAddrs.length === 0) throw errors.invalidArgument('at least 1 RemoteAddr is required to join');
  const joinToken = decoder.string('JoinToken') ?? '';
  parseJoinToken(joinToken);
  return {
    listenAddr,
    advertiseAddr: decoder.string('AdvertiseAddr') ?? '',
    dataPathAddr: decoder.string('DataPathAddr') ?? '',
    remoteAddrs,
    joinToken,
    availability: availabilityFromDocker(decoder.string('Availability') || 'active'),
  };
}

/** The cluster as `GET /swarm` shows it, with the join tokens. */
export function clusterToDocker(cluster: Cluster, options: { includeJoinTokens: true }): DockerSwarm;
/** The cluster as `Info.Swarm.Cluster` shows it, without the join tokens. */
export function clusterToDocker(cluster: Cluster, options: { includeJoinTokens: false }): DockerClusterInfo;
export function clusterToDocker(cluster: Cluster, options: { includeJoinTokens: boolean }): DockerClusterInfo | DockerSwarm;
export function clusterToDocker(cluster: Cluster, options: { includeJoinTokens: boolean }): DockerClusterInfo | DockerSwarm {
  const rootCa = cluster.rootCa;
  const info: DockerClusterInfo = {
    ...dockerMeta(cluster.id, cluster.meta),
    Spec: clusterSpecToDocker(cluster.spec ?? defaultClusterSpec()),
    TLSInfo: rootCaTlsInfo(rootCa?.caCert ?? Buffer.alloc(0), rootCa?.rootRotation?.caCert),
    RootRotationInProgress: rootCa?.rootRotation !== undefined,
    DefaultAddrPool: cluster.defaultAddressPool.length > 0 ? [...cluster.defaultAddressPool] : null,
    SubnetSize: cluster.subnetSize,
    DataPathPort: cluster.vxlanUdpPort,
  };
  if (!options.includeJoinTokens) return info;
  return { ...info, JoinTokens: { Worker: rootCa?.joinTokens?.worker ?? '', Manager: rootCa?.joinTokens?.manager ?? '' } };
}

/**
 * The managers' unlock key as `docker swarm unlock-key` prints it (`SWMKEY-1-` and the unpadded
 * base64 of the key bytes the cluster keeps for the `swarm-manager` subsystem), or `""` when autolock
 * is off, which is what `GET /swarm/unlockkey` answers then.
 */
export function unlockKeyOf(cluster: Cluster): string {
  return clusterUnlockKey(cluster) ?? '';
}

/**
 * swarmkit's defaults with every non-zero field of a Docker swarm spec laid over them (dockerd's
 * `MergeSwarmSpecToGRPC`; the pointer fields `TaskHistoryRetentionLimit` and `KeepOldSnapshots`
 * count when present, even as 0).
 */
function clusterSpecOverDefaults(spec: Decoder): ClusterSpec {
  const name = spec.string('Name') ?? '';
  if (name !== '' && name !== DEFAULT_CLUSTER_NAME) throw errors.invalidArgument(`swarm spec must be named "${DEFAULT_CLUSTER_NAME}"`);
  const orchestration = spec.object('Orchestration', 'swarm.OrchestrationConfig');
  const raft = spec.object('Raft', 'swarm.RaftConfig');
  const taskDefaults = spec.object('TaskDefaults', 'swarm.TaskDefaults');
  const heartbeatPeriod = spec.object('Dispatcher', 'swarm.DispatcherConfig')?.integer('HeartbeatPeriod') || DEFAULT_HEARTBEAT_PERIOD_NS;
  if (heartbeatPeriod < 0) throw errors.invalidArgument('heartbeat time period cannot be a negative duration');
  const taskHistoryRetentionLimit = orchestration?.integer('TaskHistoryRetentionLimit');
  const keepOldSnapshots = raft?.integer('KeepOldSnapshots', 'uint64');
  const merged: ClusterSpec = {
    annotations: { name: DEFAULT_CLUSTER_NAME, labels: spec.stringMap('Labels') ?? {}, indices: [] },
    orchestration: {
      taskHistoryRetentionLimit:
        taskHistoryRetentionLimit === undefined ? DEFAULT_TASK_HISTORY_RETENTION_LIMIT : BigInt(taskHistoryRetentionLimit),
    },
    raft: {
      snapshotInterval: BigInt(raft?.integer('SnapshotInterval', 'uint64') || DEFAULT_RAFT.snapshotInterval),
      keepOldSnapshots: keepOldSnapshots === undefined ? DEFAULT_RAFT.keepOldSnapshots : BigInt(keepOldSnapshots),
      logEntriesForSlowFollowers: BigInt(raft?.integer('LogEntriesForSlowFollowers', 'uint64') || DEFAULT_RAFT.logEntriesForSlowFollowers),
      heartbeatTick: raft?.integer('HeartbeatTick', 'uint32') || DEFAULT_RAFT.heartbeatTick,
      electionTick: raft?.integer('ElectionTick', 'uint32') || DEFAULT_RAFT.electionTick,
    },
    dispatcher: { heartbeatPeriod: durationOfNanos(heartbeatPeriod) },
    caConfig: caConfigFromDocker(spec.object('CAConfig', 'swarm.CAConfig')),
    taskDefaults: { logDriver: taskDefaults && driverFromDocker(taskDefaults, 'LogDriver') },
    encryptionConfig: {
      autoLockManagers: spec.object('EncryptionConfig', 'swarm.EncryptionConfig')?.boolean('AutoLockManagers') ?? false,
    },
  };
  if (merged.raft!.electionTick <= merged.raft!.heartbeatTick) {
    throw errors.invalidArgument('election tick must be greater than heartbeat tick');
  }
  return merged;
}

function caConfigFromDocker(caConfig: Decoder | undefined): CAConfig {
  const nodeCertExpiry = caConfig?.integer('NodeCertExpiry') || DEFAULT_NODE_CERT_EXPIRY_NS;
  if (nodeCertExpiry < MIN_NODE_CERT_EXPIRY_NS) throw errors.invalidArgument('minimum certificate expiry time is: 1h0m0s');
  const externalCas = (caConfig?.objectArray('ExternalCAs', 'swarm.ExternalCA') ?? []).map((externalCa) => {
    const protocol = externalCa.string('Protocol') ?? '';
    if (protocol.toLowerCase() !== 'cfssl') throw errors.invalidArgument(`invalid protocol: ${JSON.stringify(protocol)}`);
    return {
      protocol: ExternalCA_CAProtocol.CFSSL,
      url: externalCa.string('URL') ?? '',
      options: externalCa.stringMap('Options') ?? {},
      caCert: Buffer.from(externalCa.string('CACert') ?? ''),
    };
  });
  return {
    nodeCertExpiry: durationOfNanos(nodeCertExpiry),
    externalCas,
    signingCaCert: Buffer.from(caConfig?.string('SigningCACert') ?? ''),
    signingCaKey: Buffer.from(caConfig?.string('SigningCAKey') ?? ''),
    forceRotate: BigInt(caConfig?.integer('ForceRotate', 'uint64') ?? 0),
  };
}

function clusterSpecToDocker(spec: ClusterSpec): DockerSwarmSpec {
  const raft = spec.raft;
  const caConfig = spec.caConfig;
  const externalCas = caConfig?.externalCas ?? [];
  const logDriver = spec.taskDefaults?.logDriver;
  return {
    ...annotationsToDocker(spec.annotations),
    Orchestration: { TaskHistoryRetentionLimit: Number(spec.orchestration?.taskHistoryRetentionLimit ?? 0n) },
    Raft: {
      SnapshotInterval: Number(raft?.snapshotInterval ?? 0n) || undefined,
      KeepOldSnapshots: Number(raft?.keepOldSnapshots ?? 0n),
      LogEntriesForSlowFollowers: Number(raft?.logEntriesForSlowFollowers ?? 0n) || undefined,
      ElectionTick: raft?.electionTick ?? 0,
      HeartbeatTick: raft?.heartbeatTick ?? 0,
    },
    Dispatcher: { HeartbeatPeriod: optionalNanos(spec.dispatcher?.heartbeatPeriod) },
    CAConfig: {
      NodeCertExpiry: optionalNanos(caConfig?.nodeCertExpiry),
      ExternalCAs:
        externalCas.length > 0
          ? externalCas.map((externalCa) => ({
              Protocol: 'cfssl',
              URL: externalCa.url,
              Options: Object.keys(externalCa.options).length > 0 ? { ...externalCa.options } : undefined,
              CACert: externalCa.caCert.toString('utf8'),
            }))
          : undefined,
      ForceRotate: Number(caConfig?.forceRotate ?? 0n) || undefined,
    },
    TaskDefaults: { LogDriver: logDriver && driverToDocker(logDriver) },
    EncryptionConfig: { AutoLockManagers: spec.encryptionConfig?.autoLockManagers ?? false },
  };
}

/**
 * The cluster's trust as Docker shows it: the root CA in PEM, and the raw subject and public key of
 * the certificate that issues node certificates (the new root while a rotation is under way), as
 * swarmkit's `IssuerFromAPIRootCA` reads them. Like dockerd, it leaves those two out rather than fail
 * `docker info` when the stored certificate does not parse.
 */
function rootCaTlsInfo(caCert: Buffer, rotatingTo: Buffer | undefined): DockerTLSInfo {
  const issuer = rawIssuerFields(rotatingTo ?? caCert);
  return tlsInfoToDocker({
    trustRoot: caCert,
    certIssuerSubject: issuer?.subject ?? Buffer.alloc(0),
    certIssuerPublicKey: issuer?.publicKey ?? Buffer.alloc(0),
  });
}

/** The DER of a PEM certificate's subject and SubjectPublicKeyInfo, byte for byte as signed. */
function rawIssuerFields(pem: Buffer): { subject: Buffer; publicKey: Buffer } | undefined {
  let der: Buffer;
  try {
    der = new X509Certificate(pem).raw;
  } catch {
    return undefined;
  }
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
  // signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
  const tbs = derElementAt(der, derElementAt(der, 0).contentStart);
  const fields = [];
  for (let at = tbs.contentStart; at < tbs.end && fields.length < 7; at = fields[fields.length - 1]!.end) {
    fields.push(derElementAt(der, at));
  }
  const first = fields[0]?.tag === EXPLICIT_VERSION_TAG ? 1 : 0;
  const subject = fields[first + 4];
  const publicKey = fields[first + 5];
  if (subject === undefined || publicKey === undefined) return undefined;
  return { subject: der.subarray(subject.start, subject.end), publicKey: der.subarray(publicKey.start, publicKey.end) };
}

/** Context-specific, constructed, tag 0: the certificate's version field. */
const EXPLICIT_VERSION_TAG = 0xa0;

interface DerElement {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** The DER element starting at `start` (definite lengths only, which DER requires). */
function derElementAt(der: Buffer, start: number): DerElement {
  const tag = der[start] ?? 0;
  const firstLength = der[start + 1] ?? 0;
  let length = firstLength;
  let contentStart = start + 2;
  if (firstLength >= 0x80) {
    const lengthBytes = firstLength & 0x7f;
    length = der.readUIntBE(contentStart, lengthBytes);
    contentStart += lengthBytes;
  }
  return { tag, start, contentStart, end: contentStart + length };
}

/**
 * dockerd's `validateAddr`: empty is an error; a missing host is 0.0.0.0 and a missing port 2377;
 * anything that is not `host[:port]` (an IPv6 address needs brackets) is kept as written.
 */
function swarmAddress(field: string, address: string): string {
  if (address === '') throw errors.invalidArgument(`invalid ${field} "": invalid empty address`);
  const parts = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d+))?$/.exec(address);
  if (parts === null) return address;
  const host = parts[1] ?? (parts[2] || '0.0.0.0');
  const port = parts[3] ?? String(DEFAULT_SWARM_PORT);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** dockerd's `validateDefaultAddrPool`, also applied to the default pool. */
function validateAddressPool(pool: readonly string[], subnetSize: number): void {
  if (subnetSize > MAX_SUBNET_SIZE) throw errors.invalidArgument(`subnet size is out of range: ${subnetSize}`);
  for (const cidr of pool) {
    let parsed: Cidr;
    try {
      parsed = parseCidr(cidr);
    } catch (err) {
      throw isShoalError(err) ? errors.invalidArgument(`invalid base pool ${cidr}: ${err.message}`) : err;
    }
    if (subnetSize < parsed.prefixLength) {
      throw errors.invalidArgument(`invalid CIDR: ${JSON.stringify(cidr)}. Subnet size is too small for pool: ${subnetSize}`);
    }
  }
}

/** dockerd's `getDataPathPort`: 0 is 4789, anything else must be a registered port. */
function dataPathPort(port: number): number {
  if (port === 0) return DEFAULT_DATA_PATH_PORT;
  if (port < DATA_PATH_PORT_RANGE.min || port > DATA_PATH_PORT_RANGE.max) {
    throw errors.invalidArgument(
      `Datapath port number is not in valid range (${DATA_PATH_PORT_RANGE.min}-${DATA_PATH_PORT_RANGE.max}) : ${port}`,
    );
  }
  return port;
}

/** A Go `time.Duration` tagged omitempty: nanoseconds, left out when zero. */
function optionalNanos(duration: Duration | undefined): number | undefined {
  return duration === undefined ? undefined : nanosOf(duration) || undefined;
}
