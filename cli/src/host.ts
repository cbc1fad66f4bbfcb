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
 * Until the manager/worker split lands (issue 6), every host runs all of them.
 */
export const serviceNames = ['raft', 'api', 'orchestrator', 'allocator', 'scheduler', 'dispatcher', 'ingress-lb', 'agent'] as const;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The child processes `shoal up` runs on this host, in start order. */
export function hostProcesses(config: CliConfig): ChildSpec[] {
  const { logs } = hostPaths(config.dataDir);
  const natsUrl = config.natsUrl ?? `nats://127.0.0.1:${config.natsPort}`;
  const children: ChildSpec[] = [];
  if (config.natsUrl === undefined) {
    children.push({
      name: 'nats-server',
      command: config.natsServerBin,
      args: ['-a', '127.0.0.1', '-p', String(config.natsPort), '-n', 'shoal'],
      env: process.env,
      readiness: { kind: 'tcp', host: '127.0.0.1', port: config.natsPort },
      logFile: join(logs, 'nats-server.log'),
    });
  }
  const pki = ensureHostPki(config.dataDir);
  const managerIdentity = { SHOAL_TLS_CA: pki.ca, SHOAL_TLS_CERT: pki.cert, SHOAL_TLS_KEY: pki.key };
  // The manager services reach this host's raft replica with the manager identity.
  const storeAccess = { ...managerIdentity, SHOAL_STORE_ADDRESS: `127.0.0.1:${config.raftPort}` };
  // What each service needs beyond the common settings; the others are skeletons for now.
  const serviceEnv: Partial<Record<(typeof serviceNames)[number], NodeJS.ProcessEnv>> = {
    raft: { ...managerIdentity, SHOAL_RAFT_LISTEN: `127.0.0.1:${config.raftPort}` },
    orchestrator: storeAccess,
    allocator: storeAccess,
    scheduler: storeAccess,
    api: {
      ...storeAccess,
      SHOAL_MANAGER_PORT: String(config.raftPort),
      SHOAL_API_LISTEN: config.apiListen,
      SHOAL_API_SOCKET: join(hostPaths(config.dataDir).run, 'docker.sock'),
    },
  };
  for (const name of serviceNames) {
    const serviceDataDir = join(config.dataDir, name);
    mkdirSync(serviceDataDir, { recursive: true });
    children.push({
      name,
      command: process.execPath,
      args: [join(repoRoot, 'services', name, 'dist', 'main.js')],
      env: {
        ...process.env,
        SHOAL_NATS_URL: natsUrl,
        SHOAL_DATA_DIR: serviceDataDir,
        SHOAL_LOG_LEVEL: config.logLevel,
        ...serviceEnv[name],
      },
      readiness: { kind: 'ipc' },
      logFile: join(logs, `${name}.log`),
    });
  }
  return children;
}

/**
 * The host supervisor's components, one per child process, publishing every state change to
 * `run/status.json` for `shoal status`; and the grace period that lets each of them stop in turn.
 */
export function hostComponents(config: CliConfig, policy: RestartPolicy = defaultRestartPolicy): { components: Component[]; shutdownGraceMs: number } {
  const specs = hostProcesses(config);
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
