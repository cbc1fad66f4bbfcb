#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isShoalError } from '@shoal/errors';
import { cliConfig } from './config.js';
import { down, env, status, up, upDetached, type CommandResult } from './commands.js';

const usage = `Usage: shoal COMMAND [OPTIONS]

Commands:
  up [--detach] [--worker]
                  start this host's Shoal processes: nats-server (unless SHOAL_NATS_URL is set), the store and
                  the manager services, the API, the agent; with --worker only the API and the agent (a host
                  that joins swarms as a worker and cannot start one)
  down            stop them
  status          show each process, its pid and whether it is ready
  env             print the export DOCKER_HOST=... line for this host's Docker-compatible API

Settings (environment):
${cliConfig
  .describe()
  .map((s) => `  ${s.env.padEnd(22)} ${s.doc} (default: ${s.default || 'unset'})`)
  .join('\n')}`;

async function main(argv: string[]): Promise<CommandResult> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { exitCode: 0, stdout: usage };
  const flags: ParseArgsConfig['options'] = command === 'up' ? { detach: { type: 'boolean', short: 'd' }, worker: { type: 'boolean' } } : {};
  let values: { detach?: boolean | string; worker?: boolean | string };
  try {
    ({ values } = parseArgs({ args: rest, options: flags, strict: true, allowPositionals: false }));
  } catch (err) {
    return { exitCode: 2, stderr: `shoal ${command}: ${(err as Error).message}\n\n${usage}` };
  }
  const config = cliConfig.load();
  switch (command) {
    case 'up':
    {
      const role = values.worker === true ? 'worker' : 'manager';
      return values.detach === true ? upDetached(config, role) : up(config, role);
    }
    case 'down':
      return down(config);
    case 'status':
      return status(config);
    case 'env':
      return env(config);
    default:
      return { exitCode: 2, stderr: `shoal: unknown command "${command}"\n\n${usage}` };
  }
}

try {
  const result = await main(process.argv.slice(2));
  if (result.stdout) process.stdout.write(`${result.stdout}\n`);
  if (result.stderr) process.stderr.write(`${result.stderr}\n`);
  process.exitCode = result.exitCode;
} catch (err) {
  process.stderr.write(`shoal: ${isShoalError(err) ? err.message : String((err as Error).stack ?? err)}\n`);
  process.exitCode = 1;
}
