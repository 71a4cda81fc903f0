/**
 * The Express 5 adapter (`aauth-kit/express`): the same core behind `app.use(aauth(resource))`.
 *
 * ```ts
 * const resource = createResource({ issuer: 'https://api.example' })
 * app.use(aauth(resource))                            // agent identity on every route
 * app.get('/whoami', (req, res) => res.json({ agent: req.aauth?.agent?.id }))
 * ```
 *
 * The request is rebuilt from `req.rawHeaders` (field order and repeated fields as received) and
 * `req.originalUrl`. The raw body is needed for `Content-Digest`:
 *
 * - registered **before** any body parser, the middleware reads the body itself and leaves
 *   `req.body` parsed (JSON, text) or raw (a Buffer), marked so later parsers do not read again;
 * - registered **after** a parser, it uses the raw bytes the parser kept with
 *   `express.json({ verify: keepRawBody })` (or `express.raw()`); a parsed body without them is
 *   refused with a clear `500`, never verified against a re-serialization.
 *
 * R3 per-call approval (draft-hardt-aauth-r3 §Per-Call Proposals) uses the `401` delivery only:
 * holding a call and re-dispatching it through an Express app later is impractical (the request
 * stream and the router state are gone), so the agent retries the call with its per-call auth
 * token; the resource checks the parameters against the approved ones, runs the handler once,
 * and retains the response (captured from `res.write`/`res.end`) for repeated presentations.
 *
 * @module
 */

import type { NextFunction, Request as ExpressRequest, RequestHandler, Response as ExpressResponse } from 'express'
import type { ResourceAccess, RouteRequirement } from './access.js'
import type { Resource } from './core.js'

declare module 'express-serve-static-core' {
  interface Request {
    /** The verified AAuth access of this request (set by `aauth()` from `aauth-kit/express`). */
    aauth?: ResourceAccess
  }
}

/** A fixed requirement, or one chosen per request. */
export type ExpressRequirement = RouteRequirement | ((req: ExpressRequest) => RouteRequirement)

type WithRaw = ExpressRequest & { rawBody?: Buffer; _body?: boolean }

/**
 * Body-parser `verify` hook that keeps the raw bytes for signature checks:
 * `app.use(express.json({ verify: keepRawBody }))`.
 */
export function keepRawBody(req: unknown, _res: unknown, buf: Buffer): void {
  ;(req as WithRaw).rawBody = Buffer.from(buf)
}

function readAll(req: ExpressRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** The raw body: from a parser that kept it, or read here; `undefined` when it is gone. */
async function rawBody(req: WithRaw): Promise<Buffer | undefined> {
  if (req.rawBody !== undefined) return req.rawBody
  if (Buffer.isBuffer(req.body)) return req.body
  if (req._body === true || req.readableEnded) {
    // body-parser 1 marks req._body; body-parser 2 (Express 5) leaves only an ended stream.
    const declared = Number(req.headers['content-length'] ?? '0') > 0 || req.headers['transfer-encoding'] !== undefined
    return req._body === true || declared ? undefined : Buffer.alloc(0)
  }
  const buf = await readAll(req)
  req.rawBody = buf
  // Later parsers see the body as read; the handler gets it parsed as they would.
  req._body = true
  const type = req.headers['content-type'] ?? ''
  if (buf.byteLength > 0) {
    if (/json/i.test(type)) {
      try {
        req.body = JSON.parse(buf.toString('utf8'))
      } catch {
        req.body = buf
      }
    } else req.body = /^text\//i.test(type) ? buf.toString('utf8') : buf
  }
  return buf
}

function fetchRequest(req: ExpressRequest): Request {
  const headers = new Headers()
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  return new Request(`${req.protocol}://${req.get('host') ?? 'localhost'}${req.originalUrl}`, { method: req.method, headers })
}

async function send(res: ExpressResponse, response: Response): Promise<void> {
  res.status(response.status)
  response.headers.forEach((value, name) => res.setHeader(name, value))
  res.end(Buffer.from(await response.arrayBuffer()))
}

const AGENT: RouteRequirement = { access: 'agent' }

/** Passes the response the handler writes to `retain` once it is sent (R3-11). */
function retainResponse(res: ExpressResponse, retain: (response: Response) => Promise<void>): void {
  const chunks: Buffer[] = []
  const keep = (chunk: unknown, encoding: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return
    chunks.push(Buffer.isBuffer(chunk) ? chunk : typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : Buffer.from(chunk as Uint8Array))
  }
  const write = res.write.bind(res) as (...args: unknown[]) => boolean
  const end = res.end.bind(res) as (...args: unknown[]) => ExpressResponse
  res.write = ((...args: unknown[]) => {
    keep(args[0], args[1])
    return write(...args)
  }) as typeof res.write
  res.end = ((...args: unknown[]) => {
    keep(args[0], args[1])
    return end(...args)
  }) as typeof res.end
  res.once('finish', () => {
    const headers = new Headers()
    for (const [name, value] of Object.entries(res.getHeaders())) {
      if (value === undefined) continue
      for (const v of Array.isArray(value) ? value : [String(value)]) headers.append(name, v)
    }
    const status = res.statusCode
    const body = status === 204 || status === 304 ? null : (new Uint8Array(Buffer.concat(chunks)) as BufferSource)
    void retain(new Response(body, { status, headers })).catch(() => undefined)
  })
}

/**
 * The AAuth middleware for Express 5.
 *
 * @param requirement - what the routes behind it need. Default: agent identity.
 */
export function aauth(resource: Resource, requirement: ExpressRequirement = AGENT): RequestHandler {
  return (req: ExpressRequest, res: ExpressResponse, next: NextFunction) => {
    void (async () => {
      const body = await rawBody(req as WithRaw)
      if (body === undefined) {
        res.status(500).json({ error: 'server_error', detail: 'the request body was parsed before aauth() without keeping the raw bytes: register aauth() first, or the parser with { verify: keepRawBody }' })
        return
      }
      const request = fetchRequest(req)
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
      const own = await resource.serve(request, bytes)
      if (own !== undefined) return send(res, own)
      const decision = await resource.authenticate(request, typeof requirement === 'function' ? requirement(req) : requirement, bytes)
      if (!decision.ok) return send(res, decision.response)
      req.aauth = decision.access
      decision.headers.forEach((value, name) => res.setHeader(name, value))
      if (decision.retain !== undefined) retainResponse(res, decision.retain)
      next()
    })().catch(next)
  }
}
