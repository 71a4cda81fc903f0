/**
 * Token revocation at the Person Server (main draft §Token Revocation: Revocation Request, Who
 * Revokes What, Revocation Response, Revocation Cascade, Presenting a Revoked Token; CHECKLIST
 * REV-10, REV-11, REV-13..REV-16).
 *
 * Two parts:
 *
 * - {@link createRevocationCascade}: the PS withdrawing person and auth tokens it issued. Each
 *   revocation is recorded in the store first, then sent to the resource the token was issued
 *   for (its `aud`) as a signed `POST {jti, exp}` to that resource's `revocation_endpoint`, and
 *   every call ends in an outcome (`revoked`, `revocation_unsupported`, `revocation_unavailable`)
 *   that is stored. Calling again re-attempts only what did not succeed.
 * - {@link createRevocationEndpoint}: the PS's own `revocation_endpoint`. An agent provider revokes
 *   an agent token it issued (the PS refuses that token from then on and withdraws everything it
 *   issued to that agent, answering the provider with an empty `200` once every downstream call has
 *   ended, or a `202` to poll); a resource withdraws a resource token it issued (the PS records it
 *   and ends the pending requests started for it, answering `200` at once).
 *
 * @module
 */

import {
  createEgressFetcher,
  createRequestVerifier,
  DWK,
  fetchMetadata,
  parsePreferWait,
  parseProblem,
  pendingResponse,
  problemResponse,
  ProblemError,
  sendServerSigned,
  SERVER_REQUEST_TIMEOUT_MS,
  SignatureError,
  signatureErrorResponse,
  type EgressFetcher,
  type IdentifierOptions,
  type JwksCache,
  type ReplayCache,
  type RequestVerifier,
  type ServerContext,
} from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { encodeBase64url } from '../lib/base64url.js'
import type { KeyRing } from '../agent/key-ring.js'
import { parseJsonObject, readBody } from './agent-requests.js'
import { readBoundedBody } from '../lib/bounded-body.js'
import {
  OPEN_PENDING_STATES,
  type AuditEvent,
  type IssuedToken,
  type PendingRecord,
  type PersonServerStore,
  type ReceivedRevocation,
  type RevocationOutcome,
  type RevocationOutcomeKind,
} from './store/types.js'
import { chainedFrom, delegationRevokedEvents } from './delegation.js'

/** Downstream revocations in flight at once, per cascade. */
export const MAX_CONCURRENT_REVOCATIONS = 8
/** The longest agent token lifetime (main draft §Agent Tokens): the bound on an AP's `exp`. */
export const MAX_AGENT_TOKEN_LIFETIME_SEC = 86_400
/** The longest lifetime of a token a resource may revoke here (a resource token lives at most 5 minutes). */
export const MAX_RESOURCE_REVOCATION_LIFETIME_SEC = 3600
/** Audit event of an agent token revoked by its provider, listing the tokens the PS withdrew. */
export const AGENT_TOKEN_REVOKED_EVENT = 'agent_token.revoked'

/** The largest downstream answer read (a `200` body is at most a small JSON object). */
const MAX_ANSWER_BYTES = 16 * 1024
/** `queryAudit` page size (the store's maximum). */
const AUDIT_PAGE = 1000

// ---------------------------------------------------------------------------------------------
// The cascade
// ---------------------------------------------------------------------------------------------

/** What a cascade works with: the PS's identity and keys, its store and its outbound calls. */
export interface RevocationCascadeOptions {
  /** The PS's server identifier: `id` of the `jwks_uri` signature on each revocation it sends. */
  readonly issuer: string
  /** The PS's signing keys (the current key signs). */
  readonly keys: KeyRing
  readonly store: PersonServerStore
  /** Sends the revocations. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** Fetches resource metadata. Default: {@link createEgressFetcher} (SSRF-guarded). */
  readonly egress?: EgressFetcher
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Development only: admit `http://127.0.0.1:PORT` resources. */
  readonly allowInsecureLoopback?: boolean
  /** Deadline of one downstream revocation, the answer included (ms). Default 10 s. */
  readonly timeoutMs?: number
}

/** The revocation that started a cascade: an agent token `(iss, jti)` and its `exp` (ms). */
export interface RevocationCause {
  readonly iss: string
  readonly jti: string
  readonly expiresAt: number
}

/** Options of one cascade run. */
export interface CascadeRunOptions {
  /** Why, for the audit trail (e.g. "revoked by the person"). */
  readonly reason?: string
  /**
   * The agent token revocation this run answers. The tokens withdrawn are remembered under it
   * (an `agent_token.revoked` audit event), so a repeat of that revocation re-attempts exactly
   * those and withdraws nothing new.
   */
  readonly cause?: RevocationCause
}

/** A PS withdrawing tokens it issued, at the resources they were issued for. */
export interface RevocationCascade {
  /**
   * Records `tokens` as revoked (with a `token.revoked` audit event each), then revokes each at
   * its resource and records the outcomes. A token already revoked is sent again only when its
   * last outcome was not `revoked`; nothing new is recorded for it.
   *
   * @returns one outcome per distinct token, in order.
   */
  revokeTokens(tokens: readonly IssuedToken[], options?: CascadeRunOptions): Promise<RevocationOutcome[]>
  /**
   * Withdraws every live token issued to an agent — as the agent itself or as the parent of a
   * sub-agent — optionally only those issued for one person (CHECKLIST REV-11).
   */
  revokeAgent(agentIss: string, agentSub: string, personId?: string, options?: CascadeRunOptions): Promise<RevocationOutcome[]>
}

/**
 * Creates the cascade of a PS (main draft §Revocation Cascade; CHECKLIST REV-10, REV-11, REV-13).
 *
 * Person and auth tokens are revoked at the resource in their `aud`: its metadata is fetched once
 * per run, and at most {@link MAX_CONCURRENT_REVOCATIONS} requests are in flight. The outcome of
 * one call is `revoked` on `200` (empty or a JSON object), `revocation_unsupported` when the
 * resource publishes no `revocation_endpoint` or answers `403 unsupported_iss`, and
 * `revocation_unavailable` otherwise (no answer, timeout, `5xx`, `429`, any other status, a
 * malformed body, or metadata that cannot be fetched).
 *
 * @example
 * ```ts
 * const cascade = createRevocationCascade({ issuer, keys, store })
 * const outcomes = await cascade.revokeAgent(agentIss, agentSub, personId, { reason: 'revoked by the person' })
 * ```
 */
export function createRevocationCascade(ctx: RevocationCascadeOptions): RevocationCascade {
  const now = ctx.now ?? Date.now
  const idOpts: IdentifierOptions = { allowInsecureLoopback: ctx.allowInsecureLoopback === true }
  const timeoutMs = ctx.timeoutMs ?? SERVER_REQUEST_TIMEOUT_MS
  const egress = ctx.egress ?? createEgressFetcher({ ...idOpts, timeoutMs })

  /** A resource's `revocation_endpoint`, fetched once per run (`undefined`: it publishes none). */
  function endpointLookup(): (resource: string) => Promise<string | undefined> {
    const seen = new Map<string, Promise<string | undefined>>()
    return (resource) => {
      let endpoint = seen.get(resource)
      if (endpoint === undefined) {
        endpoint = fetchMetadata(resource, DWK.resource, { fetcher: egress, ...idOpts }).then((md) => md.revocation_endpoint)
        seen.set(resource, endpoint)
      }
      return endpoint
    }
  }

  /** One downstream revocation, to its terminal outcome (never throws). */
  async function revokeAt(token: IssuedToken, endpointOf: (resource: string) => Promise<string | undefined>): Promise<RevocationOutcomeKind> {
    let endpoint: string | undefined
    try {
      endpoint = await endpointOf(token.resource)
    } catch {
      return 'revocation_unavailable'
    }
    if (endpoint === undefined) return 'revocation_unsupported'
    try {
      const res = await sendServerSigned({
        url: endpoint,
        method: 'POST',
        // `exp` in seconds, never earlier than the token's own.
        json: { jti: token.jti, exp: Math.ceil(token.expiresAt / 1000) },
        issuer: ctx.issuer,
        dwk: DWK.person,
        key: ctx.keys.current,
        now,
        timeoutMs,
        ...(ctx.fetch === undefined ? {} : { fetch: ctx.fetch }),
        ...idOpts,
      })
      return await outcomeOf(res)
    } catch {
      return 'revocation_unavailable'
    }
  }

  async function deliver(tokens: readonly IssuedToken[]): Promise<RevocationOutcome[]> {
    const endpointOf = endpointLookup()
    return mapBounded(tokens, MAX_CONCURRENT_REVOCATIONS, async (t) => ({ jti: t.jti, recipient: t.resource, outcome: await revokeAt(t, endpointOf), at: now() }))
  }

  /** Records the revocation of the tokens not yet revoked — before anyone is called (§Revocation Response). */
  async function record(fresh: readonly IssuedToken[], options: CascadeRunOptions, extra: readonly AuditEvent[]): Promise<void> {
    if (fresh.length === 0 && extra.length === 0) return
    const at = now()
    await ctx.store.commit({
      revokeIssued: fresh.map((t) => ({ jti: t.jti, at })),
      audit: [...fresh.map((t) => tokenRevokedEvent(t, at, options)), ...extra],
    })
  }

  /** The earlier `revoked` outcome of each already-revoked token that needs no new attempt. */
  async function settled(tokens: readonly IssuedToken[]): Promise<Map<string, RevocationOutcome>> {
    const done = new Map<string, RevocationOutcome>()
    for (const t of tokens) {
      if (t.revokedAt === undefined) continue
      const last = latest(await ctx.store.outcomes(t.jti), t.resource)
      if (last?.outcome === 'revoked') done.set(t.jti, last)
    }
    return done
  }

  async function run(tokens: readonly IssuedToken[], options: CascadeRunOptions, extra: readonly AuditEvent[] = []): Promise<RevocationOutcome[]> {
    // The store's view, not the caller's copy: a token revoked meanwhile is not recorded twice.
    const current = await Promise.all(distinct(tokens).map(async (t) => (await ctx.store.getIssued(t.jti)) ?? t))
    const done = await settled(current)
    await record(current.filter((t) => t.revokedAt === undefined), options, extra)
    const attempted = await deliver(current.filter((t) => !done.has(t.jti)))
    if (attempted.length > 0) await ctx.store.recordOutcomes(attempted)
    const byJti = new Map(attempted.map((o) => [o.jti, o]))
    return current.map((t) => done.get(t.jti) ?? byJti.get(t.jti)!)
  }

  /** The tokens an earlier run for `cause` withdrew, from its audit event; `undefined` when there was none. */
  async function withdrawnFor(cause: RevocationCause, agentSub: string): Promise<IssuedToken[] | undefined> {
    const jtis = await findCauseRecord(ctx.store, cause, agentSub)
    if (jtis === undefined) return undefined
    const tokens = await Promise.all(jtis.map((jti) => ctx.store.getIssued(jti)))
    return tokens.filter((t): t is IssuedToken => t !== undefined)
  }

  return {
    revokeTokens: (tokens, options = {}) => run(tokens, options),
    async revokeAgent(agentIss, agentSub, personId, options = {}) {
      const { cause } = options
      const earlier = cause === undefined ? undefined : await withdrawnFor(cause, agentSub)
      if (earlier !== undefined) return run(earlier, options)
      const own = await ctx.store.liveIssued({ agentIss, agentSub, now: now(), ...(personId === undefined ? {} : { personId }) })
      // What intermediaries obtained with these tokens as upstream_token goes with them (REV-13).
      const live = [...own, ...(await chainedFrom(ctx, own, now()))]
      // Sub-agents' tokens withdrawn with (or as) this agent: the delegation trail records its end (scenario S3).
      const delegations = delegationRevokedEvents(live, now(), options.reason ?? 'the delegating agent was revoked')
      return run(live, options, [...(cause === undefined ? [] : [causeEvent(cause, agentSub, live, now())]), ...delegations])
    },
  }
}

/** Where a downstream answer leaves the revocation (§Revocation Response). */
async function outcomeOf(res: Response): Promise<RevocationOutcomeKind> {
  const body = await readBounded(res, MAX_ANSWER_BYTES)
  if (res.status === 200) return body !== undefined && (body.byteLength === 0 || isJsonObject(body)) ? 'revoked' : 'revocation_unavailable'
  if (res.status === 403 && body !== undefined && parseProblem(new TextDecoder().decode(body))?.error === 'unsupported_iss') return 'revocation_unsupported'
  // 202 (a resource has nothing downstream and must not defer), 429, 5xx, any other answer.
  return 'revocation_unavailable'
}

/** The body, or `undefined` when it is larger than `max` or could not be read (deadline). */
async function readBounded(res: Response, max: number): Promise<Uint8Array | undefined> {
  const read = await readBoundedBody(res.body, max)
  return read.ok ? read.bytes : undefined
}

function isJsonObject(bytes: Uint8Array): boolean {
  try {
    const v: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    return typeof v === 'object' && v !== null && !Array.isArray(v)
  } catch {
    return false
  }
}

/** `fn` over `items` with at most `limit` calls running; results in input order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

function distinct(tokens: readonly IssuedToken[]): IssuedToken[] {
  return [...new Map(tokens.map((t) => [t.jti, t])).values()]
}

/** The latest outcome at `recipient`. */
function latest(outcomes: readonly RevocationOutcome[], recipient: string): RevocationOutcome | undefined {
  let last: RevocationOutcome | undefined
  for (const o of outcomes) if (o.recipient === recipient && (last === undefined || o.at >= last.at)) last = o
  return last
}

function tokenRevokedEvent(t: IssuedToken, at: number, options: CascadeRunOptions): AuditEvent {
  return {
    type: 'token.revoked',
    at,
    personId: t.personId,
    agentSub: t.agentSub,
    ...(t.parentAgent === undefined ? {} : { parentAgent: t.parentAgent }),
    resource: t.resource,
    ...(t.scope === undefined ? {} : { scope: t.scope }),
    ...(t.missionS256 === undefined ? {} : { missionS256: t.missionS256 }),
    decision: 'revoke',
    ...(options.reason === undefined ? {} : { reason: options.reason }),
    detail: {
      jti: t.jti,
      kind: t.kind,
      agentIss: t.agentIss,
      ...(options.cause === undefined ? {} : { cause: { iss: options.cause.iss, jti: options.cause.jti } }),
    },
  }
}

/** The record of what one agent token revocation withdrew. */
function causeEvent(cause: RevocationCause, agentSub: string, tokens: readonly IssuedToken[], at: number): AuditEvent {
  return {
    type: AGENT_TOKEN_REVOKED_EVENT,
    at,
    agentSub,
    decision: 'revoke',
    reason: 'the agent provider revoked the agent token',
    detail: { iss: cause.iss, jti: cause.jti, tokens: tokens.map((t) => t.jti) },
  }
}

/**
 * The jtis an earlier run for `cause` withdrew. Searched in the agent's audit trail from the
 * earliest time the agent token can have been issued (its `exp` minus 24 h).
 */
async function findCauseRecord(store: PersonServerStore, cause: RevocationCause, agentSub: string): Promise<string[] | undefined> {
  const from = cause.expiresAt - MAX_AGENT_TOKEN_LIFETIME_SEC * 1000
  let afterSeq: number | undefined
  for (;;) {
    const page = await store.queryAudit({ agentSub, from, limit: AUDIT_PAGE, ...(afterSeq === undefined ? {} : { afterSeq }) })
    for (const e of page) {
      const d = e.detail
      if (e.type === AGENT_TOKEN_REVOKED_EVENT && d?.['iss'] === cause.iss && d['jti'] === cause.jti && Array.isArray(d['tokens'])) {
        return (d['tokens'] as unknown[]).filter((j): j is string => typeof j === 'string')
      }
    }
    const last = Math.max(...page.map((e) => e.seq ?? -Infinity))
    if (page.length < AUDIT_PAGE || !Number.isFinite(last) || last === afterSeq) return undefined
    afterSeq = last
  }
}

// ---------------------------------------------------------------------------------------------
// The endpoint
// ---------------------------------------------------------------------------------------------

/** Options of {@link createRevocationEndpoint}. */
export interface RevocationEndpointOptions extends RevocationCascadeOptions {
  /** Keys of callers (agent providers, resources). */
  readonly jwks: JwksCache
  /** Withdraws what the PS issued to a revoked agent. */
  readonly cascade: RevocationCascade
  /** Most live revocations one caller may hold here. Default 10,000. */
  readonly maxPerIssuer?: number
  /** Longest time a revocation is held open for its cascade (ms). Default 20 s. */
  readonly holdMs?: number
  /** Clock skew tolerance on `exp` (s). Default 60. */
  readonly skewSec?: number
  /** Path of the pending URLs (the `Location` of a `202` is `{pendingPath}/{id}`). Default `/revoke/pending`. */
  readonly pendingPath?: string
  /** `Retry-After` of a `202` (s). Default 1. */
  readonly retryAfterSec?: number
  /** `Retry-After` of `rate_limited` (s). Default 60. */
  readonly rateLimitRetryAfterSec?: number
  /** Cascades kept for polling on this instance. Default 1000. */
  readonly maxCascades?: number
  /** How long a finished cascade can still be polled (ms). Default 10 minutes. */
  readonly retainMs?: number
  /** Signature window (s). Default 60. */
  readonly windowSec?: number
  /**
   * Replay cache for revocation `POST`s. Default none: a replayed revocation repeats an idempotent
   * one, and polls would collide in it (two polls in one second have one signature base).
   */
  readonly replayCache?: ReplayCache
  /**
   * Called each time an agent provider revokes a token of a known agent (first time or repeated):
   * end that agent's open pending requests here. Must be idempotent.
   */
  readonly onAgentRevoked?: (agentIss: string, agentSub: string) => void | Promise<void>
  /** Called for each pending request ended because its resource token was withdrawn (wake its long polls). */
  readonly onPendingRevoked?: (pending: PendingRecord) => void
  /** Called with an unexpected failure answered `500 server_error` (log it). */
  readonly onError?: (err: unknown) => void
}

/** The PS revocation endpoint; the PS app mounts `POST /revoke` and `GET /revoke/pending/:id`. */
export interface RevocationEndpoint {
  /** `POST /revoke`. */
  handle(request: Request): Promise<Response>
  /** `GET /revoke/pending/:id`: the pending URL of a deferred revocation. */
  poll(request: Request, id: string): Promise<Response>
}

/** Who is revoking, from the `dwk` it signed under (§Who Revokes What). */
type CallerRole = 'agent' | 'resource'

/** A cascade the endpoint answers for. */
interface CascadeJob {
  readonly id: string
  /** The caller that made the revocation: the only one that may poll. */
  readonly iss: string
  readonly settled: Promise<void>
  result: 'ok' | 'failed' | undefined
}

/**
 * The cascades started by revocations, in memory: a repeat of a revocation whose cascade is still
 * running joins it, and a pending URL reads it. Bounded in entries; finished cascades are kept for
 * `retainMs`. With several PS instances, a poll must reach the instance that answered `202`
 * (sticky routing); a poll reaching another one gets `404`, and the caller revokes again, which
 * is idempotent.
 */
class CascadeJobs {
  readonly #byId: BoundedCache<string, CascadeJob>
  readonly #running = new Map<string, CascadeJob>()
  readonly #now: () => number
  readonly #retainMs: number
  readonly #onError: ((err: unknown) => void) | undefined

  constructor(max: number, retainMs: number, now: () => number, onError?: (err: unknown) => void) {
    this.#byId = new BoundedCache(max, now)
    this.#now = now
    this.#retainMs = retainMs
    this.#onError = onError
  }

  /** Starts `work` for `(iss, jti)`, or returns the cascade already running for it. */
  start(iss: string, jti: string, work: () => Promise<unknown>): CascadeJob {
    const key = `${iss}\u0000${jti}`
    const running = this.#running.get(key)
    if (running !== undefined) return running
    const finish = (result: 'ok' | 'failed'): void => {
      job.result = result
      this.#running.delete(key)
      this.#byId.set(job.id, job, this.#now() + this.#retainMs)
    }
    const job: CascadeJob = {
      id: encodeBase64url(crypto.getRandomValues(new Uint8Array(16))),
      iss,
      result: undefined,
      settled: work().then(
        () => finish('ok'),
        (err: unknown) => {
          this.#onError?.(err)
          finish('failed')
        },
      ),
    }
    this.#running.set(key, job)
    this.#byId.set(job.id, job)
    return job
  }

  get(id: string): CascadeJob | undefined {
    return this.#byId.get(id)
  }
}

/** Whether `job` finished within `ms`. */
async function finishedWithin(job: CascadeJob, ms: number): Promise<boolean> {
  if (job.result !== undefined) return true
  if (ms <= 0) return false
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([job.settled.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** `{jti, exp}` of a revocation request. @throws {ProblemError} `invalid_request`. */
function parseRevocation(body: Uint8Array): { jti: string; exp: number } {
  const { jti, exp } = parseJsonObject(body)
  if (typeof jti !== 'string' || jti === '') throw new ProblemError('invalid_request', 'jti must be a non-empty string')
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp <= 0) throw new ProblemError('invalid_request', 'exp must be an integer (seconds)')
  return { jti, exp }
}

/** @throws {ProblemError} `unsupported_iss` for a caller that revokes nothing here. */
function roleOf(caller: ServerContext): CallerRole {
  if (caller.dwk === DWK.agent) return 'agent'
  if (caller.dwk === DWK.resource) return 'resource'
  throw new ProblemError('unsupported_iss', `a ${caller.dwk} server has no tokens to revoke at a person server`)
}

/** The verifier of server signatures (`jwks_uri`), body covered (§Revocation Request). */
function serverVerifier(o: RevocationEndpointOptions, idOpts: IdentifierOptions, replayCache?: ReplayCache): RequestVerifier {
  return createRequestVerifier({
    audience: o.issuer,
    jwks: o.jwks,
    acceptedTokenTypes: [],
    acceptServerSignatures: true,
    requireBodyComponents: true,
    ...(o.now === undefined ? {} : { now: o.now }),
    ...(o.windowSec === undefined ? {} : { windowSec: o.windowSec }),
    ...(replayCache === undefined ? {} : { replayCache }),
    ...idOpts,
  })
}

/** The verified caller. @throws {SignatureError} */
async function verifyCaller(verifier: RequestVerifier, request: Request, body: Uint8Array): Promise<ServerContext> {
  const c = (await verifier.verify(request, body)).key.context
  if (c.scheme !== 'jwks_uri') throw new SignatureError('unsupported_scheme', 'revocations are signed by servers (jwks_uri)', { acceptSignatureScheme: ['jwks_uri'] })
  return c
}

const empty200 = (): Response => new Response(null, { status: 200 })
const notFound = (): Response => new Response(null, { status: 404, headers: { 'cache-control': 'no-store' } })

/**
 * Creates the PS revocation endpoint (main draft §Token Revocation; CHECKLIST REV-10, REV-11,
 * REV-14, REV-16, ERR-08).
 *
 * - The caller signs as a server (`jwks_uri`) and covers the body; otherwise `401` with
 *   `Signature-Error`. The issuer is the verified caller, never a parameter: revocations are
 *   keyed by `(iss, jti)`.
 * - An agent provider (`dwk=aauth-agent.json`) revokes an agent token: recorded first (the PS's
 *   verifier then answers that token `revoked_jwt`), then every live person and auth token issued
 *   to that agent's `sub` — and to its sub-agents — is withdrawn at its resource. The answer is an
 *   empty `200` once each downstream call has ended, or a `202` with a pending URL when that takes
 *   longer than the hold (`Prefer: wait`, capped at `holdMs`). The AP is told nothing of the
 *   outcomes (REV-16).
 * - A resource (`dwk=aauth-resource.json`) withdraws a resource token: recorded, and each open
 *   pending request started for it ends `revoked`. Nothing is downstream, so `200` at once.
 * - Any other caller: `403 unsupported_iss`. `400 invalid_request` for a malformed body or an
 *   `exp` further ahead than such a token lives; `429 rate_limited` with `Retry-After` once a
 *   caller holds `maxPerIssuer` live revocations. Nothing is recorded for any of these.
 * - A repeated revocation records nothing new, re-attempts the downstream revocations that did
 *   not succeed, and answers as the first did.
 *
 * Running cascades live in a bounded in-memory map of this instance (the pending URL names one).
 * With several PS instances, route `GET /revoke/pending/*` to the instance that answered the `202`
 * (sticky sessions); elsewhere the poll gets `404` and the caller revokes again, which is
 * idempotent and re-runs only what did not succeed.
 *
 * @example
 * ```ts
 * const cascade = createRevocationCascade({ issuer, keys, store })
 * const revocation = createRevocationEndpoint({ issuer, keys, store, jwks, cascade })
 * app.post('/revoke', (c) => revocation.handle(c.req.raw))
 * app.get('/revoke/pending/:id', (c) => revocation.poll(c.req.raw, c.req.param('id')))
 * ```
 */
export function createRevocationEndpoint(options: RevocationEndpointOptions): RevocationEndpoint {
  const { store, cascade } = options
  const now = options.now ?? Date.now
  const idOpts: IdentifierOptions = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  const holdMs = options.holdMs ?? 20_000
  const skewSec = options.skewSec ?? 60
  const maxPerIssuer = options.maxPerIssuer ?? 10_000
  const pendingPath = options.pendingPath ?? '/revoke/pending'
  const jobs = new CascadeJobs(options.maxCascades ?? 1000, options.retainMs ?? 600_000, now, options.onError)
  const postVerifier = serverVerifier(options, idOpts, options.replayCache)
  // Polls are bodiless GETs a caller may repeat within one second: no replay cache.
  const pollVerifier = serverVerifier(options, idOpts)

  function errorResponse(err: unknown): Response {
    if (err instanceof SignatureError) return signatureErrorResponse(err)
    if (err instanceof ProblemError) {
      const retryAfter = err.code === 'rate_limited' ? { headers: { 'retry-after': String(options.rateLimitRetryAfterSec ?? 60) } } : undefined
      return problemResponse(err, retryAfter)
    }
    options.onError?.(err)
    return problemResponse(new ProblemError('server_error', 'internal error'))
  }

  /** `Prefer: wait`, capped at the hold; `fallback` without it (ms). */
  function holdOf(request: Request, fallback: number): number {
    const wait = parsePreferWait(request.headers.get('prefer'))
    return wait === undefined ? fallback : Math.min(wait * 1000, holdMs)
  }

  /** The terminal answer once the cascade ended within `ms`, else `202` with its pending URL. */
  async function answer(job: CascadeJob, ms: number): Promise<Response> {
    if (!(await finishedWithin(job, ms))) return pendingResponse({ location: `${pendingPath}/${job.id}`, retryAfter: options.retryAfterSec ?? 1 })
    return job.result === 'ok' ? empty200() : problemResponse(new ProblemError('server_error', 'the revocation cascade failed'))
  }

  /** An `exp` further ahead than any token of this kind lives is refused (§Revocation Request). */
  function checkExp(role: CallerRole, exp: number): void {
    const lifetime = role === 'agent' ? MAX_AGENT_TOKEN_LIFETIME_SEC : MAX_RESOURCE_REVOCATION_LIFETIME_SEC
    if (exp > Math.floor(now() / 1000) + lifetime + skewSec) throw new ProblemError('invalid_request', `exp is further ahead than a token revoked here lives (${lifetime} s)`)
  }

  /** The per-caller bound; a repeat of a recorded revocation adds nothing and always passes. */
  async function checkBound(iss: string, jti: string): Promise<void> {
    if (await store.isRevoked(iss, jti)) return
    if ((await store.countRevocations(iss, now())) >= maxPerIssuer) throw new ProblemError('rate_limited', `${iss} holds ${maxPerIssuer} revocations here`)
  }

  /** §Revocation Cascade "Agent provider revokes an agent token it issued" (REV-11). */
  async function agentTokenRevoked(rec: ReceivedRevocation, request: Request): Promise<Response> {
    await store.addRevocation(rec)
    const agent = await store.getAgentToken(rec.iss, rec.jti)
    // Never seen here: recorded, nothing downstream.
    if (agent === undefined) return empty200()
    await options.onAgentRevoked?.(rec.iss, agent.sub)
    const cause: RevocationCause = { iss: rec.iss, jti: rec.jti, expiresAt: rec.expiresAt }
    const job = jobs.start(rec.iss, rec.jti, () => cascade.revokeAgent(rec.iss, agent.sub, undefined, { cause, reason: 'the agent provider revoked the agent token' }))
    return answer(job, holdOf(request, holdMs))
  }

  /** Ends one pending request started for a withdrawn resource token (REV-14). */
  async function endPending(p: PendingRecord, rec: ReceivedRevocation): Promise<void> {
    const at = now()
    const { applied } = await store.commit({
      pending: {
        id: p.id,
        from: OPEN_PENDING_STATES,
        patch: { state: 'revoked', result: { status: 403, body: { error: 'revoked', detail: 'the resource withdrew the resource token this request was started for' } }, updatedAt: at },
      },
      audit: [
        {
          type: 'request.revoked',
          at,
          ...(p.personId === undefined ? {} : { personId: p.personId }),
          agentSub: p.agentSub,
          ...(p.view.agent.parentAgent === undefined ? {} : { parentAgent: p.view.agent.parentAgent }),
          ...(p.view.resource === undefined ? {} : { resource: p.view.resource.id }),
          decision: 'revoke',
          reason: 'the resource withdrew the resource token',
          detail: { pending: p.id, resourceTokenIss: rec.iss, resourceTokenJti: rec.jti },
        },
      ],
    })
    if (applied) options.onPendingRevoked?.(p)
  }

  /** §Revocation Cascade "Resource revokes a resource token it issued" (REV-14): nothing downstream. */
  async function resourceTokenRevoked(rec: ReceivedRevocation): Promise<Response> {
    await store.addRevocation(rec)
    for (const p of await store.pendingForResourceToken(rec.iss, rec.jti)) await endPending(p, rec)
    return empty200()
  }

  return {
    async handle(request) {
      try {
        const body = await readBody(request)
        const caller = await verifyCaller(postVerifier, request, body)
        const role = roleOf(caller)
        const { jti, exp } = parseRevocation(body)
        checkExp(role, exp)
        await checkBound(caller.issuer, jti)
        const rec: ReceivedRevocation = { iss: caller.issuer, jti, expiresAt: exp * 1000, receivedAt: now() }
        return role === 'agent' ? await agentTokenRevoked(rec, request) : await resourceTokenRevoked(rec)
      } catch (err) {
        return errorResponse(err)
      }
    },
    async poll(request, id) {
      try {
        const caller = await verifyCaller(pollVerifier, request, await readBody(request))
        const job = jobs.get(id)
        // §Revocation Response "Deferred completion": 404 to anyone but the revoking identity.
        if (job === undefined || job.iss !== caller.issuer) return notFound()
        return await answer(job, holdOf(request, 0))
      } catch (err) {
        return errorResponse(err)
      }
    },
  }
}
