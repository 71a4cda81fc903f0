/**
 * The resource's shared state behind one small interface: the replay cache (main draft
 * §Verification (Server) step 5) and revocation records keyed by `(iss, jti)` (§Token
 * Revocation). Both are "remember this key until then" plus a counter for per-issuer bounds, so
 * one store serves both; the in-memory default is bounded, and `RedisStore` shares the state
 * across instances behind a load balancer.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'
import type { ReplayCache } from '../protocol/index.js'

/**
 * Keys with an expiry, and counters with an expiry. Every method may be synchronous (memory) or
 * asynchronous (network).
 */
export interface AAuthStore extends ReplayCache {
  /** Records `key` until `expiresAt` (epoch ms); `false` when a live entry already existed. */
  add(key: string, expiresAt: number): boolean | Promise<boolean>
  /** Whether a live entry exists for `key`. */
  has(key: string): boolean | Promise<boolean>
  /**
   * Increments the counter `key` and returns its new value. The first increment creates it with
   * expiry `expiresAt` (epoch ms); later increments keep that expiry (a fixed window).
   */
  increment(key: string, expiresAt: number): number | Promise<number>
  /** Releases connections (no-op for memory). */
  close?(): Promise<void>
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most keys held; the least recently used go first. Default 100,000. */
  readonly maxEntries?: number
  readonly now?: () => number
}

/** The bounded in-process {@link AAuthStore} (the default; one instance only). */
export class MemoryStore implements AAuthStore {
  readonly #keys: BoundedCache<string, true>
  readonly #counters: BoundedCache<string, { n: number; expiresAt: number }>
  readonly #now: () => number

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now
    const max = options.maxEntries ?? 100_000
    this.#keys = new BoundedCache(max, this.#now)
    this.#counters = new BoundedCache(Math.max(1, Math.ceil(max / 10)), this.#now)
  }

  /** Keys held (live or not yet evicted). */
  get size(): number {
    return this.#keys.size
  }

  add(key: string, expiresAt: number): boolean {
    return this.#keys.add(key, true, expiresAt)
  }

  has(key: string): boolean {
    return this.#keys.get(key) !== undefined
  }

  increment(key: string, expiresAt: number): number {
    const c = this.#counters.get(key)
    if (c === undefined) {
      this.#counters.set(key, { n: 1, expiresAt }, expiresAt)
      return 1
    }
    c.n++
    return c.n
  }
}
