/**
 * Agent delegation at the Person Server (main draft §Agent Delegation): parent-mediated requests
 * for sub-agents (§Sub-Agents, §Sub-Agent Identity, §Single-Level Depth, §Parent-Mediated
 * Authorization; CHECKLIST PS-SUB-01..03, SUB-06) and call chaining by an intermediary
 * (§Call Chaining, §Upstream Token Verification, §Intermediary Agent Identity, §Directed
 * Identifiers Across a Chain; CHECKLIST PS-CH-01..07, PS-PT-05).
 *
 * The token endpoints call {@link readSubAgent} and {@link readUpstream} after authenticating the
 * signer; each returns `undefined` when its parameter is absent and throws the parameter's own
 * error code (`*_subagent_token`, `*_upstream_token`) when it does not verify.
 *
 * Choices where the draft leaves room (documented in the issue note):
 *
 * - A sub-agent request is decided on the **parent's** binding and grants. By default
 *   (`subAgents.consent: 'within-parent-grant'`) nothing is asked: what the parent already holds is
 *   granted, anything more is refused `403 denied` naming the scopes outside. `'ask'` surfaces the
 *   consent for the parent, as the draft describes.
 * - The PS remembers each sub-agent it issued for as a binding to the parent's person (so it shows
 *   on the dashboard and can be revoked on its own, by identifier). A sub-agent whose binding was
 *   revoked is refused `revoked_subagent_token` for good; its parent spawns a new identifier.
 * - A chained request is decided for the person of the upstream token with the grants keyed on the
 *   **intermediary** (the calling agent at the PS): the person's consent to the original agent at
 *   the upstream resource does not cover the downstream resource. When nothing covers it, consent
 *   surfaces to that person as for any agent (the intermediary declaring `interaction`, which it
 *   chains back to its caller); approving remembers grants for the intermediary but never binds it
 *   to the person. The PS policy hook sees the intermediary as the agent.
 * - Revoking an agent also withdraws what intermediaries obtained with its tokens as
 *   `upstream_token`, following chains up to {@link MAX_CHAIN_DEPTH} hops.
 *
 * @module
 */

import {
  decodeJwt,
  jwkThumbprint,
  ProblemError,
  toParameterError,
  verifyAgentToken,
  verifyAuthToken,
  verifyPersonToken,
  type AgentTokenClaims,
  type AuthTokenClaims,
  type PersonTokenClaims,
} from '../protocol/index.js'
import type { AgentRequest } from './agent-requests.js'
import type { PsContext } from './context.js'
import type { Decision } from './policy.js'
import type { AuditEvent, IssuedToken, MissionRecord, PersonRecord } from './store/types.js'
import { missionTerminated } from './token-request.js'

/** Longest token accepted as a parameter (characters). */
const MAX_TOKEN_CHARS = 16_384
/** `queryAudit` page size (the store's maximum). */
/** Audit event types of the delegation trail (scenario S3). */
export const DELEGATION_EVENT = {
  created: 'delegation.created',
  used: 'delegation.used',
  renewed: 'delegation.renewed',
  revoked: 'delegation.revoked',
} as const

/** How a PS decides requests its agents make for their sub-agents. */
export interface SubAgentOptions {
  /**
   * `within-parent-grant` (default): granted within what the parent already holds, refused beyond
   * it, never asking the person. `ask`: consent surfaces for the parent as for its own requests.
   */
  readonly consent?: 'within-parent-grant' | 'ask'
}

/** A verified `subagent_token`. */
export interface SubAgent {
  readonly claims: AgentTokenClaims
  readonly token: string
  /** RFC 7638 thumbprint of the sub-agent's key (`agent_jkt` of its resource tokens). */
  readonly thumbprint: string
}

function tokenParameter(body: Record<string, unknown>, name: 'subagent_token' | 'upstream_token', invalid: 'invalid_subagent_token' | 'invalid_upstream_token'): string | undefined {
  const raw = body[name]
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || raw === '' || raw.length > MAX_TOKEN_CHARS) throw new ProblemError(invalid, `${name} must be a compact JWT`)
  return raw
}

/**
 * Reads and verifies `subagent_token` (main draft §Parent-Mediated Authorization step 4, §Sub-Agent
 * Identity; CHECKLIST PS-SUB-01, SUB-06): an agent token verified like the signer's — revocations
 * the agent provider sent here included — except that its `cnf` is not the request key; it must
 * name the signer as `parent_agent` and share its `iss`. The accepted token is recorded (REV-15) so
 * a revocation of it by `jti` finds the sub-agent.
 *
 * @returns `undefined` when the body has no `subagent_token`.
 * @throws {ProblemError} `invalid_subagent_token`, `expired_subagent_token`,
 *   `revoked_subagent_token` (also for a sub-agent revoked at this PS), `clock_skew`.
 */
export async function readSubAgent(ctx: PsContext, req: AgentRequest): Promise<SubAgent | undefined> {
  const token = tokenParameter(req.body, 'subagent_token', 'invalid_subagent_token')
  if (token === undefined) return undefined
  let claims: AgentTokenClaims
  try {
    claims = await verifyAgentToken(token, { jwks: ctx.jwks, now: ctx.now, iatSkewSec: ctx.options.windowSec ?? 60, isRevoked: (iss, jti) => ctx.store.isRevoked(iss, jti), ...ctx.idOpts })
  } catch (e) {
    throw toParameterError(e, 'subagent')
  }
  if (claims.parent_agent === undefined) throw new ProblemError('invalid_subagent_token', 'subagent_token has no parent_agent: it is not a sub-agent token')
  if (claims.iss !== req.agent.iss) throw new ProblemError('invalid_subagent_token', 'subagent_token was issued by another agent provider than the signing agent’s')
  if (claims.parent_agent !== req.agent.sub) throw new ProblemError('invalid_subagent_token', 'subagent_token names another parent than the agent that signed the request')
  const binding = await ctx.store.getBinding(claims.iss, claims.sub)
  if (binding?.revokedAt !== undefined) throw new ProblemError('revoked_subagent_token', 'this sub-agent was revoked at this person server')
  await ctx.store.noteAgentToken({ iss: claims.iss, jti: claims.jti, sub: claims.sub, expiresAt: claims.exp * 1000 })
  return { claims, token, thumbprint: await jwkThumbprint(claims.cnf.jwk) }
}

/** What a token request delegates: a sub-agent it is for, or the upstream token of a chained call. */
export interface Delegation {
  readonly subAgent?: SubAgent
  readonly upstream?: Upstream
}

/**
 * Reads `subagent_token` and `upstream_token` of a token request. A request carries at most one:
 * an intermediary acts in its own name, and a sub-agent's calls are not chained through its parent.
 *
 * @throws {ProblemError} `invalid_request` for both at once, else as {@link readSubAgent} and {@link readUpstream}.
 */
export async function readDelegation(ctx: PsContext, req: AgentRequest): Promise<Delegation> {
  if (req.body['subagent_token'] !== undefined && req.body['upstream_token'] !== undefined) {
    throw new ProblemError('invalid_request', 'a request carries subagent_token or upstream_token, not both')
  }
  const subAgent = await readSubAgent(ctx, req)
  if (subAgent !== undefined) return { subAgent }
  const upstream = await readUpstream(ctx, req)
  return upstream === undefined ? {} : { upstream }
}

/** The issuance fields a sub-agent changes: its key, its identifier, its parent, the tighter `exp`. */
export function subAgentWork(parent: AgentTokenClaims, sub: SubAgent): { agentSub: string; parentAgent: string; subAgentJti: string; cnfJwk: AgentTokenClaims['cnf']['jwk']; agentExp: number } {
  return { agentSub: sub.claims.sub, parentAgent: parent.sub, subAgentJti: sub.claims.jti, cnfJwk: sub.claims.cnf.jwk, agentExp: Math.min(parent.exp, sub.claims.exp) }
}

/**
 * The verdict on a sub-agent request (scope attenuation, scenario S3): in `within-parent-grant`
 * mode a request the parent's grants do not cover is refused, naming what is outside, instead of
 * asking the person; `ask` mode leaves the verdict as it is.
 */
export function delegatedVerdict(ctx: PsContext, verdict: Decision, parent: string, perCall = false): Decision {
  if ((ctx.options.subAgents?.consent ?? 'within-parent-grant') === 'ask' || verdict.decision !== 'ask') return verdict
  const outside = verdict.newScopes ?? []
  const reason =
    perCall ? `a per-call proposal needs the person's approval, which a sub-agent is not given in this deployment (subAgents.consent: 'within-parent-grant')`
    : outside.length === 0 ? `${parent} holds no grant to act at this resource for its sub-agent`
    : `outside what ${parent} was granted: ${outside.join(' ')}`
  return { decision: 'deny', reason }
}

/** Whether a sub-agent request may reach the person when its parent is not bound (first contact). */
export function subAgentFirstContact(ctx: PsContext): boolean {
  return ctx.options.subAgents?.consent === 'ask'
}

/** Whether a sub-agent is still usable (its token and its binding not revoked meanwhile). */
export async function subAgentStillValid(ctx: PsContext, sub: SubAgent): Promise<boolean> {
  if (await ctx.store.isRevoked(sub.claims.iss, sub.claims.jti)) return false
  return (await ctx.store.getBinding(sub.claims.iss, sub.claims.sub))?.revokedAt === undefined
}

/**
 * The delegation events of one issuance for a sub-agent, committed with the token (scenario S3):
 * `delegation.created` when the parent obtains a token for a sub-agent that holds no live one from
 * it (delegator, sub-agent, scope, expiry, mission); `delegation.renewed` when it replaces a live
 * token of the same kind, resource and scope (the original and the new expiry);
 * `delegation.used` every time.
 */
export async function delegationEvents(ctx: PsContext, issued: IssuedToken): Promise<AuditEvent[]> {
  if (issued.parentAgent === undefined) return []
  const base = {
    at: ctx.now(),
    personId: issued.personId,
    agentSub: issued.agentSub,
    parentAgent: issued.parentAgent,
    resource: issued.resource,
    ...(issued.scope === undefined ? {} : { scope: issued.scope }),
    ...(issued.missionS256 === undefined ? {} : { missionS256: issued.missionS256 }),
    decision: 'grant',
  }
  const detail = { delegator: issued.parentAgent, agent: issued.agentSub, jti: issued.jti, kind: issued.kind, expiresAt: issued.expiresAt }
  const live = (await ctx.store.liveIssued({ agentIss: issued.agentIss, agentSub: issued.agentSub, personId: issued.personId, now: ctx.now() })).filter(
    (t) => t.jti !== issued.jti && t.agentSub === issued.agentSub && t.parentAgent === issued.parentAgent,
  )
  const original = live
    .filter((t) => t.kind === issued.kind && t.resource === issued.resource && (t.scope ?? '') === (issued.scope ?? ''))
    .sort((a, b) => b.expiresAt - a.expiresAt)[0]
  return [
    ...(live.length === 0 ? [{ ...base, type: DELEGATION_EVENT.created, detail }] : []),
    ...(original === undefined ? [] : [{ ...base, type: DELEGATION_EVENT.renewed, detail: { ...detail, original: original.jti, originalExpiresAt: original.expiresAt } }]),
    { ...base, type: DELEGATION_EVENT.used, detail },
  ]
}

/**
 * Records the sub-agent as an agent of the parent's person (PS-SUB-03), once, so the person can
 * see and revoke it by its identifier. Best effort: a sub-agent identifier bound to another person
 * (never for a well-behaved agent provider) is left alone.
 */
export async function rememberSubAgent(ctx: PsContext, sub: SubAgent, person: PersonRecord): Promise<void> {
  const b = await ctx.store.getBinding(sub.claims.iss, sub.claims.sub)
  if (b !== undefined) return
  await ctx.store.commit({ bindings: [{ agentIss: sub.claims.iss, agentSub: sub.claims.sub, personId: person.id, createdAt: ctx.now() }] })
}

/**
 * The `delegation.revoked` events for the sub-agents among `tokens` withdrawn with their parent
 * (or on their own), one per (person, sub-agent), carrying the chain and the mission.
 */
export function delegationRevokedEvents(tokens: readonly IssuedToken[], at: number, reason: string): AuditEvent[] {
  const seen = new Map<string, AuditEvent>()
  for (const t of tokens) {
    if (t.parentAgent === undefined) continue
    const key = `${t.personId}\u0000${t.agentSub}\u0000${t.missionS256 ?? ''}`
    if (seen.has(key)) continue
    seen.set(key, {
      at,
      type: DELEGATION_EVENT.revoked,
      personId: t.personId,
      agentSub: t.agentSub,
      parentAgent: t.parentAgent,
      ...(t.missionS256 === undefined ? {} : { missionS256: t.missionS256 }),
      decision: 'revoke',
      reason,
      detail: { delegator: t.parentAgent, agent: t.agentSub },
    })
  }
  return [...seen.values()]
}

// ---------------------------------------------------------------------------------------------
// Call chaining
// ---------------------------------------------------------------------------------------------

/** A verified `upstream_token` and who it stands for. */
export interface Upstream {
  readonly kind: 'person' | 'auth'
  readonly claims: PersonTokenClaims | AuthTokenClaims
  /** This PS's record of the person token behind it (the upstream token itself, or the one an auth token was obtained with). */
  readonly record: IssuedToken
  /** The person the upstream token identifies. */
  readonly personId: string
}

/**
 * Reads and verifies `upstream_token` (main draft §Upstream Token Verification steps 1–4;
 * CHECKLIST PS-CH-01..03, PS-CH-06): a person or auth token by `typ`, with `aud` = the
 * intermediary (the `iss` of the signing agent token) and no cnf-vs-signer check; it must be this
 * PS's (a person token's `iss`, an auth token's `ps` and `iss`); the calling agent is found in this
 * PS's issued-token records, and a revoked agent token or binding of it refuses the request.
 *
 * @returns `undefined` when the body has no `upstream_token`.
 * @throws {ProblemError} `invalid_upstream_token`, `expired_upstream_token`,
 *   `revoked_upstream_token`, `clock_skew`.
 */
export async function readUpstream(ctx: PsContext, req: AgentRequest): Promise<Upstream | undefined> {
  const token = tokenParameter(req.body, 'upstream_token', 'invalid_upstream_token')
  if (token === undefined) return undefined
  const intermediary = req.agent.iss
  const common = { jwks: ctx.jwks, now: ctx.now, iatSkewSec: ctx.options.windowSec ?? 60, audience: intermediary, ...ctx.idOpts }
  const isRevoked = async (iss: string, jti: string): Promise<boolean> => iss === ctx.issuer && (await ctx.store.getIssued(jti))?.revokedAt !== undefined
  let typ: unknown
  try {
    typ = decodeJwt(token).header['typ']
  } catch (e) {
    throw toParameterError(e, 'upstream')
  }
  let kind: 'person' | 'auth'
  let claims: PersonTokenClaims | AuthTokenClaims
  try {
    if (typ === 'aa-person+jwt') {
      kind = 'person'
      claims = await verifyPersonToken(token, { ...common, isRevoked })
    } else if (typ === 'aa-auth+jwt') {
      kind = 'auth'
      claims = await verifyAuthToken(token, { ...common, trustedIssuers: [ctx.issuer], isRevoked })
    } else {
      throw new ProblemError('invalid_upstream_token', 'upstream_token must be a person token or an auth token')
    }
  } catch (e) {
    throw e instanceof ProblemError ? e : toParameterError(e, 'upstream')
  }
  // Step 2: this PS's token (three-party: an auth token's iss is this PS too).
  if (claims.iss !== ctx.issuer || (kind === 'auth' && (claims as AuthTokenClaims).ps !== ctx.issuer)) {
    throw new ProblemError('invalid_upstream_token', 'upstream_token was not issued by this person server')
  }
  // Step 3 is the audience check above: `aud` = the signing agent token's `iss` (§Intermediary Agent Identity).
  // Step 4: the calling agent, from this PS's records.
  const own = await ctx.store.getIssued(claims.jti)
  const record = kind === 'person' ? own : own?.presentedJti === undefined ? undefined : ((await ctx.store.getIssued(own.presentedJti)) ?? own)
  if (own === undefined || record === undefined) throw new ProblemError('invalid_upstream_token', 'this person server has no record of the agent upstream_token was issued to')
  if (own.revokedAt !== undefined) throw new ProblemError('revoked_upstream_token', 'upstream_token was revoked')
  const origin = await chainOrigin(ctx, own)
  if (origin === 'unknown') throw new ProblemError('invalid_upstream_token', 'this person server cannot follow upstream_token back to the agent that started the chain')
  if (origin === 'revoked') throw new ProblemError('revoked_upstream_token', 'the agent that started this chain is no longer bound to its person')
  // An agent token its provider revoked here withdrew every token issued to the agent (REV-11), `own` included.
  return { kind, claims, record, personId: own.personId }
}

/** The `detail.upstream` of audit events of a chained request: resource → upstream chain. */
export function upstreamDetail(up: Upstream): Record<string, unknown> {
  return { iss: up.claims.iss, jti: up.claims.jti, aud: up.claims.aud, kind: up.kind, agent: up.record.parentAgent ?? up.record.agentSub }
}

/** The issuance fields of a chained request: the upstream token's `iss`, `jti` and `exp` (PS-CH-07). */
export function upstreamWork(up: Upstream): { upstreamIss: string; upstreamJti: string; upstreamExp: number } {
  return { upstreamIss: up.claims.iss, upstreamJti: up.claims.jti, upstreamExp: up.claims.exp }
}

/**
 * The person a chained request is for: the one the upstream token identifies, never a person
 * bound to the intermediary (§Intermediary Agent Identity; PS-PT-05).
 *
 * @throws {ProblemError} `invalid_upstream_token` when this PS no longer knows that person.
 */
export async function upstreamPerson(ctx: PsContext, up: Upstream): Promise<PersonRecord> {
  const person = await ctx.store.getPerson(up.personId)
  if (person === undefined) throw new ProblemError('invalid_upstream_token', 'upstream_token names no person of this person server')
  return person
}

/**
 * The mission of a chained request: the upstream token's, which applies downstream (PS-PT-05,
 * PS-CH-04). The intermediary sends none of its own; one that differs is refused. `given` is the
 * body's `mission_s256` (person token) or the resource token's (auth token, copied from the
 * downstream person token, so it must be the same).
 *
 * @throws {ProblemError} `invalid_request` (a different mission), `mission_terminated` (403).
 */
export async function upstreamMission(ctx: PsContext, up: Upstream, given: unknown): Promise<MissionRecord | undefined> {
  const s256 = up.claims.mission_s256
  if (given !== undefined && given !== s256) throw new ProblemError('invalid_request', 'a chained request is under the mission of its upstream_token and names no other')
  if (s256 === undefined) return undefined
  const m = await ctx.store.getMission(s256)
  if (m === undefined || m.personId !== up.personId) throw new ProblemError('invalid_upstream_token', 'upstream_token names a mission this person server does not hold for its person')
  if (m.status !== 'active' || (m.expiresAt !== undefined && m.expiresAt <= ctx.now())) throw missionTerminated(m, ctx.now())
  return m
}

/**
 * Follows an issued token up its chain (`upstreamJti`, at most {@link MAX_CHAIN_DEPTH} hops) to the
 * agent that started it — an intermediary is never bound to a person, the calling agent at the top
 * is (main draft §Upstream Token Verification step 4): `ok` when every link is live and that agent
 * is still bound to the person, `revoked` when a link or the binding was withdrawn, `unknown` when
 * a link is not on record (or the chain is deeper than followed).
 */
async function chainOrigin(ctx: PsContext, own: IssuedToken): Promise<'ok' | 'revoked' | 'unknown'> {
  let rec: IssuedToken | undefined = own
  for (let hop = 0; hop <= MAX_CHAIN_DEPTH; hop++) {
    if (rec === undefined) return 'unknown'
    if (rec.revokedAt !== undefined) return 'revoked'
    if (rec.upstreamJti === undefined) {
      const b = await ctx.store.getBinding(rec.agentIss, rec.parentAgent ?? rec.agentSub)
      return b !== undefined && b.revokedAt === undefined && b.personId === rec.personId ? 'ok' : 'revoked'
    }
    rec = await ctx.store.getIssued(rec.upstreamJti)
  }
  return 'unknown'
}

/**
 * Whether a chained request's upstream token (by `jti`) still stands: recorded, not revoked, and
 * the agent that started the chain still bound. Checked after issuing and when the person approves.
 */
export async function upstreamJtiStillValid(ctx: PsContext, jti: string): Promise<boolean> {
  const own = await ctx.store.getIssued(jti)
  return own !== undefined && (await chainOrigin(ctx, own)) === 'ok'
}

/** Whether what a chained request was decided on still holds (the upstream token and its agent). */
export function upstreamStillValid(ctx: PsContext, up: Upstream): Promise<boolean> {
  return upstreamJtiStillValid(ctx, up.claims.jti)
}

/** Most hops a revocation follows down a chain of chains. */
const MAX_CHAIN_DEPTH = 8

/**
 * The live tokens issued on chained requests whose `upstream_token` was one of `tokens`, and
 * those issued from them in turn (§Revocation Cascade: a PS SHOULD also revoke what it issued
 * from a token as an upstream token; REV-13).
 */
export async function chainedFrom(ctx: { store: PsContext['store'] }, tokens: readonly IssuedToken[], now: number): Promise<IssuedToken[]> {
  const seen = new Set(tokens.map((t) => t.jti))
  const out: IssuedToken[] = []
  let frontier = [...seen]
  for (let depth = 0; depth < MAX_CHAIN_DEPTH && frontier.length > 0; depth++) {
    const next = (await ctx.store.issuedFromUpstream(frontier, now)).filter((t) => !seen.has(t.jti))
    for (const t of next) seen.add(t.jti)
    out.push(...next)
    frontier = next.map((t) => t.jti)
  }
  return out
}
