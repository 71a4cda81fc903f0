/**
 * OAuth 2.0 Token Exchange (RFC 8693) at the Person Server: an app that already holds a person's
 * realm access token (Keycloak, or any OpenID Provider) trades it, together with the agent's
 * signed request, for an AAuth auth token (`aa-auth+jwt`) for one resource — without a new
 * consent round trip when the organisation's policy allows it (scenario S2).
 *
 * - The **subject** is the person: the realm token is verified against the realm's keys and its
 *   audience, and must be an access token (no ID or refresh token).
 * - The **actor** is the agent: it signs the request (RFC 9421, body covered, agent token in
 *   `Signature-Key`), exactly as at the AAuth endpoints. An `actor_token`, if sent, must be that
 *   very agent token (RFC 8693 §2.1 lets the actor be named by a token; here the signature
 *   already proves it, so a different one is a contradiction).
 * - The **scope** is never wider than the person's permissions ∩ the agent's capability set (the
 *   organisation rule in `person-server/policy.ts`); an empty intersection is a refusal, never a
 *   token that allows nothing. The PS policy then decides as at `/token`: only `grant` issues,
 *   `ask` answers `interaction_required` (the person approves through the AAuth flow).
 * - The token is minted and recorded like one from `/token` (so a resource accepts it and the
 *   revocation cascade finds it), bound to the agent's key, and never outlives the realm token.
 *   Every decision after the subject token is verified is audited with both principals.
 *
 * Errors follow RFC 8693 §2.2.2 / RFC 6749 §5.2 (`400`, JSON `{ error, error_description }`),
 * except signature failures, which keep AAuth's `401` with `Signature-Error`. A subject token
 * that is invalid or unacceptable is `invalid_request`, as §2.2.2 requires (not `invalid_grant`).
 *
 * @module
 */

import { createHash } from 'node:crypto'
import type { Hono } from 'hono'
import type { JWTPayload } from 'jose'
import { AAuthError, isServerIdentifier, ProblemError, type AgentTokenClaims } from '../../protocol/index.js'
import type { ExtensionHelpers, PersonServerExtension } from '../../person-server/extensions.js'
import type { PsContext } from '../../person-server/context.js'
import type { RawAgentRequest } from '../../person-server/agent-requests.js'
import { allowedScopes, decide, type OrganizationPolicy, type PolicyRequest } from '../../person-server/policy.js'
import { mint, type AuthTokenWork } from '../../person-server/issuance.js'
import { directedSubject } from '../../person-server/directed-id.js'
import { scopeValues } from '../../person-server/resource-token-check.js'
import type { AuditEvent, PersonRecord } from '../../person-server/store/types.js'
import { KeycloakRealm, RealmTokenError, type RealmOptions } from './realm.js'
import { upsertRealmPerson, type PersonMapping } from './person-mapping.js'
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_URN } from './exchange-client.js'

/** The `audit` event type of an exchange. */
export const TOKEN_EXCHANGE_EVENT = 'token_exchange'

/** Error codes the exchange endpoint answers (RFC 8693 §2.2.2, RFC 6749 §5.2, OIDC `interaction_required`). */
export type ExchangeErrorCode =
  | 'invalid_request'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unauthorized_client'
  | 'interaction_required'

/** A refused exchange: answered `400` with `{ error: code, error_description: message }`. */
export class ExchangeEndpointError extends Error {
  /** Stable machine-readable code, the OAuth `error` value. */
  readonly code: ExchangeErrorCode
  /** Always 400 (RFC 6749 §5.2). */
  readonly status = 400

  constructor(code: ExchangeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ExchangeEndpointError'
    this.code = code
  }
}

/** The OAuth error response of a {@link ExchangeEndpointError} (RFC 6749 §5.2: JSON, not cached). */
export function exchangeErrorResponse(err: ExchangeEndpointError): Response {
  return Response.json({ error: err.code, error_description: err.message }, { status: err.status, headers: { 'cache-control': 'no-store' } })
}

/** Options of {@link tokenExchange}. */
export interface TokenExchangeOptions {
  /** The realm whose access tokens are exchanged. */
  readonly realm: KeycloakRealm | RealmOptions
  /**
   * What the subject token's `aud` — or `azp`, where Keycloak names the client — must name, e.g.
   * `'aauth-person-server'`: a token issued for another client is not exchanged here.
   */
  readonly audience: string | readonly string[]
  /** How realm claims become the person's record and permissions. Default: see {@link PersonMapping}. */
  readonly mapping?: PersonMapping
  /**
   * The agent's capability set; `undefined` for an agent that is not authorised. Default: the
   * PS's `organization.agents[sub].scopes`. A PS with neither cannot mount the extension: an
   * exchange without a capability set would hand an agent all of its person's permissions.
   */
  readonly capabilities?: (agent: AgentTokenClaims) => readonly string[] | undefined
  /** Which resources tokens may be issued for (server identifiers). Default: any. */
  readonly resources?: (resource: string) => boolean
  /** Where the endpoint is mounted. Default `/token-exchange`. */
  readonly path?: string
}

/** The verified parameters of an exchange request (RFC 8693 §2.1). */
interface ExchangeRequest {
  readonly subjectToken: string
  readonly resource: string
  /** Requested scope values; `undefined`: the whole intersection. */
  readonly scopes: readonly string[] | undefined
}

const invalid = (message: string): ExchangeEndpointError => new ExchangeEndpointError('invalid_request', message)

/** Parses the form body; any repeated parameter is refused (RFC 6749 §3.2). */
function formOf(raw: RawAgentRequest, contentType: string | null): URLSearchParams {
  if ((contentType ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    throw invalid('the body must be application/x-www-form-urlencoded')
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw.bytes)
  } catch {
    throw invalid('the body is not UTF-8')
  }
  const form = new URLSearchParams(text)
  const seen = new Set<string>()
  for (const name of form.keys()) {
    if (seen.has(name)) throw invalid(`the parameter ${name} is repeated`)
    seen.add(name)
  }
  return form
}

/** Reads and checks the request parameters (RFC 8693 §2.1), before any token is looked at. */
function readRequest(form: URLSearchParams, raw: RawAgentRequest, ctx: PsContext, resources: (resource: string) => boolean): ExchangeRequest {
  const param = (name: string): string | undefined => form.get(name) ?? undefined
  const required = (name: string): string => {
    const v = param(name)
    if (v === undefined || v === '') throw invalid(`${name} is required`)
    return v
  }
  const grantType = required('grant_type')
  if (grantType !== TOKEN_EXCHANGE_GRANT) throw new ExchangeEndpointError('unsupported_grant_type', `grant_type ${grantType} is not supported here; use ${TOKEN_EXCHANGE_GRANT}`)
  const subjectToken = required('subject_token')
  const subjectType = required('subject_token_type')
  if (subjectType !== TOKEN_TYPE_URN.accessToken && subjectType !== TOKEN_TYPE_URN.jwt) throw invalid(`subject_token_type must be ${TOKEN_TYPE_URN.accessToken} or ${TOKEN_TYPE_URN.jwt}`)
  // The actor is the signer; a separate actor token can only repeat it (RFC 8693 §2.1 actor_token).
  const actorToken = param('actor_token')
  const actorType = param('actor_token_type')
  if (actorToken === undefined && actorType !== undefined) throw invalid('actor_token_type is sent without actor_token')
  if (actorToken !== undefined) {
    if (actorType !== TOKEN_TYPE_URN.jwt) throw invalid(`actor_token_type must be ${TOKEN_TYPE_URN.jwt}`)
    if (actorToken !== raw.agentToken) throw invalid('actor_token is not the agent token that signed the request')
  }
  const requestedType = param('requested_token_type')
  if (requestedType !== undefined && requestedType !== TOKEN_TYPE_URN.jwt) throw invalid(`requested_token_type must be ${TOKEN_TYPE_URN.jwt} (an AAuth auth token)`)
  const audience = param('audience')
  const resourceParam = param('resource')
  if ((audience === undefined) === (resourceParam === undefined)) throw invalid('name the resource with exactly one of audience or resource')
  const resource = (audience ?? resourceParam)!
  if (!isServerIdentifier(resource, ctx.idOpts)) throw new ExchangeEndpointError('invalid_target', 'the audience or resource must be the HTTPS URL of a resource (a server identifier)')
  if (!resources(resource)) throw new ExchangeEndpointError('invalid_target', `this person server does not issue tokens for ${resource}`)
  const scope = param('scope')
  let scopes: string[] | undefined
  if (scope !== undefined) {
    scopes = scopeValues(scope)
    if (scopes.length === 0) throw invalid('scope is empty; leave it out to ask for everything allowed')
  }
  return { subjectToken, resource, scopes }
}

/** The subject token's `jti`, or (a provider that sends none) a digest of the token itself. */
function subjectJti(claims: JWTPayload, token: string): string {
  return typeof claims.jti === 'string' && claims.jti !== '' ? claims.jti : `sha256:${createHash('sha256').update(token).digest('base64url')}`
}

/** Verifies the subject token: a realm access token for this PS (RFC 8693 §2.1 subject_token). */
async function verifySubject(realm: KeycloakRealm, token: string, audience: string | readonly string[]): Promise<JWTPayload> {
  let claims: JWTPayload
  try {
    claims = await realm.verify(token, { audience, orAzp: true, typ: ['JWT', 'at+jwt'] })
  } catch (e) {
    if (e instanceof RealmTokenError) throw new ExchangeEndpointError('invalid_request', `subject_token: ${e.message}`, { cause: e })
    throw e
  }
  // Keycloak marks its tokens in the payload: `Bearer` (access), `ID`, `Refresh`, `Offline`…
  const kind = claims['typ']
  if (kind !== undefined && (typeof kind !== 'string' || kind.toLowerCase() !== 'bearer')) {
    throw new ExchangeEndpointError('invalid_request', `subject_token is a realm "${String(kind)}" token, not an access token`)
  }
  return claims
}

/** The organisation policy of this exchange: the capability set of this agent, the PS's consent mode. */
function exchangePolicy(ctx: PsContext, agent: AgentTokenClaims, capabilities: TokenExchangeOptions['capabilities']): OrganizationPolicy {
  const org = ctx.options.organization
  const caps = capabilities === undefined ? org?.agents[agent.sub]?.scopes : capabilities(agent)
  return { agents: caps === undefined ? {} : { [agent.sub]: { scopes: [...caps] } }, consent: org?.consent ?? 'preauthorised' }
}

/** What the audit event of an exchange says, whatever the outcome. */
interface ExchangeFacts {
  readonly realm: KeycloakRealm
  readonly claims: JWTPayload
  readonly subjectJti: string
  readonly person: PersonRecord
  readonly agent: AgentTokenClaims
  readonly resource: string
  readonly requested: readonly string[] | undefined
  readonly capabilities: readonly string[] | undefined
}

/** The `token_exchange` audit event, naming both principals: the person (subject) and the agent (actor). */
function exchangeEvent(ctx: PsContext, f: ExchangeFacts, outcome: { decision: 'grant' | 'deny' | 'ask'; reason: string; granted?: readonly string[]; jti?: string }): AuditEvent {
  const spiffeId = (f.agent as unknown as Record<string, unknown>)['spiffe_id']
  return {
    at: ctx.now(),
    type: TOKEN_EXCHANGE_EVENT,
    personId: f.person.id,
    agentSub: f.agent.sub,
    resource: f.resource,
    ...(outcome.granted === undefined ? {} : { scope: outcome.granted.join(' ') }),
    decision: outcome.decision,
    reason: outcome.reason,
    detail: {
      subject: { person_id: f.person.id, realm: f.realm.issuer, sub: f.claims.sub, username: f.person.username, token_jti: f.subjectJti, ...(typeof f.claims['azp'] === 'string' ? { azp: f.claims['azp'] } : {}) },
      actor: { sub: f.agent.sub, iss: f.agent.iss, jti: f.agent.jti, ...(typeof spiffeId === 'string' ? { spiffe_id: spiffeId } : {}) },
      requested_scopes: f.requested ?? null,
      granted_scopes: outcome.granted ?? [],
      permissions: f.person.permissions ?? [],
      capabilities: f.capabilities ?? null,
      ...(outcome.jti === undefined ? {} : { auth_token_jti: outcome.jti }),
    },
  }
}

/** Records a refusal in the audit trail (nothing else is written) and raises it. */
async function refuse(ctx: PsContext, f: ExchangeFacts, decision: 'deny' | 'ask', code: ExchangeErrorCode, reason: string): Promise<never> {
  await ctx.store.commit({ audit: [exchangeEvent(ctx, f, { decision, reason })] })
  throw new ExchangeEndpointError(code, reason)
}

/** The binding check of PS-05: an agent bound to someone else never gets another person's token. */
async function boundElsewhere(ctx: PsContext, agent: AgentTokenClaims, personId: string): Promise<boolean> {
  const binding = await ctx.store.getBinding(agent.iss, agent.sub)
  return binding !== undefined && binding.revokedAt === undefined && binding.personId !== personId
}

/** Decides a verified exchange and issues the auth token. */
async function settle(ctx: PsContext, raw: RawAgentRequest, realm: KeycloakRealm, claims: JWTPayload, req: ExchangeRequest, options: TokenExchangeOptions): Promise<Response> {
  const agent = raw.agent
  // A sub-agent's authority comes through its parent (main draft §Parent-Mediated Authorization).
  if (agent.parent_agent !== undefined) throw new ExchangeEndpointError('unauthorized_client', 'a sub-agent cannot exchange tokens; its parent requests on its behalf')
  let person: PersonRecord
  try {
    person = await upsertRealmPerson(ctx.store, realm.issuer, claims, options.mapping ?? {}, ctx.now())
  } catch (e) {
    if (e instanceof AAuthError) throw new ExchangeEndpointError('invalid_request', `subject_token: ${e.message}`, { cause: e })
    throw e
  }
  const policy = exchangePolicy(ctx, agent, options.capabilities)
  const facts: ExchangeFacts = { realm, claims, subjectJti: subjectJti(claims, req.subjectToken), person, agent, resource: req.resource, requested: req.scopes, capabilities: policy.agents[agent.sub]?.scopes }
  // One agent acts for one person (main draft §Agent-Person Binding, PS-05).
  if (await boundElsewhere(ctx, agent, person.id)) return refuse(ctx, facts, 'deny', 'unauthorized_client', `${agent.sub} acts for another person at this person server`)
  if (policy.agents[agent.sub] === undefined) return refuse(ctx, facts, 'deny', 'unauthorized_client', `${agent.sub} is not an agent the organisation has authorised`)
  const allowed = allowedScopes(policy, person, agent.sub) ?? new Set<string>()
  if (allowed.size === 0) return refuse(ctx, facts, 'deny', 'invalid_scope', `${person.username} and ${agent.sub} may do nothing together: no permission of the person is in the agent's capability set`)
  const scopes = req.scopes ?? [...allowed].sort()
  const request: PolicyRequest = { kind: 'auth_token', person, agent: { iss: agent.iss, sub: agent.sub }, resource: req.resource, scopes }
  const grants = await ctx.store.activeGrants(person.id, agent.iss, agent.sub, req.resource, ctx.now())
  // The organisation limits (outside the intersection), the hook, remembered grants, consent mode.
  const verdict = await decide(request, grants, policy, ctx.options.policy)
  if (verdict.decision === 'deny') return refuse(ctx, facts, 'deny', 'invalid_scope', verdict.reason)
  if (verdict.decision === 'ask') return refuse(ctx, facts, 'ask', 'interaction_required', `${person.username} must approve this access through the AAuth flow first; no token was issued`)
  const subjectExp = claims.exp!
  const sub = directedSubject(ctx.subjectSecret, person.id, req.resource)
  const work: AuthTokenWork = {
    kind: 'auth_token',
    agentIss: agent.iss,
    agentSub: agent.sub,
    cnfJwk: agent.cnf.jwk,
    agentExp: agent.exp,
    agentJti: agent.jti,
    resource: req.resource,
    sub,
    scope: scopes.join(' '),
    ...(person.tenant === undefined ? {} : { tenant: person.tenant }),
    // The auth token never outlives the realm token it was exchanged for.
    presentedJti: facts.subjectJti,
    presentedExp: subjectExp,
    rtIss: realm.issuer,
    rtJti: facts.subjectJti,
  }
  let minted: Awaited<ReturnType<typeof mint>>
  try {
    minted = await mint(ctx, work, person.id, verdict.reason ?? 'policy')
  } catch (e) {
    if (e instanceof ProblemError && e.code === 'expired') throw new ExchangeEndpointError('invalid_request', 'subject_token expired before the token could be issued', { cause: e })
    throw e
  }
  const event = exchangeEvent(ctx, facts, { decision: 'grant', reason: verdict.reason ?? 'policy', granted: scopes, jti: minted.issued.jti })
  await ctx.store.commit({ ...minted.batch, subjects: [{ personId: person.id, resource: req.resource, sub }], audit: [...(minted.batch.audit ?? []), event] })
  // A revocation records itself before its cascade lists the live tokens, so one that raced this
  // exchange is seen here (or the cascade saw the committed record): the token is withdrawn.
  if ((await ctx.store.isRevoked(agent.iss, agent.jti)) || (await boundElsewhere(ctx, agent, person.id))) {
    const reason = `${agent.sub} was revoked or bound elsewhere while the token was being issued`
    await ctx.store.commit({ revokeIssued: [{ jti: minted.issued.jti, at: ctx.now() }], audit: [exchangeEvent(ctx, facts, { decision: 'deny', reason })] })
    throw new ExchangeEndpointError('unauthorized_client', reason)
  }
  return Response.json(
    { access_token: minted.body.auth_token, issued_token_type: TOKEN_TYPE_URN.jwt, token_type: 'N_A', expires_in: minted.body.expires_in, scope: scopes.join(' ') },
    { headers: { 'cache-control': 'no-store', pragma: 'no-cache' } },
  )
}

/**
 * The token exchange endpoint as a Person Server extension (RFC 8693; scenario S2). Mount it with
 * `createPersonServer({ …, organization, extensions: [tokenExchange({ realm, audience })] })`; the
 * metadata gains `token_exchange_endpoint`.
 *
 * @example
 * ```ts
 * const ps = await createPersonServer({
 *   issuer, keys, store,
 *   organization: { agents: { 'aauth:summarizer-tech@agents.example': { scopes: ['finance', 'engineering'] } } },
 *   extensions: [tokenExchange({ realm: { issuer: 'https://sso.example/realms/demo' }, audience: 'aauth-person-server' })],
 * })
 * ```
 *
 * @throws {TypeError} when the realm options are invalid, the path does not start with `/`, or
 *   (when mounted) there is no capability set: neither `capabilities` nor an organisation policy.
 */
export function tokenExchange(options: TokenExchangeOptions): PersonServerExtension {
  const realm = options.realm instanceof KeycloakRealm ? options.realm : new KeycloakRealm(options.realm)
  const path = options.path ?? '/token-exchange'
  if (!path.startsWith('/')) throw new TypeError(`token exchange path "${path}" must start with /`)
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience]
  if (audiences.length === 0 || audiences.some((a) => a === '')) throw new TypeError('token exchange audience must name at least one client')
  const resources = options.resources ?? ((): boolean => true)
  return {
    id: 'token-exchange',
    metadata: (issuer) => ({ token_exchange_endpoint: `${issuer}${path}` }),
    mount(app: Hono, { ctx, agents, errorResponse }: ExtensionHelpers) {
      if (options.capabilities === undefined && ctx.options.organization === undefined) {
        throw new TypeError('tokenExchange needs a capability set: pass `capabilities` or run the person server with an `organization` policy')
      }
      app.post(path, async (c) => {
        try {
          // The actor first: an unsigned or badly signed request is answered as at every AAuth endpoint.
          const raw = await agents.authenticateRaw(c.req.raw)
          const req = readRequest(formOf(raw, c.req.header('content-type') ?? null), raw, ctx, resources)
          const claims = await verifySubject(realm, req.subjectToken, audiences)
          return await settle(ctx, raw, realm, claims, req, options)
        } catch (e) {
          if (e instanceof ExchangeEndpointError) return exchangeErrorResponse(e)
          return errorResponse(e)
        }
      })
    },
  }
}
