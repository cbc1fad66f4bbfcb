/**
 * The bookkeeping under `IdPool` and `AddressPool`: which integers of a range are held,
 * one bit each, and a serial cursor for handing out free ones.
 *
 * Allocation is serial, as in libnetwork's bitseq with `serial = true` (what swarmkit asks for VIPs,
 * task addresses, VXLAN IDs and dynamic ports): the first free value after the previous allocation,
 * wrapping around to the start of the range. A value that was just released is therefore handed out
 * again only after every other free value, so peers that still cache the old holder (ARP and FDB
 * entries, IPVS backends) have time to forget it.
 *
 * One deliberate difference: libnetwork's cursor starts over at the beginning of the range whenever
 * the allocator is rebuilt (every swarmkit leader change), so the first allocations after a restart
 * reuse the lowest free values, which may have been released a moment before. Here marking a value
 * moves the cursor past it when it is ahead, so a bitmap rebuilt by marking every held value, in any
 * order, resumes after the highest one.
 */
export class SerialBitmap {
  private readonly words: Uint32Array;
  /** The value the next allocation looks at first, in [dynamicMin, dynamicMax + 1]. */
  private cursor: number;
  private dynamicFree: number;

  /**
   * @param min,max the values that can be marked (inclusive).
   * @param dynamicMin,dynamicMax the values {@link take} hands out (inclusive), within [min, max];
   *   an empty sub-range (dynamicMin > dynamicMax) hands out nothing.
   */
  constructor(
    private readonly min: number,
    max: number,
    private readonly dynamicMin: number,
    private readonly dynamicMax: number,
  ) {
    this.words = new Uint32Array(Math.ceil((max - min + 1) / 32));
    this.cursor = dynamicMin;
    this.dynamicFree = Math.max(0, dynamicMax - dynamicMin + 1);
  }

  /** How many values {@link take} can still hand out. */
  get available(): number {
    return this.dynamicFree;
  }

  /** True if `value` is marked. `value` must lie in [min, max]. */
  has(value: number): boolean {
    const bit = value - this.min;
    return (this.words[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /** Marks `value`, which must lie in [min, max]. Returns false if it was already marked. */
  mark(value: number): boolean {
    if (this.has(value)) return false;
    const bit = value - this.min;
    this.words[bit >>> 5]! |= 1 << (bit & 31);
    if (this.isDynamic(value)) {
      this.dynamicFree -= 1;
      if (value >= this.cursor) this.cursor = value + 1;
    }
    return true;
  }

  /** Unmarks `value`, which must lie in [min, max]; the cursor stays put. Returns false if it was not marked. */
  unmark(value: number): boolean {
    if (!this.has(value)) return false;
    const bit = value - this.min;
    this.words[bit >>> 5]! &= ~(1 << (bit & 31));
    if (this.isDynamic(value)) this.dynamicFree += 1;
    return true;
  }

  /** Marks and returns the first free dynamic value at or after the cursor, wrapping; undefined if none is free. */
  take(): number | undefined {
    if (this.dynamicFree === 0) return undefined;
    const first = this.dynamicMin - this.min;
    const last = this.dynamicMax - this.min;
    let bit = this.firstClear(this.cursor - this.min, last);
    if (bit < 0) bit = this.firstClear(first, last);
    const value = bit + this.min;
    this.mark(value);
    return value;
  }

  private isDynamic(value: number): boolean {
    return value >= this.dynamicMin && value <= this.dynamicMax;
  }

  /** The lowest unmarked bit in [from, to], or -1; skips whole words, so a full stretch costs 1/32 per bit. */
  private firstClear(from: number, to: number): number {
    if (from > to) return -1;
    let word = from >>> 5;
    const lastWord = to >>> 5;
    let clear = ~this.words[word]! & (-1 << (from & 31));
    while (clear === 0) {
      word += 1;
      if (word > lastWord) return -1;
      clear = ~this.words[word]!;
    }
    const bit = word * 32 + (31 - Math.clz32(clear & -clear));
    return bit <= to ? bit : -1;
  }
}
