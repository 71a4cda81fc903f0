/**
 * Verifying a resource token and the token the agent presented to get it (main draft §Resource
 * Token Verification, steps 1–4; CHECKLIST PS-TOK-01/02, PS-RT-03..05, PS-TOK-13, REV-14), with
 * the token-endpoint error codes of §Token Endpoint Error Codes.
 *
 * @module
 */

import {
  decodeJwt,
  jwkThumbprint,
  ProblemError,
  SignatureError,
  toParameterError,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  type AuthTokenClaims,
  type PersonTokenClaims,
  type ResourceTokenClaims,
} from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { requiredText } from './agent-requests.js'
import type { PsContext } from './context.js'

/**
 * Presented tokens already verified, by audience and token, until their `exp`: an agent presents
 * the same person token with every auth token request at one resource, so its signature is
 * checked once. Revocation is still checked on every use.
 */
const verifiedPresented = new WeakMap<PsContext, BoundedCache<string, PersonTokenClaims | AuthTokenClaims>>()

function presentedCache(ctx: PsContext): BoundedCache<string, PersonTokenClaims | AuthTokenClaims> {
  let c = verifiedPresented.get(ctx)
  if (c === undefined) verifiedPresented.set(ctx, (c = new BoundedCache(10_000, ctx.now)))
  return c
}

/** A verified (resource token, presented token) pair. */
export interface VerifiedPair {
  readonly rt: ResourceTokenClaims
  readonly presented: PersonTokenClaims | AuthTokenClaims
}

/** Whether this PS revoked a token it issued. */
async function revokedHere(ctx: PsContext, iss: string, jti: string): Promise<boolean> {
  if (iss !== ctx.issuer) return false
  return (await ctx.store.getIssued(jti))?.revokedAt !== undefined
}

/**
 * Verifies `resource_token` and `presented_token` from a request body signed by the key whose
 * thumbprint is `agentJkt`.
 *
 * @throws {ProblemError} `invalid_request`, `invalid_resource_token`, `expired_resource_token`,
 *   `revoked_resource_token`, `invalid_presented_token`, `expired_presented_token`,
 *   `revoked_presented_token`, `clock_skew`.
 */
export async function verifyResourceTokenPair(ctx: PsContext, body: Record<string, unknown>, agentJkt: string): Promise<VerifiedPair> {
  const resourceToken = requiredText(body, 'resource_token')
  const presentedToken = requiredText(body, 'presented_token')
  const common = { jwks: ctx.jwks, now: ctx.now, iatSkewSec: ctx.options.windowSec ?? 60, ...ctx.idOpts }
  let rt: ResourceTokenClaims
  try {
    rt = await verifyResourceToken(resourceToken, { ...common, audience: ctx.issuer, agentJkt, isRevoked: (iss, jti) => ctx.store.isRevoked(iss, jti) })
  } catch (e) {
    throw toParameterError(e, 'resource')
  }
  if (rt.ps !== ctx.issuer) throw new ProblemError('invalid_resource_token', 'the resource token names another person server in ps')
  // §Resource-Initiated Interaction is not implemented: refuse rather than skip the resource's own flow.
  if (rt.interaction !== undefined) throw new ProblemError('invalid_resource_token', 'this person server does not run resource-initiated interactions (the interaction claim)')
  let presented: PersonTokenClaims | AuthTokenClaims
  const cache = presentedCache(ctx)
  const cacheKey = `${rt.iss}\u0000${presentedToken}`
  const cached = cache.get(cacheKey)
  try {
    const isRevoked = (iss: string, jti: string): Promise<boolean> => revokedHere(ctx, iss, jti)
    if (cached !== undefined) {
      if (await isRevoked(cached.iss, cached.jti)) throw new SignatureError('revoked_jwt', 'JWT has been revoked by its issuer')
      presented = cached
    } else {
      const typ = decodeJwt(presentedToken).header['typ']
      if (typ === 'aa-person+jwt') presented = await verifyPersonToken(presentedToken, { ...common, audience: rt.iss, isRevoked })
      else if (typ === 'aa-auth+jwt') presented = await verifyAuthToken(presentedToken, { ...common, audience: rt.iss, trustedIssuers: [ctx.issuer], isRevoked })
      else throw new ProblemError('invalid_presented_token', 'presented_token must be a person token or an auth token')
      cache.set(cacheKey, presented, presented.exp * 1000)
    }
  } catch (e) {
    throw e instanceof ProblemError ? e : toParameterError(e, 'presented')
  }
  if ((await jwkThumbprint(presented.cnf.jwk)) !== rt.agent_jkt) throw new ProblemError('invalid_presented_token', 'presented_token is bound to another key than the resource token names')
  const issuerOf = 'ps' in presented && typeof presented.ps === 'string' ? presented.ps : presented.iss
  const mismatch =
    presented.jti !== rt.presented_jti ? 'presented_jti'
    : issuerOf !== rt.ps ? 'ps'
    : presented.sub !== rt.sub ? 'sub'
    : presented.mission_s256 !== rt.mission_s256 ? 'mission_s256'
    : presented.tenant !== rt.tenant ? 'tenant'
    : undefined
  if (mismatch !== undefined) throw new ProblemError('invalid_resource_token', `the resource token's ${mismatch} does not match presented_token`)
  return { rt, presented }
}

/** Scope values of a space-separated `scope`. */
export function scopeValues(scope: string | undefined): string[] {
  return scope === undefined ? [] : [...new Set(scope.split(' ').filter((s) => s !== ''))]
}
