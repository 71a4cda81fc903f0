/**
 * The resource's revocation endpoint (main draft §Token Revocation: Revocation Request, Revocation
 * Response, Presenting a Revoked Token; CHECKLIST REV-01..04, ERR-08).
 *
 * A signed `POST {jti, exp}` from a server signing as itself (`Signature-Key` `jwks_uri`, body
 * covered). The issuer is the verified caller, never a parameter; the record is keyed by
 * `(iss, jti)` and kept until `exp` plus skew. A resource has nothing downstream, so it answers
 * `200` with an empty body at once — whether or not it ever saw the token. Each issuer is
 * bounded in how many revocations it can hold (`rate_limited`, with `Retry-After`).
 *
 * @module
 */

import {
  createRequestVerifier,
  problemResponse,
  ProblemError,
  SignatureError,
  signatureErrorResponse,
  type IdentifierOptions,
  type JwksCache,
  type RequestVerifier,
} from '../protocol/index.js'
import type { AAuthStore } from './store.js'

/** Options of the revocation endpoint. */
export interface RevocationOptions {
  /** Only these issuers may revoke here (others get `unsupported_iss`). Default: any verified issuer. */
  readonly issuers?: readonly string[]
  /** Most revocations one issuer may hold at once. Default 10,000. */
  readonly maxPerIssuer?: number
  /** Clock skew tolerance added to `exp` (s). Default 60. */
  readonly skewSec?: number
  /** The longest token lifetime accepted here (s); a later `exp` is refused. Default 3600 (person and auth tokens). */
  readonly maxLifetimeSec?: number
}

/** The store key of a revocation record. */
export function revocationKey(iss: string, jti: string): string {
  return `rev\u0000${iss}\u0000${jti}`
}

/** What the revocation endpoint of one resource works with. */
export interface RevocationContext extends RevocationOptions {
  /** Verifies the caller's server signature (see {@link revocationVerifier}). */
  readonly verifier: RequestVerifier
  readonly store: AAuthStore
  readonly now: () => number
}

/**
 * The verifier of a resource's revocation endpoint: server signatures (`jwks_uri`) only, body
 * covered, replay-checked in the resource's store. One per resource (its `audience`).
 */
export function revocationVerifier(o: { audience: string; jwks: JwksCache; store: AAuthStore; now: () => number; idOpts: IdentifierOptions }): RequestVerifier {
  return createRequestVerifier({
    audience: o.audience,
    jwks: o.jwks,
    now: o.now,
    acceptedTokenTypes: [],
    acceptServerSignatures: true,
    requireBodyComponents: true,
    replayCache: o.store,
    ...o.idOpts,
  })
}

/** Handles one revocation request. */
export async function handleRevocation(request: { method: string; url: URL; headers: Headers; body: Uint8Array }, ctx: RevocationContext): Promise<Response> {
  let issuer: string
  try {
    const v = await ctx.verifier.verify({ method: request.method, url: request.url, headers: request.headers }, request.body)
    if (v.key.context.scheme !== 'jwks_uri') throw new SignatureError('unsupported_scheme', 'revocations are signed by servers (jwks_uri)', { acceptSignatureScheme: ['jwks_uri'] })
    issuer = v.key.context.issuer
  } catch (err) {
    if (err instanceof SignatureError) return signatureErrorResponse(err)
    throw err
  }
  if (ctx.issuers !== undefined && !ctx.issuers.includes(issuer)) return problemResponse(new ProblemError('unsupported_iss', `revocations from ${issuer} are not accepted here`))
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder().decode(request.body))
  } catch {
    return problemResponse(new ProblemError('invalid_request', 'the body must be JSON'))
  }
  const { jti, exp } = (typeof body === 'object' && body !== null ? body : {}) as { jti?: unknown; exp?: unknown }
  if (typeof jti !== 'string' || jti === '' || typeof exp !== 'number' || !Number.isInteger(exp)) {
    return problemResponse(new ProblemError('invalid_request', 'jti (string) and exp (integer) are required'))
  }
  const nowSec = Math.floor(ctx.now() / 1000)
  const skew = ctx.skewSec ?? 60
  const maxLifetime = ctx.maxLifetimeSec ?? 3600
  if (exp > nowSec + maxLifetime + skew) return problemResponse(new ProblemError('invalid_request', `exp is further ahead than any token accepted here lives (${maxLifetime}s)`))
  // A token already past exp + skew is refused anyway: record nothing, answer as recorded.
  if (exp + skew <= nowSec) return new Response(null, { status: 200 })
  const held = await ctx.store.increment(`revn\u0000${issuer}`, (nowSec + maxLifetime + skew) * 1000)
  if (held > (ctx.maxPerIssuer ?? 10_000)) {
    return problemResponse(new ProblemError('rate_limited', `too many revocations from ${issuer}`), { headers: { 'retry-after': String(maxLifetime) } })
  }
  await ctx.store.add(revocationKey(issuer, jti), (exp + skew) * 1000)
  return new Response(null, { status: 200 })
}
