import { commonSettings, defineConfig, setting } from '@shoal/runtime';

/** Settings of the `shoal` command and of the host supervisor it runs (`shoal up`). */
export const cliConfig = defineConfig({
  ...commonSettings,
  dataDir: setting.path('SHOAL_DATA_DIR', '/var/lib/shoal', 'state and logs of this host: run/ (pid, status.json), logs/, one directory per service'),
  natsUrl: setting.optionalString('SHOAL_NATS_URL', 'use this NATS server instead of starting a nats-server child'),
  natsPort: setting.int('SHOAL_NATS_PORT', 4222, 'client port of the nats-server child (loopback only)', { min: 1, max: 65535 }),
  raftPort: setting.int('SHOAL_RAFT_PORT', 2378, "loopback port of this host's raft replica (Store API and raft peers)", { min: 1, max: 65535 }),
  managerListen: setting.hostPort('SHOAL_MANAGER_LISTEN', '0.0.0.0:2377', "where this manager's dispatcher listens for nodes (joins, sessions, assignments); 2377 is Docker's manager port"),
  advertiseAddr: setting.string('SHOAL_ADVERTISE_ADDR', '127.0.0.1', 'the address other hosts reach this one at (what `docker swarm join-token` prints)'),
  apiListen: setting.string('SHOAL_API_LISTEN', '127.0.0.1:2375', "TCP host:port of this host's Docker Engine API (what `shoal env` points DOCKER_HOST at); empty: the unix socket only"),
  natsServerBin: setting.string('SHOAL_NATS_SERVER_BIN', 'nats-server', 'nats-server executable, looked up on PATH'),
  readyTimeoutMs: setting.duration('SHOAL_READY_TIMEOUT', 60_000, 'how long `shoal up --detach` waits for every process to report ready'),
});

export type CliConfig = ReturnType<typeof cliConfig.load>;
