import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyMessage } from '../src/index.js';
import type { LogEntry } from '../src/testing.js';

const fixture = fileURLToPath(new URL('./fixtures/three-components.mjs', import.meta.url));
const builtPackage = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Starts the fixture service as a child process with an IPC channel, collecting its log lines. */
function startFixture(env: Record<string, string> = {}, { ipc = true } = {}) {
  const child = spawn(process.execPath, [fixture], {
    stdio: ['ignore', 'pipe', 'inherit', ...(ipc ? ['ipc' as const] : [])],
    env: { ...process.env, ...env },
  });
  const entries: LogEntry[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) entries.push(JSON.parse(line) as LogEntry);
  });
  const ready = new Promise<ReadyMessage>((resolve) => child.on('message', (m) => resolve(m as ReadyMessage)));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  children.push(child);
  return { child, entries, ready, exited };
}

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

const statesOf = (entries: LogEntry[], state: string) => entries.filter((e) => e.state === state && e.component !== undefined).map((e) => e.component);

describe('runProcess', () => {
  beforeAll(() => {
    expect(existsSync(builtPackage), 'the fixture imports the built package: run `npx tsc -b` first').toBe(true);
  });

  it('announces readiness to its parent, and on SIGTERM stops components in reverse order and exits 0', async () => {
    const service = startFixture();
    expect(await service.ready).toEqual({ type: 'shoal.ready', service: 'fixture', pid: service.child.pid });
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(statesOf(service.entries, 'stopped')).toEqual(['c', 'b', 'a']);
    expect(service.entries).toContainEqual(expect.objectContaining({ state: 'stopping', reason: 'received SIGTERM' }));
  });

  it('stops cleanly when its parent closes the IPC channel, so a dead supervisor leaves no orphans', async () => {
    const service = startFixture();
    await service.ready;
    service.child.disconnect();
    expect(await service.exited).toBe(0);
    expect(statesOf(service.entries, 'stopped')).toEqual(['c', 'b', 'a']);
    expect(service.entries).toContainEqual(expect.objectContaining({ state: 'stopping', reason: 'parent process went away' }));
  });

  it('exits 2 before starting anything when its configuration is invalid, naming every bad setting', async () => {
    const child = spawn(process.execPath, [fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SHOAL_LOG_LEVEL: 'loud', SHOAL_SHUTDOWN_GRACE: 'soon' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toContain('fixture: invalid configuration:');
    expect(stderr).toContain('SHOAL_LOG_LEVEL=loud');
    expect(stderr).toContain('SHOAL_SHUTDOWN_GRACE=soon');
    expect(stdout).toBe('');
  });

  it('stays up with nothing but idle components until signalled, even without a parent channel', async () => {
    const service = startFixture({ FIXTURE_IDLE: '1' }, { ipc: false });
    await expect.poll(() => service.entries.some((e) => e.msg === 'ready')).toBe(true);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(statesOf(service.entries, 'stopped')).toEqual(['c', 'b', 'a']);
  });

  it('exits 1 after stopping the others when a component fails', async () => {
    const service = startFixture({ FIXTURE_FAILING: 'b' });
    await service.ready;
    service.child.kill('SIGUSR2');
    expect(await service.exited).toBe(1);
    expect(statesOf(service.entries, 'failed')).toEqual(['b']);
    expect(statesOf(service.entries, 'stopped')).toEqual(['c', 'a']);
  });

  it('exits 1 when a component ignores the stop beyond the grace period, even though it keeps the event loop busy', async () => {
    const service = startFixture({ FIXTURE_STUCK: 'b', SHOAL_SHUTDOWN_GRACE: '200ms' });
    await service.ready;
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(1);
    // Both are abandoned; the order they are abandoned in is pinned by supervisor.test.ts, in process.
    // Here, on a loaded machine, it was once seen reversed in the child's log (not yet explained).
    expect(statesOf(service.entries, 'timed-out').sort()).toEqual(['a', 'b']);
    expect(statesOf(service.entries, 'stopped')).toEqual(['c']);
  });

  it('exits 1 at once on a second signal instead of waiting out the grace period', async () => {
    const service = startFixture({ FIXTURE_STUCK: 'b', SHOAL_SHUTDOWN_GRACE: '10m' });
    await service.ready;
    service.child.kill('SIGTERM');
    await expect.poll(() => statesOf(service.entries, 'stopped')).toEqual(['c']);
    service.child.kill('SIGINT');
    expect(await service.exited).toBe(1);
  });
});
