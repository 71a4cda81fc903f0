/**
 * The two REQUIRED Person Server endpoints (main draft §Person Token Endpoint, §Auth Token
 * Endpoint; CHECKLIST PS-PT-*, PS-TOK-*, PS-AT-*): verify, decide (organisation limits, policy
 * hook, remembered grants), and answer with a token, a `202` that waits for the person, or an
 * error from §Token Endpoint Error Codes. Every decision is audited; a token is answered only after
 * its record and audit event are durable.
 *
 * @module
 */

import { assertServerIdentifier, CAPABILITIES, jwkThumbprint, ProblemError, type Capability } from '../protocol/index.js'
import type { AgentRequest } from './agent-requests.js'
import type { PsContext } from './context.js'
import { missionContext } from './missions.js'
import { mint, type AuthTokenWork, type IssueWork, type PersonTokenWork } from './issuance.js'
import { answerPending, deferToPerson, type PendingWork } from './pending.js'
import { decide, type Decision, type PolicyRequest } from './policy.js'
import { scopeValues, verifyResourceTokenPair } from './resource-token-check.js'
import type { AuditEvent, ConsentView, MissionRecord, PendingRecord, PersonRecord } from './store/types.js'
import { r3Details, resolveR3, type R3Reference } from './r3.js'
import { activeMission, boundPerson, commonTokenParams, refuseSubAgentCaller, type CommonTokenParams } from './token-request.js'
import {
  delegatedVerdict,
  delegationEvents,
  readDelegation,
  rememberSubAgent,
  subAgentFirstContact,
  subAgentStillValid,
  subAgentWork,
  upstreamDetail,
  upstreamMission,
  upstreamPerson,
  upstreamStillValid,
  upstreamWork,
  type SubAgent,
  type Upstream,
} from './delegation.js'

/** What both endpoints know once the request is verified. */
interface TokenCase {
  readonly kind: 'person_token' | 'auth_token'
  readonly req: AgentRequest
  readonly params: CommonTokenParams
  readonly resource: string
  readonly scopes: readonly string[]
  readonly account?: string
  readonly mission?: MissionRecord
  readonly work: IssueWork
  readonly resourceToken?: { iss: string; jti: string }
  /** A parent-mediated request: the verified `subagent_token` (main draft §Parent-Mediated Authorization). */
  readonly subAgent?: SubAgent
  /** A chained request: the verified `upstream_token` (main draft §Call Chaining). */
  readonly upstream?: Upstream
  /** The R3 document or per-call proposal the resource token references. */
  readonly r3?: R3Reference
}

/** Audit event shell for a case. */
function eventFor(ctx: PsContext, c: TokenCase, type: string, person: PersonRecord | undefined, extra: Partial<AuditEvent>): AuditEvent {
  return {
    at: ctx.now(),
    type,
    ...(person === undefined ? {} : { personId: person.id }),
    agentSub: c.subAgent?.claims.sub ?? c.req.agent.sub,
    ...(c.subAgent === undefined ? {} : { parentAgent: c.req.agent.sub }),
    resource: c.resource,
    ...(c.scopes.length === 0 ? {} : { scope: c.scopes.join(' ') }),
    ...(c.mission === undefined ? {} : { missionS256: c.mission.s256 }),
    ...extra,
    ...detailOf(c, extra.detail),
  }
}

/**
 * The event detail of a case: the R3 reference, the upstream chain and — under a mission, whose
 * log records token requests with their justifications (MIS-LOG-01) — the agent's justification.
 */
function detailOf(c: TokenCase, extra: AuditEvent['detail']): Pick<AuditEvent, 'detail'> {
  const detail = {
    ...(c.r3 === undefined ? {} : { r3_uri: c.r3.uri, r3_s256: c.r3.s256 }),
    ...(c.upstream === undefined ? {} : { upstream: upstreamDetail(c.upstream) }),
    ...(c.mission === undefined || c.params.justification === undefined ? {} : { justification: c.params.justification }),
    ...extra,
  }
  return Object.keys(detail).length === 0 ? {} : { detail }
}

/** The consent view of a case. */
async function viewFor(ctx: PsContext, c: TokenCase, newScopes: readonly string[]): Promise<ConsentView> {
  const provider = await ctx.providerInfo(c.req.agent.iss)
  return {
    kind: c.kind,
    agent: {
      iss: c.req.agent.iss,
      // A sub-agent is shown as such, working for its parent (whose consent this is).
      ...(c.subAgent === undefined ? { sub: c.req.agent.sub } : { sub: c.subAgent.claims.sub, parentAgent: c.req.agent.sub }),
      ...(provider.name === undefined ? {} : { providerName: provider.name }),
      ...(provider.logoUri === undefined ? {} : { providerLogoUri: provider.logoUri }),
      ...(c.params.platform === undefined ? {} : { platform: c.params.platform }),
      ...(c.params.device === undefined ? {} : { device: c.params.device }),
    },
    resource: await ctx.resourceInfo(c.resource),
    ...(c.scopes.length === 0 ? {} : { scopes: c.scopes, newScopes }),
    ...(c.account === undefined ? {} : { account: c.account }),
    // The mission's whole picture, not only its hash (PS-CON-06).
    ...(c.mission === undefined ? {} : { missionS256: c.mission.s256, mission: await missionContext(ctx, c.mission) }),
    ...(c.params.justification === undefined ? {} : { justification: c.params.justification }),
    ...(c.r3 === undefined ? {} : { details: r3Details(c.r3), ...(c.r3.perCall ? { perCall: true } : {}) }),
  }
}

/** Capabilities for this request: the body's, else those captured with the mission (PS-TOK-10). */
function capabilitiesOf(c: TokenCase): ReadonlySet<Capability> {
  if (c.params.capabilities !== undefined) return c.params.capabilities
  return new Set((c.mission?.capabilities ?? []).filter((x): x is Capability => (CAPABILITIES as readonly string[]).includes(x)))
}

/** A mission's approved blob, parsed (stored as the exact bytes that were hashed). */
function missionBlob(m: MissionRecord): Readonly<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(m.blob)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** The policy request of a case for `person`. */
function policyRequest(c: TokenCase, person: PersonRecord): PolicyRequest {
  return {
    kind: c.kind,
    person,
    // A sub-agent is decided on its parent's grants; the hook sees both (PS-SUB-01).
    agent: c.subAgent === undefined ? { iss: c.req.agent.iss, sub: c.req.agent.sub } : { iss: c.req.agent.iss, sub: c.subAgent.claims.sub, parentAgent: c.req.agent.sub },
    resource: c.resource,
    scopes: c.scopes,
    ...(c.account === undefined ? {} : { account: c.account }),
    ...(c.mission === undefined ? {} : { missionS256: c.mission.s256 }),
    ...(c.params.justification === undefined ? {} : { justification: c.params.justification }),
    ...(c.r3 === undefined ? {} : { r3: { uri: c.r3.uri, s256: c.r3.s256, perCall: c.r3.perCall, document: c.r3.document } }),
    ...(c.mission === undefined ? {} : { mission: missionBlob(c.mission) }),
  }
}

/** Refuses a case with `403 denied`, audited. */
async function deny(ctx: PsContext, c: TokenCase, person: PersonRecord | undefined, reason: string): Promise<never> {
  await ctx.store.commit({ audit: [eventFor(ctx, c, 'request.denied', person, { decision: 'deny', reason })] })
  throw new ProblemError('denied', reason)
}

/**
 * First contact (main draft §Agent-Person Binding): the agent is bound to whoever approves. An
 * auth token request names its person already (the resource token's `sub`), so only that person
 * may decide it. An agent the organisation has not authorised is refused at once.
 */
async function firstContact(ctx: PsContext, c: TokenCase, work: PendingWork): Promise<Response> {
  const org = ctx.options.organization
  if (org !== undefined && org.agents[c.req.agent.sub] === undefined) return deny(ctx, c, undefined, `${c.req.agent.sub} is not an agent the organisation has authorised`)
  let owner: string | undefined
  if (c.kind === 'auth_token') {
    owner = await ctx.store.personForSubject(c.resource, (c.work as AuthTokenWork).sub)
    if (owner === undefined) throw new ProblemError('invalid_resource_token', 'the resource token names no person of this person server')
  }
  return deferToPerson(ctx, {
    kind: c.kind,
    agent: c.req.agent,
    ...(owner === undefined ? {} : { personId: owner }),
    view: await viewFor(ctx, c, c.scopes),
    work,
    capabilities: capabilitiesOf(c),
    ...(c.resourceToken === undefined ? {} : { resourceToken: c.resourceToken }),
    audit: eventFor(ctx, c, 'request.pending', undefined, { decision: 'ask', reason: 'an agent this person server does not know yet' }),
  })
}

/**
 * After a token's record is committed: is everything it was decided on still true? A revocation
 * (of the agent, its binding, a grant, the presented token, the mission) records itself before it
 * lists the live tokens to withdraw, so a token committed in between is caught here or there.
 */
async function stillGranted(ctx: PsContext, c: TokenCase, person: PersonRecord): Promise<boolean> {
  if (c.upstream === undefined) {
    const b = await ctx.store.getBinding(c.req.agent.iss, c.req.agent.sub)
    if (b === undefined || b.revokedAt !== undefined || b.personId !== person.id) return false
  } else if (!(await upstreamStillValid(ctx, c.upstream))) return false
  if (await ctx.store.isRevoked(c.req.agent.iss, c.req.agent.jti)) return false
  if (c.subAgent !== undefined && !(await subAgentStillValid(ctx, c.subAgent))) return false
  if (c.kind === 'auth_token' && (await ctx.store.getIssued((c.work as AuthTokenWork).presentedJti))?.revokedAt !== undefined) return false
  if (c.mission !== undefined) {
    const m = await ctx.store.getMission(c.mission.s256)
    if (m?.status !== 'active' || (m.expiresAt !== undefined && m.expiresAt <= ctx.now())) return false
  }
  const grants = await ctx.store.activeGrants(person.id, c.req.agent.iss, c.req.agent.sub, c.resource, ctx.now())
  return (await decide(policyRequest(c, person), grants, ctx.options.organization, ctx.options.policy)).decision === 'grant'
}

/** Decides a verified case and answers. */
async function settle(ctx: PsContext, c: TokenCase): Promise<Response> {
  // A chained request is for the person of its upstream token; the intermediary is bound to no one.
  const bound = c.upstream === undefined ? await boundPerson(ctx, c.req.agent) : { person: await upstreamPerson(ctx, c.upstream) }
  const work: PendingWork = { issue: c.work, capabilities: [...capabilitiesOf(c)] }
  if (bound === undefined) {
    // A sub-agent never introduces its parent (scenario S3): the parent must already act for someone.
    if (c.subAgent !== undefined && !subAgentFirstContact(ctx)) return deny(ctx, c, undefined, `${c.req.agent.sub} acts for no person at this person server`)
    return firstContact(ctx, c, work)
  }
  const { person } = bound
  if (c.kind === 'auth_token') {
    // The resource token must name the person this agent acts for (PS-05).
    const owner = await ctx.store.personForSubject(c.resource, (c.work as AuthTokenWork).sub)
    if (owner !== person.id) throw new ProblemError('invalid_resource_token', 'the resource token names a person this agent does not act for')
  }
  const grants = await ctx.store.activeGrants(person.id, c.req.agent.iss, c.req.agent.sub, c.resource, ctx.now())
  let verdict: Decision = await decide(policyRequest(c, person), grants, ctx.options.organization, ctx.options.policy)
  // prompt=consent asks again what would have been granted; it never turns a denial into a question.
  if (verdict.decision === 'grant' && c.params.prompt?.includes('consent') === true && (c.subAgent === undefined || subAgentFirstContact(ctx))) verdict = { decision: 'ask', newScopes: c.scopes }
  if (c.subAgent !== undefined) verdict = delegatedVerdict(ctx, verdict, c.req.agent.sub, c.r3?.perCall === true)
  if (verdict.decision === 'deny') return deny(ctx, c, person, verdict.reason)
  if (verdict.decision === 'grant') {
    const minted = await mint(ctx, c.work, person.id, verdict.reason ?? 'policy')
    const delegation = c.subAgent === undefined ? [] : await delegationEvents(ctx, minted.issued)
    await ctx.store.commit({ ...minted.batch, audit: [...(minted.batch.audit ?? []), ...delegation] })
    if (!(await stillGranted(ctx, c, person))) {
      await ctx.store.commit({ revokeIssued: [{ jti: minted.issued.jti, at: ctx.now() }], audit: [eventFor(ctx, c, 'request.denied', person, { decision: 'deny', reason: 'revoked while the token was being issued' })] })
      throw new ProblemError('denied', 'this access was revoked while the token was being issued')
    }
    if (c.subAgent !== undefined) await rememberSubAgent(ctx, c.subAgent, person)
    return Response.json(minted.body, { headers: { 'cache-control': 'no-store' } })
  }
  return deferToPerson(ctx, {
    kind: c.kind,
    agent: c.req.agent,
    personId: person.id,
    view: await viewFor(ctx, c, verdict.newScopes ?? c.scopes),
    work,
    capabilities: capabilitiesOf(c),
    ...(c.resourceToken === undefined ? {} : { resourceToken: c.resourceToken }),
    audit: eventFor(ctx, c, 'request.pending', person, { decision: 'ask', ...(verdict.reason === undefined ? {} : { reason: verdict.reason }) }),
  })
}

/** Seconds of a mission's `expiresAt` (ms), for token bounds. */
function missionBound(m: MissionRecord | undefined): { missionS256?: string; missionExpiresAt?: number } {
  if (m === undefined) return {}
  return { missionS256: m.s256, ...(m.expiresAt === undefined ? {} : { missionExpiresAt: Math.floor(m.expiresAt / 1000) }) }
}

/**
 * `POST /person` (main draft §Person Token Endpoint).
 *
 * @throws {ProblemError}
 */
export async function personTokenEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  const { body } = req
  const { subAgent, upstream } = await readDelegation(ctx, req)
  const resource = body['resource']
  try {
    assertServerIdentifier(resource, ctx.idOpts)
  } catch {
    throw new ProblemError('invalid_request', 'resource must be the HTTPS URL of a resource (a server identifier)')
  }
  const params = commonTokenParams(body)
  const mission = upstream !== undefined ? await upstreamMission(ctx, upstream, body['mission_s256']) : body['mission_s256'] === undefined ? undefined : await activeMission(ctx, body['mission_s256'], req.agent)
  const wait = ctx.resourceLimiter.admit(`${req.agent.iss}\u0000${req.agent.sub}`, resource)
  if (wait !== undefined) {
    const err = new ProblemError('rate_limited', 'this agent asked for too many different resources this hour') as ProblemError & { headers: Record<string, string> }
    err.headers = { 'retry-after': String(wait) }
    throw err
  }
  const work: PersonTokenWork = {
    kind: 'person_token',
    agentIss: req.agent.iss,
    agentSub: req.agent.sub,
    cnfJwk: req.agent.cnf.jwk,
    agentExp: req.agent.exp,
    agentJti: req.agent.jti,
    ...(subAgent === undefined ? {} : subAgentWork(req.agent, subAgent)),
    ...(upstream === undefined ? {} : upstreamWork(upstream)),
    resource,
    ...missionBound(mission),
  }
  return settle(ctx, { kind: 'person_token', req, params, resource, scopes: [], ...(mission === undefined ? {} : { mission }), work, ...(subAgent === undefined ? {} : { subAgent }), ...(upstream === undefined ? {} : { upstream }) })
}

/** Verifies an auth token request into a case (shared with `updated_request`). */
async function authTokenCase(ctx: PsContext, req: AgentRequest): Promise<TokenCase> {
  refuseSubAgentCaller(req.agent)
  const { subAgent, upstream } = await readDelegation(ctx, req)
  const params = commonTokenParams(req.body)
  // Parent-mediated: the resource token is bound to the sub-agent's key, not the signer's (PS-SUB-01).
  const { rt, presented } = await verifyResourceTokenPair(ctx, req.body, subAgent?.thumbprint ?? req.thumbprint)
  const r3 = await resolveR3(ctx, rt)
  const mission = upstream !== undefined ? await upstreamMission(ctx, upstream, rt.mission_s256) : rt.mission_s256 === undefined ? undefined : await activeMission(ctx, rt.mission_s256, req.agent)
  const scopes = scopeValues(rt.scope)
  const work: AuthTokenWork = {
    kind: 'auth_token',
    agentIss: req.agent.iss,
    agentSub: req.agent.sub,
    cnfJwk: req.agent.cnf.jwk,
    agentExp: req.agent.exp,
    agentJti: req.agent.jti,
    ...(subAgent === undefined ? {} : subAgentWork(req.agent, subAgent)),
    ...(upstream === undefined ? {} : upstreamWork(upstream)),
    resource: rt.iss,
    sub: rt.sub,
    ...(scopes.length === 0 ? {} : { scope: scopes.join(' ') }),
    ...(rt.account === undefined ? {} : { account: rt.account }),
    ...missionBound(mission),
    ...(rt.tenant === undefined ? {} : { tenant: rt.tenant }),
    presentedJti: presented.jti,
    presentedExp: presented.exp,
    rtIss: rt.iss,
    rtJti: rt.jti,
    ...(r3 === undefined ? {} : { r3: r3.claims }),
  }
  return {
    kind: 'auth_token',
    req,
    params,
    resource: rt.iss,
    scopes,
    ...(rt.account === undefined ? {} : { account: rt.account }),
    ...(mission === undefined ? {} : { mission }),
    work,
    resourceToken: { iss: rt.iss, jti: rt.jti },
    ...(subAgent === undefined ? {} : { subAgent }),
    ...(upstream === undefined ? {} : { upstream }),
    ...(r3 === undefined ? {} : { r3 }),
  }
}

/**
 * `POST /token` (main draft §Auth Token Endpoint). Three-party only: a resource token whose `aud`
 * is an access server is refused as `invalid_resource_token` (federation is not implemented).
 *
 * @throws {ProblemError}
 */
export async function authTokenEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  return settle(ctx, await authTokenCase(ctx, req))
}

/**
 * `POST {action: "updated_request"}` on an auth token request's pending URL (main draft §Updated
 * Request): the new pair is verified like a new request, must keep `iss`, `ps`, `sub`,
 * `agent_jkt`, `mission_s256` and `tenant`, and replaces what the person is asked.
 *
 * @throws {ProblemError}
 */
export async function updatedRequest(ctx: PsContext, rec: PendingRecord, req: AgentRequest): Promise<Response> {
  const before = (rec.work as { issue?: IssueWork }).issue
  if (rec.kind !== 'auth_token' || before?.kind !== 'auth_token') throw new ProblemError('invalid_request', 'only an auth token request can be updated')
  const c = await authTokenCase(ctx, req)
  const after = c.work as AuthTokenWork
  if (after.resource !== before.resource || after.sub !== before.sub || after.missionS256 !== before.missionS256 || after.tenant !== before.tenant) {
    throw new ProblemError('invalid_resource_token', 'an updated request must keep the resource, person, mission and tenant of the original')
  }
  // The same key as the original (main draft §Updated Request: same agent_jkt), a sub-agent's for a sub-agent.
  if (after.agentSub !== before.agentSub || (c.subAgent?.thumbprint ?? req.thumbprint) !== (await jwkThumbprint(before.cnfJwk))) throw new ProblemError('invalid_resource_token', 'an updated request must come from the key of the original')
  const now = Math.max(ctx.now(), rec.updatedAt + 1)
  const grants = rec.personId === undefined ? [] : await ctx.store.activeGrants(rec.personId, rec.agentIss, rec.agentSub, c.resource, ctx.now())
  // The updated request is decided afresh where policy can refuse it outright (organisation limits,
  // the policy hook — e.g. a per-call ceiling): a denial ends the request instead of reaching the person.
  const person = rec.personId === undefined ? undefined : await ctx.store.getPerson(rec.personId)
  if (person !== undefined) {
    const verdict = await decide(policyRequest(c, person), grants, ctx.options.organization, ctx.options.policy)
    if (verdict.decision === 'deny') {
      const result = { status: 403, body: { error: 'denied', detail: verdict.reason } }
      const ended = await ctx.store.commit({
        pending: { id: rec.id, from: ['pending', 'interacting', 'clarification'], at: rec.updatedAt, patch: { state: 'denied', result, code: null, updatedAt: now } },
        audit: [eventFor(ctx, c, 'request.denied', person, { decision: 'deny', reason: verdict.reason, detail: { pending: rec.id } })],
      })
      if (!ended.applied) throw new ProblemError('invalid_request', 'the request is no longer open')
      ctx.changes.changed(rec.id)
      throw new ProblemError('denied', verdict.reason)
    }
  }
  const held = new Set(grants.filter((g) => g.missionS256 === undefined || g.missionS256 === after.missionS256).map((g) => g.scope))
  const view = await viewFor(ctx, c, c.scopes.filter((s) => !held.has(s)))
  const work: PendingWork = { issue: after, capabilities: [...capabilitiesOf(c)] }
  const applied = await ctx.store.commit({
    pending: {
      id: rec.id,
      from: ['pending', 'interacting', 'clarification'],
      at: rec.updatedAt,
      patch: { state: rec.state === 'clarification' ? 'interacting' : rec.state, view, work: work as unknown as Record<string, unknown>, resourceTokenIss: after.rtIss, resourceTokenJti: after.rtJti, updatedAt: now },
    },
    audit: [eventFor(ctx, c, 'request.updated', undefined, { ...(rec.personId === undefined ? {} : { personId: rec.personId }), detail: { pending: rec.id } })],
  })
  if (!applied.applied) throw new ProblemError('invalid_request', 'the request is no longer open')
  ctx.changes.changed(rec.id)
  return answerPending(ctx, (await ctx.store.getPending(rec.id)) ?? rec)
}
