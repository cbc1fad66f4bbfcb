/**
 * A first-in, first-out queue on a ring buffer that doubles when full. `Array.prototype.shift` is
 * only cheap while an array is small: once V8 stores it as a large object (from about 16,000
 * elements), every shift copies the whole array, which a watch queue or the commit history would
 * do once per commit.
 */
export class RingQueue<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(16);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
  }

  /** Removes and returns the oldest item, or undefined if the queue is empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  /** The item `index` places from the oldest, or undefined past the end. */
  at(index: number): T | undefined {
    return index < 0 || index >= this.#length ? undefined : this.#items[(this.#head + index) % this.#items.length];
  }

  /** The items from `start` (counted from the oldest) to the newest, as an array. */
  slice(start: number): T[] {
    const items: T[] = [];
    for (let index = Math.max(start, 0); index < this.#length; index++) items.push(this.at(index) as T);
    return items;
  }

  clear(): void {
    this.#items = new Array<T | undefined>(16);
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    this.#items = [...this.slice(0), ...new Array<T | undefined>(this.#items.length)];
    this.#head = 0;
  }
}
