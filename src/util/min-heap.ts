// Binary min-heaps ordered by a "comes before" comparison. Used for expiry and due times: one heap
// and one timer per queue or exchange instead of a timer per message. Ties must be broken by the
// caller's comparison (e.g. by arrival order) for a stable order.
//
// MinHeap only pushes and pops. IndexedMinHeap also removes any item in O(log n): each item keeps
// its position in the heap (heapIndex, -1 when not in one), so something that leaves early — a
// message consumed long before its TTL — leaves the heap at once instead of staying until its time.

export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      const n = items.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(items[r]!, items[l]!) ? r : l;
        if (!this.before(items[c]!, last)) break;
        items[i] = items[c]!;
        i = c;
      }
      items[i] = last;
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}

/** An item that remembers where it sits in an IndexedMinHeap, under the property K (-1: in none). */
export type HeapSlot<K extends string> = { [P in K]: number };

/**
 * K names the item's position property, so one item can sit in two heaps at once (a queue entry
 * is in its queue's TTL heap under `heapIndex` and among requeued entries under `returnIndex`).
 */
export class IndexedMinHeap<T extends HeapSlot<K>, K extends string = 'heapIndex'> {
  private readonly list: T[] = [];

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly slot: K,
  ) {}

  get size(): number {
    return this.list.length;
  }

  peek(): T | undefined {
    return this.list[0];
  }

  /** The items, in no particular order (inspection). */
  items(): readonly T[] {
    return this.list;
  }

  /** Adds an item that is in no heap of this kind. */
  push(item: T): void {
    this.list.push(item);
    this.siftUp(item, this.list.length - 1);
  }

  pop(): T | undefined {
    const top = this.list[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes an item if it is in this heap; returns whether it was. */
  remove(item: T): boolean {
    const i = item[this.slot];
    if (i < 0 || this.list[i] !== item) return false;
    this.removeAt(i);
    return true;
  }

  clear(): void {
    for (const item of this.list) (item as HeapSlot<K>)[this.slot] = -1;
    this.list.length = 0;
  }

  private removeAt(i: number): void {
    const items = this.list;
    const gone = items[i]!;
    (gone as HeapSlot<K>)[this.slot] = -1;
    const last = items.pop()!;
    if (i === items.length) return; // it was the last one
    // The last item fills the hole and moves whichever way restores the order.
    if (i > 0 && this.before(last, items[(i - 1) >> 1]!)) this.siftUp(last, i);
    else this.siftDown(last, i);
  }

  private siftUp(item: T, from: number): void {
    const items = this.list;
    const slot = this.slot;
    let i = from;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!this.before(item, p)) break;
      items[i] = p;
      (p as HeapSlot<K>)[slot] = i;
      i = parent;
    }
    items[i] = item;
    (item as HeapSlot<K>)[slot] = i;
  }

  private siftDown(item: T, from: number): void {
    const items = this.list;
    const slot = this.slot;
    const n = items.length;
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(items[r]!, items[l]!) ? r : l;
      const child = items[c]!;
      if (!this.before(child, item)) break;
      items[i] = child;
      (child as HeapSlot<K>)[slot] = i;
      i = c;
    }
    items[i] = item;
    (item as HeapSlot<K>)[slot] = i;
  }
}
