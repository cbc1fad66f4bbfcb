import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, hasCode } from '@shoal/errors';
import { describe, expect, it } from 'vitest';
import { Supervisor, idleComponent, untilAborted, type Component, type ComponentContext } from '../src/index.js';
import { captureLogs } from '../src/testing.js';

/** A component whose every step the test triggers by hand, recording what happened in `events`. */
class ScriptedComponent implements Component {
  ctx: ComponentContext | undefined;
  #fail!: (err: Error) => void;
  #exit!: () => void;
  readonly #failed = new Promise<never>((_, reject) => (this.#fail = reject));
  readonly #exited = new Promise<void>((resolve) => (this.#exit = resolve));

  constructor(
    readonly name: string,
    private readonly events: string[],
    private readonly behaviour: { readyAtOnce?: boolean; ignoresAbort?: boolean } = {},
  ) {}

  async run(ctx: ComponentContext): Promise<void> {
    this.ctx = ctx;
    this.events.push(`start ${this.name}`);
    if (this.behaviour.readyAtOnce ?? true) this.ready();
    const stopped = this.behaviour.ignoresAbort ? new Promise<void>(() => {}) : untilAborted(ctx.signal);
    await Promise.race([stopped.then(() => this.events.push(`stop ${this.name}`)), this.#failed, this.#exited]);
  }

  ready(): void {
    this.events.push(`ready ${this.name}`);
    this.ctx?.ready();
  }

  /** Makes `run` reject now. */
  fail(err: Error): void {
    this.#fail(err);
  }

  /** Makes `run` resolve now, whether or not it was asked to stop. */
  exit(): void {
    this.#exit();
  }
}

function supervise(components: Component[], shutdownGraceMs = 5_000) {
  const logs = captureLogs();
  return { supervisor: new Supervisor({ log: logs.log, components, shutdownGraceMs }), logs };
}

describe('Supervisor', () => {
  it('starts components in order, each after the previous one is ready, and is ready only after all are', async () => {
    const events: string[] = [];
    const a = new ScriptedComponent('a', events);
    const b = new ScriptedComponent('b', events, { readyAtOnce: false });
    const c = new ScriptedComponent('c', events);
    const { supervisor } = supervise([a, b, c]);

    let started = false;
    const starting = supervisor.start().then(() => (started = true));
    await sleep(20);
    expect(events).toEqual(['start a', 'ready a', 'start b']);
    expect(started).toBe(false);
    expect(supervisor.isReady).toBe(false);

    b.ready();
    await starting;
    expect(events).toEqual(['start a', 'ready a', 'start b', 'ready b', 'start c', 'ready c']);
    expect(supervisor.isReady).toBe(true);
    await supervisor.stop();
  });

  it('stops components in reverse order and reports a clean result', async () => {
    const events: string[] = [];
    const { supervisor } = supervise(['a', 'b', 'c'].map((name) => new ScriptedComponent(name, events)));
    await supervisor.start();
    events.length = 0;

    const result = await supervisor.stop('test over');
    expect(events).toEqual(['stop c', 'stop b', 'stop a']);
    expect(result).toEqual({ ok: true, failures: [], timedOut: [] });
    expect(await supervisor.done).toBe(result);
    expect(supervisor.isReady).toBe(false);
  });

  it('reports a component that outlives the grace period as timed out, still aborts the rest, and is not ok', async () => {
    const events: string[] = [];
    const a = new ScriptedComponent('a', events);
    const stuck = new ScriptedComponent('stuck', events, { ignoresAbort: true });
    const c = new ScriptedComponent('c', events);
    const { supervisor } = supervise([a, stuck, c], 50);
    await supervisor.start();

    const result = await supervisor.stop();
    expect(result.ok).toBe(false);
    expect(result.timedOut).toEqual(['stuck', 'a']);
    expect(result.failures).toEqual([]);
    expect(a.ctx?.signal.aborted).toBe(true);
    expect(events).toContain('stop c');
  });

  it('stops every other component in reverse order when one fails, and the result names the failure', async () => {
    const events: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((name) => new ScriptedComponent(name, events)) as [ScriptedComponent, ScriptedComponent, ScriptedComponent];
    const { supervisor, logs } = supervise([a, b, c]);
    await supervisor.start();
    events.length = 0;

    const boom = new Error('disk full');
    b.fail(boom);
    const result = await supervisor.done;
    expect(events).toEqual(['stop c', 'stop a']);
    expect(result).toEqual({ ok: false, failures: [{ component: 'b', error: boom }], timedOut: [] });
    expect(logs.entries).toContainEqual(expect.objectContaining({ component: 'b', state: 'failed', err: expect.objectContaining({ message: 'disk full' }) }));
  });

  it('treats a component that returns before it is asked to stop as failed', async () => {
    const events: string[] = [];
    const a = new ScriptedComponent('a', events);
    const quitter = new ScriptedComponent('quitter', events);
    const { supervisor } = supervise([a, quitter]);
    await supervisor.start();

    quitter.exit();
    const result = await supervisor.done;
    expect(result.ok).toBe(false);
    expect(result.failures.map((f) => f.component)).toEqual(['quitter']);
    expect(hasCode(result.failures[0]?.error, ErrorCode.Internal)).toBe(true);
    expect(events).toContain('stop a');
  });

  it('rejects start with CANCELLED when a component fails before it is ready, and never starts the later ones', async () => {
    const events: string[] = [];
    const a = new ScriptedComponent('a', events);
    const b = new ScriptedComponent('b', events, { readyAtOnce: false });
    const c = new ScriptedComponent('c', events);
    const { supervisor } = supervise([a, b, c]);

    const starting = supervisor.start();
    await sleep(10);
    b.fail(new Error('port in use'));
    await expect(starting).rejects.toSatisfy((err: unknown) => hasCode(err, ErrorCode.Cancelled));
    const result = await supervisor.done;
    expect(result.failures.map((f) => f.component)).toEqual(['b']);
    expect(events).not.toContain('start c');
    expect(events).toContain('stop a');
  });

  it('rejects start with CANCELLED when stopped before every component is ready, and the clean stop is ok', async () => {
    const events: string[] = [];
    const a = new ScriptedComponent('a', events, { readyAtOnce: false });
    const { supervisor } = supervise([a]);

    const starting = supervisor.start();
    const result = await supervisor.stop('signal');
    await expect(starting).rejects.toSatisfy((err: unknown) => hasCode(err, ErrorCode.Cancelled));
    expect(result).toEqual({ ok: true, failures: [], timedOut: [] });
    expect(events).toEqual(['start a', 'stop a']);
  });

  it('counts a rejection with the abort error after the abort as a clean stop', async () => {
    const sleeper: Component = {
      name: 'sleeper',
      async run(ctx) {
        ctx.ready();
        await sleep(60_000, undefined, { signal: ctx.signal });
      },
    };
    const { supervisor } = supervise([sleeper]);
    await supervisor.start();
    expect(await supervisor.stop()).toEqual({ ok: true, failures: [], timedOut: [] });
  });

  it('logs every lifecycle transition as data with the component name', async () => {
    const { supervisor, logs } = supervise([new ScriptedComponent('a', [])]);
    await supervisor.start();
    await supervisor.stop();
    const transitions = logs.entries.filter((e) => e.component === 'a').map((e) => e.state);
    expect(transitions).toEqual(['starting', 'ready', 'stopping', 'stopped']);
  });

  it('runs an idle component that reports ready, logs why it does nothing, and stops cleanly', async () => {
    const { supervisor, logs } = supervise([idleComponent('allocator', 'IPAM arrives with the allocator issue')]);
    await supervisor.start();
    expect(logs.entries).toContainEqual(expect.objectContaining({ component: 'allocator', state: 'idle', reason: 'IPAM arrives with the allocator issue' }));
    expect(await supervisor.stop()).toEqual({ ok: true, failures: [], timedOut: [] });
  });

  it('refuses two components with the same name', () => {
    expect(() => supervise([new ScriptedComponent('a', []), new ScriptedComponent('a', [])])).toThrow(/two components are named a/);
  });

  it('refuses to start twice', async () => {
    const { supervisor } = supervise([new ScriptedComponent('a', [])]);
    await supervisor.start();
    await expect(supervisor.start()).rejects.toSatisfy((err: unknown) => hasCode(err, ErrorCode.FailedPrecondition));
    await supervisor.stop();
  });
});
