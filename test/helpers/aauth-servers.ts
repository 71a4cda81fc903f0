/**
 * Real AAuth parties on 127.0.0.1 for the agent client's tests: an agent provider, a small Person
 * Server and a small resource. They are test servers (the product's resource middleware and
 * Person Server come with their own issues), but everything they do is real: HTTP on loopback,
 * signed requests verified with the protocol library, tokens signed and verified with jose, JWKS
 * fetched through the egress fetcher.
 */
import { createAdaptorServer } from '@hono/node-server'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAgentProvider, KeyRing, type AgentProvider } from '../../src/agent/index.js'
import {
  createAuthToken,
  createEgressFetcher,
  createPersonToken,
  createRequestVerifier,
  createResourceToken,
  decodeJwt,
  generateInteractionCode,
  generateKeyPair,
  jwkThumbprint,
  JwksCache,
  parseAAuthAuthorization,
  pendingResponse,
  PER_CALL,
  problemResponse,
  ProblemError,
  r3Digest,
  sendServerSigned,
  X_AAUTH_ACCESS_MODE,
  serializeRequirement,
  SignatureError,
  signatureErrorResponse,
  type AAuthContext,
  type EndpointErrorCode,
  type IssuerKey,
  type PublicJwk,
  type RequestVerifier,
} from '../../src/protocol/index.js'

export const LOOPBACK = { allowInsecureLoopback: true } as const

const open: Server[] = []

/** Closes every server started by this module. */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))))
}

/** Serves `handler` on 127.0.0.1:0; the origin is known before the first request arrives. */
export async function serve(handler: (req: Request, origin: string) => Response | Promise<Response>): Promise<string> {
  let origin = ''
  const server = createAdaptorServer({ fetch: (req: Request) => handler(req, origin) }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  open.push(server)
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return origin
}

export const loopbackJwks = (): JwksCache => new JwksCache({ fetcher: createEgressFetcher(LOOPBACK), ...LOOPBACK })

async function issuerKey(): Promise<{ key: IssuerKey; publicJwk: PublicJwk }> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const kid = await jwkThumbprint(publicJwk)
  return { key: { kid, privateJwk }, publicJwk: { ...publicJwk, kid } }
}

function wellKnown(url: URL, origin: string, dwk: string, publicJwk: PublicJwk, extra: Record<string, unknown>): Response | undefined {
  if (url.pathname === `/.well-known/${dwk}`) return Response.json({ issuer: origin, jwks_uri: `${origin}/.well-known/jwks.json`, ...extra })
  if (url.pathname === '/.well-known/jwks.json') return Response.json({ keys: [publicJwk] })
  return undefined
}

async function verified(verifier: RequestVerifier, req: Request): Promise<{ ctx: AAuthContext; thumbprint: string; body: Uint8Array }> {
  const body = new Uint8Array(await req.clone().arrayBuffer())
  const v = await verifier.verify(req, body)
  return { ctx: v.key.context, thumbprint: v.key.thumbprint, body }
}

function asResponse(e: unknown): Response {
  if (e instanceof SignatureError) return signatureErrorResponse(e)
  if (e instanceof ProblemError) return problemResponse(e)
  throw e
}

/** A real agent provider issuing tokens that name `ps`. */
export async function startAgentProvider(): Promise<{ ap: AgentProvider; issuer: string }> {
  let ap: AgentProvider | undefined
  const issuer = await serve((req) => ap!.app.fetch(req))
  ap = createAgentProvider({ issuer, keys: await KeyRing.create(), name: 'Test Agents', ...LOOPBACK })
  return { ap, issuer }
}

/** How the test PS answers an auth-token request. */
export type PsBehaviour =
  | { kind: 'grant' }
  /** 202 + requirement=interaction; the test approves or denies through `decide`. */
  | { kind: 'interaction' }
  /** 202 + requirement=clarification; granted once the agent answers. */
  | { kind: 'clarification'; question: string }
  /** 200 with an auth token bound to another key (a PS answering for another agent). */
  | { kind: 'wrong-agent' }
  /** An error from the token endpoint (the next `times` requests, then grants; default always). */
  | { kind: 'error'; code: EndpointErrorCode; times?: number }

interface Pending {
  state: 'pending' | 'interacting' | 'granted' | 'denied' | 'gone'
  result?: Record<string, unknown>
  question?: string
  answer?: string
  issue: () => Promise<Record<string, unknown>>
}

/** A test Person Server: person tokens, auth tokens, deferred consent and clarification. */
export interface TestPersonServer {
  readonly issuer: string
  behaviour: PsBehaviour
  /** Person-token requests answered 202 interaction first when true. */
  personInteraction: boolean
  /** Every request body the PS received, by path. */
  readonly received: { path: string; body: Record<string, unknown> }[]
  /** Settles every pending request (the person approves or denies). */
  decide(approve: boolean): Promise<void>
  /** Lifetime of issued tokens (s). */
  lifetimeSec: number
  /** The interaction endpoint: absent (`none`), relaying (`accept`), or `interaction_unavailable`. */
  relay: 'none' | 'accept' | 'unavailable'
  /** Publish a revocation endpoint (default true). */
  revocation: boolean
  /** Leave the requested mission out of person tokens (a PS stripping the mission). */
  dropMission: boolean
  /** Agent-token revocations received: the verified caller, and the body. */
  readonly revocations: { issuer: string; dwk: string; jti: unknown; exp: unknown }[]
  /** R3 documents fetched for resource tokens carrying `r3_uri` (what the person was shown). */
  readonly r3Documents: Record<string, unknown>[]
}

/**
 * The R3 claims this test PS puts in an auth token for an R3 resource token: it fetches `r3_uri`
 * signed as itself, checks `r3_s256`, grants a proposal's operation, and a class document's
 * operations with those marked per-call in `r3_per_call` (R3 §R3 Processing, §Auth Token Extensions).
 */
async function r3Grant(ps: TestPersonServer, uri: string, s256: string, issuer: string, key: IssuerKey): Promise<Record<string, unknown>> {
  const res = await sendServerSigned({ url: uri, method: 'GET', issuer, dwk: 'aauth-person.json', key, ...LOOPBACK })
  const bytes = new Uint8Array(await res.arrayBuffer())
  if (res.status !== 200 || (await r3Digest(bytes)) !== s256) throw new ProblemError('invalid_resource_token', 'the R3 document does not match r3_s256')
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as { vocabulary: string; operations: Record<string, unknown>[]; parameters?: unknown }
  ps.r3Documents.push(doc)
  const perCall = doc.parameters === undefined ? doc.operations.filter((o) => o[X_AAUTH_ACCESS_MODE] === PER_CALL) : []
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !k.startsWith('x-')))
  return {
    r3_uri: uri,
    r3_s256: s256,
    r3_granted: { vocabulary: doc.vocabulary, operations: doc.operations.filter((o) => !perCall.includes(o)).map(strip) },
    ...(perCall.length === 0 ? {} : { r3_per_call: { vocabulary: doc.vocabulary, operations: perCall.map(strip) } }),
  }
}

export async function startPersonServer(): Promise<TestPersonServer> {
  const { key, publicJwk } = await issuerKey()
  const jwks = loopbackJwks()
  const pending = new Map<string, Pending>()
  let verifier: RequestVerifier | undefined
  let revoker: RequestVerifier | undefined
  let counter = 0
  const ps: TestPersonServer = {
    issuer: '',
    behaviour: { kind: 'grant' },
    personInteraction: false,
    received: [],
    lifetimeSec: 3600,
    relay: 'none',
    revocation: true,
    dropMission: false,
    revocations: [],
    r3Documents: [],
    async decide(approve) {
      for (const p of pending.values()) {
        if (p.state !== 'pending' && p.state !== 'interacting') continue
        if (approve) {
          p.result = await p.issue()
          p.state = 'granted'
        } else p.state = 'denied'
      }
    },
  }
  const defer = (origin: string, p: Pending, requirement?: Parameters<typeof pendingResponse>[0]['requirement'], body?: Record<string, unknown>): Response => {
    const id = `p${++counter}`
    pending.set(id, p)
    return pendingResponse({ location: `${origin}/pending/${id}`, retryAfter: 0, ...(requirement === undefined ? {} : { requirement }), ...(body === undefined ? {} : { body }) }, LOOPBACK)
  }
  const issuer = await serve(async (req, origin) => {
    const url = new URL(req.url)
    const known = wellKnown(url, origin, 'aauth-person.json', publicJwk, {
      person_token_endpoint: `${origin}/person`,
      auth_token_endpoint: `${origin}/token`,
      ...(ps.relay === 'none' ? {} : { interaction_endpoint: `${origin}/interaction` }),
      ...(ps.revocation ? { revocation_endpoint: `${origin}/revoke` } : {}),
    })
    if (known !== undefined) return known
    if (url.pathname === '/revoke' && req.method === 'POST') {
      revoker ??= createRequestVerifier({ audience: origin, jwks, acceptedTokenTypes: [], acceptServerSignatures: true, requireBodyComponents: true, ...LOOPBACK })
      try {
        const { ctx, body } = await verified(revoker, req)
        if (ctx.scheme !== 'jwks_uri') throw new SignatureError('invalid_key', 'a server signature is required')
        const json = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>
        ps.revocations.push({ issuer: ctx.issuer, dwk: ctx.dwk, jti: json['jti'], exp: json['exp'] })
        return new Response(null, { status: 200 })
      } catch (e) {
        return asResponse(e)
      }
    }
    verifier ??= createRequestVerifier({ audience: origin, jwks, acceptedTokenTypes: ['aa-agent+jwt'], ...LOOPBACK })
    try {
      const { ctx, body } = await verified(verifier, req)
      if (ctx.scheme !== 'jwt' || ctx.type !== 'aa-agent+jwt') throw new SignatureError('invalid_jwt', 'agent token required')
      const agent = ctx.claims
      const json = body.byteLength === 0 ? {} : (JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>)
      ps.received.push({ path: url.pathname, body: json })
      const sub = `user-at-${agent.sub.replace(/[^a-z0-9]/gi, '')}`
      if (url.pathname === '/person' && req.method === 'POST') {
        const issue = async () => ({
          person_token: await createPersonToken({ key, issuer: origin, aud: String(json['resource']), sub, cnfJwk: agent.cnf.jwk, lifetimeSec: ps.lifetimeSec, ...(typeof json['mission_s256'] === 'string' && !ps.dropMission ? { missionS256: json['mission_s256'] } : {}), ...LOOPBACK }),
          expires_in: ps.lifetimeSec,
        })
        if (ps.personInteraction) return defer(origin, { state: 'pending', issue }, { requirement: 'interaction', url: `${origin}/consent`, code: generateInteractionCode() })
        return Response.json(await issue())
      }
      if (url.pathname === '/token' && req.method === 'POST') {
        const rtoken = String(json['resource_token'])
        const rt = decodeJwt(rtoken).payload
        const presented = decodeJwt(String(json['presented_token'])).payload
        if (presented['jti'] !== rt['presented_jti']) throw new ProblemError('invalid_resource_token', 'presented_jti does not name the presented token')
        const b = ps.behaviour
        const wrongKey = b.kind === 'wrong-agent' ? (await generateKeyPair()).publicJwk : undefined
        const r3 = typeof rt['r3_uri'] === 'string' ? await r3Grant(ps, rt['r3_uri'], String(rt['r3_s256']), origin, key) : undefined
        const issue = async () => ({
          auth_token: await createAuthToken({
            key,
            issuer: origin,
            issuerRole: 'person',
            aud: String(rt['iss']),
            ps: origin,
            sub: String(rt['sub']),
            cnfJwk: wrongKey ?? agent.cnf.jwk,
            lifetimeSec: Math.min(ps.lifetimeSec, Number(presented['exp']) - Math.floor(Date.now() / 1000)),
            ...(typeof rt['scope'] === 'string' ? { scope: rt['scope'] } : {}),
            ...(typeof rt['mission_s256'] === 'string' ? { missionS256: rt['mission_s256'] } : {}),
            ...(r3 === undefined ? {} : { extraClaims: r3 }),
            ...LOOPBACK,
          }),
          expires_in: ps.lifetimeSec,
        })
        switch (b.kind) {
          case 'grant':
          case 'wrong-agent':
            return Response.json(await issue())
          case 'error':
            if (b.times !== undefined && --b.times <= 0) ps.behaviour = { kind: 'grant' }
            throw new ProblemError(b.code, `test PS refuses: ${b.code}`)
          case 'interaction':
            return defer(origin, { state: 'pending', issue }, { requirement: 'interaction', url: `${origin}/consent`, code: generateInteractionCode() })
          case 'clarification':
            return defer(origin, { state: 'pending', issue, question: b.question }, { requirement: 'clarification' }, { clarification: b.question, timeout: 60 })
        }
      }
      if (url.pathname === '/interaction' && req.method === 'POST') {
        if (ps.relay === 'unavailable') throw new ProblemError('interaction_unavailable', 'no channel to the person')
        return defer(origin, { state: 'interacting', issue: async () => ({}) })
      }
      const m = /^\/pending\/(p\d+)$/.exec(url.pathname)
      const p = m === null ? undefined : pending.get(m[1]!)
      if (p !== undefined) {
        if (p.state === 'gone') return problemResponse(new ProblemError('invalid_code', 'gone'))
        if (req.method === 'DELETE') {
          p.state = 'gone'
          return new Response(null, { status: 204 })
        }
        if (req.method === 'POST') {
          if (json['action'] !== 'clarification_response') throw new ProblemError('invalid_request', 'unknown action')
          p.answer = String(json['clarification_response'])
          p.result = await p.issue()
          p.state = 'granted'
          return new Response(null, { status: 204 })
        }
        if (p.state === 'granted') return Response.json(p.result)
        if (p.state === 'denied') return problemResponse(new ProblemError('denied', 'the person declined'))
        if (p.question !== undefined) return pendingResponse({ location: url.href, retryAfter: 0, requirement: { requirement: 'clarification' }, body: { clarification: p.question } }, LOOPBACK)
        return pendingResponse({ location: url.href, retryAfter: 0, status: p.state === 'interacting' ? 'interacting' : 'pending' }, LOOPBACK)
      }
      return new Response('not found', { status: 404 })
    } catch (e) {
      return asResponse(e)
    }
  })
  ;(ps as { issuer: string }).issuer = issuer
  return ps
}

/** What a route of the test resource requires. */
export type RouteMode =
  | { kind: 'agent' }
  /** Identity only, and only the agent token: anything else gets requirement=agent-token. */
  | { kind: 'agent-only' }
  | { kind: 'person' }
  /** A person token and nothing else (an auth token is answered requirement=person-token). */
  | { kind: 'person-only' }
  | { kind: 'auth'; scope: string; deferred?: boolean; payment?: boolean }
  /** The authorization endpoint (§Authorization Endpoint): a person token gets a resource token for the body's scope. */
  | { kind: 'authorize' }
  /** Resource-managed: 202 interaction, then 200 with `AAuth-Access`; later calls need it. */
  | { kind: 'interaction' }
  | { kind: 'raw'; respond: (req: Request, origin: string) => Response | Promise<Response> }

/** A test resource: routes by path, each with its requirement. */
export interface TestResource {
  readonly origin: string
  readonly routes: Map<string, RouteMode>
  /** What each request presented: `agent`, `person`, `auth`, with the path. */
  readonly presented: { path: string; kind: string; authorization?: string }[]
  /** The resource-managed interaction is completed by the person. */
  completeInteraction(): void
  /** Signs resource tokens with this key (swap to test an unknown key). */
  key: IssuerKey
  /** Auth token jtis the resource refuses with revoked_jwt. */
  readonly revoked: Set<string>
  /** Members merged into the resource's metadata document. */
  metadataExtra: Record<string, unknown>
  /** Extra claims for resource tokens, given the presented token's jti (peer compatibility). */
  extraResourceTokenClaims?: (presentedJti: string) => Record<string, unknown>
}

export async function startResource(routes: Record<string, RouteMode>): Promise<TestResource> {
  const { key, publicJwk } = await issuerKey()
  const jwks = loopbackJwks()
  let verifier: RequestVerifier | undefined
  let interactionDone = false
  const sessions = new Set<string>()
  const held = new Map<string, { done: boolean; scope: string }>()
  const res: TestResource = {
    origin: '',
    routes: new Map(Object.entries(routes)),
    presented: [],
    completeInteraction: () => {
      interactionDone = true
    },
    key,
    revoked: new Set(),
    metadataExtra: {},
  }
  const resourceToken = async (origin: string, ctx: AAuthContext, thumbprint: string, scope: string) => {
    if (ctx.scheme !== 'jwt' || ctx.type === 'aa-agent+jwt') throw new Error('unreachable')
    const c = ctx.claims as unknown as Record<string, unknown>
    const psId = ctx.type === 'aa-person+jwt' ? String(c['iss']) : String(c['ps'])
    return createResourceToken({
      key: res.key,
      issuer: origin,
      aud: psId,
      ps: psId,
      sub: String(c['sub']),
      presentedJti: String(c['jti']),
      agentJkt: thumbprint,
      scope,
      ...(typeof c['mission_s256'] === 'string' ? { missionS256: c['mission_s256'] } : {}),
      ...(res.extraResourceTokenClaims === undefined ? {} : { extraClaims: res.extraResourceTokenClaims(String(c['jti'])) }),
      ...LOOPBACK,
    })
  }
  const origin = await serve(async (req, origin) => {
    const url = new URL(req.url)
    const known = wellKnown(url, origin, 'aauth-resource.json', publicJwk, { ...(res.routes.has('/authorize') ? { authorization_endpoint: `${origin}/authorize` } : {}), ...res.metadataExtra })
    if (known !== undefined) return known
    verifier ??= createRequestVerifier({ audience: origin, jwks, ...LOOPBACK, isRevoked: (_iss, jti) => res.revoked.has(jti) })
    const heldMatch = /^\/held\/(h\d+)$/.exec(url.pathname)
    const mode = heldMatch !== null ? ({ kind: 'auth', scope: '' } as RouteMode) : res.routes.get(url.pathname)
    if (mode === undefined) return new Response('not found', { status: 404 })
    try {
      const { ctx, thumbprint, body } = await verified(verifier, req)
      const kind = ctx.scheme === 'jwt' ? ctx.type.slice(3, ctx.type.indexOf('+')) : 'server'
      const authorization = req.headers.get('authorization') ?? undefined
      res.presented.push({ path: url.pathname, kind, ...(authorization === undefined ? {} : { authorization }) })
      const who = ctx.scheme === 'jwt' ? (ctx.claims as unknown as Record<string, unknown>) : {}
      const ok = (extra: Record<string, unknown> = {}, headers: HeadersInit = {}) => Response.json({ ok: true, path: url.pathname, presented: kind, sub: who['sub'], scope: who['scope'], ...extra }, { headers })
      if (heldMatch !== null) {
        const h = held.get(heldMatch[1]!)!
        // Still waiting for the auth token: each poll carries a fresh resource token (AG-RES-09).
        if (kind === 'person') return pendingResponse({ location: url.href, retryAfter: 0, requirement: { requirement: 'auth-token', resourceToken: await resourceToken(origin, ctx, thumbprint, h.scope) } }, LOOPBACK)
        if (kind !== 'auth') return pendingResponse({ location: url.href, retryAfter: 0 }, LOOPBACK)
        h.done = true
        return ok({ held: true })
      }
      switch (mode.kind) {
        case 'raw':
          return mode.respond(req, origin)
        case 'agent':
          return ok()
        case 'authorize': {
          if (kind !== 'person') return new Response(null, { status: 401, headers: { 'aauth-requirement': serializeRequirement({ requirement: 'person-token' }) } })
          const scope = String((JSON.parse(new TextDecoder().decode(body)) as { scope?: unknown }).scope)
          return Response.json({ resource_token: await resourceToken(origin, ctx, thumbprint, scope) })
        }
        case 'agent-only':
          if (kind === 'agent') return ok()
          return new Response(null, { status: 401, headers: { 'aauth-requirement': serializeRequirement({ requirement: 'agent-token' }) } })
        case 'person':
        case 'person-only':
          if (kind === 'person' || (kind === 'auth' && mode.kind === 'person')) return ok()
          return new Response(null, { status: 401, headers: { 'aauth-requirement': serializeRequirement({ requirement: 'person-token' }) } })
        case 'interaction': {
          const session = parseAAuthAuthorization(authorization)
          if (session !== undefined && sessions.has(session)) return ok({ session: true })
          if (url.searchParams.has('poll')) {
            if (!interactionDone) return pendingResponse({ location: url.href, retryAfter: 0, status: 'interacting' }, LOOPBACK)
            const s = `sess-${sessions.size + 1}`
            sessions.add(s)
            return ok({}, { 'aauth-access': s })
          }
          return pendingResponse({ location: `${url.pathname}?poll=1`, retryAfter: 0, requirement: { requirement: 'interaction', url: `${origin}/interact`, code: 'ABCD-EFGH' } }, LOOPBACK)
        }
        case 'auth': {
          if (kind === 'auth' && mode.payment !== true && mode.scope.split(' ').every((s) => String(who['scope'] ?? '').split(' ').includes(s))) return ok()
          if (kind !== 'person' && kind !== 'auth') return new Response(null, { status: 401, headers: { 'aauth-requirement': serializeRequirement({ requirement: 'person-token' }) } })
          const rt = await resourceToken(origin, ctx, thumbprint, mode.scope)
          const requirement = serializeRequirement({ requirement: 'auth-token', resourceToken: rt })
          if (mode.deferred === true) {
            const id = `h${held.size + 1}`
            held.set(id, { done: false, scope: mode.scope })
            return pendingResponse({ location: `/held/${id}`, retryAfter: 0, requirement: { requirement: 'auth-token', resourceToken: rt } }, LOOPBACK)
          }
          return new Response(null, { status: mode.payment === true ? 402 : 401, headers: { 'aauth-requirement': requirement } })
        }
      }
    } catch (e) {
      return asResponse(e)
    }
  })
  ;(res as { origin: string }).origin = origin
  return res
}

