/**
 * Where a resource keeps its R3 state (R3 §Content Addressing, §Per-Call Proposals "Flow"; main
 * draft §Deferred Delivery): the serialised documents it serves at `r3_uri`, who may fetch them,
 * the per-call proposals with their held invocations, the pending URLs, the single-use claim of
 * each proposal, and the retained results keyed by the per-call auth token.
 *
 * All of it is "a string under a key until a time", plus one atomic set-if-absent (the claim that
 * makes a per-call grant run at most once), so one small interface serves every backend. The
 * in-memory default is bounded by entry count; a multi-instance resource needs a shared backend.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'

/** Strings under keys, each with an expiry (epoch ms). Every method may be synchronous or asynchronous. */
export interface PerCallStore {
  /** Stores `value` under `key` until `expiresAt`, replacing what was there. */
  set(key: string, value: string, expiresAt: number): void | Promise<void>
  /** The live value under `key`. */
  get(key: string): string | undefined | Promise<string | undefined>
  /** Stores `value` only when `key` holds no live value, atomically; `true` when it stored. */
  setIfAbsent(key: string, value: string, expiresAt: number): boolean | Promise<boolean>
  /** Releases connections (no-op for memory). */
  close?(): Promise<void>
}

/** Options of {@link MemoryPerCallStore}. */
export interface MemoryPerCallStoreOptions {
  /** Most entries held; the least recently used go first. Default 10,000. */
  readonly maxEntries?: number
  readonly now?: () => number
}

/**
 * The bounded in-process {@link PerCallStore} (the default; one instance only). An entry evicted
 * under pressure is forgotten: a held call, a claim or a retained result can be lost, but never
 * a consumption — it is recorded in the proposal record, and a per-call grant whose record is
 * gone is refused, so nothing runs twice.
 */
export class MemoryPerCallStore implements PerCallStore {
  readonly #cache: BoundedCache<string, string>

  constructor(options: MemoryPerCallStoreOptions = {}) {
    this.#cache = new BoundedCache(options.maxEntries ?? 10_000, options.now ?? Date.now)
  }

  /** Entries held (live or not yet evicted). */
  get size(): number {
    return this.#cache.size
  }

  set(key: string, value: string, expiresAt: number): void {
    this.#cache.set(key, value, expiresAt)
  }

  get(key: string): string | undefined {
    return this.#cache.get(key)
  }

  setIfAbsent(key: string, value: string, expiresAt: number): boolean {
    return this.#cache.add(key, value, expiresAt)
  }
}
