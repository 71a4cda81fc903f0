/**
 * What the agent holds per resource: person tokens per `(resource, mission)`, auth tokens per
 * `(resource, scope, mission)`, and the resource's `AAuth-Access` session token (main draft
 * §Person Token Endpoint "Caching", §Auth Token Usage, §AAuth-Access Response Header; CHECKLIST
 * AG-RES-11, AG-RES-13, AG-RES-14, AG-05).
 *
 * Every entry is keyed by the agent's key thumbprint too: tokens bound to a key the agent no
 * longer signs with are never chosen (§Re-authorization, AG-06). A token is only ever handed out
 * for the resource named in its `aud`, and not once fewer than the refresh margin remains.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'

/** A person or auth token the agent holds, with the claims it needs to choose and present it. */
export interface HeldToken {
  readonly token: string
  readonly kind: 'person' | 'auth'
  readonly iss: string
  /** The resource the token is for; the only origin it is ever sent to. */
  readonly aud: string
  readonly sub: string
  readonly jti: string
  /** Unix seconds. */
  readonly exp: number
  /** Unix seconds, when the token says when it was issued. */
  readonly iat?: number
  /** Auth tokens: the granted scope values. */
  readonly scope: ReadonlySet<string>
  readonly mission: string | undefined
}

/** Auth tokens kept per `(resource, mission, key)`; older grants fall out first. */
const AUTH_PER_RESOURCE = 16

function scopeSet(scope: string | undefined): Set<string> {
  return new Set((scope ?? '').split(' ').filter((s) => s !== ''))
}

function covers(granted: ReadonlySet<string>, wanted: ReadonlySet<string>): boolean {
  for (const s of wanted) if (!granted.has(s)) return false
  return true
}

/** Bounded, expiry-aware store of the tokens an agent client has obtained. */
export class TokenStore {
  readonly #person: BoundedCache<string, HeldToken>
  readonly #auth: BoundedCache<string, HeldToken[]>
  readonly #access: BoundedCache<string, string>
  readonly #now: () => number
  readonly #marginMs: number

  constructor(options: { now?: () => number; refreshMarginSec: number; maxResources?: number }) {
    this.#now = options.now ?? Date.now
    this.#marginMs = options.refreshMarginSec * 1000
    const max = options.maxResources ?? 1000
    this.#person = new BoundedCache(max, this.#now)
    this.#auth = new BoundedCache(max, this.#now)
    this.#access = new BoundedCache(max, this.#now)
  }

  /**
   * Outside the refresh margin (AG-05). One exception: an auth token whose whole lifetime is
   * shorter than twice the margin (e.g. one from a token exchange, capped by a 5-minute realm
   * token) is used for its first half, since asking again cannot give a longer one; auth tokens
   * are presented to their resource only, never as the `presented_token` of another request.
   * Person tokens always keep the full margin.
   */
  #usable(t: HeldToken): boolean {
    const margin = t.kind === 'auth' && t.iat !== undefined ? Math.min(this.#marginMs, ((t.exp - t.iat) * 1000) / 2) : this.#marginMs
    return t.exp * 1000 - this.#now() > margin
  }

  /** The person token for `resource` under `mission`, when one is held outside the margin. */
  person(resource: string, mission: string | undefined, jkt: string): HeldToken | undefined {
    const t = this.#person.get(`${jkt} ${resource} ${mission ?? ''}`)
    return t !== undefined && t.aud === resource && this.#usable(t) ? t : undefined
  }

  setPerson(t: HeldToken, jkt: string): void {
    this.#person.set(`${jkt} ${t.aud} ${t.mission ?? ''}`, t, t.exp * 1000)
  }

  /**
   * An auth token for `resource` under `mission` whose scope covers `scope`; without `scope`, the
   * newest one held.
   */
  auth(resource: string, mission: string | undefined, jkt: string, scope?: string): HeldToken | undefined {
    const list = this.#auth.get(`${jkt} ${resource} ${mission ?? ''}`)
    if (list === undefined) return undefined
    const wanted = scopeSet(scope)
    for (let i = list.length - 1; i >= 0; i--) {
      const t = list[i]!
      if (t.aud === resource && this.#usable(t) && covers(t.scope, wanted)) return t
    }
    return undefined
  }

  addAuth(t: HeldToken, jkt: string): void {
    const key = `${jkt} ${t.aud} ${t.mission ?? ''}`
    const list = (this.#auth.get(key) ?? []).filter((o) => o.exp * 1000 > this.#now() && o.token !== t.token)
    list.push(t)
    while (list.length > AUTH_PER_RESOURCE) list.shift()
    this.#auth.set(key, list, Math.max(...list.map((o) => o.exp * 1000)))
  }

  /** Forgets a token the resource refused (`expired_jwt`, `revoked_jwt`). */
  drop(t: HeldToken, jkt: string): void {
    const key = `${jkt} ${t.aud} ${t.mission ?? ''}`
    if (t.kind === 'person') {
      if (this.#person.get(key)?.token === t.token) this.#person.delete(key)
      return
    }
    const list = this.#auth.get(key)
    if (list !== undefined) this.#auth.set(key, list.filter((o) => o.token !== t.token), Math.max(0, ...list.map((o) => o.exp * 1000)))
  }

  /** The newest `AAuth-Access` value received from `resource`. */
  access(resource: string): string | undefined {
    return this.#access.get(resource)
  }

  setAccess(resource: string, value: string): void {
    this.#access.set(resource, value)
  }

  dropAccess(resource: string): void {
    this.#access.delete(resource)
  }
}
