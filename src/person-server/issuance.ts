/**
 * Minting person and auth tokens and the records that go with them (main draft §Person Token
 * Structure, §Auth Token Structure, §Person Token Endpoint "Retention", §Revocation Cascade
 * "Records"). A request that waits for the person keeps its {@link IssueWork} in the store, so the
 * token can be minted by whichever PS instance the person's approval reaches.
 *
 * @module
 */

import { createAuthToken, createPersonToken, ProblemError, type PublicJwk, type R3AuthTokenClaims } from '../protocol/index.js'
import type { PsContext } from './context.js'
import { directedSubject } from './directed-id.js'
import type { AuditEvent, IssuedToken, StoreBatch } from './store/types.js'

/** What both kinds of token need from the request that asked for them. Times in seconds (JWT). */
interface WorkBase {
  readonly agentIss: string
  readonly agentSub: string
  readonly parentAgent?: string
  /** Parent-mediated: the sub-agent's agent token `jti` (its revocation ends the request). */
  readonly subAgentJti?: string
  readonly cnfJwk: PublicJwk
  readonly agentExp: number
  /** The agent token the request was made with (its revocation ends the request). */
  readonly agentJti?: string
  /** The token's `aud`: the resource. */
  readonly resource: string
  readonly missionS256?: string
  readonly missionExpiresAt?: number
  /** Auth tokens copy the resource token's; a person token's comes from the person's record. */
  readonly tenant?: string
  /** A chained request (main draft §Call Chaining): the `upstream_token`'s `iss`, `jti` and `exp` (s). */
  readonly upstreamIss?: string
  readonly upstreamJti?: string
  readonly upstreamExp?: number
}

/** What is needed to mint a person token later. */
export interface PersonTokenWork extends WorkBase {
  readonly kind: 'person_token'
}

/** What is needed to mint an auth token later. */
export interface AuthTokenWork extends WorkBase {
  readonly kind: 'auth_token'
  /** Copied from the resource token (CHECKLIST PS-AT-02). */
  readonly sub: string
  readonly scope?: string
  readonly account?: string
  readonly presentedJti: string
  readonly presentedExp: number
  /** The resource token, for revocation checks at approval time. */
  readonly rtIss: string
  readonly rtJti: string
  /** R3 claims to issue: the referenced document and what it grants (R3 §Auth Token Extensions). */
  readonly r3?: R3AuthTokenClaims
}

/** Either kind. */
export type IssueWork = PersonTokenWork | AuthTokenWork

/** A minted token with its record and the parts of the batch that must commit with it. */
export interface Minted {
  readonly body: { person_token?: string; auth_token?: string; expires_in: number }
  readonly issued: IssuedToken
  readonly batch: Pick<StoreBatch, 'issued' | 'subjects' | 'audit'>
}

/**
 * Mints the token `work` describes for `personId`, with the audit event of its issuance.
 *
 * @throws {ProblemError} `expired` (408) when a bound (agent token, presented token, mission) has
 *   passed since the request was made.
 */
export async function mint(ctx: PsContext, work: IssueWork, personId: string, reason: string, audit: Partial<AuditEvent> = {}): Promise<Minted> {
  const nowMs = ctx.now()
  const key = ctx.keys.current
  const common = { key, issuer: ctx.issuer, now: ctx.now, ...ctx.idOpts }
  const mission = work.missionS256 === undefined ? {} : { missionS256: work.missionS256, ...(work.missionExpiresAt === undefined ? {} : { missionExpiresAt: work.missionExpiresAt }) }
  // A person token's tenant is the PS's statement of the person's organisation (their record), never
  // an agent's request parameter; an auth token copies the resource token's, itself copied from a
  // person token this PS signed.
  const tenantValue = work.kind === 'person_token' ? (await ctx.store.getPerson(personId))?.tenant : work.tenant
  const tenant = tenantValue === undefined ? {} : { tenant: tenantValue }
  // Downstream access never outlives the upstream token (PS-CH-07, TOK-PT-02, TOK-AT-02).
  const upstreamBound = work.upstreamExp === undefined ? {} : { upstreamTokenExp: work.upstreamExp }
  let token: string
  let sub: string
  try {
    if (work.kind === 'person_token') {
      sub = directedSubject(ctx.subjectSecret, personId, work.resource)
      token = await createPersonToken({ ...common, aud: work.resource, sub, cnfJwk: work.cnfJwk, agentTokenExp: work.agentExp, lifetimeSec: ctx.options.personTokenLifetimeSec ?? 3600, ...mission, ...tenant, ...upstreamBound })
    } else {
      sub = work.sub
      token = await createAuthToken({
        ...common,
        issuerRole: 'person',
        aud: work.resource,
        ps: ctx.issuer,
        sub,
        cnfJwk: work.cnfJwk,
        agentTokenExp: work.agentExp,
        presentedTokenExp: work.presentedExp,
        lifetimeSec: ctx.options.authTokenLifetimeSec ?? 3600,
        ...(work.scope === undefined ? {} : { scope: work.scope }),
        ...(work.account === undefined ? {} : { account: work.account }),
        ...mission,
        ...tenant,
        ...upstreamBound,
        ...(work.r3 === undefined ? {} : { extraClaims: { ...work.r3 } }),
      })
    }
  } catch (cause) {
    if (cause instanceof RangeError) throw new ProblemError('expired', 'a token this request depends on expired before it could be issued', { cause })
    throw cause
  }
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string; iat: number; exp: number }
  const issued: IssuedToken = {
    jti: claims.jti,
    kind: work.kind === 'person_token' ? 'person' : 'auth',
    personId,
    agentIss: work.agentIss,
    agentSub: work.agentSub,
    ...(work.parentAgent === undefined ? {} : { parentAgent: work.parentAgent }),
    resource: work.resource,
    sub,
    ...(work.kind === 'auth_token' && work.scope !== undefined ? { scope: work.scope } : {}),
    ...(work.missionS256 === undefined ? {} : { missionS256: work.missionS256 }),
    ...(work.kind === 'auth_token' ? { presentedJti: work.presentedJti } : {}),
    ...(work.upstreamIss === undefined || work.upstreamJti === undefined ? {} : { upstreamIss: work.upstreamIss, upstreamJti: work.upstreamJti }),
    issuedAt: nowMs,
    expiresAt: claims.exp * 1000,
  }
  const event: AuditEvent = {
    at: nowMs,
    type: work.kind === 'person_token' ? 'person_token.issued' : 'auth_token.issued',
    personId,
    agentSub: work.agentSub,
    ...(work.parentAgent === undefined ? {} : { parentAgent: work.parentAgent }),
    resource: work.resource,
    ...(issued.scope === undefined ? {} : { scope: issued.scope }),
    ...(work.missionS256 === undefined ? {} : { missionS256: work.missionS256 }),
    decision: 'grant',
    reason,
    detail: { jti: issued.jti, exp: claims.exp, ...(issued.upstreamJti === undefined ? {} : { upstream: { iss: issued.upstreamIss, jti: issued.upstreamJti } }), ...(work.kind === 'auth_token' && work.r3 !== undefined ? { r3_uri: work.r3.r3_uri, r3_s256: work.r3.r3_s256 } : {}) },
    ...audit,
  }
  const body = work.kind === 'person_token' ? { person_token: token, expires_in: claims.exp - claims.iat } : { auth_token: token, expires_in: claims.exp - claims.iat }
  return {
    body,
    issued,
    batch: {
      issued: [issued],
      audit: [event],
      ...(work.kind === 'person_token' ? { subjects: [{ personId, resource: work.resource, sub }] } : {}),
    },
  }
}
