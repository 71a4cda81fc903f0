/**
 * R3 enforcement and per-call step-up at the resource (draft-hardt-aauth-r3 §Resource
 * Enforcement, §Grant Enforcement, §Per-Call Proposals; main draft §Deferred Delivery, §Pending
 * URL Security; CHECKLIST R3-09..R3-11, R3-15, DEF-02, NEG-R3-03, NEG-R3-04).
 *
 * For a route whose operation is declared ({@link OperationDeclaration}):
 *
 * - an auth token with R3 claims is enforced by them: the operation in `r3_granted` is served, in
 *   `r3_per_call` is challenged with a per-call proposal, in neither is refused (`403 denied`);
 *   without R3 claims the scope check applies, and a challenge references the class document;
 * - a per-call decider (or an operation declared `per-call`) may still ask for the person's
 *   approval of this one call: the resource persists a proposal (one operation, the call's
 *   parameters, a display) keyed by its hash and challenges with a resource token whose
 *   `presented_jti` is the auth token the call carried (R3-15);
 * - **202** (default where the adapter can hold the call): the call is held; the agent polls the
 *   pending URL with signed GETs (same key, else `404`); the first poll presenting a per-call
 *   auth token for this proposal runs the held call once and gets its response;
 * - **401**: the agent retries the call with the per-call auth token; its parameters must equal
 *   the approved ones (inline by JSON equality, digests by hash), else `403 denied` — a repeat
 *   too; a grant for a held call is refused at the call's URL;
 * - either way the proposal is claimed atomically before the call runs (one execution per
 *   proposal), and the response is retained under the auth token's `(iss, jti)` until its `exp`:
 *   a repeated presentation gets that response, never a second execution.
 *
 * Decisions where the drafts are silent: every proposal carries a random `proposal_id`, so two
 * identical calls are two proposals, each consumed by its own grant; proposals are served at
 * `/aauth/r3/call/{s256}` and class documents at `/aauth/r3/{s256}`, so a per-call token is
 * recognised by its `r3_uri` even after the proposal record is gone (it is then refused, never
 * taken for a class grant); a poll presenting another token after completion gets `410`; a
 * pending URL whose approval never came answers `408 expired` after `pendingLifetimeSec`.
 *
 * @module
 */

import { decodeBase64, encodeBase64, encodeBase64url } from '../lib/base64url.js'
import { readBoundedBody } from '../lib/bounded-body.js'
import {
  AAUTH_REQUIREMENT_HEADER,
  decodeJwt,
  listsOperation,
  parameterDigest,
  parametersMatch,
  problemResponse,
  ProblemError,
  readR3Operations,
  serializeR3,
  serializeRequirement,
  type PerCallProposal,
  type R3Operations,
} from '../protocol/index.js'
import type { PersonRef, ResourceAccess } from './access.js'
import type { PerCallStore } from './per-call-store.js'
import { operationEntry, publishDocument, R3_PATHS, type OperationDeclaration, type PerCallSpec, type R3Options } from './r3.js'

/** What a resource token is bound to (main draft §Resource Token; R3-15). */
export interface ChallengeBinding {
  readonly person: PersonRef
  readonly agentJkt: string
  /** `jti` of the token the request carried: the person token, or the auth token on a step-up. */
  readonly presentedJti: string
  readonly mission?: string
  readonly account?: string
}

/** The binding of a challenge to the request that `access` describes. */
export function bindingOf(access: ResourceAccess): ChallengeBinding {
  return {
    person: access.person!,
    agentJkt: access.agentJkt,
    presentedJti: access.token.claims.jti,
    ...(access.mission === undefined ? {} : { mission: access.mission }),
    ...(access.account === undefined ? {} : { account: access.account }),
  }
}

/** The R3 claims of an auth token, read from its verified payload. */
export interface AuthR3Claims {
  readonly uri: string
  readonly s256: string
  readonly granted: R3Operations
  readonly perCall?: R3Operations
}

/** `undefined` without R3 claims; `'malformed'` when some are present but not all well-formed (R3-08). */
export function readAuthR3(claims: Readonly<Record<string, unknown>>): AuthR3Claims | 'malformed' | undefined {
  const { r3_uri: uri, r3_s256: s256, r3_granted, r3_per_call } = claims
  if (uri === undefined && s256 === undefined && r3_granted === undefined && r3_per_call === undefined) return undefined
  const granted = readR3Operations(r3_granted)
  const perCall = r3_per_call === undefined ? undefined : readR3Operations(r3_per_call)
  if (typeof uri !== 'string' || typeof s256 !== 'string' || granted === undefined || (r3_per_call !== undefined && perCall === undefined)) return 'malformed'
  return { uri, s256, granted, ...(perCall === undefined ? {} : { perCall }) }
}

/** What the core gives the per-call engine. */
export interface PerCallDeps {
  readonly issuer: string
  readonly r3: R3Options
  readonly vocabulary: string
  readonly store: PerCallStore
  readonly now: () => number
  /** Mints a resource token for `binding` with `scope` and the R3 claims. */
  readonly mint: (binding: ChallengeBinding, scope: string, claims: { r3_uri: string; r3_s256: string }) => Promise<string>
  /** The `401 requirement=auth-token` challenge carrying `rt`. */
  readonly challenge: (rt: string, detail: string) => Response
  /** The `aud` of resource tokens for `person`: the access server, else the person's PS. */
  readonly audienceOf: (person: PersonRef) => string
}

/** The outcome of per-call handling of a call that met its requirement. */
export type PerCallOutcome =
  | { readonly ok: true; readonly access: ResourceAccess; readonly retain?: (response: Response) => Promise<void> }
  | { readonly ok: false; readonly response: Response }

/** What a poll of a pending URL comes to. */
export type HeldOutcome =
  | { readonly kind: 'response'; readonly response: Response }
  /**
   * Run `request` (the held call, rebuilt) through the application as already authorised with
   * `access`, then pass its response (or a copy) to `retain` before sending it.
   */
  | { readonly kind: 'execute'; readonly request: Request; readonly access: ResourceAccess; readonly retain: (response: Response) => Promise<void> }

interface ProposalRecord {
  readonly operationId: string
  readonly parameters: Record<string, unknown>
  readonly agentJkt: string
  readonly ps: string
  readonly sub: string
  readonly scope: string
  readonly binding: ChallengeBinding
  /** The last resource token issued for it, and its `exp` (s). */
  rt: string
  rtExp: number
  /** Until when approval can arrive (epoch ms). */
  readonly openUntil: number
  readonly pending?: string
  readonly held?: { readonly method: string; readonly url: string; readonly headers: [string, string][]; readonly body: string }
}

interface Claim {
  readonly iss: string
  readonly jti: string
  readonly exp: number
}

interface Retained {
  readonly status: number
  readonly headers: [string, string][]
  readonly body: string
  /** The body exceeded `maxRetainedBodyBytes` and was not kept. */
  readonly truncated?: true
}

const keys = {
  proposal: (s256: string) => `r3pc\u0000${s256}`,
  pending: (id: string) => `r3pend\u0000${id}`,
  claim: (s256: string) => `r3run\u0000${s256}`,
  retained: (iss: string, jti: string) => `r3ret\u0000${iss}\u0000${jti}`,
}

/** The longest auth-token lifetime a per-call grant can have, plus skew (ms): records outlive it. */
const GRANT_HORIZON_MS = 3_660_000
/** Headers of the handler's response not retained (per-connection, or credentials for one response). */
const UNRETAINED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'set-cookie', 'aauth-access'])
/** Headers of a held call not kept: the signature and credentials, and per-connection framing. */
const UNHELD = new Set(['signature', 'signature-input', 'signature-key', 'authorization', 'cookie', 'content-length', 'host', 'connection', 'transfer-encoding', 'keep-alive'])

const denied = (detail: string): Response => problemResponse(new ProblemError('denied', detail))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The per-call engine of one resource. */
export interface PerCallEngine {
  /** Whether `path` is one of this resource's pending URLs. */
  isPendingPath(path: string): boolean
  /** Whether `r3_uri` is a per-call proposal of this resource. */
  isProposalUri(uri: string): boolean
  /**
   * R3 enforcement and per-call step-up for a call whose route names `op` and whose person is
   * known. `covered`: whether the presented token's scope covers the route's (used without R3 claims).
   */
  authorize(input: {
    readonly request: Request
    readonly body: Uint8Array
    readonly json: unknown
    readonly access: ResourceAccess
    readonly op: OperationDeclaration
    readonly scope: string
    readonly covered: boolean
    /** Whether the adapter can hold the call for `202` delivery. */
    readonly hold: boolean
    /** The class-document challenge, when the scope is not covered. */
    readonly classChallenge: () => Promise<Response>
  }): Promise<PerCallOutcome>
  /** A verified poll of a pending URL (`access`: what it presented). */
  poll(path: string, access: ResourceAccess): Promise<HeldOutcome>
}

/** Creates the per-call engine. */
export function createPerCallEngine(d: PerCallDeps): PerCallEngine {
  const { store, now, r3 } = d
  const lifetimeMs = (r3.pendingLifetimeSec ?? 900) * 1000
  const retryAfter = String(r3.retryAfterSec ?? 5)
  const maxHeld = r3.maxHeldBodyBytes ?? 1 << 20
  const maxRetained = r3.maxRetainedBodyBytes ?? 1 << 20
  const waitMs = r3.concurrentWaitMs ?? 10_000
  const delivery = r3.perCallDelivery ?? '202'
  const proposalPrefix = `${d.issuer}${R3_PATHS.proposal}`

  async function read<T>(key: string): Promise<T | undefined> {
    const v = await store.get(key)
    return v === undefined ? undefined : (JSON.parse(v) as T)
  }

  const callOf = (request: Request, json: unknown, access: ResourceAccess) => ({ method: request.method, path: new URL(request.url).pathname, body: json, access })

  /** The call's parameters when no decider gives them: the JSON object body, else none. */
  const defaultSpec = (op: OperationDeclaration, json: unknown): PerCallSpec => ({
    parameters: typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {},
    display: op.display,
  })

  async function retainedResponse(iss: string, jti: string): Promise<Response | undefined> {
    const r = await read<Retained>(keys.retained(iss, jti))
    if (r === undefined) return undefined
    if (r.truncated === true) return problemResponse(new ProblemError('invalid_code', 'the approved call ran; its result was too large to retain'))
    return new Response(r.status === 204 || r.status === 304 ? null : (decodeBase64(r.body)! as BufferSource), { status: r.status, headers: r.headers })
  }

  /** The retention of the response of the call run under `claim` (R3-11). */
  const retainer = (claim: Claim) => async (response: Response): Promise<void> => {
    const headers: [string, string][] = []
    response.headers.forEach((v, k) => {
      if (!UNRETAINED.has(k)) headers.push([k, v])
    })
    const read = await readBoundedBody(response.body, maxRetained)
    const record: Retained = read.ok ? { status: response.status, headers, body: encodeBase64(read.bytes) } : { status: response.status, headers, body: '', truncated: true }
    await store.set(keys.retained(claim.iss, claim.jti), JSON.stringify(record), claim.exp * 1000)
  }

  /**
   * A second presentation of the token that holds the claim: its result, once retained. Still
   * running after `concurrentWaitMs`: at a pending URL (`location`) `202` again, else `503`.
   */
  async function awaitRetained(claim: Claim, location?: string): Promise<Response> {
    const deadline = now() + waitMs
    for (;;) {
      const r = await retainedResponse(claim.iss, claim.jti)
      if (r !== undefined) return r
      if (now() >= deadline || now() >= claim.exp * 1000) break
      await sleep(25)
    }
    if (location !== undefined) {
      return new Response(JSON.stringify({ status: 'pending' }), { status: 202, headers: { location, 'retry-after': '1', 'cache-control': 'no-store', 'content-type': 'application/json' } })
    }
    return new Response(JSON.stringify({ error: 'server_error', detail: 'the approved call is still running; retry' }), {
      status: 503,
      headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', 'retry-after': '1' },
    })
  }

  const pendingUrl = (id: string) => `${d.issuer}${R3_PATHS.pending}${id}`

  /** `202` for a held call awaiting approval, with its resource token (main draft §Deferred Delivery). */
  function pendingResponse(rec: ProposalRecord & { pending: string }): Response {
    const headers = new Headers({
      location: pendingUrl(rec.pending),
      'retry-after': retryAfter,
      'cache-control': 'no-store',
      'content-type': 'application/json',
      [AAUTH_REQUIREMENT_HEADER]: serializeRequirement({ requirement: 'auth-token', resourceToken: rec.rt }),
    })
    return new Response(JSON.stringify({ status: 'pending' }), { status: 202, headers })
  }

  /** R3 §Flow step 1: persist the proposal, then hold (202) or challenge (401). */
  async function perCallChallenge(request: Request, body: Uint8Array, access: ResourceAccess, op: OperationDeclaration, scope: string, spec: PerCallSpec, hold: boolean): Promise<Response> {
    const parameters: Record<string, unknown> = { ...spec.parameters }
    for (const name of spec.digests ?? []) {
      if (!Object.hasOwn(parameters, name)) throw new TypeError(`digest parameter ${name} is not among the parameters of ${op.operationId}`)
      parameters[name] = { s256: await parameterDigest(parameters[name]) }
    }
    const proposal: PerCallProposal = {
      vocabulary: d.vocabulary,
      operations: [operationEntry(op)],
      parameters,
      display: spec.display,
      proposal_id: randomId(),
    }
    const { bytes, s256 } = await serializeR3(proposal)
    const binding = bindingOf(access)
    const person = binding.person
    const claims = { r3_uri: `${proposalPrefix}${s256}`, r3_s256: s256 }
    const rt = await d.mint(binding, scope, claims)
    const openUntil = now() + lifetimeMs
    const keepUntil = openUntil + GRANT_HORIZON_MS
    const holding = hold && delivery === '202' && body.byteLength <= maxHeld
    const pending = holding ? randomId() : undefined
    const record: ProposalRecord = {
      operationId: op.operationId,
      parameters,
      agentJkt: access.agentJkt,
      ps: person.ps,
      sub: person.sub,
      scope,
      binding,
      rt,
      rtExp: Number(decodeJwt(rt).payload['exp']),
      openUntil,
      ...(pending === undefined ? {} : { pending, held: heldCall(request, body) }),
    }
    await publishDocument(store, bytes, s256, [d.audienceOf(person), person.ps], keepUntil)
    await store.set(keys.proposal(s256), JSON.stringify(record), keepUntil)
    if (pending === undefined) return d.challenge(rt, `this call of ${op.operationId} needs the person's approval`)
    await store.set(keys.pending(pending), JSON.stringify({ s256 }), keepUntil)
    return pendingResponse({ ...record, pending })
  }

  /** R3 §Flow steps 3–4 on the 401 path: the retry carrying the per-call auth token. */
  async function completeRetry(request: Request, json: unknown, access: ResourceAccess, op: OperationDeclaration, grant: AuthR3Claims, classChallenge: () => Promise<Response>): Promise<PerCallOutcome> {
    const fail = (response: Response): PerCallOutcome => ({ ok: false, response })
    const claims = access.token.claims as unknown as { iss: string; jti: string; exp: number }
    const rec = await read<ProposalRecord>(keys.proposal(grant.s256))
    // A per-call token brought to another call (an agent that kept it as its token for the scope):
    // nothing runs under it, and the agent is told how to get a grant for this call (a challenge).
    if (rec === undefined || rec.operationId !== op.operationId || !listsOperation(grant.granted, d.vocabulary, operationEntry(op))) return fail(await classChallenge())
    if (rec.agentJkt !== access.agentJkt || rec.ps !== access.person?.ps || rec.sub !== access.person.sub) return fail(denied('this per-call grant was proposed for another agent or person'))
    // A held call runs at its pending URL only; the grant never runs a second copy of it here.
    if (rec.pending !== undefined) return fail(denied('this grant is for a held call: present it at its pending URL'))
    // NEG-R3-03: the retried call must be the approved one (a repeat, too).
    const decided = op.perCall === undefined ? undefined : await op.perCall(callOf(request, json, access))
    if (decided !== undefined && 'deny' in decided) return fail(denied(decided.deny))
    const actual = (decided ?? defaultSpec(op, json)).parameters
    if (!(await parametersMatch(rec.parameters, actual))) {
      // After its call ran, the grant is spent: another call is a new one, challenged afresh.
      if ((await read<Claim>(keys.claim(grant.s256))) !== undefined) return fail(await classChallenge())
      return fail(denied('the call differs from the one the person approved'))
    }
    // NEG-R3-04: a repeated presentation is answered from the retained result.
    const repeat = await retainedResponse(claims.iss, claims.jti)
    if (repeat !== undefined) return fail(repeat)
    const claim: Claim = { iss: claims.iss, jti: claims.jti, exp: claims.exp }
    const held = await read<Claim>(keys.claim(grant.s256))
    if (held !== undefined) return fail(sameGrant(held, claim) ? await awaitRetained(held) : denied('this per-call grant was already used'))
    if (!(await store.setIfAbsent(keys.claim(grant.s256), JSON.stringify(claim), rec.openUntil + GRANT_HORIZON_MS))) {
      const winner = await read<Claim>(keys.claim(grant.s256))
      return fail(winner !== undefined && sameGrant(winner, claim) ? await awaitRetained(winner) : denied('this per-call grant was already used'))
    }
    return { ok: true, access: { ...access, perCall: { r3_s256: grant.s256, jti: claim.jti } }, retain: retainer(claim) }
  }

  return {
    isPendingPath: (path) => path.startsWith(R3_PATHS.pending),
    isProposalUri: (uri) => uri.startsWith(proposalPrefix),

    async authorize({ request, body, json, access, op, scope, covered, hold, classChallenge }) {
      const fail = (response: Response): PerCallOutcome => ({ ok: false, response })
      const r3claims = access.token.type === 'aa-auth+jwt' ? readAuthR3(access.token.claims as unknown as Record<string, unknown>) : undefined
      if (r3claims === 'malformed') return fail(denied('the auth token carries malformed R3 claims'))
      const entry = operationEntry(op)
      let forced = false
      if (r3claims === undefined) {
        if (!covered) return fail(await classChallenge())
      } else if (r3claims.uri.startsWith(proposalPrefix)) {
        return completeRetry(request, json, access, op, r3claims, classChallenge)
      } else if (!listsOperation(r3claims.granted, d.vocabulary, entry)) {
        // R3-09: r3_per_call is challenged; anything else is refused.
        if (!listsOperation(r3claims.perCall, d.vocabulary, entry)) return fail(denied(`${op.operationId} is not granted by this auth token`))
        forced = true
      }
      const decided = op.perCall === undefined ? undefined : await op.perCall(callOf(request, json, access))
      if (decided !== undefined && 'deny' in decided) return fail(denied(decided.deny))
      if (decided === undefined && !forced && op.accessMode !== 'per-call') return { ok: true, access }
      return fail(await perCallChallenge(request, body, access, op, scope, decided ?? defaultSpec(op, json), hold))
    },

    async poll(path, access) {
      const response = (r: Response): HeldOutcome => ({ kind: 'response', response: r })
      const notFound = () => response(new Response(null, { status: 404, headers: { 'cache-control': 'no-store' } }))
      const id = path.slice(R3_PATHS.pending.length)
      const pend = /^[A-Za-z0-9_-]{43}$/.test(id) ? await read<{ s256: string }>(keys.pending(id)) : undefined
      if (pend === undefined) return notFound()
      const rec = await read<ProposalRecord>(keys.proposal(pend.s256))
      // DEF-02: the agent's identity is checked on every poll; anyone else learns nothing.
      if (rec === undefined || rec.held === undefined || rec.agentJkt !== access.agentJkt) return notFound()
      const c = access.token.type === 'aa-auth+jwt' ? (access.token.claims as unknown as Record<string, unknown>) : undefined
      const r3claims = c === undefined ? undefined : readAuthR3(c)
      const grant = typeof r3claims === 'object' && r3claims.s256 === pend.s256 ? r3claims : undefined
      const mine: Claim | undefined = grant === undefined ? undefined : { iss: String(c!['iss']), jti: String(c!['jti']), exp: Number(c!['exp']) }
      const claimed = await read<Claim>(keys.claim(pend.s256))
      if (claimed !== undefined) {
        if (mine !== undefined && sameGrant(claimed, mine)) return response(await awaitRetained(claimed, pendingUrl(id)))
        // Terminal: the record answers only the token that completed it (main draft §Pending URL Security).
        return response(new Response(null, { status: 410, headers: { 'cache-control': 'no-store' } }))
      }
      if (now() > rec.openUntil) return response(problemResponse(new ProblemError('expired', 'the call was not approved in time; it was not run')))
      if (grant === undefined || mine === undefined) {
        // Still waiting: re-issue the resource token when it is near expiry (main draft §Deferred Delivery).
        if (rec.rtExp * 1000 - now() < 60_000) {
          rec.rt = await d.mint(rec.binding, rec.scope, { r3_uri: `${proposalPrefix}${pend.s256}`, r3_s256: pend.s256 })
          rec.rtExp = Number(decodeJwt(rec.rt).payload['exp'])
          await store.set(keys.proposal(pend.s256), JSON.stringify(rec), rec.openUntil + GRANT_HORIZON_MS)
        }
        return response(pendingResponse({ ...rec, pending: id }))
      }
      if (!listsOperation(grant.granted, d.vocabulary, { operationId: rec.operationId }) || rec.ps !== access.person?.ps || rec.sub !== access.person.sub) {
        return response(denied('this auth token does not approve the held call'))
      }
      if (!(await store.setIfAbsent(keys.claim(pend.s256), JSON.stringify(mine), rec.openUntil + GRANT_HORIZON_MS))) {
        const winner = await read<Claim>(keys.claim(pend.s256))
        if (winner !== undefined && sameGrant(winner, mine)) return response(await awaitRetained(winner, pendingUrl(id)))
        return response(new Response(null, { status: 410, headers: { 'cache-control': 'no-store' } }))
      }
      const h = rec.held
      const request = new Request(h.url, { method: h.method, headers: h.headers, ...(h.body === '' ? {} : { body: decodeBase64(h.body)! as BufferSource }) })
      return { kind: 'execute', request, access: { ...access, perCall: { r3_s256: pend.s256, jti: mine.jti } }, retain: retainer(mine) }
    },
  }
}

function sameGrant(a: Claim, b: Claim): boolean {
  return a.iss === b.iss && a.jti === b.jti
}

function randomId(): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(32)))
}

function heldCall(request: Request, body: Uint8Array): NonNullable<ProposalRecord['held']> {
  const headers: [string, string][] = []
  request.headers.forEach((v, k) => {
    if (!UNHELD.has(k) && !k.startsWith('content-digest')) headers.push([k, v])
  })
  return { method: request.method, url: request.url, headers, body: body.byteLength === 0 ? '' : encodeBase64(body) }
}

