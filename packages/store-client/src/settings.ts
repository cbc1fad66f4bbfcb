import { readFileSync } from 'node:fs';
import { errors } from '@shoal/errors';
import { setting, type ConfigDefinition } from '@shoal/runtime';

/**
 * The settings every manager service reaches the Store API with; spread them into the service's
 * `defineConfig` and turn the values into a {@link StoreAccess} with {@link resolveStoreAccess}.
 */
export const storeAccessSettings = {
  storeAddress: setting.hostPort('SHOAL_STORE_ADDRESS', '127.0.0.1:2378', "This host's raft replica (Store API)."),
  tlsCa: setting.string('SHOAL_TLS_CA', '', 'PEM file of the CA the Store API is verified with.'),
  tlsCert: setting.string('SHOAL_TLS_CERT', '', "PEM file of this manager's certificate for the Store API."),
  tlsKey: setting.string('SHOAL_TLS_KEY', '', "PEM file of this manager's private key."),
};

/** Where the Store API is and the manager identity to call it with (PEM contents). */
export interface StoreAccess {
  readonly address: string;
  readonly tls: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
}

/** The contents of the PEM file a setting names; INVALID_ARGUMENT naming the setting when it cannot be read. */
export function readPemSetting(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw errors.invalidArgument(`cannot read ${variable} ${path}: ${(err as Error).message}`);
  }
}

/** The Store API access the settings name, with the PEM files read; INVALID_ARGUMENT naming what is missing or unreadable. */
export function resolveStoreAccess(
  values: { readonly storeAddress: string; readonly tlsCa: string; readonly tlsCert: string; readonly tlsKey: string },
  service: string,
): StoreAccess {
  const { storeAddress, tlsCa, tlsCert, tlsKey } = values;
  if ([tlsCa, tlsCert, tlsKey].some((path) => path === '')) {
    throw errors.invalidArgument(`SHOAL_TLS_CA, SHOAL_TLS_CERT and SHOAL_TLS_KEY must name the manager identity the ${service} reaches the Store API with`);
  }
  return { address: storeAddress, tls: { ca: readPemSetting('SHOAL_TLS_CA', tlsCa), cert: readPemSetting('SHOAL_TLS_CERT', tlsCert), key: readPemSetting('SHOAL_TLS_KEY', tlsKey) } };
}

/** What {@link storeAccessSettings} read, before the PEM files are. */
type StoreAccessValues = { readonly storeAddress: string; readonly tlsCa: string; readonly tlsCert: string; readonly tlsKey: string };

/** A manager service's settings with the four store-access values replaced by the resolved `store`. */
export type WithStoreAccess<T> = Omit<T, keyof StoreAccessValues> & { readonly store: StoreAccess };

/**
 * A manager service's configuration from its `defineConfig` (which spreads {@link storeAccessSettings}):
 * the same settings, loaded with the Store API access resolved (the PEM files read) as `store`.
 */
export function withStoreAccess<T extends StoreAccessValues>(settings: ConfigDefinition<T>, service: string): ConfigDefinition<WithStoreAccess<T>> {
  return {
    ...settings,
    load(env = process.env) {
      const { storeAddress, tlsCa, tlsCert, tlsKey, ...rest } = settings.load(env);
      return { ...rest, store: resolveStoreAccess({ storeAddress, tlsCa, tlsCert, tlsKey }, service) };
    },
  };
}
