import { randomBytes } from 'node:crypto';
import { errors } from '@shoal/errors';

/**
 * What a {@link SeededRandom} can be seeded with. Every seed is used through its decimal or literal
 * string form, so pass seeds above 2^53 as a bigint or a string: a `number` that large has already
 * lost digits before it gets here.
 */
export type Seed = string | number | bigint;

/** Environment variable that fixes the seed {@link testSeed} returns, to replay a failing run. */
export const TEST_SEED_ENV = 'SHOAL_TEST_SEED';

const UINT32_RANGE = 0x1_0000_0000;

/**
 * A small, fast, deterministic random source (xoshiro128**, 128 bits of state) for simulations.
 * The same seed always yields the same sequence on every platform, so a failing simulation can be
 * replayed from the seed it prints ({@link SeededRandom.seed}). Not for cryptography.
 */
export class SeededRandom {
  /** The seed in printable form; `new SeededRandom(r.seed)` replays `r` from its start. */
  readonly seed: string;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: Seed) {
    this.seed = String(seed);
    [this.s0, this.s1, this.s2, this.s3] = hashToState(this.seed);
  }

  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const shifted = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= shifted;
    this.s3 = rotateLeft(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / UINT32_RANGE;
  }

  /** A uniformly distributed integer in [min, max], both ends included. The span may be at most 2^32. */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max || max - min >= UINT32_RANGE) {
      throw errors.invalidArgument('int(min, max) needs integers with min <= max and a span of at most 2^32', { min, max });
    }
    const span = max - min + 1;
    // Rejection sampling: plain modulo would favour small values whenever span does not divide 2^32.
    const limit = UINT32_RANGE - (UINT32_RANGE % span);
    let draw = this.nextUint32();
    while (draw >= limit) draw = this.nextUint32();
    return min + (draw % span);
  }

  /**
   * True with the given probability. Always consumes exactly one draw, whatever the probability, so
   * tuning a probability in a scenario does not shift every later value.
   */
  chance(probability: number): boolean {
    if (!(probability >= 0 && probability <= 1)) {
      throw errors.invalidArgument('probability must be between 0 and 1', { probability });
    }
    return this.next() < probability;
  }

  /** One element of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw errors.invalidArgument('cannot pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** A shuffled copy of `items` (Fisher–Yates); the input is left untouched. */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const held = copy[i] as T;
      copy[i] = copy[j] as T;
      copy[j] = held;
    }
    return copy;
  }

  /**
   * An independent stream named `label`. It depends only on this source's seed and the label, not on
   * how many values were drawn before, so adding draws to one part of a simulation does not change the
   * values another part (with its own fork) sees.
   */
  fork(label: string): SeededRandom {
    return new SeededRandom(`${this.seed}/${label}`);
  }
}

/**
 * The seed for this test run: `SHOAL_TEST_SEED` if set (to replay a failure), otherwise a fresh random
 * one. Print it in assertion messages so a failing run can be replayed.
 */
export function testSeed(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[TEST_SEED_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : randomBytes(8).toString('hex');
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/**
 * cyrb128: spreads a string of any length over 128 bits, so similar seeds ("1", "2", "run/a") start
 * from unrelated states.
 */
function hashToState(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}
