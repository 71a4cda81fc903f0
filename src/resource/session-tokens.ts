/**
 * Session tokens for resource-managed (two-party) access: the resource's own credential, sent to
 * the agent in `AAuth-Access` and returned as `Authorization: AAuth <token>` (main draft
 * §AAuth-Access Response Header, §Resource-Managed Authorization; CHECKLIST RES-RM-01..04).
 *
 * The token is opaque to the agent: an HMAC-SHA-256-protected payload naming the agent key it is
 * bound to (`jkt`), so it is meaningless without a signature by that key — never a bearer token.
 * The resource accepts it only on requests whose signature covers `authorization` (RES-RM-02).
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { decodeBase64url, encodeBase64url, fromUtf8, utf8 } from '../lib/base64url.js'

/** What a session token carries. */
export interface SessionClaims {
  /** The agent key thumbprint it is bound to. */
  readonly jkt: string
  /** Expiry, Unix seconds. */
  readonly exp: number
  /** The resource's own data (user id, scope, …): kept small, it travels on every request. */
  readonly data: Readonly<Record<string, unknown>>
}

/** Options of {@link SessionTokens}. */
export interface SessionTokensOptions {
  /** HMAC key, at least 32 bytes. Default: random per process (sessions end on restart). */
  readonly secret?: Uint8Array
  /** Lifetime in seconds. Default 3600. */
  readonly lifetimeSec?: number
  readonly now?: () => number
}

/** Issues and checks `AAuth-Access` session tokens. */
export class SessionTokens {
  readonly #secret: Uint8Array
  readonly #lifetime: number
  readonly #now: () => number

  constructor(options: SessionTokensOptions = {}) {
    if (options.secret !== undefined && options.secret.byteLength < 32) throw new RangeError('session secret must be at least 32 bytes')
    this.#secret = options.secret ?? randomBytes(32)
    this.#lifetime = options.lifetimeSec ?? 3600
    this.#now = options.now ?? Date.now
  }

  #mac(payload: string): string {
    return encodeBase64url(createHmac('sha256', this.#secret).update(payload).digest())
  }

  /** A token bound to the agent key `jkt` (a token68 value for `AAuth-Access`). */
  issue(jkt: string, data: Record<string, unknown> = {}): string {
    const claims: SessionClaims = { jkt, exp: Math.floor(this.#now() / 1000) + this.#lifetime, data }
    const payload = encodeBase64url(utf8(JSON.stringify(claims)))
    return `${payload}.${this.#mac(payload)}`
  }

  /** The claims of a valid, unexpired token bound to `jkt`; `undefined` otherwise. */
  verify(token: string, jkt: string): SessionClaims | undefined {
    const dot = token.indexOf('.')
    if (dot <= 0) return undefined
    const payload = token.slice(0, dot)
    const given = utf8(token.slice(dot + 1))
    const expected = utf8(this.#mac(payload))
    if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) return undefined
    const bytes = decodeBase64url(payload)
    let claims: unknown
    try {
      claims = JSON.parse((bytes === undefined ? undefined : fromUtf8(bytes)) ?? '')
    } catch {
      return undefined
    }
    const c = claims as SessionClaims
    if (typeof c !== 'object' || c === null || c.jkt !== jkt || typeof c.exp !== 'number' || c.exp * 1000 <= this.#now()) return undefined
    return c
  }
}
