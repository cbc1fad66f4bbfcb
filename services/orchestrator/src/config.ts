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
    'SHOAL_LEASE_TTL',
    10_000,
    'How long the orchestrator lease lasts unrenewed: the longest a standby waits to take over from an active instance that died.',
  ),
});

/** The orchestrator's settings, with the Store API identity read from its PEM files. */
export type OrchestratorConfig = Omit<ReturnType<typeof settings.load>, 'tlsCa' | 'tlsCert' | 'tlsKey'> & {
  readonly storeTls: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
};

function readPem(env: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw errors.invalidArgument(`cannot read ${env} ${path}: ${(err as Error).message}`);
  }
}

/** Settings of the orchestrator service, read once in main.ts. */
export const orchestratorConfig: ConfigDefinition<OrchestratorConfig> = {
  ...settings,
  load(env = process.env) {
    const { tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
    if ([tlsCa, tlsCert, tlsKey].some((path) => path === '')) {
      throw errors.invalidArgument('SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must name the manager identity the orchestrator reaches the Store API with');
    }
    return { ...rest, storeTls: { ca: readPem('SHOAL_TLS_CA', tlsCa), cert: readPem('SHOAL_TLS_CERT', tlsCert), key: readPem('SHOAL_TLS_KEY', tlsKey) } };
  },
};
