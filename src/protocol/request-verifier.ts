/**
 * The AAuth request verifier: RFC 9421 verification (`verification.ts`) with the AAuth key
 * resolvers and a bounded cache of verified tokens.
 *
 * - `jwt` scheme: the token in `Signature-Key` is an agent, person or auth token (its `typ`
 *   decides, and only the types the caller accepts pass — a person token never stands in for an
 *   auth token, TOK-PT-05). The request key is the token's `cnf.jwk` and nothing else.
 * - `jwks_uri` scheme (opt-in, for servers signing in their own right, SIG-19): `id` must be a
 *   server identifier and `dwk` an AAuth document name; the key comes from that issuer's JWKS.
 *
 * Verified tokens are cached by their exact string until `exp`, so the steady state costs one
 * map lookup plus the Ed25519 verification of the request. `exp` and revocation are re-checked on
 * every use.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'
import { invalidValue } from '../lib/assert.js'
import { EgressError, MetadataError, SignatureError } from './errors.js'
import { inlineVerifyKey, type SupportedAlgorithm, type VerifyKey, type PublicJwk } from './crypto.js'
import { isServerIdentifier, type IdentifierOptions } from './identifiers.js'
import { checkPublicJwk, importPublicJwk, jwkThumbprint } from './jwk.js'
import type { JwksCache } from './jwks.js'
import { DWK, type AAuthDwk } from './metadata.js'
import type { SignatureKeyMember } from './signature-key.js'
import { decodeJwt, TOKEN_TYPE, type TokenType } from './tokens/common.js'
import { verifyAgentToken, type AgentTokenClaims } from './tokens/agent-token.js'
import { verifyPersonToken, type PersonTokenClaims } from './tokens/person-token.js'
import { verifyAuthToken, type AuthTokenClaims } from './tokens/auth-token.js'
import { verifyRequestSignature, type ReplayCache, type ResolvedKey, type VerifiedSignature, type VerifyRequestOptions } from './verification.js'
import type { MessageView, RequestLike } from './signature-base.js'

/** Which token signed the request, with its verified claims. */
export type TokenContext =
  | { readonly scheme: 'jwt'; readonly type: 'aa-agent+jwt'; readonly token: string; readonly claims: AgentTokenClaims }
  | { readonly scheme: 'jwt'; readonly type: 'aa-person+jwt'; readonly token: string; readonly claims: PersonTokenClaims }
  | { readonly scheme: 'jwt'; readonly type: 'aa-auth+jwt'; readonly token: string; readonly claims: AuthTokenClaims }
/** A server that signed in its own right with the `jwks_uri` scheme. */
export interface ServerContext {
  readonly scheme: 'jwks_uri'
  /** The verified caller identity (`id`). */
  readonly issuer: string
  readonly dwk: AAuthDwk
  readonly kid: string
}
/** What a verified AAuth request carries. */
export type AAuthContext = TokenContext | ServerContext

/** Options of {@link createRequestVerifier}. */
export interface RequestVerifierOptions extends IdentifierOptions {
  /** The verifier's own identifier: the `aud` person and auth tokens must carry. */
  readonly audience: string
  /** Issuer keys. */
  readonly jwks: JwksCache
  /** Token types accepted in `Signature-Key`. Default: agent, person and auth tokens. */
  readonly acceptedTokenTypes?: readonly TokenType[]
  /** Also accept `jwks_uri` from servers (revocation and PS→AS endpoints). Default false. */
  readonly acceptServerSignatures?: boolean
  /** Accepted algorithms (default Ed25519 and ES256). Listed in `Accept-Signature-Alg`. */
  readonly acceptedAlgorithms?: readonly SupportedAlgorithm[]
  /** Clock in epoch milliseconds. */
  readonly now?: () => number
  /** Signature window in seconds; also the `iat` bound when `boundIat` is set. Default 60. */
  readonly windowSec?: number
  /** Refuse tokens whose `iat` is further ahead than the window (`clock_skew`). Default false. */
  readonly boundIat?: boolean
  /**
   * Issuers whose auth tokens this resource accepts (its PS or its access server). Without it, an
   * auth token from any issuer that verifies is accepted and the caller must check
   * `claims.iss` itself — a four-party resource should always set its own access server here.
   */
  readonly authTokenIssuers?: readonly string[]
  /** Revocation lookup by `(iss, jti)`; a hit is `revoked_jwt`. Checked on every request. */
  readonly isRevoked?: (iss: string, jti: string) => boolean | Promise<boolean>
  /** Extra covered components (`additional_signature_components`). */
  readonly requiredComponents?: readonly string[]
  /** Require `content-type`/`content-digest` on bodies (PS, AS, revocation endpoints). */
  readonly requireBodyComponents?: boolean
  /** Optional replay cache. */
  readonly replayCache?: ReplayCache
  /** Maximum verified tokens held. Default 10,000. */
  readonly tokenCacheSize?: number
  /** Synchronous crypto (for single-request latency); default false (off the event loop). */
  readonly syncCrypto?: boolean
}

/** Tokens longer than this are not cached. */
export const MAX_CACHED_TOKEN_CHARS = 8192

/** A cached, verified token. */
export interface CachedToken {
  readonly context: TokenContext
  /** Replaced once, when a token seen again gets its key imported (see `inlineVerifyKey`). */
  resolved: ResolvedKey<TokenContext>
  /** `exp` in seconds. */
  readonly exp: number
}

/**
 * Bounded cache of verified tokens, keyed by the exact token string. Exposed for metrics and the
 * memory benchmark.
 */
export class VerifiedTokenCache {
  readonly #cache: BoundedCache<string, CachedToken>
  constructor(maxEntries = 10_000, now: () => number = Date.now) {
    this.#cache = new BoundedCache(maxEntries, now)
  }
  get size(): number {
    return this.#cache.size
  }
  get(token: string): CachedToken | undefined {
    return this.#cache.get(token)
  }
  set(token: string, entry: CachedToken): void {
    this.#cache.set(token, entry, entry.exp * 1000)
  }
  clear(): void {
    this.#cache.clear()
  }
}

/** A configured AAuth request verifier. */
export interface RequestVerifier {
  /**
   * Verifies a request.
   *
   * @param message - the request (Fetch `Request`, plain object or view).
   * @param body - the raw body bytes, when the request has one.
   * @throws {SignatureError}
   */
  verify(message: Request | RequestLike | MessageView, body?: Uint8Array): Promise<VerifiedSignature<AAuthContext>>
  /** The verified-token cache. */
  readonly tokenCache: VerifiedTokenCache
}

async function resolvedFrom<C>(jwk: PublicJwk, alg: SupportedAlgorithm, context: C, key?: VerifyKey): Promise<ResolvedKey<C>> {
  return { jwk, alg, key: key ?? (await importPublicJwk(jwk, { acceptedAlgorithms: [alg] })), thumbprint: await jwkThumbprint(jwk), context }
}

/**
 * Creates the verifier a resource, PS or AS puts in front of its endpoints.
 *
 * @example
 * ```ts
 * const verifier = createRequestVerifier({ audience: 'https://api.example', jwks: new JwksCache({ fetcher }) })
 * const { key } = await verifier.verify(request, body)
 * if (key.context.scheme === 'jwt' && key.context.type === 'aa-agent+jwt') key.context.claims.sub
 * ```
 */
export function createRequestVerifier(options: RequestVerifierOptions): RequestVerifier {
  const now = options.now ?? Date.now
  const windowSec = options.windowSec ?? 60
  const types = options.acceptedTokenTypes ?? [TOKEN_TYPE.agent, TOKEN_TYPE.person, TOKEN_TYPE.auth]
  const acceptedAlgorithms = options.acceptedAlgorithms ?? (['Ed25519', 'ES256'] as const)
  const tokenCache = new VerifiedTokenCache(options.tokenCacheSize ?? 10_000, now)
  const tokenOpts = {
    jwks: options.jwks,
    now,
    acceptedAlgorithms,
    allowInsecureLoopback: options.allowInsecureLoopback === true,
    ...(options.boundIat === true ? { iatSkewSec: windowSec } : {}),
  }
  const schemes = options.acceptServerSignatures === true ? ['jwt', 'jwks_uri'] : ['jwt']

  /** The cached path, synchronous unless a revocation lookup is configured (the steady state). */
  function resolveJwt(jwt: string): ResolvedKey<TokenContext> | Promise<ResolvedKey<TokenContext>> {
    const cached = tokenCache.get(jwt)
    if (cached === undefined) return resolveJwtCold(jwt)
    if (cached.exp <= Math.floor(now() / 1000)) throw new SignatureError('expired_jwt', 'JWT has expired')
    if (cached.resolved.key.inline === true) return upgrade(cached)
    if (options.isRevoked === undefined) return cached.resolved
    const c = cached.context.claims
    const check = (revoked: boolean): ResolvedKey<TokenContext> => {
      if (revoked) throw new SignatureError('revoked_jwt', 'JWT has been revoked by its issuer')
      return cached.resolved
    }
    // A synchronous lookup (an in-memory store) keeps the cached path synchronous.
    const revoked = options.isRevoked(c.iss, c.jti)
    return typeof revoked === 'boolean' ? check(revoked) : revoked.then(check)
  }

  /** Second use of a token: import its key once, then take the cached path. */
  async function upgrade(cached: CachedToken): Promise<ResolvedKey<TokenContext>> {
    const r = cached.resolved
    cached.resolved = { ...r, key: await importPublicJwk(r.jwk, { acceptedAlgorithms: [r.alg] }) }
    return resolveJwt(cached.context.token)
  }

  async function resolveJwtCold(jwt: string): Promise<ResolvedKey<TokenContext>> {
    const typ = decodeJwt(jwt).header['typ']
    if (typeof typ !== 'string' || !(types as readonly string[]).includes(typ)) {
      throw new SignatureError('invalid_jwt', `a ${JSON.stringify(typ ?? null)} token is not accepted here`)
    }
    const withRevocation = options.isRevoked === undefined ? tokenOpts : { ...tokenOpts, isRevoked: options.isRevoked }
    let context: TokenContext
    if (typ === TOKEN_TYPE.agent) context = { scheme: 'jwt', type: typ, token: jwt, claims: await verifyAgentToken(jwt, withRevocation) }
    else if (typ === TOKEN_TYPE.person) context = { scheme: 'jwt', type: typ, token: jwt, claims: await verifyPersonToken(jwt, { ...withRevocation, audience: options.audience }) }
    else context = { scheme: 'jwt', type: TOKEN_TYPE.auth, token: jwt, claims: await verifyAuthToken(jwt, { ...withRevocation, audience: options.audience, ...(options.authTokenIssuers === undefined ? {} : { trustedIssuers: options.authTokenIssuers }) }) }
    const jwk = context.claims.cnf.jwk
    const alg = jwk.alg as SupportedAlgorithm
    const resolved = await resolvedFrom(jwk, alg, context, inlineVerifyKey(jwk, alg))
    // Tokens past the size bound are verified every time rather than held (memory is bounded by
    // entries, and any agent provider can mint a large token).
    if (jwt.length <= MAX_CACHED_TOKEN_CHARS) tokenCache.set(jwt, { context, resolved, exp: context.claims.exp })
    return resolved
  }

  async function resolveServer(member: Extract<SignatureKeyMember, { scheme: 'jwks_uri' }>): Promise<ResolvedKey<ServerContext>> {
    if (!isServerIdentifier(member.id, options)) throw new SignatureError('invalid_key', 'jwks_uri id is not a server identifier')
    if (!(Object.values(DWK) as string[]).includes(member.dwk)) throw new SignatureError('invalid_key', `dwk ${member.dwk} is not an AAuth metadata document`)
    const dwk = member.dwk as AAuthDwk
    let found
    try {
      found = await options.jwks.getKey(member.id, dwk, member.kid)
    } catch (err) {
      if (err instanceof MetadataError && err.code !== 'invalid_metadata') throw new SignatureError(err.code, err.message, { cause: err })
      if (err instanceof MetadataError || err instanceof EgressError) throw new SignatureError('invalid_key', `keys of ${member.id} unavailable`, { cause: err })
      throw err
    }
    if (found === undefined) throw new SignatureError('unknown_key', `no key ${JSON.stringify(member.kid)} at ${member.id}`)
    const alg = checkPublicJwk(found.jwk, { acceptedAlgorithms })
    return resolvedFrom(found.jwk, alg, { scheme: 'jwks_uri', issuer: member.id, dwk, kid: member.kid })
  }

  const resolveKey = (member: SignatureKeyMember): ResolvedKey<AAuthContext> | Promise<ResolvedKey<AAuthContext>> => {
    if (member.scheme === 'jwt') return resolveJwt(member.jwt)
    if (member.scheme === 'jwks_uri') return resolveServer(member)
    throw new SignatureError('unsupported_scheme', `scheme ${member.scheme} is not accepted`, { acceptSignatureScheme: schemes })
  }

  // Built once: only the body varies per request.
  const verifyOptions: VerifyRequestOptions<AAuthContext> = {
    resolveKey,
    acceptedSchemes: schemes,
    now,
    windowSec,
    ...(options.requiredComponents === undefined ? {} : { requiredComponents: options.requiredComponents }),
    ...(options.requireBodyComponents === undefined ? {} : { requireBodyComponents: options.requireBodyComponents }),
    ...(options.replayCache === undefined ? {} : { replayCache: options.replayCache }),
    ...(options.syncCrypto === undefined ? {} : { syncCrypto: options.syncCrypto }),
  }
  return {
    tokenCache,
    verify: (message, body) => {
      // At PS/AS/revocation endpoints a plain message must come with its body (an empty array when
      // it has none): otherwise an uncovered body could not be noticed.
      if (body === undefined && options.requireBodyComponents === true && !(typeof Request === 'function' && message instanceof Request)) {
        throw invalidValue('body', 'is required with requireBodyComponents (pass an empty Uint8Array when there is none)')
      }
      return verifyRequestSignature<AAuthContext>(message, body === undefined ? verifyOptions : { ...verifyOptions, body })
    },
  }
}
