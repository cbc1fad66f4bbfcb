import { errors } from '@shoal/errors';
import { commonSettings, defineConfig, formatDurationMs, setting, type ConfigDefinition, type Setting } from '@shoal/runtime';

/** A `host:port` that may be left unset (undefined). */
function optionalHostPort(env: string, doc: string): Setting<string | undefined> {
  const hostPort = setting.hostPort(env, '', doc);
  return { ...hostPort, read: (raw) => (raw === undefined || raw.trim() === '' ? { ok: true, value: undefined } : hostPort.read(raw)) };
}

const settings = defineConfig({
  ...commonSettings,
  dataDir: setting.path('SHOAL_DATA_DIR', '/var/lib/shoal/raft', 'State directory; the raft log, snapshots and keys live in its raft/ subdirectory.'),
  listen: setting.hostPort(
    'SHOAL_RAFT_LISTEN',
    '0.0.0.0:2378',
    "Where the gRPC server (Store API, Raft, RaftMembership, RaftUnlock) listens; 2377, Docker's manager port, is the dispatcher's.",
  ),
  advertise: optionalHostPort(
    'SHOAL_RAFT_ADVERTISE',
    'The address other managers reach this one at. Defaults to SHOAL_RAFT_LISTEN unless that listens on every interface.',
  ),
  join: optionalHostPort(
    'SHOAL_RAFT_JOIN',
    'Address of a manager of the cluster to join when the data directory holds no raft data. Unset: an empty data directory bootstraps a new cluster.',
  ),
  nodeId: setting.optionalString('SHOAL_RAFT_NODE_ID', 'This manager\'s node ID. Defaults to the common name of its certificate, which it must equal.'),
  tlsCa: setting.optionalString('SHOAL_TLS_CA', 'PEM file of the cluster CA certificate.'),
  tlsCert: setting.optionalString('SHOAL_TLS_CERT', 'PEM file of this manager\'s certificate (OU swarm-manager, CN its node ID).'),
  tlsKey: setting.optionalString('SHOAL_TLS_KEY', 'PEM file of this manager\'s private key.'),
  tickMs: setting.duration('SHOAL_RAFT_TICK', 1_000, 'Raft tick interval (swarmkit: 1s); elections and heartbeats are counted in ticks.'),
  electionTicks: setting.int(
    'SHOAL_RAFT_ELECTION_TICKS',
    10,
    'Ticks without a leader before a follower campaigns; also how long writes wait for a leader before failing.',
    { min: 2 },
  ),
  heartbeatTicks: setting.int('SHOAL_RAFT_HEARTBEAT_TICKS', 1, 'Ticks between leader heartbeats; must be fewer than the election ticks.', { min: 1 }),
  snapshotInterval: setting.int('SHOAL_RAFT_SNAPSHOT_INTERVAL', 10_000, 'Applied entries between snapshots, after which the log is compacted.', { min: 1 }),
  natsUrl: setting.optionalString('SHOAL_NATS_URL', 'NATS server for commit nudges (shoal.v1.store.commit); unset: no nudges.'),
});

/** The PEM files of a manager's TLS identity. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** The raft service's settings, with the checks that involve several variables already made. */
export type RaftConfig = Omit<ReturnType<typeof settings.load>, 'tlsCa' | 'tlsCert' | 'tlsKey' | 'advertise'> & {
  /** Undefined when no TLS file is configured: the service then waits, idle, for a certificate. */
  tls: TlsFiles | undefined;
  /** Resolved: SHOAL_RAFT_ADVERTISE, or the listen address. Empty when there is no TLS (nothing to advertise). */
  advertise: string;
};

const WILDCARD_HOSTS = new Set(['0.0.0.0', '[::]', '::']);

/**
 * Settings of the raft service, read once in main.ts. Beyond each variable's own check: the three TLS
 * files are configured together or not at all, the advertised address cannot be a wildcard, and a
 * heartbeat comes more often than an election timeout.
 */
export const raftConfig: ConfigDefinition<RaftConfig> = {
  describe: () => settings.describe(),
  load(env = process.env) {
    const { tlsCa, tlsCert, tlsKey, advertise, ...config } = settings.load(env);
    const problems: string[] = [];
    const tlsFiles = [tlsCa, tlsCert, tlsKey];
    const tls = tlsCa !== undefined && tlsCert !== undefined && tlsKey !== undefined ? { ca: tlsCa, cert: tlsCert, key: tlsKey } : undefined;
    if (tls === undefined && tlsFiles.some((file) => file !== undefined)) {
      problems.push('SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must be set together');
    }
    const listenHost = config.listen.slice(0, config.listen.lastIndexOf(':'));
    const resolvedAdvertise = advertise ?? (WILDCARD_HOSTS.has(listenHost) ? undefined : config.listen);
    if (tls !== undefined && resolvedAdvertise === undefined) {
      problems.push(`SHOAL_RAFT_ADVERTISE is required: SHOAL_RAFT_LISTEN=${config.listen} listens on every interface, which other managers cannot dial`);
    }
    if (config.heartbeatTicks >= config.electionTicks) {
      problems.push(`SHOAL_RAFT_HEARTBEAT_TICKS=${config.heartbeatTicks} must be fewer than SHOAL_RAFT_ELECTION_TICKS=${config.electionTicks}`);
    }
    if (config.tickMs < 1) problems.push(`SHOAL_RAFT_TICK=${formatDurationMs(config.tickMs)} must be at least 1ms`);
    if (problems.length > 0) throw errors.invalidArgument(`invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
    return { ...config, tls, advertise: resolvedAdvertise ?? '' };
  },
};
