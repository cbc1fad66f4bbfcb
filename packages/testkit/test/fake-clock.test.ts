import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { FakeClock } from '../src/fake-clock.js';

const invalidArgument = expect.objectContaining({ code: ErrorCode.InvalidArgument });

describe('FakeClock', () => {
  it('fires timers in due order, breaking ties by the order they were scheduled', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    const record = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimeout(record('c'), 30);
    clock.setTimeout(record('a'), 10);
    clock.setTimeout(record('b'), 10);
    clock.setTimeout(record('d'), 20);

    expect(clock.advance(30)).toBe(4);
    expect(fired).toEqual(['a@10', 'b@10', 'd@20', 'c@30']);
  });

  it('keeps timers due after the advanced time for a later advance', () => {
    const clock = new FakeClock({ startMs: 1_000 });
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 10);

    clock.advance(9);
    expect(fired).toEqual([]);
    expect(clock.now()).toBe(1_009);
    expect(clock.pendingTimers).toBe(1);
    expect(clock.nextDueAt()).toBe(1_010);

    clock.advance(1);
    expect(fired).toEqual([1_010]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('never fires a cleared timeout or interval', () => {
    const clock = new FakeClock();
    let fired = 0;
    const timeout = clock.setTimeout(() => fired++, 5);
    const interval = clock.setInterval(() => fired++, 5);
    clock.clearTimeout(timeout);
    clock.clearInterval(interval);

    clock.advance(100);
    expect(fired).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('repeats an interval at each multiple of its period until it clears itself', () => {
    const clock = new FakeClock();
    const ticks: number[] = [];
    const interval = clock.setInterval(() => {
      ticks.push(clock.now());
      if (ticks.length === 3) clock.clearInterval(interval);
    }, 5);

    clock.advance(100);
    expect(ticks).toEqual([5, 10, 15]);
  });

  it('fires, within the same advance, timers that firing callbacks schedule when they fall due in it', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.setTimeout(() => {
      fired.push(`first@${clock.now()}`);
      clock.setTimeout(() => fired.push(`follow-up@${clock.now()}`), 0);
      clock.setTimeout(() => fired.push(`late@${clock.now()}`), 50);
    }, 10);

    clock.advance(20);
    expect(fired).toEqual(['first@10', 'follow-up@10']);
    expect(clock.nextDueAt()).toBe(60);
  });

  it('runNext jumps straight to the next due timer and reports when nothing is left', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 250);

    expect(clock.runNext()).toBe(true);
    expect(fired).toEqual([250]);
    expect(clock.runNext()).toBe(false);
    expect(clock.now()).toBe(250);
  });

  it('refuses to move time backwards or by a negative amount', () => {
    const clock = new FakeClock({ startMs: 100 });
    expect(() => clock.advanceTo(99)).toThrow(invalidArgument);
    expect(() => clock.advance(-1)).toThrow(invalidArgument);
    expect(() => clock.setInterval(() => {}, 0)).toThrow(invalidArgument);
    expect(clock.now()).toBe(100);
  });

  it('advanceAsync lets async code that awaits sleeps run through every timer in the window', async () => {
    const clock = new FakeClock();
    const wokeAt: number[] = [];
    const sleeper = (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(10);
        wokeAt.push(clock.now());
      }
    })();

    await clock.advanceAsync(30);
    await sleeper;
    expect(wokeAt).toEqual([10, 20, 30]);
  });
});
