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

/**
 * The AAuth middleware for Hono.
 *
 * @param requirement - what the routes behind it need. Default: agent identity.
 */
export function aauth(resource: Resource, requirement: RequirementFor<Context> = AGENT): MiddlewareHandler<AAuthEnv> {
  return async (c, next) => {
    const raw = c.req.raw
    // A GET/HEAD without Content-Length or Transfer-Encoding has no body: not touching `raw.body`
    // spares @hono/node-server building a full Fetch Request.
    const bodiless = (raw.method === 'GET' || raw.method === 'HEAD') && !raw.headers.has('content-length') && !raw.headers.has('transfer-encoding')
    const body = bodiless || raw.body === null ? undefined : new Uint8Array(await c.req.arrayBuffer())
    const own = await resource.serve(raw, body)
    if (own !== undefined) return own
    const decision = await resource.authenticate(raw, typeof requirement === 'function' ? requirement(c) : requirement, body ?? new Uint8Array())
    if (!decision.ok) return decision.response
    c.set('aauth', decision.access)
    await next()
    decision.headers.forEach((value, name) => c.res.headers.set(name, value))
    return undefined
  }
}
