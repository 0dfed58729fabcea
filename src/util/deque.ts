// A growable ring buffer: O(1) push/shift at both ends, indexed access and replacement, and sorted
// insertion for putting something back in the middle (requeue in original position), which moves
// only the shorter side: O(1) for an item that goes back near either end, the usual case.

export class Deque<T> {
  private items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(initialCapacity = 16) {
    let cap = 16;
    while (cap < initialCapacity) cap *= 2;
    this.items = new Array<T | undefined>(cap);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  unshift(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  pop(): T | undefined {
    if (this.count === 0) return undefined;
    const i = (this.head + this.count - 1) & (this.items.length - 1);
    const item = this.items[i];
    this.items[i] = undefined;
    this.count--;
    return item;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  peekLast(): T | undefined {
    return this.count === 0 ? undefined : this.items[(this.head + this.count - 1) & (this.items.length - 1)];
  }

  at(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.items[(this.head + index) & (this.items.length - 1)];
  }

  /** Replaces the item at index (which must exist). */
  set(index: number, item: T): void {
    if (index < 0 || index >= this.count) throw new RangeError(`deque index ${index} out of range 0..${this.count - 1}`);
    this.items[(this.head + index) & (this.items.length - 1)] = item;
  }

  /** Inserts keeping ascending order of key(item) (binary search, then insertAt). */
  insertSorted(item: T, key: (x: T) => number): void {
    const k = key(item);
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (key(this.at(mid)!) < k) lo = mid + 1;
      else hi = mid;
    }
    this.insertAt(lo, item);
  }

  /** Inserts at index, moving whichever side of it is shorter. */
  insertAt(index: number, item: T): void {
    if (index <= 0) return this.unshift(item);
    if (index >= this.count) return this.push(item);
    if (this.count === this.items.length) this.grow();
    const mask = this.items.length - 1;
    if (index < this.count >>> 1) {
      // Shift the front part left by one: the head moves back one slot.
      this.head = (this.head - 1) & mask;
      for (let i = 0; i < index; i++) this.items[(this.head + i) & mask] = this.items[(this.head + i + 1) & mask];
    } else {
      // Shift the back part right by one, from the end down to index.
      for (let i = this.count; i > index; i--) this.items[(this.head + i) & mask] = this.items[(this.head + i - 1) & mask];
    }
    this.items[(this.head + index) & mask] = item;
    this.count++;
  }

  /** Removes items for which drop() is true; returns how many. O(n). */
  removeWhere(drop: (x: T) => boolean): number {
    let kept = 0;
    const n = this.count;
    const mask = this.items.length - 1;
    for (let i = 0; i < n; i++) {
      const item = this.items[(this.head + i) & mask] as T;
      if (!drop(item)) {
        this.items[(this.head + kept) & mask] = item;
        kept++;
      }
    }
    for (let i = kept; i < n; i++) this.items[(this.head + i) & mask] = undefined;
    this.count = kept;
    return n - kept;
  }

  clear(): void {
    this.items = new Array<T | undefined>(16);
    this.head = 0;
    this.count = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) yield this.items[(this.head + i) & (this.items.length - 1)] as T;
  }

  toArray(): T[] {
    return [...this];
  }

  private grow(): void {
    const old = this.items;
    const mask = old.length - 1;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & mask];
    this.items = next;
    this.head = 0;
  }
}
