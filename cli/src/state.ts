import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/** What `shoal status` shows about one supervised process. */
export interface ProcessStatus {
  name: string;
  pid: number | null;
  state: 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';
  restarts: number;
  log: string;
  /** Endpoints the process advertised when it became ready (e.g. `docker` → `tcp://127.0.0.1:2375`). */
  endpoints: Record<string, string>;
}

/** The host supervisor's published view of itself, rewritten atomically on every change. */
export interface HostStatus {
  pid: number;
  startedAt: string;
  processes: ProcessStatus[];
}

/** Paths of this host's state under the data directory. */
export function hostPaths(dataDir: string) {
  const run = join(dataDir, 'run');
  const logs = join(dataDir, 'logs');
  return { run, logs, pidFile: join(run, 'shoal.pid'), statusFile: join(run, 'status.json'), supervisorLog: join(logs, 'shoal.log') };
}

export function ensureDirs(dataDir: string): void {
  const paths = hostPaths(dataDir);
  mkdirSync(paths.run, { recursive: true });
  mkdirSync(paths.logs, { recursive: true });
}

/** Writes via a temporary file and rename so readers never see a half-written status. */
export function writeStatus(dataDir: string, status: HostStatus): void {
  const { statusFile } = hostPaths(dataDir);
  const tmp = `${statusFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(status, null, 2));
  renameSync(tmp, statusFile);
}

/** The status of a running host supervisor, or null when none is running (stale files are ignored). */
export function readLiveStatus(dataDir: string): HostStatus | null {
  const pid = readPid(dataDir);
  if (pid === null || !isAlive(pid)) return null;
  try {
    const status = JSON.parse(readFileSync(hostPaths(dataDir).statusFile, 'utf8')) as HostStatus;
    return status.pid === pid ? status : { pid, startedAt: '', processes: [] };
  } catch {
    return { pid, startedAt: '', processes: [] };
  }
}

export function readPid(dataDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(hostPaths(dataDir).pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Whether a process is running. A zombie (exited, not yet reaped) counts as dead: a detached supervisor
 * is reaped by init, which may take its time, and `kill(pid, 0)` still succeeds on zombies.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat is "pid (comm) state ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Claims the pid file for this process. Exclusive creation makes two concurrent `shoal up` on one data
 * directory impossible; a pid file left by a dead supervisor is taken over.
 * @returns the pid of the live supervisor that already holds it, or null when this process now holds it.
 */
export function claimPidFile(dataDir: string): number | null {
  const { pidFile } = hostPaths(dataDir);
  for (;;) {
    try {
      const fd = openSync(pidFile, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPid(dataDir);
      if (holder !== null && holder !== process.pid && isAlive(holder)) return holder;
      unlinkSync(pidFile);
    }
  }
}

/** Removes the pid and status files if they still belong to this process. */
export function releasePidFile(dataDir: string): void {
  if (readPid(dataDir) !== process.pid) return;
  const { pidFile, statusFile } = hostPaths(dataDir);
  for (const file of [statusFile, pidFile]) {
    try {
      unlinkSync(file);
    } catch {
      // already gone: nothing to release
    }
  }
}
