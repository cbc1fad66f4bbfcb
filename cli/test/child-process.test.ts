import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { createLogger } from '@shoal/runtime';
import { ChildProcessComponent, type ChildSpec, type RestartPolicy } from '../src/child-process.js';
import type { ProcessStatus } from '../src/state.js';
import { isAlive } from '../src/state.js';

const quickPolicy: RestartPolicy = { maxRestarts: 2, windowMs: 60_000, initialBackoffMs: 10, maxBackoffMs: 20, stopTimeoutMs: 300 };
const log = createLogger({ service: 'test', level: 'silent' });
const dirs: string[] = [];

function nodeChild(name: string, script: string, readiness: ChildSpec['readiness'] = { kind: 'ipc' }): ChildSpec {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-cli-test-'));
  dirs.push(dir);
  return { name, command: process.execPath, args: ['-e', script], env: process.env, readiness, logFile: join(dir, `${name}.log`) };
}

function runComponent(spec: ChildSpec, policy = quickPolicy) {
  const history: ProcessStatus[] = [];
  const component = new ChildProcessComponent(spec, policy, (s) => history.push(s));
  const controller = new AbortController();
  let ready!: () => void;
  const readyPromise = new Promise<void>((resolve) => (ready = resolve));
  const done = component.run({ signal: controller.signal, ready, log });
  return { history, controller, readyPromise, done };
}

const readyAndWait = "process.send({type:'shoal.ready', endpoints:{docker:'tcp://127.0.0.1:1'}}); setInterval(() => {}, 1000);";

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ChildProcessComponent', () => {
  it('is ready only after the child says so over IPC, and records the endpoints it advertises', async () => {
    const run = runComponent(nodeChild('svc', readyAndWait));
    await run.readyPromise;
    const last = run.history.at(-1)!;
    expect(last.state).toBe('ready');
    expect(last.endpoints).toEqual({ docker: 'tcp://127.0.0.1:1' });
    run.controller.abort();
    await run.done;
    expect(run.history.at(-1)!.state).toBe('stopped');
    expect(isAlive(last.pid!)).toBe(false);
  });

  it('restarts a child that crashes after becoming ready, with a new pid', async () => {
    // The first incarnation exits right after reporting ready; later ones stay up.
    const dir = mkdtempSync(join(tmpdir(), 'shoal-cli-test-'));
    dirs.push(dir);
    const marker = join(dir, 'crashed-once');
    const script = `const fs=require('fs'); process.send({type:'shoal.ready'});
      if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ''); setTimeout(() => process.exit(7), 50); }
      else setInterval(() => {}, 1000);`;
    const run = runComponent(nodeChild('crashy', script));
    await run.readyPromise;
    const firstPid = run.history.find((s) => s.state === 'ready')!.pid;
    await expect.poll(() => run.history.filter((s) => s.state === 'ready').length, { timeout: 10_000 }).toBe(2);
    const secondReady = run.history.filter((s) => s.state === 'ready')[1]!;
    expect(secondReady.restarts).toBe(1);
    expect(secondReady.pid).not.toBe(firstPid);
    run.controller.abort();
    await run.done;
  });

  it('fails once the child keeps exiting more often than the restart policy allows', async () => {
    const run = runComponent(nodeChild('doomed', 'process.exit(3)'));
    await expect(run.done).rejects.toThrow(/doomed exited with code 3 3 times within 60s; giving up/);
    expect(run.history.at(-1)!.state).toBe('failed');
  });

  it('kills a child that ignores SIGTERM once the stop timeout passes', async () => {
    const run = runComponent(nodeChild('stubborn', `process.on('SIGTERM', () => {}); ${readyAndWait}`));
    await run.readyPromise;
    const pid = run.history.at(-1)!.pid!;
    run.controller.abort();
    await run.done;
    expect(isAlive(pid)).toBe(false);
  });

  describe('with TCP readiness', () => {
    let server: Server | undefined;
    afterEach(() => server?.close());

    it('is ready once the port accepts connections', async () => {
      server = createServer();
      const port = await new Promise<number>((resolve) => server!.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)));
      const run = runComponent(nodeChild('tcp', 'setInterval(() => {}, 1000)', { kind: 'tcp', host: '127.0.0.1', port }));
      await run.readyPromise;
      expect(run.history.at(-1)!.state).toBe('ready');
      run.controller.abort();
      await run.done;
    });
  });
});
