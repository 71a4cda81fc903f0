/**
 * The framework-neutral resource core: `(Fetch Request, raw body) → decision | challenge`, shared
 * by the Hono and Express adapters and by the Person Server (main draft §Resource Access, §Resource
 * Access Modes, §Auth Token Verification, §Resource Token, §Resource Metadata, §Token Revocation,
 * §Error Responses; CHECKLIST Part 3).
 *
 * - verifies the signature and the token in `Signature-Key` (agent, person or auth token), with a
 *   replay cache and revocation records in one {@link AAuthStore};
 * - enforces the route's {@link RouteRequirement}; what is missing is answered the way the draft
 *   assigns it: `401` + `Signature-Error` for authentication failures, `401` +
 *   `AAuth-Requirement` (`agent-token`, `person-token`, or `auth-token` with a signed resource
 *   token) for what the agent can obtain, `403` (no `Signature-Error`) for policy denials;
 * - serves `/.well-known/aauth-resource.json`, the JWKS, the revocation endpoint and the
 *   authorization endpoint.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import {
  AAUTH_REQUIREMENT_HEADER,
  assertServerIdentifier,
  createEgressFetcher,
  createRequestVerifier,
  createResourceToken,
  DWK,
  HeaderError,
  JwksCache,
  parseAAuthAuthorization,
  problemResponse,
  ProblemError,
  serializeRequirement,
  SignatureError,
  signatureErrorResponse,
  AAUTH_ACCESS_HEADER,
  type AAuthContext,
  type EgressFetcher,
  readR3Operations,
  sameOperation,
  type IdentifierOptions,
  type IssuerKey,
  type PublicJwk,
  type RequestVerifier,
  type ResourceMetadata,
  type TokenContext,
} from '../protocol/index.js'
import type { Policy, PolicyDecision, ResourceAccess, RouteRequirement } from './access.js'
import { bindingOf, createPerCallEngine, type ChallengeBinding, type HeldOutcome, type PerCallEngine } from './per-call.js'
import { MemoryPerCallStore } from './per-call-store.js'
import {
  checkR3Options,
  classDocument,
  composeDocument,
  documentClaims,
  openApiDocument,
  operationEntry,
  R3_PATHS,
  resolveOperation,
  serveDocument,
  type OperationDeclaration,
  type R3Options,
} from './r3.js'
import { handleRevocation, revocationKey, revocationVerifier, type RevocationOptions } from './revocation.js'
import { SessionTokens } from './session-tokens.js'
import { MemoryStore, type AAuthStore } from './store.js'

/** The resource's signing keys (a `KeyRing` from `aauth-kit/agent` fits). */
export interface SigningKeys {
  readonly current: IssuerKey
  jwks(): { keys: PublicJwk[] }
}

/** Options of {@link createResource}. */
export interface ResourceOptions extends IdentifierOptions {
  /** This resource's server identifier (`https://host`): the `aud` of tokens, `iss` of resource tokens. */
  readonly issuer: string
  /** Signs resource tokens; published at `jwks_uri`. Required for `auth` routes and the authorization endpoint. */
  readonly keys?: SigningKeys
  /**
   * The `@authority` agents sign, when it differs from the `Host` the server sees (a proxy in
   * front). Default: the authority of `issuer`.
   */
  readonly authority?: string
  /**
   * Person servers whose person and auth tokens are accepted. Default: any (each PS speaks only
   * for its own namespace of people, `(ps, sub)`).
   */
  readonly personServers?: readonly string[]
  /** Four-party: this resource's access server. Resource tokens name it as `aud`; only its auth tokens are accepted. */
  readonly accessServer?: string
  /** Metadata published beside `issuer` and `jwks_uri` (name, description, `scope_descriptions`, `access_mode`, …). */
  readonly metadata?: Omit<Partial<ResourceMetadata>, 'issuer' | 'jwks_uri' | 'revocation_endpoint' | 'authorization_endpoint'>
  /** Replay cache and revocation records. Default: a bounded {@link MemoryStore}. */
  readonly store?: AAuthStore
  /**
   * Resource-wide policy, run once the route's requirement is met — also before a per-call
   * challenge (a refused call is never proposed nor held) and before a held call runs.
   */
  readonly policy?: Policy
  /**
   * Rich Resource Requests (draft-hardt-aauth-r3): the declared operations, published as
   * `r3_vocabularies` and an OpenAPI document; auth routes with an operation are challenged with
   * class R3 documents, enforced by `r3_granted`/`r3_per_call`, and can ask per call for the
   * person's approval (see `per-call.ts`).
   */
  readonly r3?: R3Options
  /** Session tokens for `session` routes and `AAuth-Access`. Default: per-process random key. */
  readonly sessions?: SessionTokens
  /**
   * The authorization endpoint (§Authorization Endpoint). Given the person and the requested
   * scope/account, answer with a resource token (default), a session (`{ session: data }`), or an
   * error code (`invalid_scope`, `invalid_account`).
   */
  readonly authorize?: (input: { person: ResourceAccess; scope: string; account?: string }) => Promise<AuthorizeOutcome> | AuthorizeOutcome
  /** Paths of the endpoints the core serves itself. */
  readonly paths?: { readonly revocation?: string; readonly authorization?: string }
  /** Resource token lifetime in seconds (≤ 300). Default 300. */
  readonly resourceTokenLifetimeSec?: number
  /** Signature window (`created`), seconds. Default 60. */
  readonly windowSec?: number
  /**
   * Verify signatures synchronously: lowest latency one request at a time, but it blocks the event
   * loop; under concurrent load the default (async, on the thread pool) serves more requests.
   */
  readonly syncCrypto?: boolean
  readonly revocation?: RevocationOptions
  readonly jwks?: JwksCache
  readonly egress?: EgressFetcher
  readonly now?: () => number
}

/** What the authorization endpoint hook decides. */
export type AuthorizeOutcome =
  | { readonly kind: 'resource-token'; readonly scope?: string }
  | { readonly kind: 'session'; readonly data?: Record<string, unknown>; readonly body?: unknown }
  | { readonly kind: 'error'; readonly code: 'invalid_scope' | 'invalid_account' | 'invalid_request'; readonly detail?: string }

/** The core's answer for one request. */
export type ResourceDecision =
  | {
      readonly ok: true
      readonly access: ResourceAccess
      /** Headers to add to the handler's response (a rolled `AAuth-Access`). */
      readonly headers: Headers
      /**
       * Present when the call runs under a per-call grant (`401` path): the adapter MUST pass the
       * handler's response (or a copy) here before sending it; it is retained for repeated
       * presentations of the same auth token (R3-11).
       */
      readonly retain?: (response: Response) => Promise<void>
    }
  /** The handler does not run: send `response` (a refusal, a challenge, or a retained result). */
  | { readonly ok: false; readonly response: Response }

/** Options of {@link Resource.authenticate}. */
export interface AuthenticateOptions {
  /**
   * The adapter can hold this call and run it later through {@link Resource.resume}: a per-call
   * challenge is then delivered as `202` with a pending URL (unless `r3.perCallDelivery` is `401`).
   */
  readonly hold?: boolean
}

/** A configured resource. */
export interface Resource {
  readonly issuer: string
  readonly metadata: ResourceMetadata
  /**
   * Verifies `request` against `requirement`. `body` is the raw body (needed for
   * `Content-Digest`); when omitted it is read from the request.
   */
  authenticate(request: Request, requirement: RouteRequirement, body?: Uint8Array, options?: AuthenticateOptions): Promise<ResourceDecision>
  /**
   * Serves the core's own endpoints (metadata, JWKS, revocation, authorization); `undefined` for
   * any other request.
   */
  serve(request: Request, body?: Uint8Array): Promise<Response | undefined>
  /**
   * Answers a poll of a pending URL of a held per-call invocation (main draft §Deferred
   * Delivery): `undefined` for any other request; else a response to send, or the held call to
   * run once through the application (see {@link HeldOutcome}), which the resource-wide policy
   * has admitted (its refusal is answered, and retained, in place of the call's result).
   */
  resume(request: Request, body?: Uint8Array): Promise<HeldOutcome | undefined>
  /** A session token for the agent of `access`, to send in `AAuth-Access` (resource-managed access). */
  issueSession(access: ResourceAccess, data?: Record<string, unknown>): string
  /** The replay/revocation store (close it on shutdown). */
  readonly store: AAuthStore
}

const REQUIREMENT = (r: Parameters<typeof serializeRequirement>[0], idOpts: IdentifierOptions): Headers => new Headers({ [AAUTH_REQUIREMENT_HEADER]: serializeRequirement(r, idOpts) })

function challenge(status: 401 | 402, headers: Headers, detail: string): Response {
  headers.set('content-type', 'application/problem+json')
  headers.set('cache-control', 'no-store')
  return new Response(JSON.stringify({ error: 'unauthorized', detail }), { status, headers })
}

function scopeSet(scope: string | undefined): Set<string> {
  return new Set((scope ?? '').split(' ').filter((s) => s !== ''))
}

/** `scope` with the scope of each of `ops` appended where it is missing (its values keep their order). */
function withOperationScopes(scope: string, ops: readonly OperationDeclaration[] | undefined): string {
  return [...new Set([...scopeSet(scope), ...(ops ?? []).map((o) => o.scope)])].join(' ')
}

async function bodyOf(request: Request, body: Uint8Array | undefined): Promise<Uint8Array> {
  return body ?? new Uint8Array(await request.clone().arrayBuffer())
}

/**
 * Creates a resource.
 *
 * @throws {IdentifierError} for an `issuer`, PS or AS that is not a server identifier.
 * @example
 * ```ts
 * const resource = createResource({ issuer: 'https://api.example', keys: await KeyRing.create() })
 * const decision = await resource.authenticate(request, { access: 'agent' })
 * if (!decision.ok) return decision.response
 * decision.access.agent?.id // 'aauth:travel-bot@agents.example'
 * ```
 */
export function createResource(options: ResourceOptions): Resource {
  const idOpts: IdentifierOptions = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  assertServerIdentifier(options.issuer, idOpts)
  for (const ps of options.personServers ?? []) assertServerIdentifier(ps, idOpts)
  if (options.accessServer !== undefined) assertServerIdentifier(options.accessServer, idOpts)
  const now = options.now ?? Date.now
  const lifetime = options.resourceTokenLifetimeSec ?? 300
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > 300) throw new RangeError('resourceTokenLifetimeSec must be an integer in (0, 300]')
  const issuerUrl = new URL(options.issuer)
  const authority = options.authority ?? issuerUrl.host
  const egress = options.egress ?? createEgressFetcher(idOpts)
  const jwks = options.jwks ?? new JwksCache({ fetcher: egress, now, ...idOpts })
  const store = options.store ?? new MemoryStore({ now })
  const sessions = options.sessions ?? new SessionTokens({ now })
  const paths = { revocation: options.paths?.revocation ?? '/aauth/revoke', authorization: options.paths?.authorization ?? '/aauth/authorize' }
  const scopeDescriptions = options.metadata?.scope_descriptions
  if (options.r3 !== undefined) checkR3Options(options.r3)
  const r3Vocabulary = options.r3?.vocabulary ?? 'urn:aauth:vocabulary:openapi'
  const openApiPath = options.r3?.openApiPath ?? '/openapi.json'
  const r3Store = options.r3 === undefined ? undefined : (options.r3.store ?? new MemoryPerCallStore({ now }))
  const metadata: ResourceMetadata = {
    ...options.metadata,
    issuer: options.issuer,
    ...(options.keys === undefined ? {} : { jwks_uri: `${options.issuer}/.well-known/jwks.json` }),
    revocation_endpoint: `${options.issuer}${paths.revocation}`,
    ...(options.keys === undefined ? {} : { authorization_endpoint: `${options.issuer}${paths.authorization}` }),
    // R3-01: the vocabulary's discovery endpoint.
    ...(options.r3 === undefined ? {} : { r3_vocabularies: { [r3Vocabulary]: `${options.issuer}${openApiPath}` } }),
  } as ResourceMetadata
  // Four-party: only the access server's auth tokens; three-party: the trusted PSes (or any).
  const authTokenIssuers = options.accessServer !== undefined ? [options.accessServer] : options.personServers
  const verifier: RequestVerifier = createRequestVerifier({
    audience: options.issuer,
    jwks,
    now,
    replayCache: store,
    isRevoked: (iss, jti) => store.has(revocationKey(iss, jti)),
    ...(authTokenIssuers === undefined ? {} : { authTokenIssuers }),
    ...(options.windowSec === undefined ? {} : { windowSec: options.windowSec }),
    ...(options.syncCrypto === undefined ? {} : { syncCrypto: options.syncCrypto }),
    ...(metadata.additional_signature_components === undefined ? {} : { requiredComponents: metadata.additional_signature_components }),
    ...idOpts,
  })

  /** The request as the agent signed it: the expected authority, whatever Host the proxy sent. */
  function asSigned(request: Request): { method: string; url: URL; headers: Headers } {
    const url = new URL(request.url)
    if (url.host !== authority) {
      url.protocol = issuerUrl.protocol
      // The host setter keeps the old port when the new value names none.
      url.port = ''
      url.host = authority
    }
    return { method: request.method, url, headers: request.headers }
  }

  function accessOf(ctx: TokenContext, jkt: string, mode: RouteRequirement['access'], raw: string): ResourceAccess {
    switch (ctx.type) {
      case 'aa-agent+jwt': {
        const c = ctx.claims
        return {
          mode,
          agentJkt: jkt,
          agent: { id: c.sub, provider: c.iss, ...(c.ps === undefined ? {} : { ps: c.ps }), ...(c.parent_agent === undefined ? {} : { parent: c.parent_agent }) },
          scopes: new Set(),
          token: { type: ctx.type, claims: c, raw },
        }
      }
      case 'aa-person+jwt':
        return personAccess(mode, jkt, ctx.claims.iss, ctx.claims, new Set(), { type: ctx.type, claims: ctx.claims, raw })
      case 'aa-auth+jwt':
        return personAccess(mode, jkt, ctx.claims.ps, ctx.claims, scopeSet(ctx.claims.scope), { type: ctx.type, claims: ctx.claims, raw })
    }
  }

  /** §Resource Token: bound to the presented person or auth token and the signing key. */
  async function resourceToken(access: ResourceAccess | ChallengeBinding, scope: string, extraClaims?: Record<string, unknown>): Promise<string> {
    if (options.keys === undefined) throw new TypeError('this resource has no signing keys: auth routes need options.keys')
    const b = 'presentedJti' in access ? access : bindingOf(access)
    const person = b.person
    return createResourceToken({
      key: options.keys.current,
      issuer: options.issuer,
      aud: options.accessServer ?? person.ps,
      ps: person.ps,
      sub: person.sub,
      presentedJti: b.presentedJti,
      agentJkt: b.agentJkt,
      scope,
      ...(b.mission === undefined ? {} : { missionS256: b.mission }),
      ...(person.tenant === undefined ? {} : { tenant: person.tenant }),
      ...(b.account === undefined ? {} : { account: b.account }),
      lifetimeSec: lifetime,
      now,
      ...(extraClaims === undefined ? {} : { extraClaims }),
      ...idOpts,
    })
  }

  async function authTokenChallenge(access: ResourceAccess, scope: string, status: 401 | 402 = 401, extraClaims?: Record<string, unknown>): Promise<Response> {
    const rt = await resourceToken(access, scope, extraClaims)
    return challenge(status, REQUIREMENT({ requirement: 'auth-token', resourceToken: rt }, idOpts), `an auth token with scope "${scope}" is required`)
  }

  const personChallenge = (detail: string) => challenge(401, REQUIREMENT({ requirement: 'person-token' }, idOpts), detail)

  const classCache = new Map<string, { bytes: Uint8Array; s256: string } | null>()
  const perCall: PerCallEngine | undefined =
    options.r3 === undefined
      ? undefined
      : createPerCallEngine({
          issuer: options.issuer,
          r3: options.r3,
          vocabulary: r3Vocabulary,
          store: r3Store!,
          now,
          mint: (binding, scope, claims) => resourceToken(binding, scope, claims),
          challenge: (rt, detail) => challenge(401, REQUIREMENT({ requirement: 'auth-token', resourceToken: rt }, idOpts), detail),
          audienceOf: (person) => options.accessServer ?? person.ps,
        })

  /** The `r3_uri`/`r3_s256` of the document `build` gives, published for the PS (and AS) of `access`. */
  function r3Claims(access: ResourceAccess, key: string, build: () => ReturnType<typeof classDocument>) {
    const person = access.person!
    const ctx = { issuer: options.issuer, store: r3Store!, now, cache: classCache }
    return documentClaims(ctx, key, build, [options.accessServer ?? person.ps, person.ps])
  }

  /** R3-03: the auth-token challenge of an R3 route references the class document of its scope. */
  async function classChallenge(access: ResourceAccess, scope: string, account: string | undefined): Promise<Response> {
    const claims = await r3Claims(access, `scope\u0000${scope}\u0000${account ?? ''}`, () => classDocument(options.r3!.operations, r3Vocabulary, scope, account))
    return authTokenChallenge(access, scope, 401, claims)
  }

  /**
   * R3-02 (R3 §Authorization Endpoint Extensions, §Operation Validation): the operations an agent
   * declares in `r3_operations`, checked against the declarations and composed into one
   * document; a problem for an unadvertised vocabulary or an undeclared operation.
   */
  function requestedOperations(value: unknown): readonly OperationDeclaration[] | ProblemError {
    const req = readR3Operations(value)
    if (options.r3 === undefined) return new ProblemError('invalid_request', 'this resource takes no r3_operations')
    if (req === undefined || req.operations.length === 0) return new ProblemError('invalid_request', 'r3_operations must be {vocabulary, operations[]} with at least one operation')
    if (req.vocabulary !== r3Vocabulary) return new ProblemError('invalid_request', `vocabulary ${req.vocabulary} is not advertised in r3_vocabularies`)
    const found: OperationDeclaration[] = []
    for (const o of req.operations) {
      const op = options.r3.operations.find((d) => sameOperation(operationEntry(d), o))
      if (op === undefined) return new ProblemError('invalid_request', `operation ${JSON.stringify(o)} is not in this resource's ${r3Vocabulary} definition`)
      if (!found.includes(op)) found.push(op)
    }
    return found
  }

  function trustedPs(ps: string): boolean {
    return options.personServers === undefined || options.personServers.includes(ps)
  }

  async function verify(request: Request, body: Uint8Array): Promise<{ ctx: AAuthContext; jkt: string; components: readonly string[] } | Response> {
    try {
      const v = await verifier.verify(asSigned(request), body)
      return { ctx: v.key.context, jkt: v.key.thumbprint, components: v.components }
    } catch (err) {
      if (!(err instanceof SignatureError)) throw err
      const res = signatureErrorResponse(err)
      // §Presenting a Revoked Token: a revoked auth token is repaired with a fresh person token.
      if (err.code === 'revoked_jwt' && /aa-auth\+jwt/.test(typOfPresented(request))) res.headers.set(AAUTH_REQUIREMENT_HEADER, serializeRequirement({ requirement: 'person-token' }))
      // RES-ID-01: a request that presented no agent token at all is told what to start with.
      else if (!request.headers.has('signature-key') && !request.headers.has('signature-input')) res.headers.set(AAUTH_REQUIREMENT_HEADER, serializeRequirement({ requirement: 'agent-token' }))
      return res
    }
  }

  async function parsedJson(request: Request, body: Uint8Array): Promise<unknown> {
    if (body.byteLength === 0 || !/json/i.test(request.headers.get('content-type') ?? '')) return undefined
    try {
      return JSON.parse(new TextDecoder().decode(body))
    } catch {
      return undefined
    }
  }

  async function applyPolicy(request: Request, body: Uint8Array, access: ResourceAccess): Promise<Response | undefined> {
    if (options.policy === undefined) return undefined
    const decision: PolicyDecision = await options.policy({ method: request.method, path: new URL(request.url).pathname, body: await parsedJson(request, body), access })
    switch (decision.decision) {
      case 'grant':
        return undefined
      case 'deny':
        return problemResponse(new ProblemError('denied', decision.detail ?? 'this request is not allowed'))
    }
  }

  /**
   * The policy on a call whose per-call grant is already claimed: a refusal — or a failure of the
   * hook itself — is that call's outcome, retained for repeated presentations like a result, so a
   * claim is never left without one (the agent would wait on it for ever).
   */
  async function policyForClaimed(request: Request, body: Uint8Array, access: ResourceAccess, retain: (response: Response) => Promise<void>): Promise<Response | undefined> {
    let refused: Response | undefined
    try {
      refused = await applyPolicy(request, body, access)
    } catch (cause) {
      refused = problemResponse(new ProblemError('server_error', 'the resource policy failed before the call ran; it was not run', { cause }))
    }
    if (refused !== undefined) await retain(refused.clone())
    return refused
  }

  async function authenticate(request: Request, requirement: RouteRequirement, given?: Uint8Array, o: AuthenticateOptions = {}): Promise<ResourceDecision> {
    const body = given ?? (await bodyOf(request, undefined))
    const v = await verify(request, body)
    if (v instanceof Response) return { ok: false, response: v }
    if (v.ctx.scheme !== 'jwt') return { ok: false, response: signatureErrorResponse(new SignatureError('unsupported_scheme', 'this resource takes agent, person and auth tokens', { acceptSignatureScheme: ['jwt'] })) }
    const raw = v.ctx.token
    let access = accessOf(v.ctx, v.jkt, requirement.access, raw)
    let retain: ((response: Response) => Promise<void>) | undefined
    const fail = (response: Response): ResourceDecision => ({ ok: false, response })
    if (access.person !== undefined && !trustedPs(access.person.ps)) {
      return fail(problemResponse(new ProblemError('denied', `tokens from ${access.person.ps} are not accepted here`)))
    }
    switch (requirement.access) {
      case 'agent':
        if (access.token.type !== 'aa-agent+jwt') return fail(challenge(401, REQUIREMENT({ requirement: 'agent-token' }, idOpts), 'an agent token is required'))
        break
      case 'person':
        if (access.person === undefined) return fail(personChallenge('a person token is required'))
        break
      case 'auth': {
        // RES-VER-02: a person token never stands in for an auth token.
        if (access.person === undefined) return fail(personChallenge('a person token is required before authorization'))
        const wanted = scopeSet(requirement.scope)
        const covered = access.token.type === 'aa-auth+jwt' && [...wanted].every((s) => access.scopes.has(s)) && (requirement.account === undefined || access.account === requirement.account)
        const op = options.r3 === undefined ? undefined : resolveOperation(options.r3.operations, request.method, new URL(request.url).pathname, requirement.operation)
        if (op === undefined) {
          if (!covered) return fail(await authTokenChallenge(access, requirement.scope))
          // A per-call grant is for its one operation only: any other call is challenged afresh.
          const uri = access.token.type === 'aa-auth+jwt' ? (access.token.claims as unknown as { r3_uri?: unknown }).r3_uri : undefined
          if (typeof uri === 'string' && perCall?.isProposalUri(uri) === true) return fail(await authTokenChallenge(access, requirement.scope))
          break
        }
        const out = await perCall!.authorize({
          request,
          body,
          json: await parsedJson(request, body),
          access,
          op,
          scope: requirement.scope,
          covered,
          hold: o.hold === true,
          classChallenge: () => classChallenge(access, requirement.scope, requirement.account),
          // A held or challenged call is still subject to the resource-wide policy: refused before it is proposed.
          policy: () => applyPolicy(request, body, access),
        })
        if (!out.ok) return fail(out.response)
        access = out.access
        retain = out.retain
        break
      }
      case 'session': {
        let value: string | undefined
        try {
          value = parseAAuthAuthorization(request.headers.get('authorization'))
        } catch (err) {
          // RES-RM-03: an empty, spaced or doubled credential is a malformed request.
          if (err instanceof HeaderError) return fail(problemResponse(new ProblemError('invalid_request', err.message)))
          throw err
        }
        // RES-RM-02: the session token counts only under a signature covering `authorization`.
        const session = value !== undefined && v.components.includes('authorization') ? sessions.verify(value, v.jkt) : undefined
        if (session === undefined) return fail(problemResponse(new ProblemError('denied', 'a session with this resource is required')))
        access = { ...access, session }
        break
      }
    }
    if (options.policy !== undefined) {
      const denied = retain === undefined ? await applyPolicy(request, body, access) : await policyForClaimed(request, body, access, retain)
      if (denied !== undefined) return fail(denied)
    }
    return { ok: true, access, headers: new Headers(), ...(retain === undefined ? {} : { retain }) }
  }

  async function authorizationEndpoint(request: Request, body: Uint8Array): Promise<Response> {
    const d = await authenticate(request, { access: 'person' }, body)
    if (!d.ok) return d.response
    if (d.access.token.type !== 'aa-person+jwt') return personChallenge('the authorization endpoint takes a person token')
    const json = await parsedJson(request, body)
    const r3Requested = (json as { r3_operations?: unknown } | undefined)?.r3_operations
    const ops = r3Requested === undefined ? undefined : requestedOperations(r3Requested)
    if (ops instanceof ProblemError) return problemResponse(ops)
    const requested = (json as { scope?: unknown } | undefined)?.scope
    const account = (json as { account?: unknown } | undefined)?.account
    // With r3_operations, the scope may be left out: it is then that of the operations.
    const badScope = requested === undefined ? ops === undefined : typeof requested !== 'string' || (requested.trim() === '' && ops === undefined)
    if (badScope || (account !== undefined && typeof account !== 'string')) {
      return problemResponse(new ProblemError('invalid_request', 'scope (a space-separated string) is required; account must be a string'))
    }
    // R3-07: the scope and the R3 document are enforced independently, so the scope must say what
    // the document grants: with r3_operations it is widened to the union of the requested scope
    // and every requested operation's scope, and the PS and the person see the real breadth.
    const scope = withOperationScopes(typeof requested === 'string' ? requested : '', ops)
    if (scopeDescriptions != null) {
      const unknown = [...scopeSet(scope)].filter((s) => !Object.hasOwn(scopeDescriptions as Record<string, string>, s))
      if (unknown.length > 0) return problemResponse(new ProblemError('invalid_scope', `unknown scope: ${unknown.join(' ')}`))
    }
    const outcome: AuthorizeOutcome = options.authorize === undefined ? { kind: 'resource-token' } : await options.authorize({ person: d.access, scope, ...(account === undefined ? {} : { account }) })
    switch (outcome.kind) {
      case 'error':
        return problemResponse(new ProblemError(outcome.code, outcome.detail ?? outcome.code))
      case 'session':
        return Response.json(outcome.body ?? { status: 'authorized', scope }, { headers: { [AAUTH_ACCESS_HEADER]: sessions.issue(d.access.agentJkt, outcome.data ?? {}), 'cache-control': 'no-store' } })
      case 'resource-token': {
        const access = account === undefined ? d.access : { ...d.access, account }
        // The hook may narrow the scope: the document then lists only the operations it still covers.
        const granted = outcome.scope === undefined ? scope : outcome.scope
        const kept = ops === undefined ? undefined : ops.filter((op) => scopeSet(granted).has(op.scope))
        if (kept !== undefined && kept.length === 0) return problemResponse(new ProblemError('invalid_scope', 'none of the requested operations is within the scope this resource grants'))
        const r3 =
          kept === undefined
            ? undefined
            : await r3Claims(access, `ops\u0000${kept.map((o) => o.operationId).join('\u0000')}\u0000\u0000${account ?? ''}`, () => composeDocument(kept, r3Vocabulary, account))
        return Response.json({ resource_token: await resourceToken(access, granted, r3) }, { headers: { 'cache-control': 'no-store' } })
      }
    }
  }

  let revoker: RequestVerifier | undefined
  let r3Fetcher: RequestVerifier | undefined
  let openApi: string | undefined

  async function resume(request: Request, given?: Uint8Array): Promise<HeldOutcome | undefined> {
    const path = new URL(request.url).pathname
    if (perCall === undefined || !perCall.isPendingPath(path)) return undefined
    const answer = (response: Response): HeldOutcome => ({ kind: 'response', response })
    if (request.method !== 'GET') return answer(new Response(null, { status: 405, headers: { allow: 'GET' } }))
    // DEF-02: every poll is a signed request from the agent that made the call.
    const v = await verify(request, await bodyOf(request, given))
    if (v instanceof Response) return answer(v)
    if (v.ctx.scheme !== 'jwt') return answer(signatureErrorResponse(new SignatureError('unsupported_scheme', 'pending URLs are polled by the agent', { acceptSignatureScheme: ['jwt'] })))
    const access = accessOf(v.ctx, v.jkt, 'auth', v.ctx.token)
    if (access.person !== undefined && !trustedPs(access.person.ps)) return answer(problemResponse(new ProblemError('denied', `tokens from ${access.person.ps} are not accepted here`)))
    const held = await perCall.poll(path, access)
    if (held.kind !== 'execute') return held
    // The resource-wide policy runs before the held call does, as it would have before a direct
    // call; its refusal is the call's outcome, retained for repeated presentations like a result.
    const refused = await policyForClaimed(held.request, await bodyOf(held.request, undefined), held.access, held.retain)
    return refused === undefined ? held : answer(refused)
  }

  async function serve(request: Request, given?: Uint8Array): Promise<Response | undefined> {
    const path = new URL(request.url).pathname
    if (request.method === 'GET' && path === `/.well-known/${DWK.resource}`) return Response.json(metadata, { headers: { 'cache-control': 'max-age=300' } })
    if (request.method === 'GET' && path === '/.well-known/jwks.json' && options.keys !== undefined) return Response.json(options.keys.jwks(), { headers: { 'cache-control': 'max-age=300' } })
    if (options.r3 !== undefined) {
      if (request.method === 'GET' && path === openApiPath) {
        openApi ??= JSON.stringify(openApiDocument(options.r3.operations, options.r3.title ?? (typeof options.metadata?.name === 'string' ? options.metadata.name : options.issuer)))
        return new Response(openApi, { headers: { 'content-type': 'application/json', 'cache-control': 'max-age=300' } })
      }
      // R3-05: R3 documents only to the servers entitled to them.
      if (path.startsWith(R3_PATHS.document)) {
        r3Fetcher ??= revocationVerifier({ audience: options.issuer, jwks, store, now, idOpts })
        return serveDocument(asSigned(request), await bodyOf(request, given), { verifier: r3Fetcher, store: r3Store! })
      }
    }
    if (path === paths.revocation) {
      if (request.method !== 'POST') return new Response(null, { status: 405, headers: { allow: 'POST' } })
      revoker ??= revocationVerifier({ audience: options.issuer, jwks, store, now, idOpts })
      return handleRevocation({ ...asSigned(request), body: await bodyOf(request, given) }, { ...options.revocation, verifier: revoker, store, now })
    }
    if (path === paths.authorization && options.keys !== undefined) {
      if (request.method !== 'POST') return new Response(null, { status: 405, headers: { allow: 'POST' } })
      return authorizationEndpoint(request, await bodyOf(request, given))
    }
    return undefined
  }

  return {
    issuer: options.issuer,
    metadata,
    authenticate,
    serve,
    resume,
    issueSession: (access, data) => sessions.issue(access.agentJkt, data),
    store,
  }
}

/** The access of a request carrying a person or auth token: the person is `(ps, sub)`. */
function personAccess(
  mode: RouteRequirement['access'],
  agentJkt: string,
  ps: string,
  c: { readonly sub: string; readonly tenant?: string | undefined; readonly mission_s256?: string | undefined; readonly account?: string | undefined },
  scopes: ReadonlySet<string>,
  token: ResourceAccess['token'],
): ResourceAccess {
  return {
    mode,
    agentJkt,
    person: { ps, sub: c.sub, ...(c.tenant === undefined ? {} : { tenant: c.tenant }) },
    scopes,
    ...(c.account === undefined ? {} : { account: c.account }),
    ...(c.mission_s256 === undefined ? {} : { mission: c.mission_s256 }),
    token,
  }
}

/** The `typ` of the token in `Signature-Key`, read without verifying (only to choose a hint). */
function typOfPresented(request: Request): string {
  const m = /jwt="([^".]+)\./.exec(request.headers.get('signature-key') ?? '')
  if (m === null) return ''
  try {
    return atob(m[1]!.replace(/-/g, '+').replace(/_/g, '/'))
  } catch {
    return ''
  }
}
