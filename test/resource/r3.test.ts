/**
 * R3 and per-call step-up at the resource, over real HTTP on 127.0.0.1 (draft-hardt-aauth-r3
 * §Vocabularies, §Operation Access Annotations, §R3 Document, §Content Addressing, §Resource
 * Enforcement, §Per-Call Proposals, §R3 Document Access Restriction; main draft §Deferred
 * Delivery, §Pending URL Security; CHECKLIST R3-01..R3-05, R3-09..R3-12, R3-15, DEF-02,
 * NEG-R3-01, NEG-R3-03, NEG-R3-04).
 *
 * The acceptance story is scenario S1: a Hono booking API where an economy booking is served at
 * once and a business-class one is held (`202`) until the person approves that exact call. The
 * person server is faked: a loopback issuer that signs the R3 fetches (`jwks_uri`) and the
 * per-call auth tokens. The `401` delivery runs on both adapters.
 */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aauth, type AAuthEnv } from '../../src/resource/hono.js'
import { randomUUID } from 'node:crypto'
import { createResource, MemoryPerCallStore, RedisStore, type PerCallStore, type Policy, type PolicyDecision, type R3Options, type Resource, type ResourceOptions, type RouteRequirement } from '../../src/resource/index.js'
import { redisUrl, stopRedis } from '../helpers/redis.js'
import { createAgentToken, decodeJwt, parseRequirement, parseSignatureError, r3Digest, sendServerSigned, verifyResourceToken, type ResourceTokenClaims } from '../../src/protocol/index.js'
import { AgentCredentials, createAgentClient } from '../../src/agent/index.js'
import { createSigner, generateKeyPair } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, loopbackJwks, startAgentProvider, startPersonServer } from '../helpers/aauth-servers.js'
import { authToken, loopIssuer, makeAgent, personToken, resourceKeys, send, startApp, type Agent, type App, type LoopIssuer } from './resource-fixture.js'

const OPENAPI = 'urn:aauth:vocabulary:openapi'
const PS_ENDPOINTS = { person_token_endpoint: 'https://ps.invalid/person', auth_token_endpoint: 'https://ps.invalid/token' }

interface Booking {
  fare: string
  amount: number
  refundable: boolean
  note?: string
}

/** S1: bookings over 1,000 need the person's approval of the exact fare, amount and refundability. */
const bookingR3 = (extra: Partial<R3Options> = {}): R3Options => ({
  operations: [
    { operationId: 'listBookings', method: 'GET', path: '/bookings', scope: 'bookings:read', accessMode: 'auth-token', display: { summary: 'See your bookings' } },
    {
      operationId: 'createBooking',
      method: 'POST',
      path: '/bookings',
      scope: 'bookings:write',
      display: { summary: 'Book flights for you', implications: 'Charges your card' },
      perCall: ({ body }) => {
        const b = body as Booking
        if (b.amount <= 1000) return undefined
        if (b.fare === 'FORBIDDEN') return { deny: 'this fare cannot be booked' }
        return {
          parameters: { fare: b.fare, amount: b.amount, refundable: b.refundable, ...(b.note === undefined ? {} : { note: b.note }) },
          display: { summary: `Book ${b.fare} for ${b.amount}`, amount: b.amount, fare: b.fare, refundable: b.refundable },
          ...(b.note === undefined ? {} : { digests: ['note'] }),
        }
      },
    },
    { operationId: 'cancelBooking', method: 'DELETE', path: '/bookings/{id}', scope: 'bookings:write', accessMode: 'per-call', budget: true, display: { summary: 'Cancel a booking', irreversible: 'A cancelled fare is lost' } },
  ],
  ...extra,
})

const ROUTES: Record<string, RouteRequirement> = {
  'GET /bookings': { access: 'auth', scope: 'bookings:read' },
  'POST /bookings': { access: 'auth', scope: 'bookings:write' },
  'DELETE /bookings/b-1': { access: 'auth', scope: 'bookings:write', operation: 'cancelBooking' },
  'DELETE /bookings/b-2': { access: 'auth', scope: 'bookings:write', operation: 'cancelBooking' },
}

interface BookingApi {
  readonly origin: string
  readonly resource: Resource
  /** Every booking the handler wrote. */
  readonly written: Booking[]
  /** Every handler run (method path). */
  readonly runs: string[]
  close(): Promise<void>
}

/** The S1 booking API on Hono, holding per-call invocations (`app` given to the middleware). */
async function bookingApi(o: { now?: () => number; r3?: Partial<R3Options>; policy?: Policy; authorize?: ResourceOptions['authorize'] } = {}): Promise<BookingApi> {
  const app = new Hono<AAuthEnv>()
  const server = createAdaptorServer({ fetch: (req: Request) => app.fetch(req) }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const resource = createResource({ issuer: origin, ...LOOPBACK, keys: await resourceKeys(), metadata: { name: 'Bookings' }, r3: bookingR3(o.r3), ...(o.now === undefined ? {} : { now: o.now }), ...(o.policy === undefined ? {} : { policy: o.policy }), ...(o.authorize === undefined ? {} : { authorize: o.authorize }) })
  const written: Booking[] = []
  const runs: string[] = []
  app.use('*', aauth(resource, (c) => ROUTES[`${c.req.method} ${c.req.path}`] ?? { access: 'agent' }, { app }))
  app.post('/bookings', async (c) => {
    runs.push('POST /bookings')
    const b = await c.req.json<Booking>()
    written.push(b)
    return c.json({ id: `b-${written.length}`, ...b, perCall: c.get('aauth').perCall !== undefined }, 201, { location: `/bookings/b-${written.length}` })
  })
  app.get('/bookings', (c) => {
    runs.push('GET /bookings')
    return c.json(written)
  })
  app.delete('/bookings/:id', (c) => {
    runs.push(`DELETE /bookings/${c.req.param('id')}`)
    return c.body(null, 204)
  })
  return {
    origin,
    resource,
    written,
    runs,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

let ap: LoopIssuer
let ps: LoopIssuer
let ps2: LoopIssuer
let stranger: LoopIssuer

beforeAll(async () => {
  ;[ap, ps, ps2, stranger] = await Promise.all([
    loopIssuer('aauth-agent.json'),
    loopIssuer('aauth-person.json', PS_ENDPOINTS),
    loopIssuer('aauth-person.json', PS_ENDPOINTS),
    loopIssuer('aauth-person.json', PS_ENDPOINTS),
  ])
})
afterAll(async () => {
  await closeAll()
  await stopRedis()
})

// ---------------------------------------------------------------------------------------------
// Helpers: what the agent and the person server do.

const jti = (token: string): string => String(decodeJwt(token).payload['jti'])

/** The resource token of an `auth-token` requirement, verified as the agent verifies it. */
async function resourceTokenOf(res: Response, origin: string, agent: Agent, now?: () => number): Promise<{ raw: string; claims: ResourceTokenClaims & Record<string, unknown> }> {
  const rq = parseRequirement(res.headers.get('aauth-requirement') ?? '', LOOPBACK)
  if (rq.requirement !== 'auth-token' || !rq.recognized) throw new Error(`expected requirement=auth-token, got ${res.headers.get('aauth-requirement')}`)
  const claims = (await verifyResourceToken(rq.resourceToken, { jwks: loopbackJwks(), issuer: origin, agentJkt: agent.jkt, ...(now === undefined ? {} : { now }), ...LOOPBACK })) as ResourceTokenClaims & Record<string, unknown>
  return { raw: rq.resourceToken, claims }
}

/** The PS fetching `r3_uri`, signing as itself (R3 §R3 Document Access Restriction). */
function psFetch(uri: string, as: LoopIssuer = ps, now?: () => number): Promise<Response> {
  return sendServerSigned({ url: uri, method: 'GET', issuer: as.issuer, dwk: 'aauth-person.json', key: as.key, ...(now === undefined ? {} : { now }), ...LOOPBACK })
}

/** What a PS issues on approval of a per-call proposal: an auth token echoing it, the operation in `r3_granted`. */
function perCallToken(app: { origin: string }, agent: Agent, rt: ResourceTokenClaims & Record<string, unknown>, o: { sub?: string; lifetimeSec?: number; now?: () => number; operationId?: string } = {}): Promise<string> {
  return authToken(ps, app.origin, agent, {
    sub: o.sub ?? rt.sub,
    scope: rt.scope!,
    extra: { r3_uri: rt['r3_uri'], r3_s256: rt['r3_s256'], r3_granted: { vocabulary: OPENAPI, operations: [{ operationId: o.operationId ?? 'createBooking' }] } },
    ...(o.lifetimeSec === undefined ? {} : { lifetimeSec: o.lifetimeSec }),
    ...(o.now === undefined ? {} : { now: o.now }),
  })
}

const ECO: Booking = { fare: 'ECO-SYD', amount: 320, refundable: true }
const BIZ: Booking = { fare: 'BIZ-SYD', amount: 9000, refundable: false }

// ---------------------------------------------------------------------------------------------

describe('R3 declarations: metadata and the OpenAPI vocabulary (R3-01, R3-12)', () => {
  let api: BookingApi
  beforeAll(async () => {
    api = await bookingApi()
  })
  afterAll(() => api.close())

  it('R3-01 the metadata maps the OpenAPI vocabulary to the served OpenAPI 3.1 document', async () => {
    const md = (await (await fetch(`${api.origin}/.well-known/aauth-resource.json`)).json()) as Record<string, unknown>
    expect(md['r3_vocabularies']).toEqual({ [OPENAPI]: `${api.origin}/openapi.json` })
    const doc = (await (await fetch(`${api.origin}/openapi.json`)).json()) as { openapi: string; info: { title: string }; paths: Record<string, Record<string, Record<string, unknown>>> }
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info.title).toBe('Bookings')
    expect(doc.paths['/bookings']!['post']).toMatchObject({ operationId: 'createBooking', summary: 'Book flights for you' })
    expect(doc.paths['/bookings']!['post']).not.toHaveProperty('x-aauth-access-mode')
    expect(doc.paths['/bookings']!['get']).toMatchObject({ operationId: 'listBookings', 'x-aauth-access-mode': 'auth-token' })
    expect(doc.paths['/bookings/{id}']!['delete']).toMatchObject({
      operationId: 'cancelBooking',
      'x-aauth-access-mode': 'per-call',
      'x-aauth-budget': true,
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
    })
    // R3-12: session-token never appears as an annotation.
    expect(JSON.stringify(doc)).not.toContain('session-token')
    expect(api.runs).toEqual([])
  })

  it('R3-12 construction refuses a session-token annotation, a repeated operationId, an unknown vocabulary and a missing summary', () => {
    const base = bookingR3()
    const op = base.operations[1]!
    const make = (r3: R3Options) => () => createResource({ issuer: 'https://api.example', r3 })
    expect(make({ operations: [{ ...op, accessMode: 'session-token' as never }] })).toThrow(TypeError)
    expect(make({ operations: [op, { ...op, method: 'PUT' }] })).toThrow(TypeError)
    expect(make({ ...base, vocabulary: 'urn:aauth:vocabulary:mcp' })).toThrow(TypeError)
    expect(make({ operations: [{ ...op, display: { summary: '' } }] })).toThrow(TypeError)
    expect(make({ operations: [{ ...op, accessMode: 'person-token', budget: true }] })).toThrow(TypeError)
    expect(make({ ...base, pendingLifetimeSec: 3601 })).toThrow(RangeError)
  })
})

describe('class R3 documents (R3-03, R3-04, R3-05, NEG-R3-01)', () => {
  let api: BookingApi
  let agent: Agent
  let rt: ResourceTokenClaims & Record<string, unknown>
  let pt: string
  beforeAll(async () => {
    api = await bookingApi()
    agent = await makeAgent(ap, { ps: ps.issuer })
    pt = await personToken(ps, api.origin, agent, { sub: 'user-1' })
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: pt }, { json: ECO })).res
    expect(res.status).toBe(401)
    rt = (await resourceTokenOf(res, api.origin, agent)).claims
  })
  afterAll(() => api.close())

  it('R3-03 the challenge of an R3 route carries r3_uri and r3_s256 beside the scope', () => {
    expect(rt).toMatchObject({ scope: 'bookings:write', ps: ps.issuer, sub: 'user-1', presented_jti: jti(pt), aud: ps.issuer })
    expect(rt['r3_uri']).toBe(`${api.origin}/aauth/r3/${String(rt['r3_s256'])}`)
    expect(api.written).toEqual([])
  })

  it('R3-04 / R3-05 the PS named in ps fetches the document: the same bytes every time, hashing to r3_s256', async () => {
    const first = await psFetch(String(rt['r3_uri']))
    expect(first.status).toBe(200)
    const bytes = new Uint8Array(await first.arrayBuffer())
    expect(await r3Digest(bytes)).toBe(rt['r3_s256'])
    // Signed a second earlier: the same signature base twice would be a replay.
    const second = new Uint8Array(await (await psFetch(String(rt['r3_uri']), ps, () => Date.now() - 1000)).arrayBuffer())
    expect(second).toEqual(bytes)
    expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual({
      vocabulary: OPENAPI,
      // The per-call operation is marked for the issuer's r3_per_call.
      operations: [{ operationId: 'createBooking' }, { operationId: 'cancelBooking', 'x-aauth-access-mode': 'per-call' }],
      display: { summary: 'Book flights for you; Cancel a booking', implications: 'Charges your card', irreversible: 'A cancelled fare is lost' },
    })
  })

  it('NEG-R3-01 only the entitled PS reads it: agent key, unsigned, unknown server, another PS, unknown hash', async () => {
    const uri = String(rt['r3_uri'])
    // The agent following the r3_uri in its own resource token.
    const byAgent = (await send(uri, { signer: agent.signer, token: agent.token })).res
    expect(byAgent.status).toBe(401)
    expect(parseSignatureError(byAgent.headers.get('signature-error')!).error).toBe('unsupported_scheme')
    expect(byAgent.headers.get('accept-signature-scheme')).toContain('jwks_uri')
    // With its person token, too.
    const byAgentPt = (await send(uri, { signer: agent.signer, token: pt })).res
    expect(byAgentPt.status).toBe(401)
    expect(parseSignatureError(byAgentPt.headers.get('signature-error')!).error).toBe('unsupported_scheme')
    const unsigned = await fetch(uri)
    expect(unsigned.status).toBe(401)
    expect(parseSignatureError(unsigned.headers.get('signature-error')!).error).toBe('invalid_signature')
    for (const other of [stranger, ps2]) {
      const r = await psFetch(uri, other)
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: 'denied' })
    }
    const unknown = await psFetch(`${api.origin}/aauth/r3/${'A'.repeat(43)}`)
    expect(unknown.status).toBe(404)
    expect(api.runs).toEqual([])
  })
})

describe('R3-02 r3_operations at the authorization endpoint', () => {
  let api: BookingApi
  let agent: Agent
  let pt: string
  beforeAll(async () => {
    api = await bookingApi()
    agent = await makeAgent(ap, { ps: ps.issuer })
    pt = await personToken(ps, api.origin, agent, { sub: 'user-2' })
  })
  afterAll(() => api.close())
  const authorize = (json: unknown) => send(`${api.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json })

  it('R3-02 declared operations across scopes: one composed document, referenced by the resource token', async () => {
    const res = (await authorize({ r3_operations: { vocabulary: OPENAPI, operations: [{ operationId: 'listBookings' }, { operationId: 'cancelBooking' }] } })).res
    expect(res.status).toBe(200)
    const { resource_token } = (await res.json()) as { resource_token: string }
    const rt = (await verifyResourceToken(resource_token, { jwks: loopbackJwks(), issuer: api.origin, agentJkt: agent.jkt, ...LOOPBACK })) as ResourceTokenClaims & Record<string, unknown>
    expect(rt).toMatchObject({ scope: 'bookings:read bookings:write', presented_jti: jti(pt), r3_uri: `${api.origin}/aauth/r3/${String(rt['r3_s256'])}` })
    const bytes = new Uint8Array(await (await psFetch(String(rt['r3_uri']))).arrayBuffer())
    expect(await r3Digest(bytes)).toBe(rt['r3_s256'])
    expect(JSON.parse(new TextDecoder().decode(bytes))).toMatchObject({
      vocabulary: OPENAPI,
      operations: [{ operationId: 'listBookings' }, { operationId: 'cancelBooking', 'x-aauth-access-mode': 'per-call' }],
      display: { summary: 'See your bookings; Cancel a booking' },
    })
  })

  it('R3-02 an unadvertised vocabulary, an undeclared operation or a malformed value: 400 invalid_request, no resource token', async () => {
    for (const r3_operations of [
      { vocabulary: 'urn:aauth:vocabulary:mcp', operations: [{ tool: 'createBooking' }] },
      { vocabulary: OPENAPI, operations: [{ operationId: 'deleteEverything' }] },
      { vocabulary: OPENAPI, operations: [] },
      'createBooking',
    ]) {
      const res = (await authorize({ r3_operations })).res
      expect(res.status).toBe(400)
      const body = (await res.json()) as Record<string, unknown>
      expect(body).toMatchObject({ error: 'invalid_request' })
      expect(body).not.toHaveProperty('resource_token')
    }
  })
})

describe('R3-09 enforcement of r3_granted and r3_per_call', () => {
  let api: BookingApi
  let agent: Agent
  beforeAll(async () => {
    api = await bookingApi({ r3: { perCallDelivery: '401' } })
    agent = await makeAgent(ap, { ps: ps.issuer })
  })
  afterAll(() => api.close())

  const grantToken = (r3: Record<string, unknown>) =>
    authToken(ps, api.origin, agent, { sub: 'user-9', scope: 'bookings:write', extra: { r3_uri: `${api.origin}/aauth/r3/${'B'.repeat(43)}`, r3_s256: 'B'.repeat(43), ...r3 } })
  const ops = (...ids: string[]) => ({ vocabulary: OPENAPI, operations: ids.map((operationId) => ({ operationId })) })

  const table: { name: string; claims: Record<string, unknown>; status: number; requirement?: string; problem?: string }[] = [
    { name: 'in r3_granted: served', claims: { r3_granted: ops('createBooking') }, status: 201 },
    { name: 'in r3_per_call: challenged with a per-call proposal', claims: { r3_granted: ops('listBookings'), r3_per_call: ops('createBooking') }, status: 401, requirement: 'auth-token' },
    { name: 'in neither: 403 denied', claims: { r3_granted: ops('listBookings'), r3_per_call: ops('cancelBooking') }, status: 403, problem: 'denied' },
    { name: 'granted in another vocabulary: 403 denied', claims: { r3_granted: { vocabulary: 'urn:aauth:vocabulary:mcp', operations: [{ operationId: 'createBooking' }] } }, status: 403, problem: 'denied' },
    { name: 'malformed r3_granted: 403 denied', claims: { r3_granted: 'createBooking' }, status: 403, problem: 'denied' },
  ]
  for (const row of table) {
    it(`R3-09 ${row.name}`, async () => {
      const before = api.written.length
      const at = await grantToken(row.claims)
      const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: ECO })).res
      expect(res.status).toBe(row.status)
      expect(res.headers.get('signature-error')).toBeNull()
      if (row.requirement !== undefined) {
        const { claims } = await resourceTokenOf(res, api.origin, agent)
        expect(claims['r3_uri']).toBe(`${api.origin}/aauth/r3/call/${String(claims['r3_s256'])}`)
        expect(claims.presented_jti).toBe(jti(at))
      } else expect(res.headers.get('aauth-requirement')).toBeNull()
      if (row.problem !== undefined) expect(await res.json()).toMatchObject({ error: row.problem })
      expect(api.written.length).toBe(before + (row.status === 201 ? 1 : 0))
    })
  }

  it('R3-09 an auth token without R3 claims keeps the scope check (another scope: challenged with the class document)', async () => {
    const at = await authToken(ps, api.origin, agent, { sub: 'user-9', scope: 'bookings:read' })
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: ECO })).res
    expect(res.status).toBe(401)
    const { claims } = await resourceTokenOf(res, api.origin, agent)
    expect(claims).toMatchObject({ scope: 'bookings:write', presented_jti: jti(at), r3_uri: `${api.origin}/aauth/r3/${String(claims['r3_s256'])}` })
    const ok = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at })).res
    expect(ok.status).toBe(200)
  })

  it('R3-10 a decider denial is 403 denied and nothing is written', async () => {
    const at = await authToken(ps, api.origin, agent, { sub: 'user-9', scope: 'bookings:write' })
    const before = api.written.length
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: { ...BIZ, fare: 'FORBIDDEN' } })).res
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ error: 'denied', detail: 'this fare cannot be booked' })
    expect(api.written.length).toBe(before)
  })

  it('R3-12 an operation declared per-call is challenged on every call, even under a scope that covers it', async () => {
    const at = await authToken(ps, api.origin, agent, { sub: 'user-9', scope: 'bookings:write' })
    const res = (await send(`${api.origin}/bookings/b-1`, { signer: agent.signer, token: at }, { method: 'DELETE' })).res
    expect(res.status).toBe(401)
    const { claims } = await resourceTokenOf(res, api.origin, agent)
    const doc = JSON.parse(await (await psFetch(String(claims['r3_uri']))).text()) as Record<string, unknown>
    expect(doc).toMatchObject({ vocabulary: OPENAPI, operations: [{ operationId: 'cancelBooking' }], parameters: {}, display: { summary: 'Cancel a booking' } })
    expect(api.runs).not.toContain('DELETE /bookings/b-1')
  })
})

describe('S1 per-call approval held under 202 (R3-10, R3-11, R3-15, DEF-02, NEG-R3-04)', () => {
  let api: BookingApi
  let agent: Agent
  let other: Agent
  let skew = 0
  const clock = () => Date.now() + skew
  let at: string
  beforeAll(async () => {
    api = await bookingApi({ now: clock, r3: { pendingLifetimeSec: 600 } })
    agent = await makeAgent(ap, { ps: ps.issuer })
    other = await makeAgent(ap, { ps: ps.issuer })
    at = await authToken(ps, api.origin, agent, { sub: 'user-1', scope: 'bookings:write' })
  })
  afterAll(() => api.close())

  it('an economy booking is served at once (201, no prompt)', async () => {
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: ECO })).res
    expect(res.status).toBe(201)
    expect(await res.json()).toMatchObject({ id: 'b-1', fare: 'ECO-SYD', perCall: false })
    expect(api.written).toEqual([ECO])
  })

  it('the business booking is held: approved once, executed once, repeated from the record, 410 after retention', async () => {
    skew = 0
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: BIZ })).res
    expect(res.status).toBe(202)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('retry-after')).toBe('5')
    expect(await res.json()).toEqual({ status: 'pending' })
    const location = res.headers.get('location')!
    // DEF-02: on the resource's origin, unguessable.
    expect(location).toMatch(new RegExp(`^${api.origin}/aauth/pending/[A-Za-z0-9_-]{43}$`))
    const { raw: rtRaw, claims: rt } = await resourceTokenOf(res, api.origin, agent)
    // R3-15: ps, sub and presented_jti from the auth token the call carried; no agent identifier.
    expect(rt).toMatchObject({ ps: ps.issuer, sub: 'user-1', presented_jti: jti(at), scope: 'bookings:write', agent_jkt: agent.jkt })
    expect(Object.keys(rt).filter((k) => /agent(?!_jkt)/.test(k))).toEqual([])
    expect(rt['r3_uri']).toBe(`${api.origin}/aauth/r3/call/${String(rt['r3_s256'])}`)
    expect(api.written).toEqual([ECO])

    // The PS reads the proposal: one operation, the exact parameters, the display the person sees.
    const fetched = await psFetch(String(rt['r3_uri']))
    const bytes = new Uint8Array(await fetched.arrayBuffer())
    expect(await r3Digest(bytes)).toBe(rt['r3_s256'])
    const proposal = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
    expect(proposal).toMatchObject({
      vocabulary: OPENAPI,
      operations: [{ operationId: 'createBooking' }],
      parameters: { fare: 'BIZ-SYD', amount: 9000, refundable: false },
      display: { summary: 'Book BIZ-SYD for 9000', amount: 9000, fare: 'BIZ-SYD', refundable: false },
    })
    // NEG-R3-01 for proposals: the agent cannot read it.
    expect((await send(String(rt['r3_uri']), { signer: agent.signer, token: at })).res.status).toBe(401)

    // Polls before approval: 202 again with the same resource token; another agent: 404.
    const waiting = (await send(location, { signer: agent.signer, token: at })).res
    expect(waiting.status).toBe(202)
    expect(waiting.headers.get('location')).toBe(location)
    expect((await resourceTokenOf(waiting, api.origin, agent)).raw).toBe(rtRaw)
    expect((await send(location, { signer: other.signer, token: other.token })).res.status).toBe(404)
    expect((await send(`${api.origin}/aauth/pending/${'x'.repeat(43)}`, { signer: agent.signer, token: at })).res.status).toBe(404)
    // A poll must be signed.
    const unsigned = await fetch(location)
    expect(unsigned.status).toBe(401)
    expect(api.written).toEqual([ECO])

    // Approval: the per-call auth token executes the held call, once.
    const granted = await perCallToken(api, agent, rt, { lifetimeSec: 600 })
    // Another agent holding a copy of it cannot use it (cnf binds it to the agent's key).
    expect((await send(location, { signer: other.signer, token: granted })).res.status).toBe(401)
    const done = (await send(location, { signer: agent.signer, token: granted })).res
    expect(done.status).toBe(201)
    const first = await done.json()
    expect(first).toEqual({ id: 'b-2', ...BIZ, perCall: true })
    expect(done.headers.get('location')).toBe('/bookings/b-2')
    expect(api.written).toEqual([ECO, BIZ])

    // NEG-R3-04: the same token again — the retained result, not a second booking.
    const again = (await send(location, { signer: agent.signer, token: granted })).res
    expect(again.status).toBe(201)
    expect(await again.json()).toEqual(first)
    expect(again.headers.get('location')).toBe('/bookings/b-2')
    // At the call's own URL it runs nothing: a held call's grant is answered at its pending URL only.
    const retried = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: granted }, { json: BIZ })).res
    expect(retried.status).toBe(403)
    expect(await retried.json()).toMatchObject({ error: 'denied' })
    expect(api.runs.filter((r) => r === 'POST /bookings')).toHaveLength(2)

    // DEF-02: terminal for anyone else, and for everyone once retention (the token's exp) ends.
    expect((await send(location, { signer: agent.signer, token: at })).res.status).toBe(410)
    skew = 601_000
    const later = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: agent.id, cnfJwk: agent.publicJwk, now: clock, ...LOOPBACK })
    expect((await send(location, { signer: agent.signer, token: later }, { now: clock })).res.status).toBe(410)
    expect(api.written).toEqual([ECO, BIZ])
    skew = 0
  })

  it('deny: the PS never issues; the resource token is re-issued near expiry; the pending URL expires (408); nothing is written', async () => {
    skew = 0
    const before = [...api.written]
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: { ...BIZ, amount: 5000 } })).res
    expect(res.status).toBe(202)
    const location = res.headers.get('location')!
    const { raw: rtRaw, claims: rt } = await resourceTokenOf(res, api.origin, agent)
    // The resource token nears its exp: a poll carries a fresh one for the same proposal.
    skew = 250_000
    const agentLater = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: agent.id, cnfJwk: agent.publicJwk, now: clock, ...LOOPBACK })
    const poll = (await send(location, { signer: agent.signer, token: agentLater }, { now: clock })).res
    expect(poll.status).toBe(202)
    const fresh = await resourceTokenOf(poll, api.origin, agent, clock)
    expect(fresh.raw).not.toBe(rtRaw)
    expect(fresh.claims).toMatchObject({ r3_uri: rt['r3_uri'], r3_s256: rt['r3_s256'], presented_jti: jti(at) })
    skew = 601_000
    const expired = (await send(location, { signer: agent.signer, token: agentLater }, { now: clock })).res
    expect(expired.status).toBe(408)
    expect(await expired.json()).toMatchObject({ error: 'expired' })
    expect(api.written).toEqual(before)
    skew = 0
  })

  it('R3-11 two concurrent polls presenting the per-call token: the held call runs once, both get its response', async () => {
    skew = 0
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: { ...BIZ, amount: 6000 } })).res
    expect(res.status).toBe(202)
    const location = res.headers.get('location')!
    const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
    const granted = await perCallToken(api, agent, rt)
    const [a, b] = await Promise.all([send(location, { signer: agent.signer, token: granted }), send(location, { signer: agent.signer, token: granted })])
    expect([a.res.status, b.res.status]).toEqual([201, 201])
    expect(await a.res.json()).toEqual(await b.res.json())
    expect(api.written.filter((x) => x.amount === 6000)).toHaveLength(1)
  })

  it('a per-call token for the held call that does not grant its operation is refused (403 denied), and the call stays held', async () => {
    skew = 0
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: { ...BIZ, amount: 7000 } })).res
    const location = res.headers.get('location')!
    const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
    const wrong = await perCallToken(api, agent, rt, { operationId: 'listBookings' })
    const r = (await send(location, { signer: agent.signer, token: wrong })).res
    expect(r.status).toBe(403)
    expect(await r.json()).toMatchObject({ error: 'denied' })
    const other = await perCallToken(api, agent, rt, { sub: 'someone-else' })
    expect((await send(location, { signer: agent.signer, token: other })).res.status).toBe(403)
    expect(api.written.some((b) => b.amount === 7000)).toBe(false)
    const right = await perCallToken(api, agent, rt)
    expect((await send(location, { signer: agent.signer, token: right })).res.status).toBe(201)
    expect(api.written.filter((b) => b.amount === 7000)).toHaveLength(1)
  })
})

const redisStore = async (): Promise<RedisStore> => RedisStore.connect({ url: await redisUrl(), prefix: `test:${randomUUID()}:` })

describe.each([
  ['hono', 'memory'],
  ['express', 'memory'],
  ['hono', 'redis'],
] as const)('per-call approval on the 401 path (%s adapter, %s store): R3-10, NEG-R3-03, NEG-R3-04', (kind, backend) => {
  let app: App
  let agent: Agent
  let at: string
  let store: PerCallStore
  beforeAll(async () => {
    const keys = await resourceKeys()
    store = backend === 'redis' ? await redisStore() : new MemoryPerCallStore({ maxEntries: 1000 })
    app = await startApp(kind, {
      routes: { '/bookings': { access: 'auth', scope: 'bookings:write', operation: 'createBooking' }, '/other': { access: 'auth', scope: 'bookings:write' } },
      options: () => ({ keys, r3: bookingR3({ store }) }),
    })
    agent = await makeAgent(ap, { ps: ps.issuer })
    at = await authToken(ps, app.origin, agent, { sub: 'user-4', scope: 'bookings:write' })
  })
  afterAll(async () => {
    await app.close()
    await store.close?.()
  })

  /** Calls, takes the per-call challenge, and has the PS approve it. */
  async function approved(body: Booking): Promise<{ granted: string; rt: ResourceTokenClaims & Record<string, unknown> }> {
    const res = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: at }, { json: body })).res
    expect(res.status).toBe(401)
    const { claims: rt } = await resourceTokenOf(res, app.origin, agent)
    expect(rt.presented_jti).toBe(jti(at))
    return { granted: await perCallToken(app, agent, rt), rt }
  }

  it('NEG-R3-03 changed parameters are refused and nothing runs; the approved call then runs once; a repeat gets the retained result', async () => {
    const { granted } = await approved(BIZ)
    const runs = app.runs.length
    for (const changed of [{ ...BIZ, amount: 9001 }, { ...BIZ, refundable: true }, { fare: BIZ.fare, amount: BIZ.amount }, { ...BIZ, fare: 'BIZ-MEL' }]) {
      const r = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: changed })).res
      expect(r.status).toBe(403)
      expect(r.headers.get('signature-error')).toBeNull()
      expect(await r.json()).toMatchObject({ error: 'denied' })
    }
    expect(app.runs.length).toBe(runs)
    // Member order does not matter (JSON equality).
    const ok = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { refundable: false, amount: 9000, fare: 'BIZ-SYD' } })).res
    expect(ok.status).toBe(200)
    const body = await ok.json()
    expect(app.runs.length).toBe(runs + 1)
    expect(app.runs.at(-1)!.access?.perCall?.jti).toBe(jti(granted))
    const again = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: BIZ })).res
    expect(again.status).toBe(200)
    expect(await again.json()).toEqual(body)
    // After the run the grant is spent: another call under it is a new one — challenged (401 with
    // a resource token), never run and never answered from the record.
    const changed = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, amount: 9500 } })).res
    expect(changed.status).toBe(401)
    expect(changed.headers.get('aauth-requirement')).toMatch(/^requirement=auth-token; resource-token="/)
    expect(app.runs.length).toBe(runs + 1)
  })

  it('NEG-R3-03 a parameter sent by digest: the proposal carries only its hash; another value is refused, the same bytes pass', async () => {
    const note = 'Window seat, vegetarian meal, and the passport number X1234567'
    const { granted, rt } = await approved({ ...BIZ, note })
    const doc = JSON.parse(await (await psFetch(String(rt['r3_uri']))).text()) as { parameters: Record<string, unknown> }
    expect(doc.parameters['note']).toEqual({ s256: await r3Digest(note) })
    expect(JSON.stringify(doc)).not.toContain('X1234567')
    const runs = app.runs.length
    const r = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, note: `${note}.` } })).res
    expect(r.status).toBe(403)
    expect(app.runs.length).toBe(runs)
    expect((await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, note } })).res.status).toBe(200)
    expect(app.runs.length).toBe(runs + 1)
  })

  it('R3-11 two concurrent retries with one per-call token: one execution, both answered with its result', async () => {
    const { granted } = await approved({ ...BIZ, amount: 4321 })
    const runs = app.runs.length
    const [a, b] = await Promise.all([
      send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, amount: 4321 } }),
      send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, amount: 4321 } }),
    ])
    expect([a.res.status, b.res.status]).toEqual([200, 200])
    expect(await a.res.json()).toEqual(await b.res.json())
    expect(app.runs.length).toBe(runs + 1)
  })

  it('R3-11 a second per-call token for an already executed proposal is refused (403 denied)', async () => {
    const { granted, rt } = await approved({ ...BIZ, amount: 2222 })
    expect((await send(`${app.origin}/bookings`, { signer: agent.signer, token: granted }, { json: { ...BIZ, amount: 2222 } })).res.status).toBe(200)
    const runs = app.runs.length
    const second = await perCallToken(app, agent, rt)
    const r = (await send(`${app.origin}/bookings`, { signer: agent.signer, token: second }, { json: { ...BIZ, amount: 2222 } })).res
    expect(r.status).toBe(403)
    expect(await r.json()).toMatchObject({ error: 'denied' })
    expect(app.runs.length).toBe(runs)
  })

  it('R3-11 two identical calls are two proposals, each consumed by its own grant', async () => {
    const one = await approved({ ...BIZ, amount: 3333 })
    const two = await approved({ ...BIZ, amount: 3333 })
    expect(one.rt['r3_s256']).not.toBe(two.rt['r3_s256'])
    const runs = app.runs.length
    for (const g of [one.granted, two.granted]) expect((await send(`${app.origin}/bookings`, { signer: agent.signer, token: g }, { json: { ...BIZ, amount: 3333 } })).res.status).toBe(200)
    expect(app.runs.length).toBe(runs + 2)
  })

  it('a per-call token is for its operation only: another auth route challenges it afresh (401 auth-token) and runs nothing', async () => {
    const { granted } = await approved({ ...BIZ, amount: 1111 })
    const runs = app.runs.length
    const r = (await send(`${app.origin}/other`, { signer: agent.signer, token: granted }, { json: {} })).res
    expect(r.status).toBe(401)
    expect(r.headers.get('aauth-requirement')).toMatch(/^requirement=auth-token; resource-token="/)
    expect(app.runs.length).toBe(runs)
  })
})

describe('S1 end to end with the agent client and a person server that reads R3 documents', () => {
  it('R3-10 / R3-11 the economy booking is served under the class grant; the business one is held, approved with its display, run once; the per-call token never replaces the class token', async () => {
    const api = await bookingApi({ r3: { retryAfterSec: 0 } })
    try {
      const { ap: provider } = await startAgentProvider()
      const person = await startPersonServer()
      const key = await generateKeyPair('Ed25519')
      const signer = await createSigner(key.privateJwk)
      const credentials = new AgentCredentials({ refresh: async () => ({ agentToken: await provider.issue({ local: 'travel-bot', cnfJwk: key.publicJwk, ps: person.issuer }), signer }) })
      const client = createAgentClient({ credentials, ...LOOPBACK, minPollIntervalMs: 0 })
      const post = (b: Booking) => client.fetch(`${api.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b), aauth: { scope: 'bookings:write' } })

      const eco = await post(ECO)
      expect(eco.status).toBe(201)
      // The class document: the person server granted createBooking, and cancelBooking per call.
      expect(person.r3Documents).toHaveLength(1)
      expect(person.r3Documents[0]).toMatchObject({ operations: [{ operationId: 'createBooking' }, { operationId: 'cancelBooking', 'x-aauth-access-mode': 'per-call' }] })

      const biz = await post(BIZ)
      expect(biz.status).toBe(201)
      expect(await biz.json()).toMatchObject({ fare: 'BIZ-SYD', amount: 9000, refundable: false, perCall: true })
      // The person was shown the proposal: the exact parameters and the resource's display.
      expect(person.r3Documents[1]).toMatchObject({ parameters: { fare: 'BIZ-SYD', amount: 9000, refundable: false }, display: { amount: 9000, fare: 'BIZ-SYD', refundable: false } })
      expect(api.written).toEqual([ECO, BIZ])
      const tokenRequests = person.received.filter((r) => r.path === '/token').length
      expect(tokenRequests).toBe(2)

      // The next economy booking presents the class token again: no new token request.
      expect((await post({ ...ECO, amount: 321 })).status).toBe(201)
      expect(person.received.filter((r) => r.path === '/token')).toHaveLength(tokenRequests)
      expect(api.runs.filter((r) => r === 'POST /bookings')).toHaveLength(3)
    } finally {
      await api.close()
    }
  })
})

describe.each([
  ['MemoryPerCallStore', async (): Promise<PerCallStore> => new MemoryPerCallStore()],
  ['RedisStore', redisStore],
] as const)('PerCallStore contract: %s', (_name, make) => {
  it('set/get with expiry; setIfAbsent is atomic: of concurrent claims exactly one wins', async () => {
    const store = await make()
    try {
      const id = randomUUID()
      await store.set(`a${id}`, 'one', Date.now() + 60_000)
      expect(await store.get(`a${id}`)).toBe('one')
      await store.set(`a${id}`, 'two', Date.now() + 60_000)
      expect(await store.get(`a${id}`)).toBe('two')
      expect(await store.get(`missing${id}`)).toBeUndefined()
      await store.set(`short${id}`, 'x', Date.now() + 150)
      await new Promise((r) => setTimeout(r, 300))
      expect(await store.get(`short${id}`)).toBeUndefined()
      const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => store.setIfAbsent(`claim${id}`, String(i), Date.now() + 60_000)))
      expect(wins.filter(Boolean)).toHaveLength(1)
      expect(await store.get(`claim${id}`)).toBe(String(wins.indexOf(true)))
    } finally {
      await store.close?.()
    }
  })
})

describe('the held call across two instances sharing Redis (the poll reaches the other instance)', () => {
  it('R3-11 one instance holds the call, the other runs it once on the approved poll and answers the repeat from the record', async () => {
    const shared = await redisStore()
    // One issuer, two servers (a load balancer in front): the same keys, the same Redis.
    const keys = await resourceKeys()
    const front = await bookingPair(shared, keys)
    try {
      const agent = await makeAgent(ap, { ps: ps.issuer })
      const at = await authToken(ps, front.issuer, agent, { sub: 'user-7', scope: 'bookings:write' })
      const held = (await send(`${front.a}/bookings`, { signer: agent.signer, token: at }, { json: BIZ, signUrl: `${front.issuer}/bookings` })).res
      expect(held.status).toBe(202)
      const location = held.headers.get('location')!
      // The issuer is not reachable here (it is the proxy's name): read the token unverified.
      const rq = parseRequirement(held.headers.get('aauth-requirement')!, LOOPBACK)
      if (rq.requirement !== 'auth-token' || !rq.recognized) throw new Error('expected requirement=auth-token')
      const rt = decodeJwt(rq.resourceToken).payload as ResourceTokenClaims & Record<string, unknown>
      const viaB = location.replace(front.issuer, front.b)
      const granted = await perCallToken({ origin: front.issuer }, agent, rt)
      const done = (await send(viaB, { signer: agent.signer, token: granted }, { signUrl: location })).res
      expect(done.status).toBe(201)
      const again = (await send(location.replace(front.issuer, front.a), { signer: agent.signer, token: granted }, { signUrl: location })).res
      expect(again.status).toBe(201)
      expect(await again.json()).toEqual(await done.json())
      expect(front.written()).toEqual([BIZ])
    } finally {
      await front.close()
      await shared.close()
    }
  })
})

/** Two Hono servers of one resource (`issuer` behind a proxy, `authority` set) sharing `store`. */
async function bookingPair(store: RedisStore, keys: Awaited<ReturnType<typeof resourceKeys>>): Promise<{ issuer: string; a: string; b: string; written: () => Booking[]; close(): Promise<void> }> {
  const issuer = 'http://127.0.0.1:1'
  const written: Booking[] = []
  const servers: Server[] = []
  const origins: string[] = []
  for (let i = 0; i < 2; i++) {
    const app = new Hono<AAuthEnv>()
    const server = createAdaptorServer({ fetch: (req: Request) => app.fetch(req) }) as Server
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const resource = createResource({ issuer, authority: '127.0.0.1:1', ...LOOPBACK, keys, store, r3: bookingR3({ store }) })
    app.use('*', aauth(resource, (c) => ROUTES[`${c.req.method} ${c.req.path}`] ?? { access: 'agent' }, { app }))
    app.post('/bookings', async (c) => {
      const b = await c.req.json<Booking>()
      written.push(b)
      return c.json({ id: `b-${written.length}`, ...b }, 201)
    })
    servers.push(server)
    origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  }
  return {
    issuer,
    a: origins[0]!,
    b: origins[1]!,
    written: () => written,
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections()
        await new Promise<void>((r) => s.close(() => r()))
      }
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Review findings: scope and R3 enforced independently, the target bound, durable single use, and
// the resource-wide policy on held calls.

describe('R3-07 scope and R3 claims are enforced independently', () => {
  let api: BookingApi
  let agent: Agent
  beforeAll(async () => {
    api = await bookingApi({ r3: { perCallDelivery: '401' } })
    agent = await makeAgent(ap, { ps: ps.issuer })
  })
  afterAll(() => api.close())

  it('R3-07 r3_operations declared under other scopes than the requested one: the resource token scope is widened to cover every operation', async () => {
    const pt = await personToken(ps, api.origin, agent, { sub: 'user-11' })
    const res = (await send(`${api.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json: { scope: 'bookings:read', r3_operations: { vocabulary: OPENAPI, operations: [{ operationId: 'createBooking' }] } } })).res
    expect(res.status).toBe(200)
    const { resource_token } = (await res.json()) as { resource_token: string }
    const rt = (await verifyResourceToken(resource_token, { jwks: loopbackJwks(), issuer: api.origin, agentJkt: agent.jkt, ...LOOPBACK })) as ResourceTokenClaims & Record<string, unknown>
    // The document lists createBooking (bookings:write): the scope the PS and the person see says so.
    expect(rt.scope).toBe('bookings:read bookings:write')
    const doc = JSON.parse(await (await psFetch(String(rt['r3_uri']))).text()) as Record<string, unknown>
    expect(doc).toMatchObject({ operations: [{ operationId: 'createBooking' }] })
    expect(api.runs).toEqual([])
  })

  it('R3-07 the authorize hook narrows the scope: the document lists only the operations the narrowed scope covers (never widened back)', async () => {
    const narrow = await bookingApi({ r3: { perCallDelivery: '401' }, authorize: () => ({ kind: 'resource-token', scope: 'bookings:read' }) })
    try {
      const pt = await personToken(ps, narrow.origin, agent, { sub: 'user-11' })
      const ask = (ops: string[]) => send(`${narrow.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json: { r3_operations: { vocabulary: OPENAPI, operations: ops.map((operationId) => ({ operationId })) } } })
      const res = (await ask(['listBookings', 'createBooking'])).res
      expect(res.status).toBe(200)
      const { resource_token } = (await res.json()) as { resource_token: string }
      const rt = (await verifyResourceToken(resource_token, { jwks: loopbackJwks(), issuer: narrow.origin, agentJkt: agent.jkt, ...LOOPBACK })) as ResourceTokenClaims & Record<string, unknown>
      expect(rt.scope).toBe('bookings:read')
      const doc = JSON.parse(await (await psFetch(String(rt['r3_uri']))).text()) as { operations: unknown[] }
      expect(doc.operations).toEqual([{ operationId: 'listBookings' }])
      // Nothing the narrowed scope covers: refused, no resource token.
      const none = (await ask(['createBooking'])).res
      expect(none.status).toBe(400)
      expect(await none.json()).toMatchObject({ error: 'invalid_scope' })
    } finally {
      await narrow.close()
    }
  })

  it('R3-07 an auth token granting the operation in r3_granted but whose scope does not cover the route: challenged with the class document, nothing runs', async () => {
    const at = await authToken(ps, api.origin, agent, {
      sub: 'user-11',
      scope: 'bookings:read',
      extra: { r3_uri: `${api.origin}/aauth/r3/${'C'.repeat(43)}`, r3_s256: 'C'.repeat(43), r3_granted: { vocabulary: OPENAPI, operations: [{ operationId: 'createBooking' }] } },
    })
    const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: ECO })).res
    expect(res.status).toBe(401)
    expect(res.headers.get('signature-error')).toBeNull()
    const { claims } = await resourceTokenOf(res, api.origin, agent)
    expect(claims).toMatchObject({ scope: 'bookings:write', presented_jti: jti(at), r3_uri: `${api.origin}/aauth/r3/${String(claims['r3_s256'])}` })
    expect(api.written).toEqual([])
    expect(api.runs).toEqual([])
  })
})

describe('NEG-R3-03 a per-call grant is bound to the call target (method, path, query)', () => {
  let api: BookingApi
  let agent: Agent
  let at: string
  beforeAll(async () => {
    api = await bookingApi({ r3: { perCallDelivery: '401' } })
    agent = await makeAgent(ap, { ps: ps.issuer })
    at = await authToken(ps, api.origin, agent, { sub: 'user-12', scope: 'bookings:write' })
  })
  afterAll(() => api.close())
  const cancel = (path: string, token: string) => send(`${api.origin}${path}`, { signer: agent.signer, token }, { method: 'DELETE' })

  it('NEG-R3-03 the proposal names the record (path captures, query); a grant for b-1 never cancels b-2 nor b-1 with another query', async () => {
    const res = (await cancel('/bookings/b-1?reason=ill&tag=a&tag=b', at)).res
    expect(res.status).toBe(401)
    const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
    const doc = JSON.parse(await (await psFetch(String(rt['r3_uri']))).text()) as Record<string, unknown>
    expect(doc['parameters']).toEqual({ id: 'b-1', reason: 'ill', tag: ['a', 'b'] })
    const granted = await perCallToken(api, agent, rt, { operationId: 'cancelBooking' })
    for (const other of ['/bookings/b-2?reason=ill&tag=a&tag=b', '/bookings/b-1', '/bookings/b-1?reason=ill&tag=b&tag=a', '/bookings/b-1?reason=ill&tag=a&tag=b&x=1']) {
      const r = (await cancel(other, granted)).res
      expect(r.status, other).toBe(403)
      expect(r.headers.get('signature-error')).toBeNull()
      expect(await r.json()).toMatchObject({ error: 'denied' })
    }
    expect(api.runs).toEqual([])
    // The query is compared as parameters, not as its spelling: other name order, `+` for a space.
    const ok = (await cancel('/bookings/b-1?tag=a&reason=ill&tag=b', granted)).res
    expect(ok.status).toBe(204)
    expect(api.runs).toEqual(['DELETE /bookings/b-1'])
    // Spent: another target under it is a new call, challenged afresh and not run.
    const after = (await cancel('/bookings/b-2?reason=ill&tag=a&tag=b', granted)).res
    expect(after.status).toBe(401)
    expect(after.headers.get('aauth-requirement')).toMatch(/^requirement=auth-token; resource-token="/)
    expect(api.runs).toEqual(['DELETE /bookings/b-1'])
  })

  it('NEG-R3-03 a decider-given proposal is bound to the target as well: the same body at another query is refused', async () => {
    const res = (await send(`${api.origin}/bookings?seat=12A`, { signer: agent.signer, token: at }, { json: BIZ })).res
    expect(res.status).toBe(401)
    const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
    const granted = await perCallToken(api, agent, rt)
    const r = (await send(`${api.origin}/bookings?seat=1A`, { signer: agent.signer, token: granted }, { json: BIZ })).res
    expect(r.status).toBe(403)
    expect(await r.json()).toMatchObject({ error: 'denied' })
    expect(api.written).toEqual([])
    expect((await send(`${api.origin}/bookings?seat=12A`, { signer: agent.signer, token: granted }, { json: BIZ })).res.status).toBe(201)
    expect(api.written).toEqual([BIZ])
  })
})

/** A store that can lose every key written by `setIfAbsent` (the claims), as an evicting store might. */
class ForgetfulStore implements PerCallStore {
  readonly #inner = new MemoryPerCallStore()
  readonly #claims = new Set<string>()
  readonly #forgotten = new Set<string>()
  set(key: string, value: string, expiresAt: number): void {
    this.#forgotten.delete(key)
    this.#inner.set(key, value, expiresAt)
  }
  get(key: string): string | undefined {
    return this.#forgotten.has(key) ? undefined : this.#inner.get(key)
  }
  setIfAbsent(key: string, value: string, expiresAt: number): boolean {
    this.#claims.add(key)
    if (!this.#forgotten.delete(key)) return this.#inner.setIfAbsent(key, value, expiresAt)
    this.#inner.set(key, value, expiresAt)
    return true
  }
  forgetClaims(): void {
    for (const k of this.#claims) this.#forgotten.add(k)
  }
}

describe('R3-11 single use survives the loss of the claim key (the proposal record is marked consumed)', () => {
  it('R3-11 401 path, a tiny MemoryPerCallStore flooded until the claim and the result are evicted: a replay never runs the call again', async () => {
    const store = new MemoryPerCallStore({ maxEntries: 8 })
    const api = await bookingApi({ r3: { perCallDelivery: '401', store } })
    try {
      const agent = await makeAgent(ap, { ps: ps.issuer })
      const at = await authToken(ps, api.origin, agent, { sub: 'user-13', scope: 'bookings:write' })
      const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: BIZ })).res
      expect(res.status).toBe(401)
      const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
      const granted = await perCallToken(api, agent, rt)
      expect((await send(`${api.origin}/bookings`, { signer: agent.signer, token: granted }, { json: BIZ })).res.status).toBe(201)
      expect(api.written).toEqual([BIZ])
      for (let i = 0; i < 20; i++) {
        // The per-call token at another operation's route reads (and so refreshes) the proposal
        // record; nothing reads the claim or the result, and new entries push them out.
        expect((await send(`${api.origin}/bookings/b-1`, { signer: agent.signer, token: granted }, { method: 'DELETE' })).res.status).toBe(401)
        store.set(`flood-${i}`, 'x', Date.now() + 60_000)
      }
      expect(store.size).toBeLessThanOrEqual(8)
      const replay = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: granted }, { json: BIZ })).res
      // The result is gone (and the claim, written before it, too): refused, never run again.
      expect(replay.status).toBe(410)
      expect(await replay.json()).toMatchObject({ error: 'invalid_code' })
      const second = await perCallToken(api, agent, rt)
      const r = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: second }, { json: BIZ })).res
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: 'denied' })
      expect(api.written).toEqual([BIZ])
      expect(api.runs).toEqual(['POST /bookings'])
    } finally {
      await api.close()
    }
  })

  it('R3-11 202 path: the claim key lost after completion — the approved poll is answered from the record, another grant gets 410, the held call ran once', async () => {
    const store = new ForgetfulStore()
    const api = await bookingApi({ r3: { store } })
    try {
      const agent = await makeAgent(ap, { ps: ps.issuer })
      const at = await authToken(ps, api.origin, agent, { sub: 'user-14', scope: 'bookings:write' })
      const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: BIZ })).res
      expect(res.status).toBe(202)
      const location = res.headers.get('location')!
      const { claims: rt } = await resourceTokenOf(res, api.origin, agent)
      const granted = await perCallToken(api, agent, rt)
      const done = (await send(location, { signer: agent.signer, token: granted })).res
      expect(done.status).toBe(201)
      const first = await done.json()
      store.forgetClaims()
      const again = (await send(location, { signer: agent.signer, token: granted })).res
      expect(again.status).toBe(201)
      expect(await again.json()).toEqual(first)
      store.forgetClaims()
      const second = await perCallToken(api, agent, rt)
      expect((await send(location, { signer: agent.signer, token: second })).res.status).toBe(410)
      expect(api.written).toEqual([BIZ])
      expect(api.runs).toEqual(['POST /bookings'])
    } finally {
      await api.close()
    }
  })
})

describe('the resource-wide policy applies to per-call calls (main draft §Resource Access; R3-10)', () => {
  it('R3-10 a policy that denies: the per-call call is refused (403 denied), never proposed nor held, and nothing runs', async () => {
    const api = await bookingApi({ policy: () => ({ decision: 'deny' }) })
    try {
      const agent = await makeAgent(ap, { ps: ps.issuer })
      const at = await authToken(ps, api.origin, agent, { sub: 'user-15', scope: 'bookings:write' })
      for (const [path, init] of [
        ['/bookings', { json: BIZ }],
        ['/bookings/b-1', { method: 'DELETE' }],
      ] as const) {
        const res = (await send(`${api.origin}${path}`, { signer: agent.signer, token: at }, init)).res
        expect(res.status, path).toBe(403)
        expect(res.headers.get('aauth-requirement')).toBeNull()
        expect(res.headers.get('location')).toBeNull()
        expect(await res.json()).toMatchObject({ error: 'denied' })
      }
      expect(api.runs).toEqual([])
    } finally {
      await api.close()
    }
  })

  const turns: [string, (on: boolean) => PolicyDecision, number, Record<string, string>][] = [
    ['R3-10 a held call the policy refuses by the time it is approved: 403 denied at the pending URL', (on) => (on ? { decision: 'deny', detail: 'closed for the night' } : { decision: 'grant' }), 403, { error: 'denied', detail: 'closed for the night' }],
    [
      'R3-11 a policy hook that fails when the held call is approved: 500 server_error',
      (on) => {
        if (on) throw new Error('policy store unreachable')
        return { decision: 'grant' }
      },
      500,
      { error: 'server_error' },
    ],
  ]
  it.each(turns)('%s — retained: the repeat gets the same answer at once, the call never runs', async (_name, policyOf, status, body) => {
    let on = false
    const api = await bookingApi({ policy: () => policyOf(on) })
    try {
      const agent = await makeAgent(ap, { ps: ps.issuer })
      const at = await authToken(ps, api.origin, agent, { sub: `user-${status}`, scope: 'bookings:write' })
      const res = (await send(`${api.origin}/bookings`, { signer: agent.signer, token: at }, { json: BIZ })).res
      expect(res.status).toBe(202)
      const location = res.headers.get('location')!
      const granted = await perCallToken(api, agent, (await resourceTokenOf(res, api.origin, agent)).claims)
      on = true
      const refused = (await send(location, { signer: agent.signer, token: granted })).res
      expect(refused.status).toBe(status)
      expect(await refused.json()).toMatchObject(body)
      on = false
      // The refusal is the call's outcome: the repeat gets it, and the call never runs.
      const again = (await send(location, { signer: agent.signer, token: granted })).res
      expect(again.status).toBe(status)
      expect(await again.json()).toMatchObject(body)
      expect(api.runs).toEqual([])
      expect(api.written).toEqual([])
    } finally {
      await api.close()
    }
  })
})
