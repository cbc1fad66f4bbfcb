import { busComponent } from '@shoal/bus';
import { ErrorCode, hasCode } from '@shoal/errors';
import { createLogger, idleComponent, loadConfigOrExit, runProcess, type Component, type Logger } from '@shoal/runtime';
import { raftConfig, type RaftConfig, type TlsFiles } from './config.js';
import { readManagerIdentity } from './identity.js';
import { ManagerServerComponent, RaftReplica } from './replica/index.js';

const config = loadConfigOrExit(raftConfig, 'raft');
const log = createLogger({ service: 'raft', level: config.logLevel });

/** [bus?, gRPC server, replica]: the server comes up first so a joiner can be health-checked and a locked replica unlocked. */
async function replicaComponents(config: RaftConfig, tlsFiles: TlsFiles, log: Logger): Promise<Component[]> {
  const identity = await readManagerIdentity(tlsFiles, config.nodeId);
  const { dataDir, listen, advertise, join, tickMs, electionTicks, heartbeatTicks, snapshotInterval, natsUrl } = config;
  const { nodeId, tls } = identity;
  const timings = { tickMs, electionTicks, heartbeatTicks, snapshotInterval };
  log.info({ nodeId, dataDir, listen, advertise, join, natsUrl, ...timings }, 'configuration');
  const replica = new RaftReplica({ dataDir, nodeId, advertiseAddress: advertise, join, tls, ...timings });
  const bus = natsUrl === undefined ? undefined : busComponent({ url: natsUrl, name: 'raft' });
  // The bus connection exists only once its component runs, hence the late lookup.
  const nudges = bus === undefined ? undefined : { publish: (subject: string, payload: string) => bus.connection.nc.publish(subject, payload) };
  const server = new ManagerServerComponent({ replica, tls, address: listen, bus: nudges });
  return [...(bus === undefined ? [] : [bus]), server, replica];
}

let components: Component[];
if (config.tls === undefined) {
  // Without a certificate from the cluster CA there is no safe way to talk to peers or clients; `docker
  // swarm init` / `join` (the nodes issue) will provide one. Until then the service only says so.
  const waitingFor = 'SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY: a swarm-manager certificate from the cluster CA (docker swarm init or join provides it)';
  components = [idleComponent('raft', `waiting for ${waitingFor}`)];
} else {
  try {
    components = await replicaComponents(config, config.tls, log);
  } catch (err) {
    if (!hasCode(err, ErrorCode.InvalidArgument)) throw err;
    process.stderr.write(`raft: ${err.message}\n`);
    process.exit(2);
  }
}
await runProcess({ service: 'raft', log, shutdownGraceMs: config.shutdownGraceMs, components });
