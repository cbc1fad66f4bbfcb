import { readFileSync } from 'node:fs';
import { errors } from '@shoal/errors';
import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';

const settings = defineConfig({
  ...commonSettings,
  dataDir: setting.path('SHOAL_DATA_DIR', '/var/lib/shoal/api', 'State directory: which node of the swarm this host is.'),
  listen: setting.string('SHOAL_API_LISTEN', '127.0.0.1:2375', 'TCP host:port of the Docker Engine API; empty: no TCP listener.'),
  socket: setting.string('SHOAL_API_SOCKET', '', 'Unix socket path of the Docker Engine API; empty: no socket.'),
  apiTlsCert: setting.optionalString('SHOAL_API_TLS_CERT', 'PEM certificate for the TCP listener; with it the API speaks HTTPS and requires client certificates.'),
  apiTlsKey: setting.optionalString('SHOAL_API_TLS_KEY', 'PEM key of SHOAL_API_TLS_CERT.'),
  apiTlsCa: setting.optionalString('SHOAL_API_TLS_CA', 'PEM CA that client certificates must chain to (the cluster CA).'),
  storeAddress: setting.hostPort('SHOAL_STORE_ADDRESS', '127.0.0.1:2377', "This host's raft replica (Store API)."),
  tlsCa: setting.string('SHOAL_TLS_CA', '', 'PEM file of the CA the Store API is verified with.'),
  tlsCert: setting.string('SHOAL_TLS_CERT', '', "PEM file of this manager's certificate for the Store API."),
  tlsKey: setting.string('SHOAL_TLS_KEY', '', "PEM file of this manager's private key."),
  advertiseAddr: setting.string('SHOAL_ADVERTISE_ADDR', '127.0.0.1', 'The address other hosts reach this one at, when `swarm init` names none.'),
  natsUrl: setting.optionalString('SHOAL_NATS_URL', 'NATS server that log streams travel over; unset: docker service logs is unavailable.'),
  managerPort: setting.int('SHOAL_MANAGER_PORT', 2377, 'Port of this host\'s raft replica, as nodes join through it.', { min: 1, max: 65535 }),
});

/** The PEM contents of a TLS identity. */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export type ApiConfig = Omit<ReturnType<typeof settings.load>, 'apiTlsCert' | 'apiTlsKey' | 'apiTlsCa' | 'tlsCa' | 'tlsCert' | 'tlsKey'> & {
  /** The Store API client identity. */
  readonly storeTls: TlsMaterial;
  /** HTTPS with client certificates on the TCP listener, when configured. */
  readonly apiTls: TlsMaterial | undefined;
};

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw errors.invalidArgument(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Settings of the api service, read once in main.ts: each variable's own check, then the ones across variables. */
export const apiConfig: ConfigDefinition<ApiConfig> = {
  ...settings,
  load(env = process.env) {
    const { apiTlsCert, apiTlsKey, apiTlsCa, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    if (rest.listen === '' && rest.socket === '') throw errors.invalidArgument('SHOAL_API_LISTEN and SHOAL_API_SOCKET are both empty: the API would not listen anywhere');
    if ([tlsCa, tlsCert, tlsKey].some((path) => path === '')) {
      throw errors.invalidArgument('SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must name the manager identity the API reaches the Store API with');
    }
    const apiTlsFiles = [apiTlsCert, apiTlsKey, apiTlsCa];
    if (apiTlsFiles.some((path) => path !== undefined) && apiTlsFiles.some((path) => path === undefined)) {
      throw errors.invalidArgument('SHOAL_API_TLS_CERT, SHOAL_API_TLS_KEY and SHOAL_API_TLS_CA go together: set all three or none');
    }
    return {
      ...rest,
      storeTls: { ca: readPem(tlsCa, 'SHOAL_TLS_CA'), cert: readPem(tlsCert, 'SHOAL_TLS_CERT'), key: readPem(tlsKey, 'SHOAL_TLS_KEY') },
      apiTls:
        apiTlsCert === undefined || apiTlsKey === undefined || apiTlsCa === undefined
          ? undefined
          : { cert: readPem(apiTlsCert, 'SHOAL_API_TLS_CERT'), key: readPem(apiTlsKey, 'SHOAL_API_TLS_KEY'), ca: readPem(apiTlsCa, 'SHOAL_API_TLS_CA') },
    };
  },
};
