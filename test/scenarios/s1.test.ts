/**
 * Scenario S1 (/work/shared/scenarios.md), end to end over real HTTP on 127.0.0.1 with the
 * person at a real browser (Chromium): Alice's travel agent, her Person Server, and the Booking
 * API (examples/booking-api.ts, Hono).
 *
 * 1. Alice approves a mission on her PS's consent page; its s256 travels in the tokens.
 * 2. `GET /flights` on agent identity: 200.
 * 3. A $320 refundable booking: 401 → the PS (Alice consents once) → auth token → 201; the next
 *    one books with no prompt.
 * 4. A $9,000 non-refundable booking is held (202) as a per-call proposal; Alice sees the exact
 *    amount, fare and refundability. Deny → refused, nothing written. Approve → 201, once; the same
 *    per-call token again → the retained result; other parameters under it → refused.
 * 5. The PS audit trail says who, for whom, under which mission, what was asked and decided, when.
 *
 * Test names start with `S1` (run with `-t S1`).
 */
import { mkdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.js'
import { AgentCredentials, createAgentClient, KeyRing, type AgentClient } from '../../src/agent/index.js'
import { createSigner, decodeJwt, generateKeyPair, signRequest, type GeneratedKeyPair, type Signer } from '../../src/protocol/index.js'
import { bookingApi, type Booking } from '../../examples/booking-api.js'
import { closeAll, LOOPBACK, serve, startAgentProvider } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'

const AGENT_LOCAL = 'travel-bot.7f3c'

let browser: Browser
let context: BrowserContext
let page: Page
let ps: RunningPs
let alice: string
let apIssuer: string
let key: GeneratedKeyPair
let signer: Signer
let client: AgentClient
let api: { origin: string; bookings: Booking[] }
let api401: { origin: string; bookings: Booking[] }
let mission: string
/** What the person did at each interaction, and what the page said. */
const pages: { action: string; text: string }[] = []
/** The next decision the person makes in the browser. */
let nextDecision: 'approve' | 'deny' = 'approve'
/** Every request the agent sent (for presenting a token again). */
const sent: { url: string; method: string; headers: Headers; body: string | undefined }[] = []

async function startBookingApi(perCallDelivery: '202' | '401'): Promise<{ origin: string; bookings: Booking[] }> {
  let built: ReturnType<typeof bookingApi> | undefined
  const keys = await KeyRing.create()
  const origin = await serve((req) => built!.app.fetch(req))
  built = bookingApi({ issuer: origin, keys, personServers: [ps.issuer], perCallDelivery, ...LOOPBACK })
  return { origin, bookings: built.bookings }
}

/** Alice at her browser: log in when asked, read the page, decide. */
async function decideInBrowser(userUrl: string, shot?: string): Promise<void> {
  await page.goto(userUrl)
  if (new URL(page.url()).pathname === '/login') {
    await page.fill('input[name="username"]', 'alice')
    await page.fill('input[name="password"]', 'correct horse battery staple')
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type="submit"]')])
  }
  const text = await page.innerText('body')
  if (shot === undefined && text.includes('$9,000') && !pages.some((p) => p.text.includes('$9,000'))) shot = 'test-artifacts/s1-per-call-page.png'
  if (shot !== undefined) {
    mkdirSync('test-artifacts', { recursive: true })
    await page.screenshot({ path: shot, fullPage: true })
  }
  const action = nextDecision
  pages.push({ action, text })
  await Promise.all([page.waitForLoadState('load'), page.click(`button[name="action"][value="${action}"]`)])
}

const post = (origin: string, json: unknown, o: { mission?: string } = {}) =>
  client.fetch(`${origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json), aauth: { mission: o.mission ?? mission } })

/** When set, the agent's first request under a per-call grant is stopped before it is sent. */
let stopPerCallRetry = false

/** The token in a request's `Signature-Key` (an empty JWT when none). */
const tokenIn = (headers: Headers): string => /jwt="([^"]+)"/.exec(headers.get('signature-key') ?? '')?.[1] ?? 'e30.e30.'

/** The token the agent presented on its last request to `url` matching `pred`. */
function presentedOn(pred: (r: (typeof sent)[number]) => boolean): { token: string; request: (typeof sent)[number] } {
  const r = [...sent].reverse().find(pred)
  if (r === undefined) throw new Error('no such request was sent')
  const m = /jwt="([^"]+)"/.exec(r.headers.get('signature-key') ?? '')
  return { token: m![1]!, request: r }
}

/**
 * Clock for hand-signed requests: a few seconds ahead of the agent's own (which moves identical
 * requests to the next second) and one second on each time, so no two share a signature base.
 */
let signedAt = 0
const nextSecond = (): number => (signedAt = Math.max(Date.now() + 3000, signedAt + 1000))

/** Signs a request as the agent, presenting `token` (as a stolen or replayed copy would be). */
async function signedAs(url: string, method: string, token: string, body?: string, by: Signer = signer): Promise<Response> {
  const headers = new Headers(body === undefined ? {} : { 'content-type': 'application/json' })
  const bytes = body === undefined ? undefined : new TextEncoder().encode(body)
  const signed = await signRequest({ method, url: new URL(url), headers }, { signer: by, signatureKey: { scheme: 'jwt', jwt: token, cache: false }, now: nextSecond, ...(bytes === undefined ? {} : { body: bytes }) })
  return fetch(url, { method, headers: signed.headers, ...(bytes === undefined ? {} : { body: bytes }) })
}

beforeAll(async () => {
  browser = await launchChromium()
  context = await browser.newContext({ viewport: { width: 390, height: 844 } })
  page = await context.newPage()
  const started = await startAgentProvider()
  apIssuer = started.issuer
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  api = await startBookingApi('202')
  api401 = await startBookingApi('401')
  key = await generateKeyPair('Ed25519')
  signer = await createSigner(key.privateJwk)
  const credentials = new AgentCredentials({ refresh: async () => ({ agentToken: await started.ap.issue({ local: AGENT_LOCAL, cnfJwk: key.publicJwk, ps: ps.issuer }), signer }) })
  const recordingFetch: typeof fetch = async (input, init) => {
    const req = new Request(input, init)
    sent.push({ url: req.url, method: req.method, headers: new Headers(req.headers), body: req.body === null ? undefined : await req.clone().text() })
    // The test may stop the agent's retry under a fresh per-call grant before it reaches the API.
    if (stopPerCallRetry && /aauth\/r3\/call\//.test(JSON.stringify(decodeJwt(tokenIn(req.headers)).payload))) return new Response('stopped by the test', { status: 503 })
    return fetch(req)
  }
  client = createAgentClient({
    credentials,
    fetch: recordingFetch,
    ...LOOPBACK,
    minPollIntervalMs: 0,
    capabilities: ['interaction'],
    onInteraction: ({ userUrl }) => decideInBrowser(userUrl, pages.length === 0 ? 'test-artifacts/s1-mission-page.png' : undefined),
  })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await closeAll()
})

describe('S1 the booking agent', () => {
  it('S1 step 1: Alice approves the mission on her consent page; the approval carries s256, the blob and a person token for the Booking API', async () => {
    const approved = await client.proposeMission({ description: 'Book my Sydney conference trip under $2,000. Propose before booking.', resources: [api.origin], limits: { amount: { max: 2000, currency: 'USD' } } })
    mission = approved.s256
    expect(approved.blob).toMatchObject({ agent: `aauth:${AGENT_LOCAL}@${new URL(apIssuer).host}`, description: expect.stringContaining('Sydney') })
    expect(pages.at(-1)!.text).toContain('Book my Sydney conference trip under $2,000')
    expect(decodeJwt(approved.personTokens[api.origin]!.token).payload).toMatchObject({ aud: api.origin, mission_s256: mission })
    expect((await ps.store.getMission(mission))?.status).toBe('active')
  }, 60_000)

  it('S1 step 2: GET /flights on agent identity → 200', async () => {
    const r = await client.fetch(`${api.origin}/flights?to=SYD`)
    expect(r.status).toBe(200)
    expect(((await r.json()) as { flights: unknown[] }).flights).toHaveLength(2)
  })

  it('S1 step 3: $320 refundable → 401 auth-token → Alice consents → 201; the next such booking needs no prompt', async () => {
    const asked = pages.length
    const r = await post(api.origin, { fare: 'ECO-SYD', amount: 320, refundable: true })
    expect(r.status).toBe(201)
    expect(pages.length).toBe(asked + 1)
    expect(pages.at(-1)!.text).toContain('bookings:write')
    const again = await post(api.origin, { fare: 'ECO-SYD', amount: 320, refundable: true })
    expect(again.status).toBe(201)
    expect(pages.length).toBe(asked + 1)
    expect(api.bookings.map((b) => [b.fare, b.mission])).toEqual([['ECO-SYD', mission], ['ECO-SYD', mission]])
    const at = decodeJwt(presentedOn((q) => q.url === `${api.origin}/bookings` && q.method === 'POST').token).payload
    expect(at).toMatchObject({ iss: ps.issuer, aud: api.origin, scope: 'bookings:write', mission_s256: mission })
    expect(at['r3_granted']).toMatchObject({ vocabulary: 'urn:aauth:vocabulary:openapi', operations: expect.arrayContaining([{ operationId: 'createBooking' }]) })
  }, 60_000)

  it('S1 step 4: $9,000 non-refundable is held (202); the page shows amount, fare and refundability; deny → refused, nothing written', async () => {
    const before = api.bookings.length
    nextDecision = 'deny'
    await expect(post(api.origin, { fare: 'BIZ-SYD', amount: 9000, refundable: false })).rejects.toMatchObject({ code: 'denied' })
    const seen = pages.at(-1)!
    expect(seen.action).toBe('deny')
    expect(seen.text).toContain('$9,000')
    expect(seen.text).toContain('BIZ-SYD')
    expect(seen.text).toMatch(/non-refundable/i)
    expect(seen.text).toContain('Approving allows this one call')
    expect(api.bookings.length).toBe(before)
    const held = sent.find((q) => q.url === `${api.origin}/bookings` && q.method === 'POST' && q.body?.includes('BIZ-SYD'))
    expect(held).toBeDefined()
  }, 60_000)

  it('S1 step 4: approve → 201, executed once; the same per-call token at the pending URL → the retained result', async () => {
    const before = api.bookings.length
    nextDecision = 'approve'
    const r = await post(api.origin, { fare: 'BIZ-SYD', amount: 9000, refundable: false })
    expect(r.status).toBe(201)
    const first = (await r.json()) as { id: string }
    expect(api.bookings.length).toBe(before + 1)
    expect(api.bookings.at(-1)).toMatchObject({ fare: 'BIZ-SYD', amount: 9000, refundable: false, mission })
    // The poll that carried the per-call auth token, presented again (as after a lost response).
    const { token, request } = presentedOn((q) => q.url.startsWith(`${api.origin}/aauth/pending/`))
    expect(decodeJwt(token).payload).toMatchObject({ r3_granted: { operations: [{ operationId: 'createBooking' }] } })
    const repeat = await signedAs(request.url, 'GET', token)
    expect(repeat.status).toBe(201)
    expect(await repeat.json()).toEqual(first)
    expect(api.bookings.length).toBe(before + 1)
    // That token never runs another call, whatever it asks for.
    const other = await signedAs(`${api.origin}/bookings`, 'POST', token, JSON.stringify({ fare: 'BIZ-SYD', amount: 9000, refundable: false }))
    expect(other.status).toBeGreaterThanOrEqual(400)
    expect(api.bookings.length).toBe(before + 1)
  }, 60_000)

  it('S1 step 4 over 401: parameters changed after approval → refused, nothing written; the approved ones → 201 once; a repeat → the retained result', async () => {
    nextDecision = 'approve'
    // The agent is approved, but its retry is stopped: the test holds the fresh per-call grant.
    stopPerCallRetry = true
    const stopped = await post(api401.origin, { fare: 'BIZ-SYD', amount: 9000, refundable: false })
    stopPerCallRetry = false
    expect(stopped.status).toBe(503)
    expect(pages.at(-1)!.text).toContain('$9,000')
    const { token } = presentedOn((q) => q.url === `${api401.origin}/bookings` && q.method === 'POST' && /aauth\/r3\/call\//.test(JSON.stringify(decodeJwt(tokenIn(q.headers)).payload)))
    const call = (json: unknown) => signedAs(`${api401.origin}/bookings`, 'POST', token, JSON.stringify(json))
    for (const changed of [{ fare: 'BIZ-SYD', amount: 9500, refundable: false }, { fare: 'BIZ-SYD', amount: 9000, refundable: true }, { fare: 'FIRST-SYD', amount: 9000, refundable: false }]) {
      const r = await call(changed)
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: 'denied' })
    }
    expect(api401.bookings).toHaveLength(0)
    // Member order does not matter: the same call is JSON-equal.
    const ok = await call({ refundable: false, amount: 9000, fare: 'BIZ-SYD' })
    expect(ok.status).toBe(201)
    const first = await ok.json()
    expect(api401.bookings).toHaveLength(1)
    const same = await call({ fare: 'BIZ-SYD', amount: 9000, refundable: false })
    expect(same.status).toBe(201)
    expect(await same.json()).toEqual(first)
    expect(api401.bookings).toHaveLength(1)
    // Spent: any other call under it is a new one — challenged, never run.
    const after = await call({ fare: 'BIZ-SYD', amount: 9500, refundable: false })
    expect(after.status).toBe(401)
    expect(after.headers.get('aauth-requirement')).toMatch(/^requirement=auth-token/)
    expect(api401.bookings).toHaveLength(1)
  }, 60_000)

  it('S1 step 5: the PS audit trail says who, for whom, under which mission, what was asked, what was decided, when', async () => {
    const agentId = `aauth:${AGENT_LOCAL}@${new URL(apIssuer).host}`
    const events = await ps.store.queryAudit({ missionS256: mission })
    expect(events.length).toBeGreaterThan(0)
    for (const e of events) expect(e).toMatchObject({ personId: alice, missionS256: mission, at: expect.any(Number) })
    const decided = events.filter((e) => e.type === 'request.denied' || e.type === 'request.approved' || e.type === 'auth_token.issued')
    expect(decided.some((e) => e.type === 'request.denied' && e.agentSub === agentId)).toBe(true)
    const perCall = events.filter((e) => e.type === 'auth_token.issued' && typeof e.detail?.['r3_s256'] === 'string')
    expect(perCall.length).toBeGreaterThanOrEqual(2)
    for (const e of perCall) expect(e).toMatchObject({ agentSub: agentId, resource: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/), scope: 'bookings:write' })
  })

  it('S1 a stolen auth token presented with another key, and the same signature replayed → 401 with the right Signature-Error', async () => {
    const { token, request } = presentedOn((q) => q.url === `${api.origin}/bookings` && q.method === 'POST' && q.body?.includes('ECO-SYD') === true)
    const thief = await createSigner((await generateKeyPair('Ed25519')).privateJwk)
    const stolen = await signedAs(`${api.origin}/bookings`, 'POST', token, JSON.stringify({ fare: 'ECO-SYD', amount: 320, refundable: true }), thief)
    expect(stolen.status).toBe(401)
    expect(stolen.headers.get('signature-error')).toMatch(/^error=invalid_signature/)
    const before = api.bookings.length
    const replay = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body! })
    expect(replay.status).toBe(401)
    expect(replay.headers.get('signature-error')).toMatch(/^error=invalid_signature/)
    expect(api.bookings.length).toBe(before)
  })
})
