// A bounded FIFO of jobs waiting for a worker. Bounded so that overload becomes a fast
// 429 instead of unbounded memory and latency (Triton's max_queue_size); removable so that
// a request whose client left or whose time ran out never reaches a worker.
export class BoundedQueue<T> {
  private items: T[] = []

  constructor (readonly capacity: number) {}

  get length (): number { return this.items.length }
  get full (): boolean { return this.items.length >= this.capacity }

  /** false when full: the caller answers 429 */
  push (item: T): boolean {
    if (this.full) return false
    this.items.push(item)
    return true
  }

  shift (): T | undefined {
    return this.items.shift()
  }

  /** Takes out the oldest item that `fits` (a worker takes the first job it may run). */
  takeFirst (fits: (item: T) => boolean): T | undefined {
    const i = this.items.findIndex(fits)
    return i < 0 ? undefined : this.items.splice(i, 1)[0]
  }

  /** Takes out a waiting item; false when it is no longer waiting. */
  remove (item: T): boolean {
    const i = this.items.indexOf(item)
    if (i < 0) return false
    this.items.splice(i, 1)
    return true
  }

  /** Empties the queue, returning what waited. */
  drain (): T[] {
    const out = this.items
    this.items = []
    return out
  }
}
