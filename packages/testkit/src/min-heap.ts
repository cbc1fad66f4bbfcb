/**
 * A binary min-heap ordered by `before`. Internal to the testkit: the fake clock keeps thousands of
 * pending timers during long simulations, so push and pop must stay O(log n).
 */
export class MinHeap<T> {
  private readonly items: T[] = [];

  /** `before(a, b)` is true when `a` must come out before `b`; it must be a strict total order. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.siftUp(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (top === undefined || last === undefined || this.items.length === 0) return top;
    this.items[0] = last;
    this.siftDown(0);
    return top;
  }

  private siftUp(index: number): void {
    let child = index;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.before(this.at(child), this.at(parent))) return;
      this.swap(child, parent);
      child = parent;
    }
  }

  private siftDown(index: number): void {
    let parent = index;
    for (;;) {
      const left = 2 * parent + 1;
      const right = left + 1;
      let first = parent;
      if (left < this.items.length && this.before(this.at(left), this.at(first))) first = left;
      if (right < this.items.length && this.before(this.at(right), this.at(first))) first = right;
      if (first === parent) return;
      this.swap(parent, first);
      parent = first;
    }
  }

  private at(index: number): T {
    return this.items[index] as T;
  }

  private swap(a: number, b: number): void {
    const held = this.at(a);
    this.items[a] = this.at(b);
    this.items[b] = held;
  }
}
