/**
 * Requests that wait for the person (main draft §Deferred Responses, §Interaction Required,
 * §Approval Pending, §Clarification Chat, §Polling Error Codes; CHECKLIST PS-TOK-07, PS-TOK-12,
 * PS-CON-04, PS-CLAR-*). Each request has its own unguessable pending URL that only the agent
 * that started it may poll (anyone else gets `404`); long polls honour `Prefer: wait`; the state
 * lives in the store so any PS instance can answer.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import {
  generateInteractionCode,
  normalizeInteractionCode,
  parsePreferWait,
  pendingResponse,
  ProblemError,
  problemResponse,
  type AAuthRequirement,
  type Capability,
} from '../protocol/index.js'
import type { PsContext } from './context.js'
import type { IssueWork } from './issuance.js'
import { OPEN_PENDING_STATES, type AuditEvent, type ConsentView, type PendingKind, type PendingRecord } from './store/types.js'

/** What a pending request keeps in `work`. */
export interface PendingWork {
  /** The token to mint on approval. */
  readonly issue?: IssueWork
  /** The agent's declared capabilities for this request. */
  readonly capabilities: readonly Capability[]
}

/** Polls of one open request closer together than this are answered `slow_down` (429). */
export const MIN_POLL_GAP_MS = 500
/** The extra wait `slow_down` asks for (main draft §Polling with GET: 5 s per `429`). */
const SLOW_DOWN_SEC = 5

/** The pending URL of a request. */
export function pendingUrl(ctx: PsContext, id: string): string {
  return `${ctx.issuer}/pending/${id}`
}

/** Where people go with an interaction code: the consent page. */
export function interactionPageUrl(ctx: PsContext): string {
  return `${ctx.issuer}/interaction`
}

/** Whether a request is still open. */
export function isOpen(rec: PendingRecord): boolean {
  return OPEN_PENDING_STATES.includes(rec.state)
}

/** Input of {@link deferToPerson}. */
export interface DeferInput {
  readonly kind: PendingKind
  readonly agent: { readonly iss: string; readonly sub: string }
  readonly personId?: string
  readonly view: ConsentView
  readonly work: PendingWork
  readonly resourceToken?: { readonly iss: string; readonly jti: string }
  /** Capabilities the agent declared; `undefined` when it said nothing (governance endpoints). */
  readonly capabilities?: ReadonlySet<Capability>
  readonly audit: AuditEvent
}

/**
 * Stores a new pending request and answers `202` (main draft §Pending Response). An agent that can
 * drive an interaction gets `requirement=interaction` with the consent page and a code; otherwise,
 * when the PS has its own channel (`notify`) and knows the person, `requirement=approval`;
 * otherwise the request cannot reach anyone and is refused with `user_unreachable`.
 *
 * @throws {ProblemError} `user_unreachable` (403).
 */
export async function deferToPerson(ctx: PsContext, input: DeferInput): Promise<Response> {
  const canInteract = input.capabilities === undefined || input.capabilities.has('interaction')
  const channel = ctx.options.notify !== undefined && input.personId !== undefined
  if (!canInteract && !channel) {
    throw new ProblemError('user_unreachable', 'the person must decide, the person server has no channel to them, and the agent did not declare the interaction capability')
  }
  const now = ctx.now()
  const id = randomBytes(18).toString('base64url')
  const code = canInteract ? generateInteractionCode() : undefined
  const rec: PendingRecord = {
    id,
    kind: input.kind,
    agentIss: input.agent.iss,
    agentSub: input.agent.sub,
    ...(input.personId === undefined ? {} : { personId: input.personId }),
    ...(code === undefined ? {} : { code: normalizeInteractionCode(code)! }),
    state: 'pending',
    view: input.view,
    work: input.work as unknown as Record<string, unknown>,
    ...(input.resourceToken === undefined ? {} : { resourceTokenIss: input.resourceToken.iss, resourceTokenJti: input.resourceToken.jti }),
    createdAt: now,
    updatedAt: now,
    expiresAt: now + (ctx.options.pendingTtlSec ?? 600) * 1000,
  }
  await ctx.store.commit({ newPending: rec, audit: [{ ...input.audit, detail: { ...input.audit.detail, pending: id } }] })
  if (channel) void Promise.resolve().then(() => ctx.options.notify!(rec)).catch(() => undefined)
  const requirement: AAuthRequirement | undefined =
    code !== undefined ? { requirement: 'interaction', url: interactionPageUrl(ctx), code } : channel ? { requirement: 'approval' } : undefined
  return pendingResponse({ location: pendingUrl(ctx, id), retryAfter: 0, ...(requirement === undefined ? {} : { requirement }) }, ctx.idOpts)
}

/** The latest clarification question, when the request waits on the agent. */
function openQuestion(rec: PendingRecord): string | undefined {
  const last = rec.chat?.at(-1)
  return rec.state === 'clarification' && last?.from === 'person' ? last.text : undefined
}

/** How an open request looks to its agent right now. */
export function answerPending(ctx: PsContext, rec: PendingRecord): Response {
  if (rec.result !== undefined && !isOpen(rec)) {
    const { status, body } = rec.result
    if (status === 200) return Response.json(body, { headers: { 'cache-control': 'no-store' } })
    if (status === 204) return new Response(null, { status: 204 })
    const err = new ProblemError(String(body['error'] ?? 'server_error') as ProblemError['code'], String(body['detail'] ?? ''))
    const extra = Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'error' && k !== 'detail'))
    return Object.keys(extra).length === 0 ? problemResponse(err) : problemResponse(err, { body: extra })
  }
  const location = pendingUrl(ctx, rec.id)
  const question = openQuestion(rec)
  if (question !== undefined) {
    const timeout = Math.max(0, Math.floor((rec.expiresAt - ctx.now()) / 1000))
    return pendingResponse({ location, retryAfter: 0, requirement: { requirement: 'clarification' }, body: { clarification: question, timeout } }, ctx.idOpts)
  }
  if (rec.state === 'interacting') return pendingResponse({ location, retryAfter: 1, status: 'interacting' }, ctx.idOpts)
  return pendingResponse({ location, retryAfter: 1 }, ctx.idOpts)
}

/**
 * Ends an open request that ran out of time (main draft §Polling Error Codes): `abandoned` (403)
 * when the person opened it and left without deciding, `expired` (408) when nobody came.
 */
async function expireIfDue(ctx: PsContext, rec: PendingRecord): Promise<PendingRecord> {
  if (!isOpen(rec) || rec.expiresAt > ctx.now()) return rec
  const opened = rec.state !== 'pending'
  const result = opened
    ? { status: 403, body: { error: 'abandoned', detail: 'the person opened the request but did not decide in time' } }
    : { status: 408, body: { error: 'expired', detail: 'the person did not decide in time' } }
  const state = opened ? 'abandoned' : 'expired'
  const now = ctx.now()
  await ctx.store.commit({
    pending: { id: rec.id, from: OPEN_PENDING_STATES, patch: { state, result, code: null, updatedAt: now } },
    audit: [{ at: now, type: `request.${state}`, ...(rec.personId === undefined ? {} : { personId: rec.personId }), agentSub: rec.agentSub, decision: 'deny', reason: state, detail: { pending: rec.id } }],
  })
  ctx.changes.changed(rec.id)
  return (await ctx.store.getPending(rec.id)) ?? rec
}

/**
 * The pending request `id` of this agent, expired if due; `undefined` when it is unknown or another
 * agent's (answer {@link notFound}, which never reveals which).
 */
export async function agentsPending(ctx: PsContext, id: string, agent: { iss: string; sub: string }): Promise<PendingRecord | undefined> {
  const rec = await ctx.store.getPending(id)
  if (rec === undefined || rec.agentIss !== agent.iss || rec.agentSub !== agent.sub) return undefined
  return expireIfDue(ctx, rec)
}

/** The 404 of an unknown pending URL. */
export function notFound(): Response {
  return new Response(JSON.stringify({ error: 'invalid_request', detail: 'no such pending request' }), {
    status: 404,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' },
  })
}

/**
 * `GET` on a pending URL: answers at once, or holds up to `Prefer: wait` (capped) until the request
 * changes (main draft §Polling with GET).
 */
export async function pollPending(ctx: PsContext, rec: PendingRecord, preferWait: string | null): Promise<Response> {
  const previous = ctx.changes.polled(rec.id, ctx.now(), rec.expiresAt + 60_000)
  if (previous !== undefined && ctx.now() - previous < MIN_POLL_GAP_MS && isOpen(rec) && openQuestion(rec) === undefined) {
    return problemResponse(new ProblemError('slow_down', `poll at most once per second (Retry-After); wait ${SLOW_DOWN_SEC} s more`), { headers: { 'retry-after': String(SLOW_DOWN_SEC) } })
  }
  const waitSec = Math.min(parsePreferWait(preferWait) ?? 0, ctx.options.maxWaitSec ?? 30)
  const deadline = ctx.now() + waitSec * 1000
  let current = rec
  const seen = `${rec.state}\u0000${rec.updatedAt}`
  // A question waiting for the agent is answered at once: the agent has to act on it.
  while (isOpen(current) && openQuestion(current) === undefined && `${current.state}\u0000${current.updatedAt}` === seen && ctx.now() < deadline) {
    // Another instance may resolve it: re-read at least every second.
    await ctx.changes.wait(rec.id, Math.min(1000, deadline - ctx.now()))
    current = await expireIfDue(ctx, (await ctx.store.getPending(rec.id)) ?? current)
  }
  return answerPending(ctx, current)
}

/** `DELETE` on a pending URL: the agent withdraws (main draft §Cancel Request). */
export async function cancelPending(ctx: PsContext, rec: PendingRecord): Promise<Response> {
  if (!isOpen(rec)) return answerPending(ctx, rec)
  const now = ctx.now()
  const result = { status: 410, body: { error: 'invalid_code', detail: 'the agent withdrew this request' } }
  await ctx.store.commit({
    pending: { id: rec.id, from: OPEN_PENDING_STATES, patch: { state: 'cancelled', result, code: null, updatedAt: now } },
    audit: [{ at: now, type: 'request.cancelled', ...(rec.personId === undefined ? {} : { personId: rec.personId }), agentSub: rec.agentSub, reason: 'withdrawn by the agent', detail: { pending: rec.id } }],
  })
  ctx.changes.changed(rec.id)
  return new Response(null, { status: 204 })
}

/**
 * `POST {action: "clarification_response"}` on a pending URL (main draft §Clarification Response).
 *
 * @throws {ProblemError} `invalid_request` when no question is waiting or the answer is missing.
 */
export async function clarificationResponse(ctx: PsContext, rec: PendingRecord, body: Record<string, unknown>): Promise<Response> {
  const text = body['clarification_response']
  if (typeof text !== 'string' || text === '' || text.length > 16_000) throw new ProblemError('invalid_request', 'clarification_response must be a non-empty string')
  if (openQuestion(rec) === undefined) throw new ProblemError('invalid_request', 'no clarification question is waiting for an answer')
  const now = Math.max(ctx.now(), rec.updatedAt + 1)
  const applied = await ctx.store.commit({
    pending: { id: rec.id, from: ['clarification'], at: rec.updatedAt, patch: { state: 'interacting', chat: [...(rec.chat ?? []), { from: 'agent', text, at: now }], updatedAt: now } },
    audit: [{ at: now, type: 'clarification.answered', ...(rec.personId === undefined ? {} : { personId: rec.personId }), agentSub: rec.agentSub, detail: { pending: rec.id } }],
  })
  if (!applied.applied) throw new ProblemError('invalid_request', 'the request changed; poll it again')
  ctx.changes.changed(rec.id)
  return answerPending(ctx, (await ctx.store.getPending(rec.id)) ?? rec)
}
