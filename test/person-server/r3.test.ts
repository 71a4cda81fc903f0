/**
 * R3 at the Person Server (draft-hardt-aauth-r3 §R3 Processing, §Auth Token Extensions,
 * §Per-Call Proposals): the PS fetches the document a resource token references with its own
 * server signature, checks the hash over the bytes, issues the R3 claims, never lets a remembered
 * grant decide a per-call proposal, and lets policy machine-decide one with an audited reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, generateKeyPair, jwkThumbprint, r3Digest, randomJti, serializeR3, type IssuerKey, type PerCallProposal, type R3Document } from '../../src/protocol/index.js'
import { perCallCeiling } from '../../src/person-server/index.js'
import { closeAll, serve } from '../helpers/aauth-servers.js'
import { bindWithGrants, startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

const OPENAPI = 'urn:aauth:vocabulary:openapi'
const now = () => Math.floor(Date.now() / 1000)

/** A resource that serves R3 documents by path and records who fetched them. */
interface R3Resource extends LoopIssuer {
  put(path: string, bytes: Uint8Array | string): string
  readonly fetches: { path: string; signatureKey: string | null }[]
}

async function r3Resource(): Promise<R3Resource> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const kid = await jwkThumbprint(publicJwk)
  const docs = new Map<string, Uint8Array | string>()
  const fetches: { path: string; signatureKey: string | null }[] = []
  const issuer = await serve((req, origin) => {
    const path = new URL(req.url).pathname
    if (path === '/.well-known/aauth-resource.json') return Response.json({ issuer: origin, jwks_uri: `${origin}/.well-known/jwks.json`, name: 'Booking API' })
    if (path === '/.well-known/jwks.json') return Response.json({ keys: [{ ...publicJwk, kid }] })
    const doc = docs.get(path)
    if (doc === undefined) return new Response('not found', { status: 404 })
    fetches.push({ path, signatureKey: req.headers.get('signature-key') })
    return new Response(doc as BodyInit, { headers: { 'content-type': 'application/json' } })
  })
  const key: IssuerKey = { kid, privateJwk }
  return {
    issuer,
    dwk: 'aauth-resource.json',
    key,
    publicJwk: { ...publicJwk, kid },
    fetches,
    put(path, bytes) {
      docs.set(path, bytes)
      return `${issuer}${path}`
    },
  }
}

let ps: RunningPs
let ap: LoopIssuer
let res: R3Resource
let agent: Agent
let alice: string
let pt: string
let ptClaims: Record<string, unknown>

async function resourceToken(claims: Record<string, unknown>): Promise<string> {
  return forgeToken(res, 'aa-resource+jwt', {
    iss: res.issuer,
    dwk: 'aauth-resource.json',
    aud: ps.issuer,
    ps: ps.issuer,
    sub: ptClaims['sub'],
    presented_jti: ptClaims['jti'],
    agent_jkt: agent.jkt,
    scope: 'bookings:write',
    jti: randomJti(),
    iat: now(),
    exp: now() + 300,
    ...claims,
  })
}

async function publish(doc: R3Document): Promise<{ r3_uri: string; r3_s256: string }> {
  const { bytes, s256 } = await serializeR3(doc)
  return { r3_uri: res.put(`/aauth/r3/${s256}`, bytes), r3_s256: s256 }
}

const issuedCount = async (): Promise<number> => (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length

function token(claims: Record<string, unknown>) {
  return send(`${ps.issuer}/token`, agent, { json: { resource_token: claims['rt'], presented_token: pt } })
}

const classDoc: R3Document = {
  vocabulary: OPENAPI,
  operations: [{ operationId: 'listBookings' }, { operationId: 'createBooking' }, { operationId: 'cancelBooking', 'x-aauth-access-mode': 'per-call' }],
  display: { summary: 'Search, book and cancel trips' },
}

const proposal = (amount: number, refundable: boolean): PerCallProposal => ({
  vocabulary: OPENAPI,
  operations: [{ operationId: 'createBooking' }],
  parameters: { fare: amount > 1000 ? 'BIZ-SYD' : 'ECO-SYD', amount, refundable, notes: { s256: 'A'.repeat(43), excerpt: 'window seat' } },
  display: { summary: `Book a ${refundable ? 'refundable' : 'non-refundable'} flight to Sydney`, amount, currency: 'USD', refundable },
})

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json', { name: 'Test Agents' })
  res = await r3Resource()
  ps = await startRealPersonServer({ policy: perCallCeiling({ parameter: 'amount', max: 50_000 }) })
  alice = await ps.addPerson('alice')
  agent = await makeAgent(ap, { local: 'travel-bot.7f3c', ps: ps.issuer })
  // Alice's standing grant for bookings:write (remembered "always").
  await bindWithGrants(ps.store, { agentIss: ap.issuer, agentSub: agent.id, personId: alice, resource: res.issuer, scopes: ['bookings:write'] })
  const r = await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })
  expect(r.res.status).toBe(200)
  pt = ((await r.res.json()) as { person_token: string }).person_token
  ptClaims = decodeJwt(pt).payload
})
afterAll(closeAll)

describe('R3 class documents', () => {
  it('R3-06 / R3-08 the PS fetches the document signed as itself and issues r3_uri, r3_s256, r3_granted and r3_per_call', async () => {
    const ref = await publish(classDoc)
    const r = await token({ rt: await resourceToken(ref) })
    expect(r.res.status).toBe(200)
    const claims = decodeJwt(((await r.res.json()) as { auth_token: string }).auth_token).payload
    expect(claims).toMatchObject({
      ...ref,
      scope: 'bookings:write',
      r3_granted: { vocabulary: OPENAPI, operations: [{ operationId: 'listBookings' }, { operationId: 'createBooking' }] },
      r3_per_call: { vocabulary: OPENAPI, operations: [{ operationId: 'cancelBooking' }] },
    })
    const fetch = res.fetches.find((f) => f.path === new URL(ref.r3_uri).pathname)!
    expect(fetch.signatureKey).toMatch(/=jwks_uri;/)
    expect(fetch.signatureKey).toContain(`id="${ps.issuer}"`)
    expect(fetch.signatureKey).toContain('dwk="aauth-person.json"')
    const audit = await ps.store.queryAudit({ personId: alice, order: 'desc', limit: 1 })
    expect(audit[0]).toMatchObject({ type: 'auth_token.issued', detail: { r3_uri: ref.r3_uri, r3_s256: ref.r3_s256 } })
  })

  it('R3-06 a document fetched once is not fetched again (content addressing: cached by hash)', async () => {
    const ref = await publish({ ...classDoc, display: { summary: 'cached' } })
    for (let i = 0; i < 2; i++) expect((await token({ rt: await resourceToken(ref) })).res.status).toBe(200)
    expect(res.fetches.filter((f) => f.path === new URL(ref.r3_uri).pathname)).toHaveLength(1)
  })

  const bad: [string, () => Promise<Record<string, unknown>>, number, string][] = [
    ['NEG-R3-02 bytes that do not match r3_s256', async () => ({ r3_uri: res.put('/aauth/r3/tampered', JSON.stringify(classDoc)), r3_s256: await r3Digest('something else') }), 400, 'invalid_resource_token'],
    ['NEG-R3-02 the same document re-serialised (whitespace) no longer matches', async () => {
      const doc = { ...classDoc, display: { summary: 'never fetched before' } }
      const { s256 } = await serializeR3(doc)
      return { r3_uri: res.put('/aauth/r3/pretty', JSON.stringify(doc, null, 2)), r3_s256: s256 }
    }, 400, 'invalid_resource_token'],
    ['R3-03 r3_uri without r3_s256', async () => ({ r3_uri: `${res.issuer}/aauth/r3/x` }), 400, 'invalid_resource_token'],
    ['R3-03 r3_s256 without r3_uri', async () => ({ r3_s256: await r3Digest('x') }), 400, 'invalid_resource_token'],
    ['r3_uri on another origin than the resource', async () => ({ r3_uri: 'http://127.0.0.2:9/aauth/r3/x', r3_s256: await r3Digest('x') }), 400, 'invalid_resource_token'],
    ['a document the resource does not serve (404)', async () => ({ r3_uri: `${res.issuer}/aauth/r3/missing`, r3_s256: await r3Digest('x') }), 400, 'invalid_resource_token'],
    ['a document without operations', async () => publish({ vocabulary: OPENAPI, operations: [] }), 400, 'invalid_resource_token'],
    ['a per-call proposal naming two operations', async () => publish({ ...proposal(10, true), operations: [{ operationId: 'a' }, { operationId: 'b' }] }), 400, 'invalid_resource_token'],
  ]
  it.each(bad)('%s → refused, nothing issued', async (_n, claims, status, error) => {
    const before = await issuedCount()
    const r = await token({ rt: await resourceToken(await claims()) })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect(await issuedCount()).toBe(before)
  })
})

describe('R3 per-call proposals', () => {
  it('R3-10 a standing grant does not decide a per-call proposal: 202 for the person, with the call on the consent view', async () => {
    const ref = await publish(proposal(9000, false))
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(ref), presented_token: pt, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    expect(await issuedCount()).toBe(before)
    const id = new URL(r.res.headers.get('location')!).pathname.split('/').pop()!
    const rec = (await ps.store.getPending(id))!
    expect(rec.view.perCall).toBe(true)
    expect(rec.view.details).toMatchObject({ summary: 'Book a non-refundable flight to Sydney', amount: 9000, currency: 'USD', refundable: false, fare: 'BIZ-SYD', notes: 'window seat', operation: 'createBooking' })

    await ps.ps.consent.open(id, alice)
    // "Remember" is ignored for a per-call approval: nothing standing comes of it.
    const grantsBefore = (await ps.store.listGrants(alice)).length
    await ps.ps.consent.decide(id, alice, { approve: true, remember: 'always' })
    expect((await ps.store.listGrants(alice)).length).toBe(grantsBefore)
    const done = (await ps.store.getPending(id))!
    expect(done.state).toBe('granted')
    const at = decodeJwt(String(done.result!.body['auth_token'])).payload
    expect(at).toMatchObject({ ...ref, r3_granted: { vocabulary: OPENAPI, operations: [{ operationId: 'createBooking' }] } })
    expect(at['r3_per_call']).toBeUndefined()

    // The same proposal again is a new call: asked again, not remembered.
    const again = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(ref), presented_token: pt, capabilities: ['interaction'] } })
    expect(again.res.status).toBe(202)
  })

  it('R3 §Large and Sensitive Payloads: policy machine-denies a call above the ceiling without asking, audited with the reason', async () => {
    const ref = await publish(proposal(60_000, false))
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(ref), presented_token: pt, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'denied', detail: 'amount 60000 is above the configured ceiling of 50000' })
    expect(await issuedCount()).toBe(before)
    const [last] = await ps.store.queryAudit({ personId: alice, order: 'desc', limit: 1 })
    expect(last).toMatchObject({ type: 'request.denied', decision: 'deny', reason: 'amount 60000 is above the configured ceiling of 50000', detail: { r3_s256: ref.r3_s256 } })
  })

  it('PS-CLAR-02 an updated_request that policy refuses (a new proposal above the ceiling) ends the request as denied, nothing issued', async () => {
    const first = await publish(proposal(100, false))
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(first), presented_token: pt, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const location = r.res.headers.get('location')!
    const before = await issuedCount()
    const bigger = await publish(proposal(70_000, false))
    const u = await send(location, agent, { json: { action: 'updated_request', resource_token: await resourceToken(bigger), presented_token: pt } })
    expect(u.res.status).toBe(403)
    expect(await u.res.json()).toMatchObject({ error: 'denied', detail: 'amount 70000 is above the configured ceiling of 50000' })
    expect((await ps.store.getPending(location.split('/').pop()!))?.state).toBe('denied')
    expect(await issuedCount()).toBe(before)
  })

  it('the mission ceiling wins over the configured one (limits in the mission blob)', async () => {
    const blob = JSON.stringify({ agent: agent.id, approved_at: new Date().toISOString(), description: 'Book my Sydney trip under $2,000', limits: { amount: { max: 2000, currency: 'USD' } } })
    const s256 = await r3Digest(blob)
    await ps.store.commit({ missions: [{ s256, agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'active', blob, createdAt: Date.now() }] })
    const mpt = ((await (await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer, mission_s256: s256 } })).res.json()) as { person_token: string }).person_token
    const mClaims = decodeJwt(mpt).payload
    const ref = await publish(proposal(9000, false))
    const rt = await resourceToken({ ...ref, mission_s256: s256, presented_jti: mClaims['jti'] })
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: rt, presented_token: mpt, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'denied', detail: "amount 9000 is above the mission's ceiling of 2000" })
    const [last] = await ps.store.queryAudit({ missionS256: s256, order: 'desc', limit: 1 })
    expect(last).toMatchObject({ type: 'request.denied', missionS256: s256 })
  })
})
