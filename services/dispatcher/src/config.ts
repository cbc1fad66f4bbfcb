import { newId } from '@shoal/proto';
import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';
import { storeAccessSettings, withStoreAccess, type WithStoreAccess } from '@shoal/store-client';

const settings = defineConfig({
  ...commonSettings,
  ...storeAccessSettings,
  listen: setting.hostPort(
    'SHOAL_DISPATCHER_LISTEN',
    '0.0.0.0:2377',
    "Where nodes reach the dispatcher and the node CA: Docker's manager port, the one address `docker swarm join` names.",
  ),
  natsUrl: setting.optionalString('SHOAL_NATS_URL', 'NATS server that log subscriptions and log lines travel over; unset: `docker service logs` gets nothing from this dispatcher.'),
  instance: setting.optionalString(
    'SHOAL_DISPATCHER_INSTANCE',
    'Names this dispatcher in node.status.dispatcher and its lease `dispatcher.<instance>`; unset: a fresh random ID per process.',
  ),
  leaseTtlMs: setting.duration(
    'SHOAL_DISPATCHER_LEASE_TTL',
    10_000,
    "How long this instance's lease lasts unrenewed: the other dispatchers take over its nodes at most this long after it dies.",
  ),
});

/** The dispatcher's settings, with the Store API identity read from its PEM files and the instance named. */
export type DispatcherConfig = Omit<WithStoreAccess<ReturnType<typeof settings.load>>, 'instance'> & { readonly instance: string };

const withStore = withStoreAccess(settings, 'dispatcher');

/** Settings of the dispatcher service, read once in main.ts. The heartbeat period is not one: it is the cluster's. */
export const dispatcherConfig: ConfigDefinition<DispatcherConfig> = {
  ...withStore,
  load(env = process.env) {
    const loaded = withStore.load(env);
    return { ...loaded, instance: loaded.instance ?? newId() };
  },
};
