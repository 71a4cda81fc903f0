/**
 * The Person Server's {@link ConsentService}: what happens when a person opens, approves, denies,
 * questions or revokes (main draft §User Interaction, §Agent-Person Binding, §Clarification Chat,
 * §Incremental Consent, §Token Revocation). Each decision is one atomic store commit — the
 * resolution of the pending request, the binding, the grants, the issued token's record and the
 * audit events — so an approval the person saw confirmed is never lost and never applied twice.
 *
 * @module
 */

import { normalizeInteractionCode, ProblemError } from '../protocol/index.js'
import { ConsentError, type ConsentDecision, type ConsentService, type MissionChoices, type RememberChoice, type RevocationReport } from './consent.js'
import type { PsContext } from './context.js'
import { chainedFrom, delegationEvents, upstreamJtiStillValid } from './delegation.js'
import { mint, type IssueWork } from './issuance.js'
import { agentMissionsRevoked, decideMission, isMissionRequest } from './missions.js'
import { orgLimits } from './policy.js'
import { isOpen, type PendingWork } from './pending.js'
import {
  OPEN_PENDING_STATES,
  type AgentBinding,
  type AuditEvent,
  type Grant,
  type IssuedToken,
  type PendingPatch,
  type PendingRecord,
  type RevocationOutcome,
  type StoreBatch,
} from './store/types.js'
import { randomBytes } from 'node:crypto'

/** The part of the revocation cascade the consent service needs. */
export interface RevocationCascadeLike {
  revokeTokens(tokens: readonly IssuedToken[]): Promise<RevocationOutcome[]>
  revokeAgent(agentIss: string, agentSub: string, personId?: string): Promise<RevocationOutcome[]>
}

/** The pseudo-resource under which permission-endpoint approvals are remembered. */
export const PERMISSION_RESOURCE = 'urn:aauth:permission'

const REMEMBER_SEC: Record<Exclude<RememberChoice, 'once' | 'always'>, number> = { day: 86_400, month: 30 * 86_400 }

function rememberUntil(ctx: PsContext, choice: RememberChoice, now: number): number | undefined | null {
  if (choice === 'once') return null
  const max = ctx.options.maxGrantSec
  const sec = choice === 'always' ? max : Math.min(REMEMBER_SEC[choice], max ?? Infinity)
  return sec === undefined ? undefined : now + sec * 1000
}

/** Creates the consent service of a PS. */
export function createConsentService(ctx: PsContext, cascade: RevocationCascadeLike): ConsentService {
  const maxRounds = ctx.options.maxClarifications ?? 5

  async function load(id: string, personId: string): Promise<PendingRecord> {
    const rec = await ctx.store.getPending(id)
    if (rec === undefined) throw new ConsentError('not_found', 'There is no such request.')
    if (rec.personId !== undefined && rec.personId !== personId) throw new ConsentError('not_yours', 'This request is for another person.')
    return rec
  }

  async function openOne(id: string, personId: string): Promise<PendingRecord> {
    const rec = await load(id, personId)
    if (!isOpen(rec) || rec.expiresAt <= ctx.now()) throw new ConsentError('closed', 'This request is no longer waiting for a decision.')
    if (rec.personId === undefined) {
      const b = await ctx.store.getBinding(rec.agentIss, rec.agentSub)
      if (b !== undefined && b.revokedAt === undefined && b.personId !== personId) throw new ConsentError('not_yours', 'This agent acts for another person.')
    }
    return rec
  }

  /** Commits `batch` with a compare-and-set on the request; a lost race is `closed`. */
  async function resolve(rec: PendingRecord, patch: Omit<PendingPatch, 'updatedAt'>, batch: Omit<StoreBatch, 'pending'>, at?: number): Promise<PendingRecord> {
    const now = ctx.now()
    const { applied } = await ctx.store.commit({ ...batch, pending: { id: rec.id, from: OPEN_PENDING_STATES, ...(at === undefined ? {} : { at }), patch: { ...patch, updatedAt: Math.max(now, rec.updatedAt + 1) } } })
    if (!applied) throw new ConsentError('closed', 'This request changed or was decided elsewhere in the meantime. Review it again.')
    ctx.changes.changed(rec.id)
    return (await ctx.store.getPending(rec.id))!
  }

  function event(rec: PendingRecord, personId: string, type: string, extra: Partial<AuditEvent>): AuditEvent {
    const v = rec.view
    return {
      at: ctx.now(),
      type,
      personId,
      agentSub: rec.agentSub,
      ...(v.agent.parentAgent === undefined ? {} : { parentAgent: v.agent.parentAgent }),
      ...(v.resource === undefined ? {} : { resource: v.resource.id }),
      ...(v.scopes === undefined ? {} : { scope: v.scopes.join(' ') }),
      ...(v.missionS256 === undefined ? {} : { missionS256: v.missionS256 }),
      ...extra,
      detail: { pending: rec.id, ...extra.detail },
    }
  }

  /** The binding a first approval creates (main draft §Agent-Person Binding). */
  async function newBinding(rec: PendingRecord, personId: string): Promise<AgentBinding[]> {
    // An intermediary acts for whoever its callers act for: a chained request binds it to no one (main draft §Intermediary Agent Identity).
    if ((rec.work as { issue?: { upstreamJti?: string } }).issue?.upstreamJti !== undefined) return []
    const b = await ctx.store.getBinding(rec.agentIss, rec.agentSub)
    if (b !== undefined && b.revokedAt === undefined) return []
    const a = rec.view.agent
    return [{
      agentIss: rec.agentIss,
      agentSub: rec.agentSub,
      personId,
      ...(a.providerName === undefined ? {} : { providerName: a.providerName }),
      ...(a.providerLogoUri === undefined ? {} : { providerLogoUri: a.providerLogoUri }),
      ...(a.platform === undefined ? {} : { platform: a.platform }),
      ...(a.device === undefined ? {} : { device: a.device }),
      createdAt: ctx.now(),
    }]
  }

  function newGrants(rec: PendingRecord, personId: string, remember: RememberChoice): Grant[] {
    const now = ctx.now()
    const until = rememberUntil(ctx, remember, now)
    const v = rec.view
    // A per-call approval covers one call; nothing about it is remembered (R3 §Per-Call Proposals).
    if (until === null || v.perCall === true) return []
    const resource = rec.kind === 'permission' ? PERMISSION_RESOURCE : v.resource?.id
    if (resource === undefined) return []
    const keys = rec.kind === 'permission' ? [v.permission?.action ?? ''] : rec.kind === 'person_token' ? [''] : (v.newScopes ?? v.scopes ?? []).length === 0 ? [''] : [...(v.newScopes ?? v.scopes ?? [])]
    return keys.map((scope) => ({
      id: randomBytes(12).toString('base64url'),
      personId,
      agentIss: rec.agentIss,
      agentSub: rec.agentSub,
      resource,
      scope,
      ...(v.missionS256 === undefined ? {} : { missionS256: v.missionS256 }),
      createdAt: now,
      ...(until === undefined ? {} : { expiresAt: until }),
    }))
  }

  async function approve(rec: PendingRecord, personId: string, remember: RememberChoice, seen: number | undefined, mission?: MissionChoices): Promise<PendingRecord> {
    // Two first-contact requests of one agent opened by two people: the first approval binds it (PS-05).
    const bound = await ctx.store.getBinding(rec.agentIss, rec.agentSub)
    if (bound !== undefined && bound.revokedAt === undefined && bound.personId !== personId) throw new ConsentError('not_yours', 'This agent acts for another person.')
    const base = { bindings: await newBinding(rec, personId), grants: newGrants(rec, personId, remember) }
    const approved = event(rec, personId, 'request.approved', { decision: 'grant', reason: `approved by the person (remember: ${remember})` })
    if (isMissionRequest(rec)) {
      // Mission proposals, updates and completions (main draft §Mission): the binding of a new agent as for tokens.
      const m = await decideMission(ctx, rec, personId, mission)
      const batch = m.state === 'granted' ? { ...base, ...m.batch, audit: [approved, ...m.batch.audit] } : { ...m.batch, audit: [event(rec, personId, `request.${m.state}`, { decision: 'deny', reason: String(m.result.body['detail'] ?? m.state) })] }
      return resolve(rec, { state: m.state, personId, result: m.result, code: null }, batch, seen)
    }
    const issue = (rec.work as unknown as PendingWork).issue
    if (issue !== undefined) return approveIssue(rec, personId, issue, base, approved, seen)
    const result = rec.kind === 'permission' ? { permission: 'granted' } : {}
    return resolve(rec, { state: 'granted', personId, result: { status: 200, body: result }, code: null }, { ...base, audit: [approved] }, seen)
  }

  /** Ends a request that can no longer be granted: `revoked` (403) or a mission status error. */
  function endRequest(rec: PendingRecord, personId: string, state: 'revoked' | 'denied', body: Record<string, unknown>, reason: string): Promise<PendingRecord> {
    return resolve(rec, { state, personId, result: { status: 403, body }, code: null }, { audit: [event(rec, personId, `request.${state}`, { decision: 'deny', reason })] })
  }

  /**
   * What must still hold when the person approves: the request names them (an auth token request
   * names its person), the organisation allows it, and nothing it depends on was revoked or ended
   * while they read the page. Returns the refusal, if any.
   */
  async function stillValid(rec: PendingRecord, personId: string, issue: IssueWork): Promise<PendingRecord | undefined> {
    if (issue.kind === 'auth_token' && (await ctx.store.personForSubject(issue.resource, issue.sub)) !== personId) {
      throw new ConsentError('not_yours', 'This request names another person.')
    }
    const person = await ctx.store.getPerson(personId)
    const scopes = issue.kind === 'auth_token' && issue.scope !== undefined ? issue.scope.split(' ') : []
    const limit = person === undefined ? undefined : orgLimits({ kind: issue.kind, person, agent: { iss: issue.agentIss, sub: issue.agentSub, ...(issue.parentAgent === undefined ? {} : { parentAgent: issue.parentAgent }) }, resource: issue.resource, scopes }, ctx.options.organization)
    if (limit !== undefined) return endRequest(rec, personId, 'denied', { error: 'denied', detail: limit.reason }, limit.reason)
    if (issue.agentJti !== undefined && (await ctx.store.isRevoked(issue.agentIss, issue.agentJti))) {
      return endRequest(rec, personId, 'revoked', { error: 'revoked', detail: "the agent provider revoked the agent's token" }, 'agent token revoked')
    }
    if (issue.kind === 'auth_token' && ((await ctx.store.isRevoked(issue.rtIss, issue.rtJti)) || (await ctx.store.getIssued(issue.presentedJti))?.revokedAt !== undefined)) {
      return endRequest(rec, personId, 'revoked', { error: 'revoked', detail: 'a token this request depends on was revoked' }, 'a token the request depends on was revoked')
    }
    // A chained request: the upstream token and the agent that started the chain (PS-CH-06).
    if (issue.upstreamJti !== undefined && !(await upstreamJtiStillValid(ctx, issue.upstreamJti))) {
      return endRequest(rec, personId, 'revoked', { error: 'revoked', detail: 'the upstream token of this request, or its agent, was revoked' }, 'upstream token or its agent revoked')
    }
    // Parent-mediated: the sub-agent itself, revoked while its parent's request waited.
    if (issue.parentAgent !== undefined) {
      const sub = await ctx.store.getBinding(issue.agentIss, issue.agentSub)
      if (sub?.revokedAt !== undefined || (issue.subAgentJti !== undefined && (await ctx.store.isRevoked(issue.agentIss, issue.subAgentJti)))) {
        return endRequest(rec, personId, 'revoked', { error: 'revoked', detail: 'the sub-agent was revoked' }, 'sub-agent revoked')
      }
    }
    if (issue.missionS256 !== undefined) {
      const m = await ctx.store.getMission(issue.missionS256)
      if (m === undefined || m.status !== 'active' || (m.expiresAt !== undefined && m.expiresAt <= ctx.now())) {
        const body = { error: 'mission_terminated', detail: 'the mission ended while the request waited', mission_status: 'terminated', termination_reason: m?.terminationReason ?? 'expired' }
        return endRequest(rec, personId, 'revoked', body, 'mission ended')
      }
    }
    return undefined
  }

  async function approveIssue(rec: PendingRecord, personId: string, issue: IssueWork, base: Pick<StoreBatch, 'bindings' | 'grants'>, approved: AuditEvent, seen: number | undefined): Promise<PendingRecord> {
    const refused = await stillValid(rec, personId, issue)
    if (refused !== undefined) return refused
    try {
      const minted = await mint(ctx, issue, personId, 'approved by the person')
      // Parent-mediated: the sub-agent is remembered for the person and the delegation trail written (PS-SUB-03).
      const delegation = await delegationEvents(ctx, minted.issued)
      const subBinding = issue.parentAgent === undefined || (await ctx.store.getBinding(issue.agentIss, issue.agentSub)) !== undefined ? [] : [{ agentIss: issue.agentIss, agentSub: issue.agentSub, personId, createdAt: ctx.now() }]
      const batch = { ...base, bindings: [...(base.bindings ?? []), ...subBinding], ...minted.batch, audit: [approved, ...(minted.batch.audit ?? []), ...delegation] }
      return await resolve(rec, { state: 'granted', personId, result: { status: 200, body: minted.body }, code: null }, batch, seen)
    } catch (e) {
      if (!(e instanceof ProblemError)) throw e
      const result = { status: e.status, body: { error: e.code, detail: e.message } }
      return resolve(rec, { state: 'expired', personId, result, code: null }, { audit: [event(rec, personId, 'request.expired', { decision: 'deny', reason: e.message })] })
    }
  }

  async function revokeReport(tokens: IssuedToken[], run: () => Promise<RevocationOutcome[]>): Promise<RevocationReport> {
    const outcomes = await run()
    return { tokens: tokens.length, outcomes }
  }

  return {
    async findByCode(code) {
      const normal = normalizeInteractionCode(code)
      if (normal === undefined) return undefined
      const rec = await ctx.store.getPendingByCode(normal)
      return rec !== undefined && isOpen(rec) && rec.expiresAt > ctx.now() ? rec : undefined
    },
    get: load,
    async open(id, personId) {
      const rec = await openOne(id, personId)
      if (rec.personId === personId && rec.state !== 'pending') return rec
      return resolve(rec, { ...(rec.state === 'pending' ? { state: 'interacting' } : {}), personId, code: null }, {
        audit: [event(rec, personId, 'request.opened', {})],
      })
    },
    async decide(id, personId, decision: ConsentDecision) {
      const rec = await openOne(id, personId)
      if (decision.approve) {
        if (rec.kind === 'question') throw new ConsentError('bad_input', 'Answer the question instead.')
        // The person approves what they saw: an agent's updated_request after that makes this fail (`closed`).
        if (decision.seen !== undefined && decision.seen !== rec.updatedAt) throw new ConsentError('closed', 'The agent changed this request while you were reading it. Review it again.')
        return approve(rec, personId, decision.remember ?? 'once', decision.seen, decision.mission)
      }
      const body = rec.kind === 'permission' ? { permission: 'denied', reason: 'The person declined.' } : { error: 'denied', detail: 'the person declined the request' }
      return resolve(rec, { state: 'denied', personId, result: { status: rec.kind === 'permission' ? 200 : 403, body }, code: null }, {
        audit: [event(rec, personId, 'request.denied', { decision: 'deny', reason: 'declined by the person' })],
      })
    },
    async ask(id, personId, question) {
      const rec = await openOne(id, personId)
      const text = question.trim()
      if (text === '' || text.length > 4000) throw new ConsentError('bad_input', 'Write a question of at most 4,000 characters.')
      if (rec.state === 'clarification') throw new ConsentError('bad_input', 'The agent has not answered your last question yet.')
      const caps = (rec.work as unknown as PendingWork).capabilities
      if (!caps.includes('clarification')) throw new ConsentError('bad_input', 'This agent did not say it can answer questions.')
      const asked = (rec.chat ?? []).filter((t) => t.from === 'person').length
      if (asked >= maxRounds) throw new ConsentError('clarification_limit', `You can ask at most ${maxRounds} questions per request.`)
      return resolve(rec, { state: 'clarification', personId, chat: [...(rec.chat ?? []), { from: 'person', text, at: ctx.now() }] }, {
        audit: [event(rec, personId, 'clarification.asked', {})],
      })
    },
    async answer(id, personId, answer) {
      const rec = await openOne(id, personId)
      if (rec.kind !== 'question') throw new ConsentError('bad_input', 'This request is not a question.')
      const text = answer.trim()
      if (text === '' || text.length > 16_000) throw new ConsentError('bad_input', 'Write an answer of at most 16,000 characters.')
      return resolve(rec, { state: 'granted', personId, result: { status: 200, body: { answer: text } }, code: null }, {
        audit: [event(rec, personId, 'question.answered', { decision: 'grant' })],
      })
    },
    waiting: (personId) => ctx.store.openPending(personId),
    agents: (personId) => ctx.store.listBindings(personId),
    grants: (personId) => ctx.store.listGrants(personId),
    async revokeGrant(personId, grantId) {
      const g = await ctx.store.getGrant(grantId)
      if (g === undefined) throw new ConsentError('not_found', 'There is no such grant.')
      if (g.personId !== personId) throw new ConsentError('not_yours', 'This grant is another person’s.')
      const now = ctx.now()
      await ctx.store.commit({
        revokeGrants: g.revokedAt === undefined ? [{ id: g.id, at: now }] : [],
        audit: [{ at: now, type: 'grant.revoked', personId, agentSub: g.agentSub, resource: g.resource, ...(g.scope === '' ? {} : { scope: g.scope }), ...(g.missionS256 === undefined ? {} : { missionS256: g.missionS256 }), decision: 'revoke', reason: 'revoked by the person', detail: { grant: g.id } }],
      })
      // The tokens that grant stands behind: at the resource, those carrying the scope (all of them for the identity grant).
      const live = await ctx.store.liveIssued({ agentIss: g.agentIss, agentSub: g.agentSub, personId, resource: g.resource, now })
      const direct = live.filter((t) => g.scope === '' || (t.scope ?? '').split(' ').includes(g.scope))
      // What intermediaries obtained with those tokens (call chaining) goes with them (REV-13).
      const tokens = [...direct, ...(await chainedFrom(ctx, direct, now))]
      return revokeReport(tokens, () => cascade.revokeTokens(tokens))
    },
    async revokeAgent(personId, agentIss, agentSub) {
      const b = await ctx.store.getBinding(agentIss, agentSub)
      if (b === undefined) throw new ConsentError('not_found', 'There is no such agent.')
      if (b.personId !== personId) throw new ConsentError('not_yours', 'This agent acts for another person.')
      const now = ctx.now()
      const grants = (await ctx.store.listGrants(personId)).filter((g) => g.agentIss === agentIss && g.agentSub === agentSub && g.revokedAt === undefined)
      const open = (await ctx.store.openPending(personId)).filter((p) => p.agentIss === agentIss && p.agentSub === agentSub)
      // Its missions end with it (main draft §Mission Management).
      const missions = await agentMissionsRevoked(ctx, personId, agentIss, agentSub, now)
      await ctx.store.commit({
        revokeBindings: b.revokedAt === undefined ? [{ agentIss, agentSub, at: now }] : [],
        revokeGrants: grants.map((g) => ({ id: g.id, at: now })),
        missions: missions.missions,
        missionLog: missions.missionLog,
        audit: [{ at: now, type: 'agent.revoked', personId, agentSub, decision: 'revoke', reason: 'revoked by the person', detail: { grants: grants.length } }, ...missions.audit],
      })
      for (const p of open) {
        const result = { status: 403, body: { error: 'revoked', detail: 'the person revoked this agent' } }
        await ctx.store.commit({ pending: { id: p.id, from: OPEN_PENDING_STATES, patch: { state: 'revoked', result, code: null, updatedAt: now } } })
        ctx.changes.changed(p.id)
      }
      const tokens = await ctx.store.liveIssued({ agentIss, agentSub, personId, now })
      return revokeReport(tokens, () => cascade.revokeAgent(agentIss, agentSub, personId))
    },
  }
}
