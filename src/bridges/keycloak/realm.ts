/**
 * A Keycloak realm (or any OpenID Provider) as the Person Server sees it: its discovery document
 * and the keys that sign its ID and access tokens (OpenID Connect Discovery 1.0; RFC 7517).
 *
 * A realm is named by its issuer URL, in Keycloak's shape `https://host/realms/NAME`. Its
 * metadata comes from `{issuer}/.well-known/openid-configuration` and must name exactly that
 * issuer; keys come from its `jwks_uri`, fetched again (at most once a minute) when a token names
 * an unknown `kid`, so a realm key rotation needs no restart. Outbound requests go through the
 * library's egress fetcher (size and time bounded); the realm's own host is admitted even when it
 * resolves to private address space, since enterprise Keycloaks usually live there.
 *
 * @module
 */

import type { JWTPayload } from 'jose'
import { AAuthError, createEgressFetcher, jsonObject, type EgressFetcher, type EgressResponse } from '../../protocol/index.js'
import { loadJose } from '../../lib/jose.js'

/** The OpenID Provider metadata members the bridge uses. */
export interface OidcProviderMetadata {
  readonly issuer: string
  readonly authorization_endpoint: string
  readonly token_endpoint: string
  readonly jwks_uri: string
  readonly userinfo_endpoint?: string
  readonly end_session_endpoint?: string
  readonly code_challenge_methods_supported?: readonly string[]
  readonly [member: string]: unknown
}

/** Options of {@link KeycloakRealm}. */
export interface RealmOptions {
  /** The realm's issuer URL, e.g. `https://sso.example.com/realms/demo`. */
  readonly issuer: string
  /** Token signature algorithms accepted. Default `['RS256']` (Keycloak's default realm key). */
  readonly algorithms?: readonly string[]
  /** Outbound fetches. Default: {@link createEgressFetcher} admitting the realm's host. */
  readonly egress?: EgressFetcher
  /** Development only: admit an `http://127.0.0.1:PORT` realm. */
  readonly allowInsecureLoopback?: boolean
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Allowed clock difference, seconds. Default 30. */
  readonly clockToleranceSec?: number
}

/** What {@link KeycloakRealm.verify} checks beyond signature, issuer and time. */
export interface RealmVerifyOptions {
  /** Required `aud` value(s): the token is accepted if its `aud` (or, with `orAzp`, its `azp`) names one. */
  readonly audience?: string | readonly string[]
  /** Accept a match in `azp` too (Keycloak access tokens carry the client there and `aud: account`). */
  readonly orAzp?: boolean
  /** Required JOSE header `typ` values (case-insensitive). Default: any. */
  readonly typ?: readonly string[]
  /** Claims that must be present. `sub`, `exp` and `iat` always are. */
  readonly requiredClaims?: readonly string[]
}

/** A realm token failed verification: `invalid_token` with the reason in the message. */
export class RealmTokenError extends AAuthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_token', message, options)
    this.name = 'RealmTokenError'
  }
}

const METADATA_TTL_MS = 60 * 60 * 1000
const JWKS_REFETCH_FLOOR_MS = 60 * 1000

/** One realm: discovery, keys and token verification. */
export class KeycloakRealm {
  /** The issuer URL. */
  readonly issuer: string
  readonly #egress: EgressFetcher
  readonly #now: () => number
  readonly #algorithms: string[]
  readonly #tolerance: number
  #metadata: { value: Promise<OidcProviderMetadata>; until: number } | undefined
  #keys: { set: Promise<import('jose').JSONWebKeySet>; at: number } | undefined

  constructor(options: RealmOptions) {
    let url: URL
    try {
      url = new URL(options.issuer)
    } catch {
      throw new TypeError(`realm issuer "${options.issuer}" is not a URL`)
    }
    const loopback = options.allowInsecureLoopback === true && url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
    if (url.protocol !== 'https:' && !loopback) throw new TypeError(`realm issuer "${options.issuer}" must be an https URL`)
    if (url.search !== '' || url.hash !== '' || options.issuer.endsWith('/')) throw new TypeError(`realm issuer "${options.issuer}" must have no query, fragment or trailing slash`)
    this.issuer = options.issuer
    this.#egress = options.egress ?? createEgressFetcher({ allowHosts: [url.hostname], allowInsecureLoopback: options.allowInsecureLoopback === true })
    this.#now = options.now ?? Date.now
    this.#algorithms = [...(options.algorithms ?? ['RS256'])]
    if (this.#algorithms.some((a) => a === 'none' || a.startsWith('HS'))) throw new TypeError('realm algorithms must be asymmetric (no "none", no HS*)')
    this.#tolerance = options.clockToleranceSec ?? 30
  }

  /** The realm's OpenID Provider metadata (cached for an hour). @throws {AAuthError} `invalid_metadata`. */
  metadata(): Promise<OidcProviderMetadata> {
    const now = this.#now()
    if (this.#metadata === undefined || now >= this.#metadata.until) {
      const value = this.#fetchMetadata()
      this.#metadata = { value, until: now + METADATA_TTL_MS }
      value.catch(() => {
        this.#metadata = undefined
      })
    }
    return this.#metadata.value
  }

  async #fetchMetadata(): Promise<OidcProviderMetadata> {
    const url = `${this.issuer}/.well-known/openid-configuration`
    const res = await this.#egress(url, { headers: { accept: 'application/json' } })
    const doc = res.status === 200 ? jsonObject(res) : undefined
    if (doc === undefined) throw new AAuthError('invalid_metadata', `${url} answered ${res.status} without a JSON object`)
    if (doc['issuer'] !== this.issuer) throw new AAuthError('invalid_metadata', `${url} names issuer ${String(doc['issuer'])}, not ${this.issuer}`)
    for (const m of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (typeof doc[m] !== 'string') throw new AAuthError('invalid_metadata', `${url} has no ${m}`)
    }
    return doc as unknown as OidcProviderMetadata
  }

  /**
   * POSTs a form to the realm's token endpoint (OAuth 2.0 token request: urlencoded body, JSON
   * answer) through the realm's egress. Returns the raw answer; the caller reads the status.
   */
  async tokenRequest(form: URLSearchParams): Promise<EgressResponse> {
    const { token_endpoint } = await this.metadata()
    return this.#egress(token_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() })
  }

  async #fetchKeys(): Promise<import('jose').JSONWebKeySet> {
    const { jwks_uri } = await this.metadata()
    const res = await this.#egress(jwks_uri, { headers: { accept: 'application/json' } })
    const doc = res.status === 200 ? jsonObject(res) : undefined
    if (doc === undefined || !Array.isArray(doc['keys'])) throw new AAuthError('invalid_metadata', `${jwks_uri} is not a JWKS`)
    return doc as unknown as import('jose').JSONWebKeySet
  }

  #keySet(refresh: boolean): Promise<import('jose').JSONWebKeySet> | undefined {
    const now = this.#now()
    if (this.#keys !== undefined && (!refresh || now - this.#keys.at < JWKS_REFETCH_FLOOR_MS)) return refresh ? undefined : this.#keys.set
    const set = this.#fetchKeys()
    this.#keys = { set, at: now }
    set.catch(() => {
      this.#keys = undefined
    })
    return set
  }

  /**
   * Verifies a JWT the realm signed: signature with a realm key of an accepted algorithm, `iss`,
   * `exp`/`nbf`/`iat` (with the clock tolerance), and the options' audience, `typ` and claims.
   *
   * @throws {RealmTokenError} for any failure (the message says which check).
   */
  async verify(token: string, options: RealmVerifyOptions = {}): Promise<JWTPayload> {
    const jose = await loadJose()
    const attempt = async (set: import('jose').JSONWebKeySet): Promise<JWTPayload> => {
      const { payload, protectedHeader } = await jose.jwtVerify(token, jose.createLocalJWKSet(set), {
        issuer: this.issuer,
        algorithms: this.#algorithms,
        clockTolerance: this.#tolerance,
        currentDate: new Date(this.#now()),
        requiredClaims: ['sub', 'exp', 'iat', ...(options.requiredClaims ?? [])],
      })
      if (options.typ !== undefined && !options.typ.some((t) => t.toLowerCase() === String(protectedHeader.typ ?? '').toLowerCase())) {
        throw new RealmTokenError(`token typ "${String(protectedHeader.typ)}" is not one of ${options.typ.join(', ')}`)
      }
      return payload
    }
    let payload: JWTPayload
    try {
      try {
        payload = await attempt(await this.#keySet(false)!)
      } catch (e) {
        // An unknown kid may be a realm key rotation: fetch the set again (at most once a minute).
        if ((e as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw e
        const fresh = this.#keySet(true)
        if (fresh === undefined) throw e
        payload = await attempt(await fresh)
      }
    } catch (e) {
      if (e instanceof RealmTokenError) throw e
      if (e instanceof AAuthError) throw e
      throw new RealmTokenError(`realm token refused: ${(e as Error).message}`, { cause: e })
    }
    if (options.audience !== undefined) {
      const wanted = typeof options.audience === 'string' ? [options.audience] : options.audience
      const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud]
      const ok = wanted.some((w) => aud.includes(w) || (options.orAzp === true && payload['azp'] === w))
      if (!ok) throw new RealmTokenError(`token audience ${JSON.stringify(payload.aud)} does not name ${wanted.join(' or ')}`)
    }
    return payload
  }
}
