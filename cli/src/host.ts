import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import type { Component } from '@shoal/runtime';
import { ChildProcessComponent, defaultRestartPolicy, type ChildSpec, type RestartPolicy } from './child-process.js';
import type { CliConfig } from './config.js';
import { ensureHostPki } from './host-pki.js';
import { hostPaths, writeStatus, type HostStatus, type ProcessStatus } from './state.js';

/**
 * Shoal's services in start order. Stopping runs in reverse, so the store outlives everything that uses it.
 */
export const serviceNames = ['raft', 'api', 'orchestrator', 'allocator', 'scheduler', 'dispatcher', 'ingress-lb', 'agent'] as const;
type ServiceName = (typeof serviceNames)[number];

/** What every host runs, manager or not: its Docker-compatible API, its routing-mesh dataplane and its agent. */
const everyHostServices: readonly ServiceName[] = ['api', 'ingress-lb', 'agent'];

/** The services a host runs: all of them on a host that can manage, the ones of every host on a worker-only host. */
export function hostServiceNames(role: HostRole): readonly ServiceName[] {
  return role === 'manager' ? serviceNames : serviceNames.filter((name) => everyHostServices.includes(name));
}

/**
 * `manager`: a host that can start a swarm (`docker swarm init`) or join one; it runs the store and
 * the manager services. `worker` (`shoal up --worker`): a host that only joins swarms as a worker.
 */
export type HostRole = 'manager' | 'worker';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The child processes `shoal up` runs on this host, in start order. */
export function hostProcesses(config: CliConfig, role: HostRole): ChildSpec[] {
  const paths = hostPaths(config.dataDir);
  const natsUrl = config.natsUrl ?? `nats://127.0.0.1:${config.natsPort}`;
  const children: ChildSpec[] = [];
  if (config.natsUrl === undefined && role === 'manager') {
    children.push({
      name: 'nats-server',
      command: config.natsServerBin,
      args: ['-a', '127.0.0.1', '-p', String(config.natsPort), '-n', 'shoal'],
      env: process.env,
      readiness: { kind: 'tcp', host: '127.0.0.1', port: config.natsPort },
      logFile: join(paths.logs, 'nats-server.log'),
    });
  }
  const agentSocket = join(paths.run, 'agent.sock');
  const managerPort = config.managerListen.slice(config.managerListen.lastIndexOf(':') + 1);
  // The manager services reach this host's raft replica with the host's own manager identity; nodes
  // reach the dispatcher with certificates of the swarm's CA, which `docker swarm init` makes.
  const managerEnv = (): Partial<Record<ServiceName, NodeJS.ProcessEnv>> => {
    const pki = ensureHostPki(config.dataDir);
    const managerIdentity = { SHOAL_TLS_CA: pki.ca, SHOAL_TLS_CERT: pki.cert, SHOAL_TLS_KEY: pki.key };
    const storeAccess = { ...managerIdentity, SHOAL_STORE_ADDRESS: `127.0.0.1:${config.raftPort}` };
    return {
      raft: { ...managerIdentity, SHOAL_RAFT_LISTEN: `127.0.0.1:${config.raftPort}` },
      orchestrator: storeAccess,
      allocator: storeAccess,
      scheduler: storeAccess,
      dispatcher: { ...storeAccess, SHOAL_DISPATCHER_LISTEN: config.managerListen },
      api: storeAccess,
    };
  };
  const roleEnv = role === 'manager' ? managerEnv() : { api: { SHOAL_API_WORKER_ONLY: 'true' } };
  const serviceEnv: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {
    ...roleEnv,
    api: {
      ...roleEnv.api,
      SHOAL_MANAGER_PORT: managerPort,
      SHOAL_ADVERTISE_ADDR: config.advertiseAddr,
      SHOAL_API_LISTEN: config.apiListen,
      SHOAL_API_SOCKET: join(paths.run, 'docker.sock'),
      SHOAL_AGENT_SOCKET: agentSocket,
    },
    agent: { SHOAL_AGENT_SOCKET: agentSocket },
  };
  for (const name of hostServiceNames(role)) {
    const serviceDataDir = join(config.dataDir, name);
    mkdirSync(serviceDataDir, { recursive: true });
    children.push({
      name,
      command: process.execPath,
      args: [join(repoRoot, 'services', name, 'dist', 'main.js')],
      env: {
        ...process.env,
        // Worker hosts run no NATS of their own: their processes reach the swarm through the dispatcher.
        ...(role === 'manager' || config.natsUrl !== undefined ? { SHOAL_NATS_URL: natsUrl } : {}),
        SHOAL_DATA_DIR: serviceDataDir,
        SHOAL_LOG_LEVEL: config.logLevel,
        ...serviceEnv[name],
      },
      readiness: { kind: 'ipc' },
      logFile: join(paths.logs, `${name}.log`),
    });
  }
  return children;
}

/**
 * The host supervisor's components, one per child process, publishing every state change to
 * `run/status.json` for `shoal status`; and the grace period that lets each of them stop in turn.
 */
export function hostComponents(config: CliConfig, role: HostRole, policy: RestartPolicy = defaultRestartPolicy): { components: Component[]; shutdownGraceMs: number } {
  const specs = hostProcesses(config, role);
  const status: HostStatus = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    processes: specs.map((spec) => ({ name: spec.name, pid: null, state: 'starting', restarts: 0, log: spec.logFile, endpoints: {} })),
  };
  const publish = (change: ProcessStatus) => {
    status.processes = status.processes.map((p) => (p.name === change.name ? change : p));
    writeStatus(config.dataDir, status);
  };
  writeStatus(config.dataDir, status);
  return {
    components: specs.map((spec) => new ChildProcessComponent(spec, policy, publish)),
    // Children stop one after another in reverse order, each within its own stop timeout.
    shutdownGraceMs: specs.length * policy.stopTimeoutMs + 5_000,
  };
}
