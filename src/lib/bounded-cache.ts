/**
 * A small least-recently-used map with a hard entry bound and optional per-entry expiry.
 * Unauthenticated callers create entries (tokens, issuers), so every cache in the library is
 * bounded (SK §7.2). Private to the library.
 *
 * @module
 */

interface Entry<V> {
  value: V
  /** Epoch milliseconds after which the entry is dead; Infinity for none. */
  expiresAt: number
}

/** LRU map bounded by entry count; `get` refreshes recency and drops expired entries. */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, Entry<V>>()
  #oldest: Iterator<K> | undefined
  readonly #max: number
  readonly #now: () => number

  constructor(max: number, now: () => number = Date.now) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('cache bound must be a positive integer')
    this.#max = max
    this.#now = now
  }

  /** Number of live-or-not-yet-evicted entries. */
  get size(): number {
    return this.#map.size
  }

  get(key: K): V | undefined {
    const entry = this.#map.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#map.delete(key)
      return undefined
    }
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.#map.delete(key)
    this.#map.set(key, entry)
    return entry.value
  }

  /** Stores `value`; `expiresAt` is epoch milliseconds (default: never). */
  set(key: K, value: V, expiresAt = Infinity): void {
    this.#map.delete(key)
    this.#map.set(key, { value, expiresAt })
    if (this.#map.size > this.#max) {
      // One live iterator for evictions: a fresh `keys()` would step over every slot deleted at
      // the front of the Map, which makes each eviction O(deleted) once the cache is full.
      this.#oldest ??= this.#map.keys()
      let oldest = this.#oldest.next()
      if (oldest.done === true) {
        this.#oldest = this.#map.keys()
        oldest = this.#oldest.next()
      }
      if (oldest.done !== true) this.#map.delete(oldest.value)
    }
  }

  /** Inserts only when absent or expired; returns false when a live entry already existed. */
  add(key: K, value: V, expiresAt = Infinity): boolean {
    const entry = this.#map.get(key)
    if (entry !== undefined && entry.expiresAt > this.#now()) return false
    this.set(key, value, expiresAt)
    return true
  }

  delete(key: K): void {
    this.#map.delete(key)
  }

  clear(): void {
    this.#map.clear()
    this.#oldest = undefined
  }
}
