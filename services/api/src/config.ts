import { errors } from '@shoal/errors';
import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { readPemSetting, resolveStoreAccess, storeAccessSettings, type StoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  dataDir: setting.path('SHOAL_DATA_DIR', '/var/lib/shoal/api', 'State directory: which node of the swarm this host is.'),
  listen: setting.string('SHOAL_API_LISTEN', '127.0.0.1:2375', 'TCP host:port of the Docker Engine API; empty: no TCP listener.'),
  socket: setting.string('SHOAL_API_SOCKET', '', 'Unix socket path of the Docker Engine API; empty: no socket.'),
  apiTlsCert: setting.optionalString('SHOAL_API_TLS_CERT', 'PEM certificate for the TCP listener; with it the API speaks HTTPS and requires client certificates.'),
  apiTlsKey: setting.optionalString('SHOAL_API_TLS_KEY', 'PEM key of SHOAL_API_TLS_CERT.'),
  apiTlsCa: setting.optionalString('SHOAL_API_TLS_CA', 'PEM CA that client certificates must chain to (the cluster CA).'),
  ...storeAccessSettings,
  workerOnly: setting.boolean('SHOAL_API_WORKER_ONLY', false, 'This host runs no manager services (`shoal up --worker`): no store access; it can join a swarm but not start one.'),
  agentSocket: setting.optionalString('SHOAL_AGENT_SOCKET', "Control socket of this host's agent, which `swarm init/join/leave` set up; unset: no agent (swarm join unavailable)."),
  advertiseAddr: setting.string('SHOAL_ADVERTISE_ADDR', '127.0.0.1', 'The address other hosts reach this one at, when `swarm init` names none.'),
  natsUrl: setting.optionalString('SHOAL_NATS_URL', 'NATS server that log streams travel over; unset: docker service logs is unavailable.'),
  managerPort: setting.int('SHOAL_MANAGER_PORT', 2377, "Port of this host's dispatcher, which nodes join through (Docker's manager port).", { min: 1, max: 65535 }),
});

/** The PEM contents of a TLS identity. */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export type ApiConfig = Omit<ReturnType<typeof settings.load>, 'apiTlsCert' | 'apiTlsKey' | 'apiTlsCa' | 'storeAddress' | 'tlsCa' | 'tlsCert' | 'tlsKey'> & {
  /** Absent on a worker-only host. */
  readonly store: StoreAccess | undefined;
  /** HTTPS with client certificates on the TCP listener, when configured. */
  readonly apiTls: TlsMaterial | undefined;
};

/** Settings of the api service, read once in main.ts: each variable's own check, then the ones across variables. */
export const apiConfig: ConfigDefinition<ApiConfig> = {
  ...settings,
  load(env = process.env) {
    const { apiTlsCert, apiTlsKey, apiTlsCa, storeAddress, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    if (rest.listen === '' && rest.socket === '') throw errors.invalidArgument('SHOAL_API_LISTEN and SHOAL_API_SOCKET are both empty: the API would not listen anywhere');
    const apiTlsFiles = [apiTlsCert, apiTlsKey, apiTlsCa];
    if (apiTlsFiles.some((path) => path !== undefined) && apiTlsFiles.some((path) => path === undefined)) {
      throw errors.invalidArgument('SHOAL_API_TLS_CERT, SHOAL_API_TLS_KEY and SHOAL_API_TLS_CA go together: set all three or none');
    }
    return {
      ...rest,
      store: rest.workerOnly ? undefined : resolveStoreAccess({ storeAddress, tlsCa, tlsCert, tlsKey }, 'api'),
      apiTls:
        apiTlsCert === undefined || apiTlsKey === undefined || apiTlsCa === undefined
          ? undefined
          : {
              cert: readPemSetting('SHOAL_API_TLS_CERT', apiTlsCert),
              key: readPemSetting('SHOAL_API_TLS_KEY', apiTlsKey),
              ca: readPemSetting('SHOAL_API_TLS_CA', apiTlsCa),
            },
    };
  },
};
