/**
 * An issuer's signing keys with rotation: the current key signs; keys it replaced stay in the
 * published JWKS for an overlap period so that tokens they signed keep verifying until they
 * expire (main draft §JWKS Discovery and Caching; bootstrap §8.5). Each key's `kid` is its RFC 7638
 * thumbprint, so a new key always has a new `kid`.
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import { generateKeyPair, jwkThumbprint, type IssuerKey, type PrivateJwk, type PublicJwk, type SupportedAlgorithm } from '../protocol/index.js'

interface RingEntry {
  readonly key: IssuerKey
  readonly publicJwk: PublicJwk
  /** Epoch ms after which the key is dropped from the JWKS; Infinity for the current key. */
  retireAt: number
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  /** How long a replaced key stays published, in seconds. Default 24 h (the longest agent token). */
  readonly overlapSec?: number
  readonly now?: () => number
  readonly alg?: SupportedAlgorithm
}

function publicOf(jwk: PrivateJwk, kid: string): PublicJwk {
  const out: PublicJwk = { kty: jwk.kty, alg: jwk.alg, kid, use: 'sig' }
  for (const m of ['crv', 'x', 'y'] as const) if (jwk[m] !== undefined) out[m] = jwk[m]
  return out
}

/**
 * @example
 * ```ts
 * const ring = await KeyRing.create()
 * app.get('/.well-known/jwks.json', (c) => c.json(ring.jwks()))
 * await ring.rotate() // new kid; the old key stays published for 24 h
 * ```
 */
export class KeyRing {
  #entries: RingEntry[] = []
  readonly #overlapMs: number
  readonly #now: () => number
  readonly #alg: SupportedAlgorithm

  private constructor(options: KeyRingOptions) {
    this.#overlapMs = (options.overlapSec ?? 24 * 3600) * 1000
    this.#now = options.now ?? Date.now
    this.#alg = options.alg ?? 'Ed25519'
  }

  /** A ring starting from `initial` (e.g. loaded from a key file) or from a fresh key. */
  static async create(options: KeyRingOptions & { initial?: PrivateJwk } = {}): Promise<KeyRing> {
    const ring = new KeyRing(options)
    await ring.#add(options.initial ?? (await generateKeyPair(ring.#alg)).privateJwk)
    return ring
  }

  async #add(privateJwk: PrivateJwk): Promise<IssuerKey> {
    const kid = await jwkThumbprint(privateJwk)
    const key: IssuerKey = { kid, privateJwk: { ...privateJwk, kid } }
    this.#entries.unshift({ key, publicJwk: publicOf(privateJwk, kid), retireAt: Infinity })
    return key
  }

  /** The key that signs new tokens. */
  get current(): IssuerKey {
    return this.#entries[0]!.key
  }

  /**
   * Makes `next` (or a fresh key) current. The previous key stays published for the overlap.
   *
   * @returns the new current key.
   */
  async rotate(next?: PrivateJwk): Promise<IssuerKey> {
    const retireAt = this.#now() + this.#overlapMs
    for (const e of this.#entries) if (e.retireAt === Infinity) e.retireAt = retireAt
    return this.#add(next ?? (await generateKeyPair(this.#alg)).privateJwk)
  }

  /** The JWKS to publish: the current key and every replaced key still inside its overlap. */
  jwks(): { keys: PublicJwk[] } {
    const now = this.#now()
    this.#entries = this.#entries.filter((e) => e.retireAt > now)
    return { keys: this.#entries.map((e) => e.publicJwk) }
  }
}
