/**
 * JWKS discovery and caching (main draft §JWKS Discovery and Caching; CHECKLIST JWKS-01..JWKS-10).
 *
 * - keys are found through `{iss}/.well-known/{dwk}` → `jwks_uri` → the key whose `kid` matches;
 * - responses are cached, honouring `Cache-Control: max-age` / `Expires`, never beyond 24 h;
 * - an unknown `kid` refreshes the set, but **one issuer's JWKS is never fetched more than once
 *   per minute** — failures included, so a broken issuer cannot make the verifier hammer it;
 * - a failed fetch falls back to the cached set (within 24 h) and backs off exponentially;
 * - concurrent misses share one fetch; the number of issuers held is bounded (LRU).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'
import { isObject } from '../lib/assert.js'
import { MetadataError } from './errors.js'
import { jsonObject, type EgressFetcher } from './egress.js'
import { fetchMetadata, type AAuthDwk } from './metadata.js'
import type { PublicJwk } from './crypto.js'

/** Options of {@link JwksCache}. */
export interface JwksCacheOptions {
  /** Egress fetcher used for metadata and JWKS. */
  readonly fetcher: EgressFetcher
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** How many issuers to hold. Default 1000. */
  readonly maxIssuers?: number
  /** Freshness when the response has no cache headers. Default 10 minutes. */
  readonly defaultMaxAgeMs?: number
  /** Development only: admit `http://127.0.0.1:PORT` / `http://localhost:PORT` issuers. */
  readonly allowInsecureLoopback?: boolean
  /** Admit a `jwks_uri` on another origin than the issuer (SK §7.3 asks for explicit admission). */
  readonly allowCrossOriginJwksUri?: boolean
}

/** The floor between two fetches of one issuer's keys. */
export const JWKS_MIN_REFRESH_MS = 60_000
/** At most this many keys are kept per issuer (a JWKS is attacker-sized input before any check). */
export const JWKS_MAX_KEYS = 64
/** The JWK members kept; anything else in a published key is dropped. */
const JWK_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'alg', 'kid', 'use'] as const

/** The hard cap on how long a JWKS is used. */
export const JWKS_MAX_AGE_MS = 24 * 60 * 60 * 1000

interface IssuerEntry {
  keys: Map<string, PublicJwk> | undefined
  /** When the cached set was fetched. */
  fetchedAt: number
  /** When the cached set stops being fresh. */
  freshUntil: number
  /** Last fetch attempt, successful or not. */
  lastAttempt: number
  /** Consecutive failures, for backoff. */
  failures: number
  lastError: unknown
  inflight: Promise<void> | undefined
}

/** Reads `max-age` / `Expires` into a freshness lifetime in ms, capped at 24 h. */
function freshnessMs(headers: Headers, fallback: number, now: number): number {
  const cc = headers.get('cache-control') ?? ''
  if (/\b(no-store|no-cache)\b/i.test(cc)) return 0
  const m = /\bmax-age\s*=\s*(\d+)/i.exec(cc)
  if (m !== null) return Math.min(Number(m[1]) * 1000, JWKS_MAX_AGE_MS)
  const expires = headers.get('expires')
  if (expires !== null) {
    const t = Date.parse(expires)
    if (!Number.isNaN(t)) return Math.min(Math.max(t - now, 0), JWKS_MAX_AGE_MS)
  }
  return Math.min(fallback, JWKS_MAX_AGE_MS)
}

/** Result of a key lookup. */
export interface JwksLookup {
  readonly jwk: PublicJwk
  /** True when this lookup caused a fetch. */
  readonly fetched: boolean
}

/**
 * A bounded, rate-limited cache of issuers' signing keys.
 *
 * @example
 * ```ts
 * const jwks = new JwksCache({ fetcher: createEgressFetcher() })
 * const { jwk } = await jwks.getKey('https://agent.example', 'aauth-agent.json', 'key-1')
 * ```
 */
export class JwksCache {
  readonly #fetcher: EgressFetcher
  readonly #now: () => number
  readonly #issuers: BoundedCache<string, IssuerEntry>
  readonly #defaultMaxAge: number
  readonly #opts: JwksCacheOptions
  /** Number of JWKS documents fetched (for tests and metrics). */
  fetchCount = 0

  constructor(options: JwksCacheOptions) {
    this.#fetcher = options.fetcher
    this.#now = options.now ?? Date.now
    this.#issuers = new BoundedCache(options.maxIssuers ?? 1000)
    this.#defaultMaxAge = options.defaultMaxAgeMs ?? 10 * 60 * 1000
    this.#opts = options
  }

  /**
   * Returns the key with `kid` from `iss`'s JWKS, fetching or refreshing as the rules allow.
   * Returns `undefined` when the key is not in the set (after at most one permitted refresh).
   *
   * @throws {MetadataError} `issuer_missing`, `issuer_mismatch` or `invalid_metadata`, and
   *   {@link EgressError} when no usable set could be obtained.
   */
  async getKey(iss: string, dwk: AAuthDwk, kid: string): Promise<JwksLookup | undefined> {
    const key = `${dwk}|${iss}`
    let entry = this.#issuers.get(key)
    const now = this.#now()
    let fetched = false
    if (entry === undefined || entry.keys === undefined || now >= entry.freshUntil) {
      ;({ entry, fetched } = await this.#refresh(key, iss, dwk))
    }
    let jwk = entry.keys?.get(kid)
    if (jwk === undefined && !fetched && this.#mayFetch(entry)) {
      // Unknown kid: the issuer may have rotated (JWKS-05), within the once-a-minute floor.
      ;({ entry, fetched } = await this.#refresh(key, iss, dwk))
      jwk = entry.keys?.get(kid)
    }
    if (entry.keys === undefined) throw entry.lastError
    return jwk === undefined ? undefined : { jwk, fetched }
  }

  /**
   * Refetches `iss`'s set if the once-a-minute floor allows, for a cached key that failed to
   * verify (JWKS-09). Returns true when a fetch happened.
   */
  async refreshAfterFailure(iss: string, dwk: AAuthDwk): Promise<boolean> {
    const key = `${dwk}|${iss}`
    const entry = this.#issuers.get(key)
    if (entry !== undefined && !this.#mayFetch(entry)) return false
    return (await this.#refresh(key, iss, dwk)).fetched
  }

  #mayFetch(entry: IssuerEntry): boolean {
    const backoff = entry.failures === 0 ? JWKS_MIN_REFRESH_MS : Math.min(JWKS_MIN_REFRESH_MS * 2 ** entry.failures, 60 * 60 * 1000)
    return this.#now() - entry.lastAttempt >= backoff
  }

  async #refresh(key: string, iss: string, dwk: AAuthDwk): Promise<{ entry: IssuerEntry; fetched: boolean }> {
    let entry = this.#issuers.get(key)
    if (entry === undefined) {
      entry = { keys: undefined, fetchedAt: 0, freshUntil: 0, lastAttempt: -Infinity, failures: 0, lastError: undefined, inflight: undefined }
      this.#issuers.set(key, entry)
    }
    const e = entry
    if (e.inflight !== undefined) {
      await e.inflight
      return { entry: e, fetched: true }
    }
    if (!this.#mayFetch(e)) {
      // Within the floor: serve what we have, even stale, up to the 24 h cap.
      if (e.keys !== undefined && this.#now() - e.fetchedAt >= JWKS_MAX_AGE_MS) e.keys = undefined
      return { entry: e, fetched: false }
    }
    e.inflight = this.#load(iss, dwk).then(
      ({ keys, ttl }) => {
        const now = this.#now()
        e.keys = keys
        e.fetchedAt = now
        e.freshUntil = now + ttl
        e.failures = 0
        e.lastError = undefined
      },
      (err: unknown) => {
        e.failures++
        e.lastError = err
        if (e.keys !== undefined && this.#now() - e.fetchedAt >= JWKS_MAX_AGE_MS) e.keys = undefined
      },
    )
    e.lastAttempt = this.#now()
    try {
      await e.inflight
    } finally {
      e.inflight = undefined
    }
    return { entry: e, fetched: true }
  }

  async #load(iss: string, dwk: AAuthDwk): Promise<{ keys: Map<string, PublicJwk>; ttl: number }> {
    const metadata = await fetchMetadata(iss, dwk, { fetcher: this.#fetcher, allowInsecureLoopback: this.#opts.allowInsecureLoopback === true })
    const jwksUri = metadata.jwks_uri
    if (typeof jwksUri !== 'string') throw new MetadataError('invalid_metadata', `${iss} publishes no jwks_uri`)
    if (this.#opts.allowCrossOriginJwksUri !== true && new URL(jwksUri).origin !== new URL(iss).origin) {
      throw new MetadataError('invalid_metadata', `jwks_uri ${jwksUri} is on another origin than ${iss}`)
    }
    this.fetchCount++
    const res = await this.#fetcher(jwksUri)
    if (res.status !== 200) throw new MetadataError('invalid_metadata', `${jwksUri} answered ${res.status}`)
    const doc = jsonObject(res)
    if (doc === undefined || !Array.isArray(doc['keys'])) throw new MetadataError('invalid_metadata', `${jwksUri} is not a JWK Set`)
    const keys = new Map<string, PublicJwk>()
    // Only the member a kid selects must be usable (JWKS-03): keep anything with a kid.
    for (const k of doc['keys'] as unknown[]) {
      if (keys.size >= JWKS_MAX_KEYS) break
      if (!isObject(k) || typeof k['kid'] !== 'string') continue
      if (k['use'] !== undefined && k['use'] !== 'sig') continue
      if (keys.has(k['kid'])) continue
      const copy: Record<string, string> = {}
      for (const m of JWK_MEMBERS) {
        const v = k[m]
        if (typeof v === 'string' && v.length <= 1024) copy[m] = v
      }
      keys.set(k['kid'], copy as PublicJwk)
    }
    return { keys, ttl: freshnessMs(res.headers, this.#defaultMaxAge, this.#now()) }
  }
}
