import { describe, expect, it } from 'vitest';
import { RingQueue } from '../src/ring-queue.js';

describe('RingQueue', () => {
  it('keeps first-in, first-out order while it wraps around and grows', () => {
    const queue = new RingQueue<number>();
    const shifted: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) queue.push(next++);
      for (let i = 0; i < 5; i++) shifted.push(queue.shift() ?? -1);
    }
    expect(shifted).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(queue.length).toBe(100);
    expect([queue.at(0), queue.at(99), queue.at(100)]).toEqual([250, 349, undefined]);
    expect(queue.slice(98)).toEqual([348, 349]);
  });

  it('is empty again after clear', () => {
    const queue = new RingQueue<string>();
    queue.push('a');
    queue.clear();
    expect([queue.length, queue.shift()]).toEqual([0, undefined]);
  });
});
