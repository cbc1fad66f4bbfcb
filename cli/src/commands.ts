import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger, runProcess } from '@shoal/runtime';
import type { CliConfig } from './config.js';
import { hostComponents, type HostRole } from './host.js';
import { claimPidFile, ensureDirs, hostPaths, isAlive, readLiveStatus, releasePidFile, type HostStatus } from './state.js';

/** What a command prints and how the process should exit. */
export interface CommandResult {
  exitCode: number;
  stdout?: string;
  stderr?: string;
}

const cliMain = fileURLToPath(new URL('./main.js', import.meta.url));

function alreadyRunning(config: CliConfig, pid: number): CommandResult {
  return { exitCode: 1, stderr: `shoal is already running (supervisor pid ${pid}, data directory ${config.dataDir}); \`shoal down\` stops it` };
}

/** `shoal up`: runs this host's processes in the foreground until SIGINT/SIGTERM. */
export async function up(config: CliConfig, role: HostRole): Promise<CommandResult> {
  ensureDirs(config.dataDir);
  const holder = claimPidFile(config.dataDir);
  if (holder !== null) return alreadyRunning(config, holder);
  try {
    const log = createLogger({ service: 'shoal', level: config.logLevel });
    const { components, shutdownGraceMs } = hostComponents(config, role);
    const result = await runProcess({ service: 'shoal', log, shutdownGraceMs, components });
    return { exitCode: result.ok ? 0 : 1 };
  } finally {
    releasePidFile(config.dataDir);
  }
}

/**
 * `shoal up --detach`: starts `shoal up` in the background, logging to logs/shoal.log, and returns once
 * every process is ready. If that does not happen within the ready timeout the background supervisor is
 * stopped again, so a failed start leaves nothing running.
 */
export async function upDetached(config: CliConfig, role: HostRole): Promise<CommandResult> {
  ensureDirs(config.dataDir);
  const running = readLiveStatus(config.dataDir);
  if (running) return alreadyRunning(config, running.pid);
  const paths = hostPaths(config.dataDir);
  const logFd = openSync(paths.supervisorLog, 'a');
  const child = spawn(process.execPath, [cliMain, 'up', ...(role === 'worker' ? ['--worker'] : [])], { detached: true, stdio: ['ignore', logFd, logFd], env: process.env });
  closeSync(logFd);
  let exitCode: number | null = null;
  child.once('exit', (code) => (exitCode = code ?? 1));
  child.unref();
  const deadline = Date.now() + config.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== null) {
      return { exitCode: 1, stderr: `shoal failed to start (exit code ${exitCode}); last lines of ${paths.supervisorLog}:\n${tail(paths.supervisorLog)}` };
    }
    const status = readLiveStatus(config.dataDir);
    if (status && status.pid === child.pid && status.processes.length > 0 && status.processes.every((p) => p.state === 'ready')) {
      return { exitCode: 0, stdout: formatStatus(config, status) };
    }
    await sleep(100);
  }
  const status = readLiveStatus(config.dataDir);
  if (child.pid !== undefined) await stopSupervisor(child.pid);
  return {
    exitCode: 1,
    stderr: `shoal did not become ready within ${config.readyTimeoutMs / 1000}s and was stopped again${status ? `:\n${formatStatus(config, status)}` : ''}\nsee ${paths.logs}`,
  };
}

/** `shoal down`: stops this host's supervisor (which stops its processes in reverse order) and waits for it. */
export async function down(config: CliConfig): Promise<CommandResult> {
  const status = readLiveStatus(config.dataDir);
  if (!status) return { exitCode: 0, stdout: 'shoal is not running' };
  const stopped = await stopSupervisor(status.pid);
  return stopped
    ? { exitCode: 0, stdout: `shoal stopped (supervisor pid ${status.pid})` }
    : { exitCode: 1, stderr: `shoal supervisor pid ${status.pid} did not stop; see ${hostPaths(config.dataDir).supervisorLog}` };
}

/** `shoal status`: exit 0 when every process is ready, 1 when some are not, 3 when shoal is not running. */
export function status(config: CliConfig): CommandResult {
  const current = readLiveStatus(config.dataDir);
  if (!current) return { exitCode: 3, stdout: `shoal is not running (data directory ${config.dataDir})` };
  const allReady = current.processes.length > 0 && current.processes.every((p) => p.state === 'ready');
  return { exitCode: allReady ? 0 : 1, stdout: formatStatus(config, current) };
}

/** `shoal env`: the shell line that points the docker CLI at this host's Docker-compatible API. */
export function env(config: CliConfig): CommandResult {
  const current = readLiveStatus(config.dataDir);
  if (!current) return { exitCode: 1, stderr: 'shoal is not running; start it with `shoal up --detach`' };
  const endpoint = current.processes.map((p) => p.endpoints['docker']).find((e) => e !== undefined);
  if (!endpoint) {
    return { exitCode: 1, stderr: 'no Docker API is being served on this host: the api service has not reported an endpoint (see `shoal status`)' };
  }
  return { exitCode: 0, stdout: `export DOCKER_HOST=${endpoint}` };
}

/** Sends SIGTERM and waits for the supervisor to exit; the supervisor bounds its own shutdown. */
async function stopSupervisor(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  // Generous: the supervisor stops each child within its own stop timeout and then exits by itself.
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return false;
}

export function formatStatus(config: CliConfig, status: HostStatus): string {
  const rows = [['PROCESS', 'PID', 'STATE', 'RESTARTS'], ...status.processes.map((p) => [p.name, p.pid === null ? '-' : String(p.pid), p.state, String(p.restarts)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]! + 3)).join('').trimEnd()).join('\n');
  return `shoal is running (supervisor pid ${status.pid}, data directory ${config.dataDir})\n${table}`;
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
