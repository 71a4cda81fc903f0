/**
 * Fixture of the adapter table (adapters.test.ts): the same resource behind the Hono and the
 * Express adapter, served on 127.0.0.1, with issuers (agent provider, person servers, access
 * server) that publish real metadata and JWKS on loopback, token minting, and a signed sender.
 *
 * Everything goes over real HTTP: the resource fetches the issuers' JWKS through its egress
 * fetcher, and the tests fetch the resource's JWKS to verify the resource tokens it issues.
 */
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT } from 'jose'
import { createPrivateKey } from 'node:crypto'
import { KeyRing } from '../../src/agent/index.js'
import { aauth as expressAauth, keepRawBody } from '../../src/resource/express.js'
import { aauth as honoAauth, type AAuthEnv } from '../../src/resource/hono.js'
import { createResource, type Resource, type ResourceAccess, type ResourceOptions, type RouteRequirement } from '../../src/resource/index.js'
import {
  createAgentToken,
  createAuthToken,
  createPersonToken,
  createSigner,
  generateKeyPair,
  jwkThumbprint,
  signRequest,
  type IssuerKey,
  type PublicJwk,
  type SignatureKeyMember,
  type Signer,
} from '../../src/protocol/index.js'
import { LOOPBACK, serve } from '../helpers/aauth-servers.js'

export type AdapterKind = 'hono' | 'express'

/** Where the Express app registers `express.json()` relative to `aauth()`. */
export type ExpressBodyParser = 'after' | 'before-keep-raw' | 'before-plain'

/** What the route handler saw, one entry per run. */
export interface HandlerRun {
  readonly method: string
  readonly path: string
  readonly access: ResourceAccess | undefined
  /** The body as the handler reads it (`c.req.json()` / `req.body`). */
  readonly body: unknown
}

/** A running app: the resource behind one adapter. */
export interface App {
  readonly kind: AdapterKind
  /** `http://127.0.0.1:PORT`, the resource's `issuer`. */
  readonly origin: string
  readonly resource: Resource
  /** Every run of the route handler (the handler never runs for a refusal). */
  readonly runs: HandlerRun[]
  close(): Promise<void>
}

export interface AppSpec {
  /** Requirement by path; any other path needs agent identity. */
  readonly routes?: Record<string, RouteRequirement>
  /** Resource options beyond `issuer` (which is the app's origin). */
  readonly options?: (origin: string) => Omit<ResourceOptions, 'issuer'>
  /** Express only. Default `after`. */
  readonly bodyParser?: ExpressBodyParser
}

const AGENT: RouteRequirement = { access: 'agent' }

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * Starts `kind`'s app. The server listens first (the resource's `issuer` is its origin); the
 * middleware and the handler are registered before the first request.
 */
export async function startApp(kind: AdapterKind, spec: AppSpec = {}): Promise<App> {
  const routes = spec.routes ?? {}
  const requirementFor = (path: string): RouteRequirement => routes[path] ?? AGENT
  const runs: HandlerRun[] = []
  let server: Server
  let origin: string
  let resource: Resource
  if (kind === 'hono') {
    const app = new Hono<AAuthEnv>()
    server = createAdaptorServer({ fetch: (req: Request) => app.fetch(req) }) as Server
    origin = await listen(server)
    resource = createResource({ issuer: origin, ...LOOPBACK, ...spec.options?.(origin) })
    app.use('*', honoAauth(resource, (c) => requirementFor(c.req.path)))
    app.all('*', async (c) => {
      const body = /json/.test(c.req.header('content-type') ?? '') ? await c.req.json() : undefined
      const access = c.get('aauth')
      runs.push({ method: c.req.method, path: c.req.path, access, body })
      return c.json(summary(access, body))
    })
  } else {
    const app = express()
    server = app.listen(0, '127.0.0.1')
    await new Promise<void>((r) => server.once('listening', () => r()))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    resource = createResource({ issuer: origin, ...LOOPBACK, ...spec.options?.(origin) })
    const parser = spec.bodyParser ?? 'after'
    if (parser === 'before-keep-raw') app.use(express.json({ verify: keepRawBody }))
    if (parser === 'before-plain') app.use(express.json())
    app.use(expressAauth(resource, (req) => requirementFor(req.path)))
    if (parser === 'after') app.use(express.json())
    app.use((req: express.Request, res: express.Response) => {
      const body: unknown = req.body
      runs.push({ method: req.method, path: req.path, access: req.aauth, body })
      res.json(summary(req.aauth, body))
    })
  }
  return {
    kind,
    origin,
    resource,
    runs,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

function summary(access: ResourceAccess | undefined, body: unknown): Record<string, unknown> {
  return {
    ok: true,
    mode: access?.mode,
    agent: access?.agent?.id,
    person: access?.person,
    scopes: [...(access?.scopes ?? [])],
    token: access?.token.type,
    session: access?.session?.data,
    body,
  }
}

/** An issuer on loopback publishing `{origin}/.well-known/{dwk}` and its JWKS. */
export interface LoopIssuer {
  readonly issuer: string
  readonly dwk: string
  readonly key: IssuerKey
  readonly publicJwk: PublicJwk
}

export async function loopIssuer(dwk: string, extra: Record<string, unknown> = {}): Promise<LoopIssuer> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const kid = await jwkThumbprint(publicJwk)
  const issuer = await serve((req, origin) => {
    const path = new URL(req.url).pathname
    if (path === `/.well-known/${dwk}`) return Response.json({ issuer: origin, jwks_uri: `${origin}/.well-known/jwks.json`, ...extra })
    if (path === '/.well-known/jwks.json') return Response.json({ keys: [{ ...publicJwk, kid }] })
    return new Response('not found', { status: 404 })
  })
  return { issuer, dwk, key: { kid, privateJwk }, publicJwk: { ...publicJwk, kid } }
}

/** An agent: its key, thumbprint and an agent token from `ap`. */
export interface Agent {
  readonly id: string
  readonly signer: Signer
  readonly publicJwk: PublicJwk
  readonly jkt: string
  readonly token: string
}

export async function makeAgent(ap: LoopIssuer, o: { local?: string; ps?: string; now?: () => number } = {}): Promise<Agent> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const id = `aauth:${o.local ?? 'bot'}@${new URL(ap.issuer).host}`
  const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: id, cnfJwk: publicJwk, ...(o.ps === undefined ? {} : { ps: o.ps }), ...(o.now === undefined ? {} : { now: o.now }), ...LOOPBACK })
  return { id, signer: await createSigner(privateJwk), publicJwk, jkt: await jwkThumbprint(publicJwk), token }
}

export interface PersonTokenInput {
  readonly sub?: string
  readonly mission?: string
  readonly now?: () => number
  readonly cnfJwk?: PublicJwk
}

export function personToken(ps: LoopIssuer, aud: string, agent: Agent, o: PersonTokenInput = {}): Promise<string> {
  return createPersonToken({
    key: ps.key,
    issuer: ps.issuer,
    aud,
    sub: o.sub ?? 'user-1',
    cnfJwk: o.cnfJwk ?? agent.publicJwk,
    ...(o.mission === undefined ? {} : { missionS256: o.mission }),
    ...(o.now === undefined ? {} : { now: o.now }),
    ...LOOPBACK,
  })
}

export interface AuthTokenInput extends PersonTokenInput {
  readonly scope?: string
  /** The PS the person belongs to; default `issuer` (three-party). */
  readonly ps?: string
  /** Further claims (e.g. R3's `r3_uri`, `r3_s256`, `r3_granted`). */
  readonly extra?: Record<string, unknown>
  /** Lifetime in seconds. */
  readonly lifetimeSec?: number
}

/** An auth token from a PS (three-party) or an AS (four-party, `ps` set). */
export function authToken(issuer: LoopIssuer, aud: string, agent: Agent, o: AuthTokenInput = {}): Promise<string> {
  const role = issuer.dwk === 'aauth-access.json' ? 'access' : 'person'
  return createAuthToken({
    key: issuer.key,
    issuer: issuer.issuer,
    issuerRole: role,
    aud,
    ps: o.ps ?? issuer.issuer,
    sub: o.sub ?? 'user-1',
    cnfJwk: o.cnfJwk ?? agent.publicJwk,
    ...(o.scope === undefined ? {} : { scope: o.scope }),
    ...(o.mission === undefined ? {} : { missionS256: o.mission }),
    ...(o.now === undefined ? {} : { now: o.now }),
    ...(o.extra === undefined ? {} : { extraClaims: o.extra }),
    ...(o.lifetimeSec === undefined ? {} : { lifetimeSec: o.lifetimeSec }),
    ...LOOPBACK,
  })
}

/** A token with any claims and header, signed by `issuer`'s key (for what no creator allows). */
export function forgeToken(issuer: LoopIssuer, typ: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ typ, alg: 'Ed25519', kid: issuer.key.kid })
    .sign(createPrivateKey({ key: issuer.key.privateJwk as never, format: 'jwk' }))
}

export interface SendOptions {
  readonly method?: string
  /** A JSON body: serialized and sent with `content-type: application/json`. */
  readonly json?: unknown
  /** Raw body bytes sent instead of what was signed (tampering). */
  readonly sendBody?: string
  readonly headers?: Record<string, string>
  /** The URL the signature is computed for, when not the one the request goes to (a proxy). */
  readonly signUrl?: string
  /** `Signature-Key` member; default the `jwt` scheme with the sender's token. */
  readonly signatureKey?: SignatureKeyMember
  /** The signature's clock (`created`); default: see {@link distinctCreated}. */
  readonly now?: () => number
  /** Sign without the body (so `content-digest` is not covered), then send it anyway. */
  readonly unsignedBody?: boolean
  /** Headers added after signing (so not covered). */
  readonly unsignedHeaders?: Record<string, string>
}

/** What was sent: the exact headers and body, to send again. */
export interface Sent {
  readonly res: Response
  readonly url: string
  readonly method: string
  readonly headers: Headers
  readonly body: Uint8Array | undefined
}

/** `created` values used, by signer and `(method, authority, path)`. */
const used = new WeakMap<Signer, Map<string, Set<number>>>()

/**
 * The `created` for a request: the current second, or the latest earlier one this signer has not
 * used for the same `(method, authority, path)`. The resources keep a replay cache keyed by
 * `(jkt, created, method, authority, path)` (main draft §Freshness and Replay), so a case that
 * sends twice to one path within a second tests the resource, not the clock.
 */
function distinctCreated(signer: Signer, method: string, url: URL, given?: () => number): number {
  let bySigner = used.get(signer)
  if (bySigner === undefined) used.set(signer, (bySigner = new Map()))
  const key = `${method} ${url.host}${url.pathname}`
  let seen = bySigner.get(key)
  if (seen === undefined) bySigner.set(key, (seen = new Set()))
  // A clock the case gives is taken as is (and remembered, so later requests avoid it).
  let created = Math.floor((given ?? Date.now)() / 1000)
  if (given === undefined) while (seen.has(created)) created--
  seen.add(created)
  return created
}

/** Who signs: a key, and the token its `jwt` member presents. */
export interface Sender {
  readonly signer: Signer
  readonly token?: string
}

/** Signs (unless `who` is undefined) and sends. */
export async function send(url: string, who: Sender | undefined, o: SendOptions = {}): Promise<Sent> {
  const method = o.method ?? (o.json === undefined ? 'GET' : 'POST')
  const headers = new Headers(o.headers)
  const body = o.json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(o.json))
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json')
  let sendHeaders = headers
  if (who !== undefined) {
    const signUrl = new URL(o.signUrl ?? url)
    const created = distinctCreated(who.signer, method, signUrl, o.now) * 1000
    const signed = await signRequest(
      { method, url: signUrl, headers },
      {
        signer: who.signer,
        signatureKey: o.signatureKey ?? { scheme: 'jwt', jwt: who.token!, cache: false },
        ...(body === undefined || o.unsignedBody === true ? {} : { body }),
        now: () => created,
      },
    )
    sendHeaders = signed.headers
  }
  for (const [k, v] of Object.entries(o.unsignedHeaders ?? {})) sendHeaders.set(k, v)
  const wire = o.sendBody === undefined ? body : new TextEncoder().encode(o.sendBody)
  const res = await fetch(url, { method, headers: sendHeaders, ...(wire === undefined ? {} : { body: wire as BufferSource }) })
  return { res, url, method, headers: sendHeaders, body: wire }
}

/** Sends exactly what was sent before (a replay), to `url` (default the same URL). */
export function resend(s: Sent, url = s.url): Promise<Response> {
  return fetch(url, { method: s.method, headers: s.headers, ...(s.body === undefined ? {} : { body: s.body as BufferSource }) })
}

/** A resource's signing keys (resource tokens, JWKS). */
export const resourceKeys = (): Promise<KeyRing> => KeyRing.create()
