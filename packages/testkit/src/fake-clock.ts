import { errors } from '@shoal/errors';
import { MinHeap } from './min-heap.js';

interface ScheduledTimer {
  readonly id: number;
  readonly callback: () => void;
  /** Set for intervals: the timer is re-armed this many milliseconds after each firing. */
  readonly intervalMs: number | undefined;
  dueAt: number;
  /** Scheduling order; breaks ties between timers due at the same instant. */
  sequence: number;
}

/** Options for {@link FakeClock}. */
export interface FakeClockOptions {
  /**
   * The value `now()` returns before any time has passed.
   * @default 0
   */
  startMs?: number;
}

/**
 * A clock whose time moves only when the test says so. Code under test takes it where it would take
 * the real timer functions (`now`, `setTimeout`, `clearTimeout`, `setInterval`, `clearInterval` have
 * the same shapes), and the test moves time with {@link FakeClock.advance} or
 * {@link FakeClock.runNext}.
 *
 * Timers fire in order of their due time; timers due at the same instant fire in the order they were
 * scheduled. While a timer fires, `now()` reads its due time, so callbacks observe the instant they
 * were scheduled for. Callbacks run synchronously inside `advance`; an exception from one propagates
 * to the caller after the clock has already consumed that timer, so the clock stays consistent.
 */
export class FakeClock {
  private currentMs: number;
  private nextId = 1;
  private nextSequence = 0;
  private readonly active = new Map<number, ScheduledTimer>();
  /** May hold cancelled timers; they are skipped when they reach the top. */
  private readonly queue = new MinHeap<ScheduledTimer>(
    (a, b) => a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.sequence < b.sequence),
  );

  constructor(options: FakeClockOptions = {}) {
    this.currentMs = options.startMs ?? 0;
  }

  /** The current fake time in milliseconds. */
  now(): number {
    return this.currentMs;
  }

  /** Number of timers that have not fired (intervals count until cleared). */
  get pendingTimers(): number {
    return this.active.size;
  }

  /** Due time of the next timer to fire, or `undefined` when nothing is scheduled. */
  nextDueAt(): number | undefined {
    return this.peekActive()?.dueAt;
  }

  /**
   * Runs `callback` once, `delayMs` from now. Negative delays count as zero, as with the real
   * `setTimeout`; a zero-delay timer fires on the next `advance`, even `advance(0)`.
   */
  setTimeout(callback: () => void, delayMs: number): number {
    return this.schedule(callback, delayMs, undefined);
  }

  /** Runs `callback` every `intervalMs` (at least 1, so an advance always terminates) until cleared. */
  setInterval(callback: () => void, intervalMs: number): number {
    if (!(intervalMs >= 1)) throw errors.invalidArgument('interval must be at least 1 ms', { intervalMs });
    return this.schedule(callback, intervalMs, intervalMs);
  }

  /** Cancels a timeout or an interval. Unknown or already fired ids are ignored, as with the real one. */
  clearTimeout(timerId: number | undefined): void {
    if (timerId !== undefined) this.active.delete(timerId);
  }

  /** Same as {@link FakeClock.clearTimeout}: timeouts and intervals share one id space. */
  clearInterval(timerId: number | undefined): void {
    this.clearTimeout(timerId);
  }

  /** Moves time forward by `ms`, firing every timer due up to the new time. Returns how many fired. */
  advance(ms: number): number {
    return this.advanceTo(this.currentMs + this.checkedDuration(ms));
  }

  /** Moves time forward to `timeMs`, firing every timer due up to then. Returns how many fired. */
  advanceTo(timeMs: number): number {
    this.checkTarget(timeMs);
    let fired = 0;
    while (this.fireNextDueBy(timeMs)) fired++;
    this.moveForwardTo(timeMs);
    return fired;
  }

  /**
   * Like {@link FakeClock.advance}, but lets pending promise continuations run before the first timer
   * and after each one. Use it for async code (`await clock.sleep(…)` loops), where a callback's effect
   * only becomes visible once the microtasks it queued have run.
   */
  async advanceAsync(ms: number): Promise<number> {
    const target = this.currentMs + this.checkedDuration(ms);
    let fired = 0;
    await settle();
    while (this.fireNextDueBy(target)) {
      fired++;
      await settle();
    }
    this.moveForwardTo(target);
    return fired;
  }

  /** Jumps to the next due timer and fires it. Returns false, leaving time alone, if nothing is scheduled. */
  runNext(): boolean {
    const next = this.peekActive();
    return next !== undefined && this.fireNextDueBy(next.dueAt);
  }

  /** A promise that resolves when the clock has been advanced `ms` past now. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  private schedule(callback: () => void, delayMs: number, intervalMs: number | undefined): number {
    if (Number.isNaN(delayMs)) throw errors.invalidArgument('timer delay is NaN');
    const timer: ScheduledTimer = {
      id: this.nextId++,
      callback,
      intervalMs,
      dueAt: this.currentMs + Math.max(0, delayMs),
      sequence: this.nextSequence++,
    };
    this.active.set(timer.id, timer);
    this.queue.push(timer);
    return timer.id;
  }

  private fireNextDueBy(limitMs: number): boolean {
    const timer = this.peekActive();
    if (timer === undefined || timer.dueAt > limitMs) return false;
    this.queue.pop();
    this.currentMs = timer.dueAt;
    if (timer.intervalMs === undefined) {
      this.active.delete(timer.id);
    } else {
      timer.dueAt += timer.intervalMs;
      timer.sequence = this.nextSequence++;
      this.queue.push(timer);
    }
    timer.callback();
    return true;
  }

  /** A callback may itself have advanced the clock past the target; time never moves back. */
  private moveForwardTo(timeMs: number): void {
    this.currentMs = Math.max(this.currentMs, timeMs);
  }

  private peekActive(): ScheduledTimer | undefined {
    for (;;) {
      const top = this.queue.peek();
      if (top === undefined || this.active.get(top.id) === top) return top;
      this.queue.pop();
    }
  }

  private checkedDuration(ms: number): number {
    if (!(ms >= 0)) throw errors.invalidArgument('cannot advance a clock by a negative or NaN duration', { ms });
    return ms;
  }

  private checkTarget(timeMs: number): void {
    if (!(timeMs >= this.currentMs)) {
      throw errors.invalidArgument('a clock cannot move backwards', { now: this.currentMs, target: timeMs });
    }
  }
}

/** Resolves after every microtask queued so far has run (a macrotask boundary on the real event loop). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
