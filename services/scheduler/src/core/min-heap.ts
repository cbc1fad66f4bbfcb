/**
 * A binary min-heap ordered by `before`, which must be a strict total order. The scheduler keeps one
 * per leaf of a placement tree (candidate nodes) and one per spread level (branches), and after each
 * placement only the item on top changes, growing: {@link MinHeap.topIncreased} moves it down in
 * O(log n) instead of re-sorting.
 */
export class MinHeap<T> {
  private readonly items: T[];

  /** Takes ownership of `items` and orders them in O(n). */
  constructor(
    private readonly before: (a: T, b: T) => boolean,
    items: T[] = [],
  ) {
    this.items = items;
    for (let index = (items.length >> 1) - 1; index >= 0; index--) this.siftDown(index);
  }

  get size(): number {
    return this.items.length;
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    let child = items.length;
    items.push(item);
    while (child > 0) {
      const parent = (child - 1) >> 1;
      const above = items[parent] as T;
      if (!this.before(item, above)) break;
      items[child] = above;
      child = parent;
    }
    items[child] = item;
  }

  /** Removes and returns the first item. */
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Restores the order after the first item changed so that it may now belong further down. */
  topIncreased(): void {
    this.siftDown(0);
  }

  /** Puts `item` in place of the first item, which is dropped: a pop and a push in one O(log n) step. */
  replaceTop(item: T): void {
    if (this.items.length === 0) this.items.push(item);
    else this.items[0] = item;
    this.siftDown(0);
  }

  /** Hands over every item, in no particular order, leaving the heap empty. */
  takeAll(): T[] {
    return this.items.splice(0);
  }

  private siftDown(start: number): void {
    const items = this.items;
    const length = items.length;
    if (start >= length) return;
    const item = items[start] as T;
    let parent = start;
    for (;;) {
      let first = 2 * parent + 1;
      if (first >= length) break;
      const right = first + 1;
      if (right < length && this.before(items[right] as T, items[first] as T)) first = right;
      const below = items[first] as T;
      if (!this.before(below, item)) break;
      items[parent] = below;
      parent = first;
    }
    items[parent] = item;
  }
}
