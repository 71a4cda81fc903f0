/**
 * The Person Server as a Hono app (main draft §Person Server; design.md): metadata and JWKS, the
 * person and auth token endpoints, pending URLs, the permission, audit and interaction endpoints,
 * the revocation endpoint, and the person's web pages (login, consent, dashboard).
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { Hono } from 'hono'
import { ProblemError, problemResponse, SignatureError, signatureErrorResponse, type PersonServerMetadata } from '../protocol/index.js'
import { createAgentAuthenticator, type AgentRequest } from './agent-requests.js'
import type { ConsentService } from './consent.js'
import { createConsentService } from './consent-service.js'
import { createContext, type PersonServerOptions, type PsContext } from './context.js'
import { auditEndpoint, interactionEndpoint, permissionEndpoint } from './governance.js'
import { createMissionService, missionEndpoint, missionProposalEndpoint, type MissionService } from './missions.js'
import { agentsPending, answerPending, cancelPending, clarificationResponse, isOpen, notFound, pollPending } from './pending.js'
import { createRevocationCascade, createRevocationEndpoint } from './revocation.js'
import { authTokenEndpoint, personTokenEndpoint, updatedRequest } from './token-endpoints.js'
import { createPersonWeb } from './web/index.js'
import { OPEN_PENDING_STATES } from './store/types.js'

/** A running Person Server. */
export interface PersonServer {
  /** The Hono app: mount it or pass `app.fetch` to a server. */
  readonly app: Hono
  readonly metadata: PersonServerMetadata
  /** What the web pages use; also handy for operators' tooling. */
  readonly consent: ConsentService
  /** The person's missions (list, read, revoke), as the `/account/missions` pages use them. */
  readonly missions: MissionService
  readonly context: PsContext
  /** Revokes an agent's binding and every token it holds, as if its person had (operators, tests). */
  revokeAgent(personId: string, agentIss: string, agentSub: string): ReturnType<ConsentService['revokeAgent']>
  /** Stops the background purge (the store is the caller's to close). */
  close(): void
}

/** Maps a failure to its response; anything unexpected is a `500 server_error` with no detail. */
export function errorResponse(err: unknown): Response {
  if (err instanceof SignatureError) return signatureErrorResponse(err)
  if (err instanceof ProblemError) {
    const { body, headers } = err as ProblemError & { body?: Record<string, unknown>; headers?: Record<string, string> }
    return problemResponse(err, { ...(body === undefined ? {} : { body }), ...(headers === undefined ? {} : { headers }) })
  }
  console.error('person server: unexpected error', err)
  return problemResponse(new ProblemError('server_error', 'internal error'))
}

/**
 * Creates a Person Server.
 *
 * @example
 * ```ts
 * const store = await SqliteStore.open({ filename: 'ps.sqlite' })
 * const ps = await createPersonServer({ issuer: 'https://ps.example', keys: await KeyRing.create(), store })
 * serve({ fetch: ps.app.fetch, port: 443 })
 * ```
 */
export async function createPersonServer(options: PersonServerOptions): Promise<PersonServer> {
  const ctx = await createContext(options)
  const auth = createAgentAuthenticator(ctx)
  const cascade = createRevocationCascade({
    issuer: ctx.issuer,
    keys: ctx.keys,
    store: ctx.store,
    egress: ctx.egress,
    now: ctx.now,
    allowInsecureLoopback: ctx.idOpts.allowInsecureLoopback === true,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  })
  const revocation = createRevocationEndpoint({
    issuer: ctx.issuer,
    keys: ctx.keys,
    store: ctx.store,
    egress: ctx.egress,
    now: ctx.now,
    allowInsecureLoopback: ctx.idOpts.allowInsecureLoopback === true,
    jwks: ctx.jwks,
    cascade,
    onAgentRevoked: async (iss: string, sub: string) => {
      // Requests the revoked agent left waiting end as `revoked` (main draft §Polling Error Codes).
      const binding = await ctx.store.getBinding(iss, sub)
      if (binding === undefined) return
      const now = ctx.now()
      for (const p of await ctx.store.openPending(binding.personId)) {
        if (p.agentIss !== iss || p.agentSub !== sub) continue
        const result = { status: 403, body: { error: 'revoked', detail: "the agent provider revoked the agent's token" } }
        await ctx.store.commit({ pending: { id: p.id, from: OPEN_PENDING_STATES, patch: { state: 'revoked', result, code: null, updatedAt: now } } })
        ctx.changes.changed(p.id)
      }
    },
    onPendingRevoked: (p: { id: string }) => ctx.changes.changed(p.id),
    onError: (err: unknown) => console.error('person server: revocation failed', err),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  })
  const consent = createConsentService(ctx, cascade)
  const missions = createMissionService(ctx, cascade)
  // Records past their expiry (plus clock skew) go: pending requests, issued-token and agent-token
  // records, revocations (main draft §Revocation Cascade "Records": MAY be discarded after exp).
  const purgeEveryMs = options.purgeIntervalSec === undefined ? 10 * 60_000 : options.purgeIntervalSec * 1000
  const purger = purgeEveryMs > 0 ? setInterval(() => void ctx.store.purge(ctx.now(), 5 * 60_000).catch((e: unknown) => console.error('person server: purge failed', e)), purgeEveryMs) : undefined
  purger?.unref()
  const sessionSecret = options.sessionSecret ?? (await ctx.store.setting('session_secret', randomBytes(32).toString('base64url')))

  const app = new Hono()
  app.get('/.well-known/aauth-person.json', (c) => c.json(ctx.metadata, 200, { 'cache-control': 'max-age=300' }))
  app.get('/.well-known/jwks.json', (c) => c.json(ctx.keys.jwks(), 200, { 'cache-control': 'max-age=300' }))

  const agentRoute = (handler: (ctx: PsContext, req: AgentRequest) => Promise<Response>) => async (c: { req: { raw: Request } }) => {
    try {
      return await handler(ctx, await auth.authenticate(c.req.raw))
    } catch (e) {
      return errorResponse(e)
    }
  }
  app.post('/person', agentRoute(personTokenEndpoint))
  app.post('/token', agentRoute(authTokenEndpoint))
  app.post('/permission', agentRoute(permissionEndpoint))
  app.post('/audit', agentRoute(auditEndpoint))
  app.post('/relay', agentRoute(interactionEndpoint))
  app.post('/mission', agentRoute(missionProposalEndpoint))
  // The agent is authenticated before anything about the mission is looked at (§Mission Endpoint Errors).
  app.post('/mission/:s256', async (c) => {
    try {
      return await missionEndpoint(ctx, await auth.authenticate(c.req.raw), c.req.param('s256'))
    } catch (e) {
      return errorResponse(e)
    }
  })
  app.on(['GET', 'POST', 'DELETE'], '/pending/:id', async (c) => {
    try {
      const req = await auth.authenticate(c.req.raw)
      const rec = await agentsPending(ctx, c.req.param('id'), req.agent)
      if (rec === undefined) return notFound()
      // A request that has ended answers every method with its terminal response (410 once withdrawn).
      if (!isOpen(rec)) return answerPending(ctx, rec)
      if (c.req.method === 'GET') return await pollPending(ctx, rec, c.req.header('prefer') ?? null)
      if (c.req.method === 'DELETE') return await cancelPending(ctx, rec)
      const action = req.body['action']
      if (action === 'clarification_response') return await clarificationResponse(ctx, rec, req.body)
      if (action === 'updated_request') return await updatedRequest(ctx, rec, req)
      throw new ProblemError('invalid_request', 'action must be clarification_response or updated_request')
    } catch (e) {
      return errorResponse(e)
    }
  })
  for (const extension of options.extensions ?? []) extension.mount(app, { ctx, agents: auth, errorResponse })
  app.post('/revoke', (c) => revocation.handle(c.req.raw))
  app.get('/revoke/pending/:id', (c) => revocation.poll(c.req.raw, c.req.param('id')))
  app.route(
    '/',
    createPersonWeb({
      consent,
      missions,
      store: ctx.store,
      secret: sessionSecret,
      secureCookies: options.allowInsecureLoopback !== true,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.loginMethods === undefined ? {} : { loginMethods: options.loginMethods }),
      now: ctx.now,
    }),
  )
  return {
    app,
    metadata: ctx.metadata,
    consent,
    missions,
    context: ctx,
    revokeAgent: (personId, agentIss, agentSub) => consent.revokeAgent(personId, agentIss, agentSub),
    close: () => clearInterval(purger),
  }
}
