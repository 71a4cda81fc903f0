/**
 * The Hono adapter (`aauth-kit/hono`): one middleware line gives a Hono app AAuth access control.
 *
 * ```ts
 * const resource = createResource({ issuer: 'https://api.example' })
 * app.use('*', aauth(resource))                       // agent identity on every route
 * app.get('/whoami', (c) => c.json({ agent: c.get('aauth').agent?.id }))
 * ```
 *
 * The middleware serves the resource's own endpoints (metadata, JWKS, revocation, authorization),
 * verifies every other request against its requirement, and puts the verified
 * {@link ResourceAccess} at `c.get('aauth')`. The body stays readable by the handler
 * (`c.req.json()` and friends reuse Hono's body cache).
 *
 * R3 per-call approval (draft-hardt-aauth-r3 §Per-Call Proposals): given the app
 * (`aauth(resource, requirement, { app })`), the middleware holds a call that needs the person's
 * approval and answers `202` with a pending URL; the poll that presents the per-call auth token
 * re-dispatches the held request through `app.fetch`, marked as already authorised (the mark is
 * the Request object itself, which nothing outside this module can produce), and the response is
 * retained for repeated presentations. Without `app`, per-call challenges are `401`s the agent
 * retries; the handler's response is then retained from `c.res`.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from 'hono'
import type { ResourceAccess, RouteRequirement } from './access.js'
import type { Resource } from './core.js'

/** Hono environment of routes behind {@link aauth}: `c.get('aauth')` is typed. */
export interface AAuthEnv {
  Variables: { aauth: ResourceAccess }
}

/** A fixed requirement, or one chosen per request (by path, method, …). */
export type RequirementFor<C> = RouteRequirement | ((c: C) => RouteRequirement)

const AGENT: RouteRequirement = { access: 'agent' }

/** Options of {@link aauth}. */
export interface AAuthHonoOptions {
  /** The app the middleware is mounted on: lets it hold per-call invocations and run them once approved. */
  readonly app?: { fetch(request: Request, env?: unknown): Response | Promise<Response> }
}

/** Held invocations being run through the app, with the access they run under. */
const replays = new WeakMap<Request, ResourceAccess>()

/**
 * The AAuth middleware for Hono.
 *
 * @param requirement - what the routes behind it need. Default: agent identity.
 */
export function aauth(resource: Resource, requirement: RequirementFor<Context> = AGENT, options: AAuthHonoOptions = {}): MiddlewareHandler<AAuthEnv> {
  const app = options.app
  return async (c, next) => {
    const raw = c.req.raw
    const replay = replays.get(raw)
    if (replay !== undefined) {
      // A held call approved at its pending URL: authorised there, run once here.
      replays.delete(raw)
      c.set('aauth', replay)
      await next()
      return undefined
    }
    // A GET/HEAD without Content-Length or Transfer-Encoding has no body: not touching `raw.body`
    // spares @hono/node-server building a full Fetch Request.
    const bodiless = (raw.method === 'GET' || raw.method === 'HEAD') && !raw.headers.has('content-length') && !raw.headers.has('transfer-encoding')
    const body = bodiless || raw.body === null ? undefined : new Uint8Array(await c.req.arrayBuffer())
    const own = await resource.serve(raw, body)
    if (own !== undefined) return own
    if (app !== undefined) {
      const held = await resource.resume(raw, body)
      if (held?.kind === 'response') return held.response
      if (held?.kind === 'execute') {
        replays.set(held.request, held.access)
        const res = await app.fetch(held.request, c.env)
        await held.retain(res.clone())
        return res
      }
    }
    const decision = await resource.authenticate(raw, typeof requirement === 'function' ? requirement(c) : requirement, body ?? new Uint8Array(), { hold: app !== undefined })
    if (!decision.ok) return decision.response
    c.set('aauth', decision.access)
    await next()
    decision.headers.forEach((value, name) => c.res.headers.set(name, value))
    // R3-11: a per-call grant's response is kept for repeated presentations of its token.
    if (decision.retain !== undefined) await decision.retain(c.res.clone())
    return undefined
  }
}
