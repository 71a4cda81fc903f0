/**
 * R3 enforcement and per-call step-up at the resource (draft-hardt-aauth-r3 §Resource
 * Enforcement, §Grant Enforcement, §Per-Call Proposals; main draft §Deferred Delivery, §Pending
 * URL Security; CHECKLIST R3-09..R3-11, R3-15, DEF-02, NEG-R3-03, NEG-R3-04).
 *
 * For a route whose operation is declared ({@link OperationDeclaration}):
 *
 * - the scope check applies to every auth token (a token whose scope does not cover the route's is
 *   challenged with the class document); one with R3 claims is enforced by them as well (R3-07):
 *   the operation in `r3_granted` is served, in `r3_per_call` is challenged with a per-call
 *   proposal, in neither is refused (`403 denied`);
 * - a per-call decider (or an operation declared `per-call`) may still ask for the person's
 *   approval of this one call: the resource persists a proposal (one operation, the call's
 *   parameters, a display) keyed by its hash and challenges with a resource token whose
 *   `presented_jti` is the auth token the call carried (R3-15); the resource-wide policy runs
 *   first, and again before a held call runs, so a refused call is never proposed nor run;
 * - **202** (default where the adapter can hold the call): the call is held; the agent polls the
 *   pending URL with signed GETs (same key, else `404`); the first poll presenting a per-call
 *   auth token for this proposal runs the held call once and gets its response;
 * - **401**: the agent retries the call with the per-call auth token; its method, path and query
 *   must be those of the proposed call and its parameters the approved ones (inline by JSON
 *   equality, digests by hash), else `403 denied` — a repeat too; a grant for a held call is
 *   refused at the call's URL;
 * - either way the proposal is claimed atomically before the call runs (one execution per
 *   proposal) and the proposal record is then marked consumed by that grant, so single use does
 *   not rest on the claim key alone; the response is retained under the auth token's
 *   `(iss, jti)` until its `exp`: a repeated presentation gets that response (or `410
 *   invalid_code` once it is gone), never a second execution.
 *
 * Decisions where the drafts are silent: every proposal carries a random `proposal_id`, so two
 * identical calls are two proposals, each consumed by its own grant; proposals are served at
 * `/aauth/r3/call/{s256}` and class documents at `/aauth/r3/{s256}`, so a per-call token is
 * recognised by its `r3_uri` even after the proposal record is gone (it is then refused, never
 * taken for a class grant); a poll presenting another token after completion gets `410`; a
 * pending URL whose approval never came answers `408 expired` after `pendingLifetimeSec`. Without
 * a decider, a call's parameters are its path-template captures, query parameters and JSON body
 * (see `defaultParameters`), so the person sees which record it touches; the target (method,
 * path, query) is bound whether or not a decider gave the parameters.
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
import { operationEntry, publishDocument, R3_PATHS, templateCaptures, type OperationDeclaration, type PerCallSpec, type R3Options } from './r3.js'

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

/** The request line a proposal was made for: a grant is bound to it as well as to the parameters. */
interface CallTarget {
  /** Upper case. */
  readonly method: string
  readonly path: string
  /** The query, with its `?`, as sent (`''` for none). */
  readonly search: string
}

interface ProposalRecord {
  readonly operationId: string
  readonly parameters: Record<string, unknown>
  readonly target: CallTarget
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
  /**
   * The grant that consumed the proposal (R3 §Flow step 4), written as soon as it won the claim
   * and kept as long as the record: the claim key only arbitrates concurrent presentations, and a
   * bounded store may evict it. `done` once the call's outcome was retained.
   */
  readonly claimedBy?: Claim & { readonly done?: true }
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
    /**
     * The resource-wide policy's refusal of this call, if any: run before a per-call challenge,
     * so a call the policy refuses is never proposed to the person nor held.
     */
    readonly policy?: () => Promise<Response | undefined>
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

  /** The proposal of a call when no decider gives one: {@link defaultParameters} and the operation's display. */
  const defaultSpec = (op: OperationDeclaration, request: Request, json: unknown): PerCallSpec => ({
    parameters: defaultParameters(op, new URL(request.url), json),
    display: op.display,
  })

  async function retainedResponse(iss: string, jti: string): Promise<Response | undefined> {
    const r = await read<Retained>(keys.retained(iss, jti))
    if (r === undefined) return undefined
    if (r.truncated === true) return problemResponse(new ProblemError('invalid_code', 'the approved call ran; its result was too large to retain'))
    return new Response(r.status === 204 || r.status === 304 ? null : (decodeBase64(r.body)! as BufferSource), { status: r.status, headers: r.headers })
  }

  const readProposal = (s256: string) => read<ProposalRecord>(keys.proposal(s256))
  const writeProposal = (s256: string, rec: ProposalRecord) => store.set(keys.proposal(s256), JSON.stringify(rec), rec.openUntil + GRANT_HORIZON_MS)

  /**
   * The retention of the response of the call run under `claim` for proposal `s256` (R3-11); the
   * proposal record is then marked done, so a result lost later is told apart from one still coming.
   */
  const retainer = (claim: Claim, s256: string) => async (response: Response): Promise<void> => {
    const headers: [string, string][] = []
    response.headers.forEach((v, k) => {
      if (!UNRETAINED.has(k)) headers.push([k, v])
    })
    const read = await readBoundedBody(response.body, maxRetained)
    const record: Retained = read.ok ? { status: response.status, headers, body: encodeBase64(read.bytes) } : { status: response.status, headers, body: '', truncated: true }
    await store.set(keys.retained(claim.iss, claim.jti), JSON.stringify(record), claim.exp * 1000)
    const rec = await readProposal(s256)
    if (rec !== undefined) await writeProposal(s256, { ...rec, claimedBy: { ...claim, done: true } })
  }

  /**
   * Consumes proposal `s256` for `mine` (R3 §Flow step 4): the atomic claim decides between
   * concurrent presentations, and the winner records itself in the proposal record before the
   * call runs, so the consumption lasts as long as the record (a bounded store may evict the claim
   * key while the record stays). `true` when `mine` won; else the grant that holds the proposal
   * (`undefined` when the record is gone: nothing runs either way).
   */
  async function consume(s256: string, openUntil: number, mine: Claim): Promise<true | Claim | undefined> {
    if (!(await store.setIfAbsent(keys.claim(s256), JSON.stringify(mine), openUntil + GRANT_HORIZON_MS))) {
      return (await readProposal(s256))?.claimedBy ?? (await read<Claim>(keys.claim(s256)))
    }
    const rec = await readProposal(s256)
    // The claim key was lost after another presentation consumed the record: the record decides.
    if (rec === undefined || rec.claimedBy !== undefined) return rec?.claimedBy
    await writeProposal(s256, { ...rec, claimedBy: mine })
    return true
  }

  /**
   * A second presentation of the token that holds the claim of proposal `s256`: its result, once
   * retained; `410 invalid_code` when the call ran and its result is no longer held (it never runs
   * again). Still running after `concurrentWaitMs`: at a pending URL (`location`) `202` again,
   * else `503`.
   */
  async function awaitRetained(claim: Claim, s256: string, location?: string): Promise<Response> {
    const deadline = now() + waitMs
    for (;;) {
      const r = await retainedResponse(claim.iss, claim.jti)
      if (r !== undefined) return r
      if ((await readProposal(s256))?.claimedBy?.done === true) return problemResponse(new ProblemError('invalid_code', 'the approved call ran; its result is no longer retained'))
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
      target: targetOf(request),
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
    const rec = await readProposal(grant.s256)
    // A per-call token brought to another call (an agent that kept it as its token for the scope):
    // nothing runs under it, and the agent is told how to get a grant for this call (a challenge).
    if (rec === undefined || rec.operationId !== op.operationId || !listsOperation(grant.granted, d.vocabulary, operationEntry(op))) return fail(await classChallenge())
    if (rec.agentJkt !== access.agentJkt || rec.ps !== access.person?.ps || rec.sub !== access.person.sub) return fail(denied('this per-call grant was proposed for another agent or person'))
    // A held call runs at its pending URL only; the grant never runs a second copy of it here.
    if (rec.pending !== undefined) return fail(denied('this grant is for a held call: present it at its pending URL'))
    const mine: Claim = { iss: claims.iss, jti: claims.jti, exp: claims.exp }
    // R3 §Flow step 4: the record says whether (and by which grant) it was consumed; the claim
    // key, which a bounded store may have evicted, is only consulted when the record is silent.
    const consumed = rec.claimedBy ?? (await read<Claim>(keys.claim(grant.s256)))
    // NEG-R3-03: the retried call must be the approved one — the same method, path and query,
    // and the same parameters (a repeat, too).
    const decided = op.perCall === undefined ? undefined : await op.perCall(callOf(request, json, access))
    if (decided !== undefined && 'deny' in decided) return fail(denied(decided.deny))
    const actual = (decided ?? defaultSpec(op, request, json)).parameters
    if (!sameTarget(rec.target, targetOf(request)) || !(await parametersMatch(rec.parameters, actual))) {
      // After its call ran, the grant is spent: another call is a new one, challenged afresh.
      if (consumed !== undefined) return fail(await classChallenge())
      return fail(denied('the call differs from the one the person approved'))
    }
    // NEG-R3-04: a repeated presentation is answered from the retained result, never run again.
    if (consumed !== undefined) return fail(sameGrant(consumed, mine) ? await awaitRetained(consumed, grant.s256) : denied('this per-call grant was already used'))
    const won = await consume(grant.s256, rec.openUntil, mine)
    if (won !== true) return fail(won !== undefined && sameGrant(won, mine) ? await awaitRetained(won, grant.s256) : denied('this per-call grant was already used'))
    return { ok: true, access: { ...access, perCall: { r3_s256: grant.s256, jti: mine.jti } }, retain: retainer(mine, grant.s256) }
  }

  return {
    isPendingPath: (path) => path.startsWith(R3_PATHS.pending),
    isProposalUri: (uri) => uri.startsWith(proposalPrefix),

    async authorize({ request, body, json, access, op, scope, covered, hold, classChallenge, policy }) {
      const fail = (response: Response): PerCallOutcome => ({ ok: false, response })
      const r3claims = access.token.type === 'aa-auth+jwt' ? readAuthR3(access.token.claims as unknown as Record<string, unknown>) : undefined
      if (r3claims === 'malformed') return fail(denied('the auth token carries malformed R3 claims'))
      const entry = operationEntry(op)
      let forced = false
      // R3-07 (R3 §Resource Token Extensions): scope and R3 claims are enforced independently — a
      // token whose scope does not cover the route's is challenged for it, whatever R3 grants.
      if (!covered) return fail(await classChallenge())
      if (r3claims !== undefined) {
        if (r3claims.uri.startsWith(proposalPrefix)) return completeRetry(request, json, access, op, r3claims, classChallenge)
        if (!listsOperation(r3claims.granted, d.vocabulary, entry)) {
          // R3-09: r3_per_call is challenged; anything else is refused.
          if (!listsOperation(r3claims.perCall, d.vocabulary, entry)) return fail(denied(`${op.operationId} is not granted by this auth token`))
          forced = true
        }
      }
      const decided = op.perCall === undefined ? undefined : await op.perCall(callOf(request, json, access))
      if (decided !== undefined && 'deny' in decided) return fail(denied(decided.deny))
      if (decided === undefined && !forced && op.accessMode !== 'per-call') return { ok: true, access }
      const refused = await policy?.()
      if (refused !== undefined) return fail(refused)
      return fail(await perCallChallenge(request, body, access, op, scope, decided ?? defaultSpec(op, request, json), hold))
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
      // Completion consumes the record (R3 §Flow step 4): the record decides, the claim key only when it is silent.
      const claimed = rec.claimedBy ?? (await read<Claim>(keys.claim(pend.s256)))
      if (claimed !== undefined) {
        if (mine !== undefined && sameGrant(claimed, mine)) return response(await awaitRetained(claimed, pend.s256, pendingUrl(id)))
        // Terminal: the record answers only the token that completed it (main draft §Pending URL Security).
        return response(new Response(null, { status: 410, headers: { 'cache-control': 'no-store' } }))
      }
      if (now() > rec.openUntil) return response(problemResponse(new ProblemError('expired', 'the call was not approved in time; it was not run')))
      if (grant === undefined || mine === undefined) {
        // Still waiting: re-issue the resource token when it is near expiry (main draft §Deferred Delivery).
        if (rec.rtExp * 1000 - now() < 60_000) {
          rec.rt = await d.mint(rec.binding, rec.scope, { r3_uri: `${proposalPrefix}${pend.s256}`, r3_s256: pend.s256 })
          rec.rtExp = Number(decodeJwt(rec.rt).payload['exp'])
          // Re-read: never write back over a consumption recorded meanwhile.
          const fresh = await readProposal(pend.s256)
          if (fresh !== undefined && fresh.claimedBy === undefined) await writeProposal(pend.s256, { ...fresh, rt: rec.rt, rtExp: rec.rtExp })
        }
        return response(pendingResponse({ ...rec, pending: id }))
      }
      // R3-07: the scope of the grant must cover the scope the call was proposed under, too.
      const scopeCovered = rec.scope.split(' ').every((s) => s === '' || access.scopes.has(s))
      if (!listsOperation(grant.granted, d.vocabulary, { operationId: rec.operationId }) || !scopeCovered || rec.ps !== access.person?.ps || rec.sub !== access.person.sub) {
        return response(denied('this auth token does not approve the held call'))
      }
      const won = await consume(pend.s256, rec.openUntil, mine)
      if (won !== true) {
        if (won !== undefined && sameGrant(won, mine)) return response(await awaitRetained(won, pend.s256, pendingUrl(id)))
        return response(new Response(null, { status: 410, headers: { 'cache-control': 'no-store' } }))
      }
      const h = rec.held
      const request = new Request(h.url, { method: h.method, headers: h.headers, ...(h.body === '' ? {} : { body: decodeBase64(h.body)! as BufferSource }) })
      return { kind: 'execute', request, access: { ...access, perCall: { r3_s256: pend.s256, jti: mine.jti } }, retain: retainer(mine, pend.s256) }
    },
  }
}

function sameGrant(a: Claim, b: Claim): boolean {
  return a.iss === b.iss && a.jti === b.jti
}

function targetOf(request: Request): CallTarget {
  const url = new URL(request.url)
  return { method: request.method.toUpperCase(), path: url.pathname, search: url.search }
}

/** A record without a target (written by an older version) matches nothing: it fails closed. */
function sameTarget(a: CallTarget | undefined, b: CallTarget): boolean {
  return a !== undefined && a.method === b.method && a.path === b.path && queryKey(a.search) === queryKey(b.search)
}

/**
 * A query compared as its parameters, not its spelling (R3 §Flow step 3 compares structurally):
 * decoded (name, value) pairs ordered by name, the values of a repeated name kept in their order —
 * so `?a=1&b=2` equals `?b=2&a=1` and `%20` equals `+`, while `tag=a&tag=b` differs from
 * `tag=b&tag=a`.
 */
function queryKey(search: string): string {
  const byName = new Map<string, string[]>()
  for (const [name, value] of new URLSearchParams(search)) {
    const values = byName.get(name)
    if (values === undefined) byName.set(name, [value])
    else values.push(value)
  }
  return JSON.stringify([...byName.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
}

/**
 * The parameters of a call whose operation has no decider, so the person sees which record it
 * touches: the path-template captures (`{id: 'b-1'}`), the query parameters by name (a repeated
 * name: its values in order), and the JSON body — its members beside them when it is an object
 * none of whose names is taken, else the whole body under `body`. Likewise a query whose names
 * collide with captures goes whole under `query`. (The target itself is bound separately.)
 */
function defaultParameters(op: OperationDeclaration, url: URL, json: unknown): Record<string, unknown> {
  const captures: Record<string, unknown> = { ...templateCaptures(op.path, url.pathname) }
  // Built with entries and spreads (own data properties), so no name reaches a prototype setter.
  const query: Record<string, unknown> = Object.fromEntries(
    [...new Set(url.searchParams.keys())].map((name) => {
      const all = url.searchParams.getAll(name)
      return [name, all.length === 1 ? all[0] : all]
    }),
  )
  const out = Object.keys(query).some((k) => Object.hasOwn(captures, k)) ? { ...captures, query } : { ...captures, ...query }
  if (json === undefined) return out
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && !Object.keys(json).some((k) => Object.hasOwn(out, k))) return { ...out, ...(json as Record<string, unknown>) }
  return { ...out, body: json }
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

