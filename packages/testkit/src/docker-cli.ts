import { execFile } from 'node:child_process';

/** The two docker CLIs on the machine, as the issue names them: version 28 and the docker.io 20.10. */
export const DOCKER_CLIS = [
  { name: 'docker 28', path: '/usr/local/bin/docker' },
  { name: 'docker 20.10', path: '/usr/bin/docker' },
] as const;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one docker CLI command against `dockerHost`, with a config directory of its own so the
 * machine's docker contexts and credentials play no part; never throws on a non-zero exit.
 */
export function runDocker(
  cli: string,
  dockerHost: string,
  args: readonly string[],
  options: { input?: string; configDir: string; env?: NodeJS.ProcessEnv },
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cli,
      [...args],
      {
        env: { PATH: process.env.PATH ?? '', HOME: options.configDir, DOCKER_HOST: dockerHost, DOCKER_CONFIG: options.configDir, ...options.env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
    // A command that exits without reading its input (most do) makes the write fail with EPIPE:
    // its exit status, not the unread input, is the result.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}
