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
  type IdentifierOptions,
  type IssuerKey,
  type PublicJwk,
  type RequestVerifier,
  type ResourceMetadata,
  type TokenContext,
} from '../protocol/index.js'
import type { Policy, PolicyDecision, ResourceAccess, RouteRequirement } from './access.js'
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
  /** Per-call policy, run once the route's requirement is met. */
  readonly policy?: Policy
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
    }
  | { readonly ok: false; readonly response: Response }

/** A configured resource. */
export interface Resource {
  readonly issuer: string
  readonly metadata: ResourceMetadata
  /**
   * Verifies `request` against `requirement`. `body` is the raw body (needed for
   * `Content-Digest`); when omitted it is read from the request.
   */
  authenticate(request: Request, requirement: RouteRequirement, body?: Uint8Array): Promise<ResourceDecision>
  /**
   * Serves the core's own endpoints (metadata, JWKS, revocation, authorization); `undefined` for
   * any other request.
   */
  serve(request: Request, body?: Uint8Array): Promise<Response | undefined>
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
  const metadata: ResourceMetadata = {
    ...options.metadata,
    issuer: options.issuer,
    ...(options.keys === undefined ? {} : { jwks_uri: `${options.issuer}/.well-known/jwks.json` }),
    revocation_endpoint: `${options.issuer}${paths.revocation}`,
    ...(options.keys === undefined ? {} : { authorization_endpoint: `${options.issuer}${paths.authorization}` }),
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
  async function resourceToken(access: ResourceAccess, scope: string, extraClaims?: Record<string, unknown>): Promise<string> {
    if (options.keys === undefined) throw new TypeError('this resource has no signing keys: auth routes need options.keys')
    const person = access.person!
    return createResourceToken({
      key: options.keys.current,
      issuer: options.issuer,
      aud: options.accessServer ?? person.ps,
      ps: person.ps,
      sub: person.sub,
      presentedJti: access.token.claims.jti,
      agentJkt: access.agentJkt,
      scope,
      ...(access.mission === undefined ? {} : { missionS256: access.mission }),
      ...(person.tenant === undefined ? {} : { tenant: person.tenant }),
      ...(access.account === undefined ? {} : { account: access.account }),
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
      case 'requires-approval':
        if (access.person === undefined) return personChallenge('this call needs the approval of the person the agent acts for')
        return authTokenChallenge(access, decision.scope ?? [...access.scopes].join(' '), 401, decision.claims)
    }
  }

  async function authenticate(request: Request, requirement: RouteRequirement, given?: Uint8Array): Promise<ResourceDecision> {
    const body = given ?? (await bodyOf(request, undefined))
    const v = await verify(request, body)
    if (v instanceof Response) return { ok: false, response: v }
    if (v.ctx.scheme !== 'jwt') return { ok: false, response: signatureErrorResponse(new SignatureError('unsupported_scheme', 'this resource takes agent, person and auth tokens', { acceptSignatureScheme: ['jwt'] })) }
    const raw = v.ctx.token
    let access = accessOf(v.ctx, v.jkt, requirement.access, raw)
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
        if (!covered) return fail(await authTokenChallenge(access, requirement.scope))
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
      const denied = await applyPolicy(request, body, access)
      if (denied !== undefined) return fail(denied)
    }
    return { ok: true, access, headers: new Headers() }
  }

  async function authorizationEndpoint(request: Request, body: Uint8Array): Promise<Response> {
    const d = await authenticate(request, { access: 'person' }, body)
    if (!d.ok) return d.response
    if (d.access.token.type !== 'aa-person+jwt') return personChallenge('the authorization endpoint takes a person token')
    const json = await parsedJson(request, body)
    const scope = (json as { scope?: unknown } | undefined)?.scope
    const account = (json as { account?: unknown } | undefined)?.account
    if (typeof scope !== 'string' || scope.trim() === '' || (account !== undefined && typeof account !== 'string')) {
      return problemResponse(new ProblemError('invalid_request', 'scope (a space-separated string) is required; account must be a string'))
    }
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
        return Response.json({ resource_token: await resourceToken(access, outcome.scope ?? scope) }, { headers: { 'cache-control': 'no-store' } })
      }
    }
  }

  let revoker: RequestVerifier | undefined

  async function serve(request: Request, given?: Uint8Array): Promise<Response | undefined> {
    const path = new URL(request.url).pathname
    if (request.method === 'GET' && path === `/.well-known/${DWK.resource}`) return Response.json(metadata, { headers: { 'cache-control': 'max-age=300' } })
    if (request.method === 'GET' && path === '/.well-known/jwks.json' && options.keys !== undefined) return Response.json(options.keys.jwks(), { headers: { 'cache-control': 'max-age=300' } })
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
