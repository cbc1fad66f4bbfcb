/**
 * A set of integers stored as disjoint, sorted, maximal intervals, for `SubnetPool`.
 *
 * Touching intervals are merged, so subnets carved one after another (the common case) cost one
 * interval in total, and "is anything here taken" and "where does the taken stretch end" are binary
 * searches. Adding or removing between separate intervals shifts the arrays: a memmove, cheap enough
 * even with tens of thousands of intervals, and simpler than a balanced tree.
 */
export class IntervalSet {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** The first interval ending at or after `value` (the only one that can contain it), or undefined. */
  intervalFrom(value: number): { readonly start: number; readonly end: number } | undefined {
    const index = this.indexEndingAtOrAfter(value);
    if (index === this.ends.length) return undefined;
    return { start: this.starts[index]!, end: this.ends[index]! };
  }

  /** True if any integer in [start, end] is in the set. */
  intersects(start: number, end: number): boolean {
    const next = this.intervalFrom(start);
    return next !== undefined && next.start <= end;
  }

  /** Adds [start, end], which must not intersect the set. */
  add(start: number, end: number): void {
    const index = this.indexEndingAtOrAfter(start);
    const joinsPrevious = index > 0 && this.ends[index - 1]! + 1 === start;
    const joinsNext = index < this.starts.length && this.starts[index] === end + 1;
    if (joinsPrevious && joinsNext) {
      this.ends[index - 1] = this.ends[index]!;
      this.starts.splice(index, 1);
      this.ends.splice(index, 1);
    } else if (joinsPrevious) {
      this.ends[index - 1] = end;
    } else if (joinsNext) {
      this.starts[index] = start;
    } else {
      this.starts.splice(index, 0, start);
      this.ends.splice(index, 0, end);
    }
  }

  /** Removes [start, end], which must lie inside the set. */
  remove(start: number, end: number): void {
    const index = this.indexEndingAtOrAfter(start);
    const outerStart = this.starts[index]!;
    const outerEnd = this.ends[index]!;
    const pieces: Array<[number, number]> = [];
    if (outerStart < start) pieces.push([outerStart, start - 1]);
    if (end < outerEnd) pieces.push([end + 1, outerEnd]);
    this.starts.splice(index, 1, ...pieces.map(([pieceStart]) => pieceStart));
    this.ends.splice(index, 1, ...pieces.map(([, pieceEnd]) => pieceEnd));
  }

  private indexEndingAtOrAfter(value: number): number {
    let low = 0;
    let high = this.ends.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ends[middle]! < value) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
