import { describe, expect, it } from 'vitest';
import { newId } from '../src/identity.js';

const fixedBytes = (bytes: number[]) => () => Uint8Array.from(bytes);

describe('newId', () => {
  it('returns 25 lowercase base-36 characters', () => {
    for (let i = 0; i < 1000; i++) expect(newId()).toMatch(/^[0-9a-z]{25}$/);
  });

  it('does not repeat across many calls', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId()));
    expect(ids.size).toBe(10_000);
  });

  // Expected values computed independently (Python int → base 36) the way swarmkit's
  // identity.NewID does it: set the high bit of 17 bytes, format in base 36, keep digits 1..25.
  it.each([
    ['all zero bytes', Array<number>(17).fill(0), 'hvy0lj3x0b883f8e30fyp2172'],
    ['all 0xff bytes', Array<number>(17).fill(0xff), 'zrw1727u0mgg6ugs60vxe42e4'],
    ['bytes 1..17', Array.from({ length: 17 }, (_, i) => i + 1), 'ib7wwa7iw3swndjw6xned85q8'],
  ])('derives the ID from the random bytes exactly as swarmkit (%s)', (_label, bytes, expected) => {
    expect(newId(fixedBytes(bytes))).toBe(expected);
  });

  it('asks the random source for 17 bytes and refuses any other amount', () => {
    const asked: number[] = [];
    newId((size) => {
      asked.push(size);
      return new Uint8Array(size);
    });
    expect(asked).toEqual([17]);
    expect(() => newId(() => new Uint8Array(16))).toThrow(/returned 16 bytes, want 17/);
  });
});
