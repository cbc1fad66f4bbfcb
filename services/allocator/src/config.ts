import { readFileSync } from 'node:fs';
import { errors } from '@shoal/errors';
import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';

const settings = defineConfig({
  ...commonSettings,
  storeAddress: setting.hostPort('SHOAL_STORE_ADDRESS', '127.0.0.1:2377', "This host's raft replica (Store API)."),
  tlsCa: setting.string('SHOAL_TLS_CA', '', 'PEM file of the CA the Store API is verified with.'),
  tlsCert: setting.string('SHOAL_TLS_CERT', '', "PEM file of this manager's certificate for the Store API."),
  tlsKey: setting.string('SHOAL_TLS_KEY', '', "PEM file of this manager's private key."),
  leaseTtlMs: setting.duration(
    'SHOAL_ALLOCATOR_LEASE_TTL',
    10_000,
    'How long the allocator lease lasts unrenewed: a standby allocator takes over at most this long after the active one dies.',
  ),
});

/** The PEM contents of the manager identity the Store API is reached with. */
export interface StoreTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export type AllocatorConfig = Omit<ReturnType<typeof settings.load>, 'tlsCa' | 'tlsCert' | 'tlsKey'> & { readonly storeTls: StoreTls };

function readPem(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw errors.invalidArgument(`cannot read ${variable} ${path}: ${(err as Error).message}`);
  }
}

/** Settings of the allocator service, read once in main.ts. */
export const allocatorConfig: ConfigDefinition<AllocatorConfig> = {
  ...settings,
  load(env = process.env) {
    const { tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    if ([tlsCa, tlsCert, tlsKey].some((path) => path === '')) {
      throw errors.invalidArgument('SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must name the manager identity the allocator reaches the Store API with');
    }
    return { ...rest, storeTls: { ca: readPem(tlsCa, 'SHOAL_TLS_CA'), cert: readPem(tlsCert, 'SHOAL_TLS_CERT'), key: readPem(tlsKey, 'SHOAL_TLS_KEY') } };
  },
};
