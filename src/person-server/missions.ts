/**
 * Missions at the Person Server (main draft §Mission and its subsections; CHECKLIST MIS-01..12,
 * MIS-ERR-01, MIS-LOG-01, REV-12, PS-CON-06).
 *
 * - `POST /mission` — a proposal. It always waits for the person (a `202`); an agent nobody
 *   approved yet is bound to whoever approves it, through the consent service's first-contact
 *   path. On approval the blob is serialised once, those exact bytes are stored and hashed, and
 *   the pending request answers `{s256, mission, capabilities?, person_tokens?}`.
 * - `POST /mission/{s256}` — `action: update` (accepted at once, or put before the person with
 *   `missionUpdates: 'ask'`) or `action: completion` (always before the person; acceptance
 *   terminates the mission as `completed`).
 * - The person's side ({@link MissionService}): list, read (blob as stored, accepted updates, the
 *   ordered mission log) and revoke, which terminates the mission as `revoked` and withdraws the
 *   tokens issued under it through the revocation cascade.
 *
 * A mission has two states only, and a terminated one never changes again (the store enforces
 * it too). A mission past its `expires_at` is terminated `expired` wherever it is used.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { encodeBase64url } from '../lib/base64url.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { assertServerIdentifier, ProblemError, sha256Base64url, type Capability } from '../protocol/index.js'
import { requiredText, type AgentRequest } from './agent-requests.js'
import { ConsentError, type MissionChoices, type MissionExpiry, type RevocationReport } from './consent.js'
import type { PsContext } from './context.js'
import { mint, type PersonTokenWork } from './issuance.js'
import { chainedFrom } from './delegation.js'
import { deferToPerson } from './pending.js'
import {
  OPEN_PENDING_STATES,
  type AuditEvent,
  type ConsentView,
  type Grant,
  type IssuedToken,
  type MissionLogEntry,
  type MissionRecord,
  type MissionRequestView,
  type PendingRecord,
  type RevocationOutcome,
  type StoreBatch,
} from './store/types.js'
import { activeMission, boundPerson, commonTokenParams, missionTerminated, refuseSubAgentCaller } from './token-request.js'

/** Longest mission description, update or completion summary (characters). */
export const MAX_MISSION_TEXT = 16_000
/** Most tools in a proposal. */
export const MAX_MISSION_TOOLS = 50
/** Most resources in a proposal. */
export const MAX_MISSION_RESOURCES = 20
const MAX_TOOL_NAME = 128
const MAX_TOOL_DESCRIPTION = 1000
const MISSION_S256 = /^[A-Za-z0-9_-]{43}$/
/** `mission_not_found` answers one agent may get per window before `429` (MIS-ERR-02). */
export const MAX_MISSION_MISSES = 100
const MISS_WINDOW_MS = 10 * 60_000
const EXPIRY_MS: Readonly<Record<MissionExpiry, number | undefined>> = { none: undefined, day: 86_400_000, month: 30 * 86_400_000 }

/** A tool of a proposal or blob. */
export interface MissionTool {
  readonly name: string
  readonly description: string
}

/** What a mission pending request keeps in `work.mission` to finish on the person's decision. */
type MissionWork =
  | {
      readonly op: 'propose'
      readonly description: string
      readonly tools?: readonly MissionTool[]
      readonly resources?: readonly string[]
      readonly limits?: MissionLimits
      /** The proposing request's agent token: the person tokens of the approval are bound to it. */
      readonly agent: Pick<PersonTokenWork, 'agentIss' | 'agentSub' | 'cnfJwk' | 'agentExp' | 'agentJti'>
    }
  | { readonly op: 'update'; readonly s256: string; readonly description: string }
  | { readonly op: 'completion'; readonly s256: string; readonly summary: string }

/** One entry of the ordered mission log the person reads ({@link readMissionLog}). */
export interface MissionLogItem {
  readonly at: number
  /** `mission`: the mission's own log (created, update, completion, permission, audit…); `audit`: the PS's audit trail. */
  readonly source: 'mission' | 'audit'
  readonly type: string
  readonly agentSub?: string
  readonly resource?: string
  readonly scope?: string
  readonly decision?: string
  readonly reason?: string
  readonly detail?: Readonly<Record<string, unknown>>
}

/** An accepted mission update (main draft §Mission Update). */
export interface AcceptedUpdate {
  readonly at: number
  readonly description: string
  /** Unpadded base64url SHA-256 of the update's persisted bytes (the UTF-8 description). */
  readonly s256: string
}

/** A mission as its person reads it. */
export interface MissionDetail {
  readonly record: MissionRecord
  /** The blob decoded from the stored bytes (`record.blob` is those bytes). */
  readonly blob: Readonly<Record<string, unknown>>
  readonly updates: readonly AcceptedUpdate[]
  readonly log: readonly MissionLogItem[]
}

/** The person's operations on their missions (the pages under `/account/missions`). */
export interface MissionService {
  /** The person's missions, newest first. */
  list(personId: string): Promise<MissionRecord[]>
  /** One mission with its updates and log. @throws {ConsentError} `not_found` (unknown or another person's). */
  detail(personId: string, s256: string): Promise<MissionDetail>
  /**
   * Terminates an active mission as `revoked` (REV-12): its grants are revoked, requests waiting
   * under it end, and the person and auth tokens issued under it are withdrawn at their resources.
   *
   * @throws {ConsentError} `not_found`, `closed` (already terminated).
   */
  revoke(personId: string, s256: string): Promise<RevocationReport>
}

/** The part of the revocation cascade mission revocation needs. */
export interface MissionRevocationCascade {
  revokeTokens(tokens: readonly IssuedToken[]): Promise<RevocationOutcome[]>
}

// ---------------------------------------------------------------------------------------------
// Reading requests
// ---------------------------------------------------------------------------------------------

function readTools(value: unknown): MissionTool[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length > MAX_MISSION_TOOLS) throw new ProblemError('invalid_request', `tools must be an array of at most ${MAX_MISSION_TOOLS} {name, description} objects`)
  const names = new Set<string>()
  return value.map((t: unknown) => {
    const o = t as Record<string, unknown> | null
    const name = o?.['name']
    const description = o?.['description']
    if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof name !== 'string' || name === '' || name.length > MAX_TOOL_NAME || typeof description !== 'string' || description.length > MAX_TOOL_DESCRIPTION) {
      throw new ProblemError('invalid_request', `each tool must be {name, description}: a name of at most ${MAX_TOOL_NAME} and a description of at most ${MAX_TOOL_DESCRIPTION} characters`)
    }
    if (names.has(name)) throw new ProblemError('invalid_request', `tool ${name} is listed twice`)
    names.add(name)
    return { name, description }
  })
}

function readResources(ctx: PsContext, value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length > MAX_MISSION_RESOURCES) throw new ProblemError('invalid_request', `resources must be an array of at most ${MAX_MISSION_RESOURCES} server identifiers`)
  for (const r of value) {
    try {
      assertServerIdentifier(r, ctx.idOpts)
    } catch {
      throw new ProblemError('invalid_request', 'each resource must be the HTTPS URL of a resource (a server identifier)')
    }
  }
  return [...new Set(value as string[])]
}

/** Structured limits a mission carries beside its text, e.g. `{ amount: { max: 2000, currency: "USD" } }`. */
export type MissionLimits = Readonly<Record<string, { readonly max: number; readonly currency?: string }>>

/**
 * Reads the proposal's optional `limits` (an aauth-kit member of the blob; the draft's member
 * list is a floor): at most 10 named numeric ceilings that policy can machine-check per call
 * (`perCallCeiling`). Shown to the person with the proposal and kept in the approved blob.
 */
function readLimits(value: unknown): MissionLimits | undefined {
  if (value === undefined) return undefined
  const bad = () => new ProblemError('invalid_request', 'limits must map up to 10 names to {max: number, currency?: 3-letter code}')
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.keys(value).length > 10) throw bad()
  const out: Record<string, { max: number; currency?: string }> = {}
  for (const [name, v] of Object.entries(value)) {
    const { max, currency, ...rest } = (v ?? {}) as { max?: unknown; currency?: unknown }
    if (!/^[a-z_][a-z0-9_]{0,63}$/.test(name) || typeof max !== 'number' || !Number.isFinite(max) || Object.keys(rest).length > 0) throw bad()
    if (currency !== undefined && (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency))) throw bad()
    out[name] = { max, ...(currency === undefined ? {} : { currency }) }
  }
  return out
}

/** Parses a stored blob (the bytes that were hashed); `{}` for anything unreadable. */
export function parseMissionBlob(blob: string): Readonly<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(blob)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** The accepted updates of a mission, oldest first, from its log. */
function updatesOf(log: readonly MissionLogEntry[]): AcceptedUpdate[] {
  return log
    .filter((e) => e.type === 'update' && typeof e.detail['description'] === 'string')
    .map((e) => ({ at: e.at, description: e.detail['description'] as string, s256: String(e.detail['s256'] ?? '') }))
}

/**
 * The whole picture of a mission for a consent page (PS-CON-06, MIS-09): the approved description
 * and every accepted update.
 */
export async function missionContext(ctx: PsContext, m: MissionRecord): Promise<NonNullable<ConsentView['mission']>> {
  const description = parseMissionBlob(m.blob)['description']
  return { description: typeof description === 'string' ? description : '', updates: updatesOf(await ctx.store.missionLog(m.s256)).map((u) => u.description) }
}

/** The mission's termination, as the batch members that record it. */
function terminate(m: MissionRecord, reason: string, at: number, event: Omit<AuditEvent, 'at' | 'type' | 'missionS256'>): Required<Pick<StoreBatch, 'missions' | 'missionLog' | 'audit'>> {
  return {
    missions: [{ ...m, status: 'terminated', terminationReason: reason }],
    missionLog: [{ s256: m.s256, at, type: 'terminated', detail: { reason } }],
    audit: [{ ...event, at, type: `mission.${reason}`, missionS256: m.s256 }],
  }
}

/**
 * The agent's own active mission (MIS-ERR-01, MIS-12). One store read whether the mission is
 * unknown or another agent's, and the same error for both. A mission found past its
 * `expires_at` is recorded as terminated `expired` (MIS-06) before the error is thrown.
 *
 * @throws {ProblemError} `invalid_request`, `mission_not_found`, `mission_terminated`.
 */
async function ownMission(ctx: PsContext, s256: string, agent: { iss: string; sub: string }): Promise<MissionRecord> {
  const misses = missCounter(ctx)
  const key = `${agent.iss}\u0000${agent.sub}`
  const window = misses.get(key)
  if (window !== undefined && window.n >= MAX_MISSION_MISSES) {
    const err = new ProblemError('rate_limited', 'too many requests for missions this agent does not have') as ProblemError & { headers: Record<string, string> }
    err.headers = { 'retry-after': String(Math.max(1, Math.ceil((window.until - ctx.now()) / 1000))) }
    throw err
  }
  try {
    return await activeMission(ctx, s256, agent)
  } catch (e) {
    if (e instanceof ProblemError && e.code === 'mission_terminated') await terminateIfExpired(ctx, s256)
    if (e instanceof ProblemError && e.code === 'mission_not_found') {
      // Counted per agent; the mission reference itself is not kept (MIS-ERR-02).
      const w = window ?? { n: 0, until: ctx.now() + MISS_WINDOW_MS }
      misses.set(key, { n: w.n + 1, until: w.until }, w.until)
      if (w.n + 1 === MAX_MISSION_MISSES) console.warn(`person server: ${agent.sub} (${agent.iss}) asked for ${MAX_MISSION_MISSES} missions it does not have; refusing for ${MISS_WINDOW_MS / 60_000} minutes`)
    }
    throw e
  }
}

const missCounters = new WeakMap<PsContext, BoundedCache<string, { readonly n: number; readonly until: number }>>()

/** The per-agent `mission_not_found` counters of one PS (in memory: each instance counts its share). */
function missCounter(ctx: PsContext): BoundedCache<string, { readonly n: number; readonly until: number }> {
  let c = missCounters.get(ctx)
  if (c === undefined) missCounters.set(ctx, (c = new BoundedCache(10_000, ctx.now)))
  return c
}

/** Records an active mission past its `expires_at` as terminated `expired` (MIS-06). */
export async function terminateIfExpired(ctx: PsContext, s256: string): Promise<void> {
  const m = await ctx.store.getMission(s256)
  const now = ctx.now()
  if (m === undefined || m.status !== 'active' || m.expiresAt === undefined || m.expiresAt > now) return
  await ctx.store.commit(terminate(m, 'expired', now, { personId: m.personId, agentSub: m.agentSub, decision: 'revoke', reason: 'the mission reached its expires_at' }))
}

// ---------------------------------------------------------------------------------------------
// The agent's endpoints
// ---------------------------------------------------------------------------------------------

async function agentOf(ctx: PsContext, req: AgentRequest, params: ReturnType<typeof commonTokenParams>): Promise<ConsentView['agent']> {
  const provider = await ctx.providerInfo(req.agent.iss)
  return {
    iss: req.agent.iss,
    sub: req.agent.sub,
    ...(provider.name === undefined ? {} : { providerName: provider.name }),
    ...(provider.logoUri === undefined ? {} : { providerLogoUri: provider.logoUri }),
    ...(params.platform === undefined ? {} : { platform: params.platform }),
    ...(params.device === undefined ? {} : { device: params.device }),
  }
}

/**
 * `POST /mission` (main draft §Mission Creation; MIS-02, AG-MIS-01): always a `202` for the
 * person the agent acts for, or — for an agent not bound yet — for whoever approves it.
 *
 * @throws {ProblemError} `invalid_request`, `denied` (an organisation that has not authorised the
 *   agent), `user_unreachable`.
 */
export async function missionProposalEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  const description = requiredText(req.body, 'description', MAX_MISSION_TEXT)
  const tools = readTools(req.body['tools'])
  const resources = readResources(ctx, req.body['resources'])
  const limits = readLimits(req.body['limits'])
  const params = commonTokenParams(req.body)
  const bound = await boundPerson(ctx, req.agent)
  const now = ctx.now()
  const org = ctx.options.organization
  if (org !== undefined && org.agents[req.agent.sub] === undefined) {
    const reason = `${req.agent.sub} is not an agent the organisation has authorised`
    await ctx.store.commit({ audit: [{ at: now, type: 'request.denied', ...(bound === undefined ? {} : { personId: bound.person.id }), agentSub: req.agent.sub, decision: 'deny', reason, detail: { mission: 'proposal' } }] })
    throw new ProblemError('denied', reason)
  }
  const request: MissionRequestView = { action: 'propose', description, ...(tools === undefined ? {} : { tools }), ...(resources === undefined ? {} : { resources }), ...(limits === undefined ? {} : { limits }) }
  const work: MissionWork = {
    op: 'propose',
    description,
    ...(tools === undefined ? {} : { tools }),
    ...(resources === undefined ? {} : { resources }),
    ...(limits === undefined ? {} : { limits }),
    agent: { agentIss: req.agent.iss, agentSub: req.agent.sub, cnfJwk: req.agent.cnf.jwk, agentExp: req.agent.exp, agentJti: req.agent.jti },
  }
  const pendingWork = { capabilities: [...(params.capabilities ?? [])], mission: work }
  return deferToPerson(ctx, {
    kind: 'mission',
    agent: req.agent,
    ...(bound === undefined ? {} : { personId: bound.person.id }),
    view: { kind: 'mission', agent: await agentOf(ctx, req, params), missionRequest: request },
    work: pendingWork,
    ...(params.capabilities === undefined ? {} : { capabilities: params.capabilities }),
    audit: { at: now, type: 'mission.proposed', ...(bound === undefined ? {} : { personId: bound.person.id }), agentSub: req.agent.sub, decision: 'ask', detail: { tools: tools?.length ?? 0, resources: resources ?? [] } },
  })
}

/**
 * `POST /mission/{s256}` (main draft §Mission Update, §Mission Completion, §Mission Endpoint
 * Errors; MIS-07, MIS-08, MIS-10, MIS-ERR-01).
 *
 * @throws {ProblemError} `invalid_request` (malformed `s256`, missing or unknown `action`, missing
 *   `description`/`summary`), `mission_not_found` (404), `mission_terminated` (403), `user_unreachable`.
 */
export async function missionEndpoint(ctx: PsContext, req: AgentRequest, s256: string): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  if (!MISSION_S256.test(s256)) throw new ProblemError('invalid_request', 'the mission URL must end in a base64url SHA-256 (43 characters)')
  const action = req.body['action']
  if (action !== 'update' && action !== 'completion') throw new ProblemError('invalid_request', 'action must be update or completion')
  const text = requiredText(req.body, action === 'update' ? 'description' : 'summary', MAX_MISSION_TEXT)
  const params = commonTokenParams(req.body)
  const m = await ownMission(ctx, s256, req.agent)
  const now = ctx.now()
  const base = { personId: m.personId, agentSub: m.agentSub, missionS256: m.s256 }
  if (action === 'update' && ctx.options.missionUpdates !== 'ask') {
    const accepted = await acceptUpdate(m, text, now)
    await ctx.store.commit({ missionLog: accepted.log, audit: [{ ...base, at: now, type: 'mission.updated', decision: 'grant', reason: 'accepted by the person server', detail: { s256: accepted.s256 } }] })
    return Response.json({ s256: accepted.s256 }, { headers: { 'cache-control': 'no-store' } })
  }
  const request: MissionRequestView = action === 'update' ? { action, description: text } : { action, summary: text }
  const work: MissionWork = action === 'update' ? { op: 'update', s256, description: text } : { op: 'completion', s256, summary: text }
  const pendingWork = { capabilities: [...(params.capabilities ?? [])], mission: work }
  return deferToPerson(ctx, {
    kind: 'mission',
    agent: req.agent,
    personId: m.personId,
    view: { kind: 'mission', agent: await agentOf(ctx, req, params), missionS256: m.s256, mission: await missionContext(ctx, m), missionRequest: request },
    work: pendingWork,
    ...(params.capabilities === undefined ? {} : { capabilities: params.capabilities }),
    audit: { ...base, at: now, type: action === 'update' ? 'mission.update_proposed' : 'mission.completion_proposed', decision: 'ask' },
  })
}

/** An accepted update: the log entry, and the digest of the bytes persisted (the UTF-8 description). */
async function acceptUpdate(m: MissionRecord, description: string, at: number): Promise<{ s256: string; log: MissionLogEntry[] }> {
  const s256 = await sha256Base64url(description)
  return { s256, log: [{ s256: m.s256, at, type: 'update', detail: { description, s256 } }] }
}

// ---------------------------------------------------------------------------------------------
// The person's decision (called by the consent service)
// ---------------------------------------------------------------------------------------------

/** Where a mission request ends when the person approves it, and what commits with it. */
export interface MissionDecision {
  readonly state: 'granted' | 'revoked' | 'expired'
  readonly result: { readonly status: number; readonly body: Readonly<Record<string, unknown>> }
  readonly batch: Pick<StoreBatch, 'missions' | 'missionLog' | 'grants' | 'issued' | 'subjects'> & { readonly audit: readonly AuditEvent[] }
}

/** Whether a pending request is a mission endpoint request. */
export function isMissionRequest(rec: PendingRecord): boolean {
  return rec.kind === 'mission' && typeof (rec.work as { mission?: unknown }).mission === 'object'
}

function pick<T>(proposed: readonly T[] | undefined, keep: readonly string[] | undefined, key: (t: T) => string, what: string): T[] | undefined {
  if (proposed === undefined) return undefined
  if (keep === undefined) return [...proposed]
  const known = new Set(proposed.map(key))
  const unknown = keep.find((k) => !known.has(k))
  if (unknown !== undefined) throw new ConsentError('bad_input', `${what} ${unknown} was not proposed.`)
  return proposed.filter((t) => keep.includes(key(t)))
}

/**
 * What the person's approval of a mission request does (MIS-03..05, MIS-08, MIS-10). For a
 * proposal: the blob serialised once, its bytes stored and hashed, a person token (and the
 * identity grant behind it, under the mission) for each approved resource. For an update: the log
 * entry. For a completion: the mission terminated `completed`. A mission that ended while the
 * request waited answers `mission_terminated`.
 *
 * @throws {ConsentError} `bad_input` for choices outside the proposal or an empty description.
 */
export async function decideMission(ctx: PsContext, rec: PendingRecord, personId: string, choices: MissionChoices = {}): Promise<MissionDecision> {
  const work = (rec.work as unknown as { mission: MissionWork }).mission
  const now = ctx.now()
  if (work.op === 'propose') return approveProposal(ctx, work, personId, choices, now, (rec.work as { capabilities?: readonly string[] }).capabilities)
  const m = await ctx.store.getMission(work.s256)
  if (m === undefined || m.status !== 'active' || (m.expiresAt !== undefined && m.expiresAt <= now)) {
    if (m !== undefined) await terminateIfExpired(ctx, m.s256)
    const err = m === undefined ? undefined : missionTerminated(m, now)
    return { state: 'revoked', result: { status: 403, body: { error: 'mission_terminated', detail: 'the mission ended while the request waited', ...(err?.body ?? { mission_status: 'terminated' }) } }, batch: { audit: [] } }
  }
  const base = { personId, agentSub: m.agentSub, missionS256: m.s256 }
  if (work.op === 'update') {
    const accepted = await acceptUpdate(m, work.description, now)
    return { state: 'granted', result: { status: 200, body: { s256: accepted.s256 } }, batch: { missionLog: accepted.log, audit: [{ ...base, at: now, type: 'mission.updated', decision: 'grant', reason: 'accepted by the person', detail: { s256: accepted.s256 } }] } }
  }
  const ended = terminate(m, 'completed', now, { personId, agentSub: m.agentSub, decision: 'grant', reason: 'the person accepted the completion' })
  return {
    state: 'granted',
    result: { status: 200, body: {} },
    batch: { ...ended, missionLog: [{ s256: m.s256, at: now, type: 'completion', detail: { summary: work.summary } }, ...ended.missionLog] },
  }
}

async function approveProposal(ctx: PsContext, work: Extract<MissionWork, { op: 'propose' }>, personId: string, choices: MissionChoices, now: number, declared: readonly string[] | undefined): Promise<MissionDecision> {
  const description = choices.description ?? work.description
  if (description.trim() === '' || description.length > MAX_MISSION_TEXT) throw new ConsentError('bad_input', `The description must have 1 to ${MAX_MISSION_TEXT} characters.`)
  const expiry = choices.expiry ?? 'none'
  if (!Object.hasOwn(EXPIRY_MS, expiry)) throw new ConsentError('bad_input', 'Choose how long the mission runs.')
  const tools = pick(work.tools, choices.tools, (t) => t.name, 'Tool')
  const resources = pick(work.resources, choices.resources, (r) => r, 'Resource')
  // approved_at makes the digest unique; a blob identical to an existing one moves it on by 1 ms.
  let approvedAt = now
  let bytes: string
  let s256: string
  let expiresAt: number | undefined
  for (;;) {
    const span = EXPIRY_MS[expiry]
    expiresAt = span === undefined ? undefined : approvedAt + span
    // Serialised once: these exact bytes are stored, hashed and returned (MIS-05).
    bytes = JSON.stringify({
      agent: work.agent.agentSub,
      approved_at: new Date(approvedAt).toISOString(),
      ...(expiresAt === undefined ? {} : { expires_at: new Date(expiresAt).toISOString() }),
      description,
      ...(tools === undefined ? {} : { approved_tools: tools }),
      ...(resources === undefined || resources.length === 0 ? {} : { approved_resources: resources }),
      ...(work.limits === undefined ? {} : { limits: work.limits }),
    })
    s256 = await sha256Base64url(bytes)
    if ((await ctx.store.getMission(s256)) === undefined) break
    approvedAt += 1
  }
  // The person tokens are bound to the proposing request's agent token: not if its provider revoked it meanwhile.
  if (await ctx.store.isRevoked(work.agent.agentIss, work.agent.agentJti!)) {
    return { state: 'revoked', result: { status: 403, body: { error: 'revoked', detail: "the agent provider revoked the agent's token" } }, batch: { audit: [] } }
  }
  const mission: MissionRecord = { s256, agentIss: work.agent.agentIss, agentSub: work.agent.agentSub, personId, status: 'active', blob: bytes, createdAt: now, ...(expiresAt === undefined ? {} : { expiresAt }), ...(declared === undefined ? {} : { capabilities: declared }) }
  const personTokens: Record<string, string> = {}
  const batch = { issued: [] as IssuedToken[], subjects: [] as NonNullable<StoreBatch['subjects']>[number][], grants: [] as Grant[], audit: [] as AuditEvent[] }
  for (const resource of resources ?? []) {
    const issue: PersonTokenWork = { kind: 'person_token', ...work.agent, resource, missionS256: s256, ...(expiresAt === undefined ? {} : { missionExpiresAt: Math.floor(expiresAt / 1000) }) }
    let minted
    try {
      minted = await mint(ctx, issue, personId, 'approved with the mission')
    } catch (e) {
      if (!(e instanceof ProblemError)) throw e
      return { state: 'expired', result: { status: e.status, body: { error: e.code, detail: e.message } }, batch: { audit: [] } }
    }
    personTokens[resource] = minted.body.person_token!
    batch.issued.push(...(minted.batch.issued ?? []))
    batch.subjects.push(...(minted.batch.subjects ?? []))
    batch.audit.push(...(minted.batch.audit ?? []))
    // Later person-token requests for this resource under this mission are granted at once.
    batch.grants.push({ id: randomBytes(12).toString('base64url'), personId, agentIss: work.agent.agentIss, agentSub: work.agent.agentSub, resource, scope: '', missionS256: s256, createdAt: now, ...(expiresAt === undefined ? {} : { expiresAt }) })
  }
  const dropped = { tools: (work.tools ?? []).filter((t) => !(tools ?? []).includes(t)).map((t) => t.name), resources: (work.resources ?? []).filter((r) => !(resources ?? []).includes(r)) }
  // The PS can reach the person itself only with a channel of its own (main draft §Mission Approval `capabilities`).
  const capabilities: Capability[] = ctx.options.notify === undefined ? [] : ['interaction']
  return {
    state: 'granted',
    result: {
      status: 200,
      body: { s256, mission: encodeBase64url(new TextEncoder().encode(bytes)), ...(capabilities.length === 0 ? {} : { capabilities }), ...(Object.keys(personTokens).length === 0 ? {} : { person_tokens: personTokens }) },
    },
    batch: {
      missions: [mission],
      missionLog: [{ s256, at: now, type: 'created', detail: { edited: description !== work.description, dropped_tools: dropped.tools, dropped_resources: dropped.resources, ...(expiresAt === undefined ? {} : { expires_at: expiresAt }) } }],
      grants: batch.grants,
      issued: batch.issued,
      subjects: batch.subjects,
      audit: [{ at: now, type: 'mission.approved', personId, agentSub: work.agent.agentSub, missionS256: s256, decision: 'grant', reason: 'approved by the person' }, ...batch.audit],
    },
  }
}

// ---------------------------------------------------------------------------------------------
// The person's side
// ---------------------------------------------------------------------------------------------

/**
 * The ordered mission log (MIS-LOG-01): the mission's own entries (created, updates, completion,
 * permission, audit, interaction, termination) merged with the audit events that carry its
 * `mission_s256` (token requests, approvals, denials, issued tokens), oldest first.
 */
export async function readMissionLog(ctx: PsContext, s256: string): Promise<MissionLogItem[]> {
  const own: MissionLogItem[] = (await ctx.store.missionLog(s256)).map((e) => ({ at: e.at, source: 'mission', type: e.type, detail: e.detail }))
  const events: MissionLogItem[] = []
  for (let after: number | undefined; ; ) {
    const page = await ctx.store.queryAudit({ missionS256: s256, limit: 1000, ...(after === undefined ? {} : { afterSeq: after }) })
    for (const e of page) {
      events.push({
        at: e.at,
        source: 'audit',
        type: e.type,
        ...(e.agentSub === undefined ? {} : { agentSub: e.agentSub }),
        ...(e.resource === undefined ? {} : { resource: e.resource }),
        ...(e.scope === undefined ? {} : { scope: e.scope }),
        ...(e.decision === undefined ? {} : { decision: e.decision }),
        ...(e.reason === undefined ? {} : { reason: e.reason }),
        ...(e.detail === undefined ? {} : { detail: e.detail }),
      })
    }
    if (page.length < 1000) break
    after = page.at(-1)!.seq
  }
  // A stable sort: within one millisecond the audit event comes before the log entry it explains.
  return [...events, ...own].sort((a, b) => a.at - b.at)
}

/**
 * The batch members that terminate, as `revoked`, every active mission of an agent the person
 * revokes (main draft §Mission Management: a withdrawn mission is `revoked`).
 */
export async function agentMissionsRevoked(ctx: PsContext, personId: string, agentIss: string, agentSub: string, at: number): Promise<Required<Pick<StoreBatch, 'missions' | 'missionLog' | 'audit'>>> {
  const out = { missions: [] as MissionRecord[], missionLog: [] as MissionLogEntry[], audit: [] as AuditEvent[] }
  for (const m of await ctx.store.listMissions(personId)) {
    if (m.status !== 'active' || m.agentIss !== agentIss || m.agentSub !== agentSub) continue
    const t = terminate(m, 'revoked', at, { personId, agentSub, decision: 'revoke', reason: 'the person revoked the agent' })
    out.missions.push(...t.missions)
    out.missionLog.push(...t.missionLog)
    out.audit.push(...t.audit)
  }
  return out
}

/** Creates the person's {@link MissionService}. */
export function createMissionService(ctx: PsContext, cascade: MissionRevocationCascade): MissionService {
  async function mine(personId: string, s256: string): Promise<MissionRecord> {
    const m = MISSION_S256.test(s256) ? await ctx.store.getMission(s256) : undefined
    if (m === undefined || m.personId !== personId) throw new ConsentError('not_found', 'There is no such mission on your account.')
    return m
  }
  return {
    list: (personId) => ctx.store.listMissions(personId),
    async detail(personId, s256) {
      await terminateIfExpired(ctx, s256)
      const record = await mine(personId, s256)
      return { record, blob: parseMissionBlob(record.blob), updates: updatesOf(await ctx.store.missionLog(s256)), log: await readMissionLog(ctx, s256) }
    },
    async revoke(personId, s256) {
      await terminateIfExpired(ctx, s256)
      const m = await mine(personId, s256)
      if (m.status !== 'active') throw new ConsentError('closed', 'This mission has already ended.')
      const now = ctx.now()
      const grants = (await ctx.store.listGrants(personId)).filter((g) => g.missionS256 === s256 && g.revokedAt === undefined)
      // The termination is recorded first: a token committed meanwhile is caught by the token endpoints' re-check or listed below.
      await ctx.store.commit({
        ...terminate(m, 'revoked', now, { personId, agentSub: m.agentSub, decision: 'revoke', reason: 'revoked by the person', detail: { grants: grants.length } }),
        revokeGrants: grants.map((g) => ({ id: g.id, at: now })),
      })
      const body = { error: 'mission_terminated', detail: 'the person revoked the mission', mission_status: 'terminated', termination_reason: 'revoked' }
      for (const p of await ctx.store.openPending(personId)) {
        const under = p.view.missionS256 === s256 || (p.work as { mission?: { s256?: string } }).mission?.s256 === s256
        if (!under) continue
        await ctx.store.commit({ pending: { id: p.id, from: OPEN_PENDING_STATES, patch: { state: 'revoked', result: { status: 403, body }, code: null, updatedAt: Math.max(now, p.updatedAt + 1) } } })
        ctx.changes.changed(p.id)
      }
      const own = (await ctx.store.liveIssued({ agentIss: m.agentIss, agentSub: m.agentSub, personId, now })).filter((t) => t.missionS256 === s256)
      // What intermediaries obtained with those tokens (call chaining) ends with them (REV-12, REV-13).
      const tokens = [...own, ...(await chainedFrom(ctx, own, now))]
      return { tokens: tokens.length, outcomes: await cascade.revokeTokens(tokens) }
    },
  }
}
