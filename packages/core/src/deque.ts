/** A FIFO with O(1) push/shift at both ends; arrays' shift() is O(n) and dominated the hot path. */
export class Deque<T> {
  private items: (T | undefined)[] = new Array(16);
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) % this.items.length] = item;
    this.size++;
  }

  unshift(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.head = (this.head - 1 + this.items.length) % this.items.length;
    this.items[this.head] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.size--;
    return item;
  }

  pop(): T | undefined {
    if (this.size === 0) return undefined;
    const index = (this.head + this.size - 1) % this.items.length;
    const item = this.items[index];
    this.items[index] = undefined;
    this.size--;
    return item;
  }

  peekFirst(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  peekLast(): T | undefined {
    return this.size === 0 ? undefined : this.items[(this.head + this.size - 1) % this.items.length];
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.items[(this.head + i) % this.items.length] as T);
    return out;
  }

  clear(): void {
    this.items = new Array(16);
    this.head = 0;
    this.size = 0;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
