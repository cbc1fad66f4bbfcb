import { join } from 'node:path';
import { errors } from '@shoal/errors';
import { commonSettings, defineConfig, setting, type ConfigDefinition } from '@shoal/runtime';

const settings = defineConfig({
  ...commonSettings,
  dataDir: setting.path('SHOAL_DATA_DIR', '/var/lib/shoal/agent', 'State directory: the node certificate, its key and the known managers (never task data).'),
  socket: setting.optionalString('SHOAL_AGENT_SOCKET', 'Unix socket of the control API the host\'s api uses; unset: agent.sock in SHOAL_DATA_DIR.'),
  dockerSocket: setting.path('SHOAL_DOCKER_SOCKET', '/var/run/docker.sock', 'The dockerd socket task containers are run through.'),
  secretsDir: setting.path('SHOAL_SECRETS_DIR', '/run/shoal/secrets', 'Where each task\'s in-memory (tmpfs) secrets and configs are mounted.'),
  hostname: setting.optionalString('SHOAL_HOSTNAME', 'Hostname to report instead of the engine\'s (several test nodes share one machine).'),
  nodeLabels: setting.optionalString('SHOAL_NODE_LABELS', 'Engine labels to report, as k=v,k=v.'),
  containerLabels: setting.optionalString('SHOAL_CONTAINER_LABELS', 'Labels added to every task container, as k=v,k=v (tests mark theirs with shoal.test=<run id>).'),
  joinToken: setting.optionalString('SHOAL_JOIN_TOKEN', 'Join token to join a swarm with at start when this host has no identity yet (hosts started as containers).'),
  joinAddr: setting.optionalString('SHOAL_JOIN_ADDR', 'The manager (host:port) to join through with SHOAL_JOIN_TOKEN.'),
});

type Settings = ReturnType<typeof settings.load>;

export type AgentConfig = Omit<Settings, 'socket' | 'nodeLabels' | 'containerLabels' | 'joinToken' | 'joinAddr'> & {
  readonly socket: string;
  readonly nodeLabels: Record<string, string>;
  readonly containerLabels: Record<string, string>;
  /** Join at start (when there is no identity yet) with this token through this manager. */
  readonly join: { readonly token: string; readonly address: string } | undefined;
};

/** Settings of the agent service, read once in main.ts: each variable's own check, then the ones across variables. */
export const agentConfig: ConfigDefinition<AgentConfig> = {
  ...settings,
  load(env = process.env) {
    const { socket, nodeLabels, containerLabels, joinToken, joinAddr, ...rest } = settings.load(env);
    if ((joinToken === undefined) !== (joinAddr === undefined)) throw errors.invalidArgument('SHOAL_JOIN_TOKEN and SHOAL_JOIN_ADDR go together: set both or neither');
    return {
      ...rest,
      socket: socket ?? join(rest.dataDir, 'agent.sock'),
      nodeLabels: parseLabels('SHOAL_NODE_LABELS', nodeLabels),
      containerLabels: parseLabels('SHOAL_CONTAINER_LABELS', containerLabels),
      join: joinToken === undefined || joinAddr === undefined ? undefined : { token: joinToken, address: joinAddr },
    };
  },
};

/** `k=v,k=v` as a map; INVALID_ARGUMENT naming the variable for an entry without `=` or key. */
function parseLabels(variable: string, text: string | undefined): Record<string, string> {
  if (text === undefined) return {};
  return Object.fromEntries(
    text.split(',').map((entry) => {
      const equals = entry.indexOf('=');
      if (equals <= 0) throw errors.invalidArgument(`${variable}: "${entry}" is not key=value`);
      return [entry.slice(0, equals).trim(), entry.slice(equals + 1).trim()];
    }),
  );
}
