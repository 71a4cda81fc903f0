/**
 * Call chaining over loopback HTTP (main draft §Call Chaining, §Upstream Token Verification,
 * §Intermediary Agent Identity, §Directed Identifiers Across a Chain; CHECKLIST CHAIN-01..04,
 * PS-CH-01..07, PS-PT-05, PS-AT-02, NEG-PS-14..16/31/32): an agent calls R1 (a Hono resource that
 * is also an intermediary), whose handler calls R2 for the same person through the real Person
 * Server with `upstream_token`, and chains an interaction the downstream PS needs back to the agent
 * (§Interaction Chaining). Every refusal of `upstream_token` is one row: exact status and
 * code, and nothing issued.
 */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient, type AgentClient } from '../../src/agent/index.js'
import { createAgentToken, createPersonToken, createSigner, decodeJwt, generateKeyPair, randomJti } from '../../src/protocol/index.js'
import { createIntermediary, createResource, type Intermediary, type ResourceAccess } from '../../src/resource/index.js'
import { aauth as honoAauth, type AAuthEnv } from '../../src/resource/hono.js'
import { closeAll, LOOPBACK, startAgentProvider } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, resourceKeys, send, startApp, type Agent, type App } from '../resource/resource-fixture.js'

let ps: RunningPs
let alice: string
let r2: App
let r1: string
let r1Server: Server
let chain: Intermediary
let agent: AgentClient
let apIssuer: string
let agentId = ''
let agentSigner: Awaited<ReturnType<typeof createSigner>>
/** Where R1's interaction links sent the person. */
const chainedHops: string[] = []
/** R1's own interaction links for chained requests. */
const chainedInteraction: string[] = []
/** R1's own pending URLs for chained requests. */
const chainedPending: string[] = []
/** What R1's handler saw and what its downstream call returned, per request. */
const served: { access: ResourceAccess; downstream: number; body: unknown }[] = []

async function startR1(): Promise<void> {
  const keys = await resourceKeys()
  const app = new Hono<AAuthEnv>()
  r1Server = createAdaptorServer({ fetch: (req: Request) => app.fetch(req) }) as Server
  await new Promise<void>((r) => r1Server.listen(0, '127.0.0.1', r))
  r1 = `http://127.0.0.1:${(r1Server.address() as AddressInfo).port}`
  const resource = createResource({ issuer: r1, keys, personServers: [ps.issuer], metadata: { name: 'Trips API' }, ...LOOPBACK })
  chain = await createIntermediary({ issuer: r1, keys, name: 'Trips API (as an agent)', local: 'trips', ...LOOPBACK, client: { minPollIntervalMs: 0 } })
  // CHAIN-01 / CHAIN-05: its agent metadata and its chained pending and interaction URLs, before the middleware.
  app.use('*', async (c, next) => chain.handle(c.req.raw) ?? next())
  app.use('*', honoAauth(resource, (c) => (c.req.path === '/itinerary' || c.req.path.startsWith(chain.pendingPath) ? { access: 'person' } : { access: 'auth', scope: 'trips:write' })))
  // DEF-02: a chained pending URL answers the caller's key only.
  app.get(`${chain.pendingPath}:id`, (c) => chain.poll(c.req.raw, c.get('aauth'))!)
  app.all('*', async (c) => {
    const access = c.get('aauth')
    if (c.req.path === '/refund') {
      return chain.chained(access, async (client) => {
        const res = await client.fetch(`${r2.origin}/refund`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 40 }) })
        const body: unknown = await res.json()
        served.push({ access, downstream: res.status, body })
        return Response.json({ downstream: res.status, body }, { status: 201 })
      })
    }
    try {
      const res = await chain.downstream(access).fetch(`${r2.origin}/charge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 320 }) })
      const body: unknown = await res.json()
      served.push({ access, downstream: res.status, body })
      return c.json({ downstream: res.status, body })
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'error'
      served.push({ access, downstream: 0, body: { error: code } })
      return c.json({ error: code }, 502)
    }
  })
}

/** Live tokens issued to the intermediary. */
async function issuedToChain(): Promise<number> {
  return (await ps.store.liveIssued({ agentIss: r1, agentSub: chain.agentId, now: Date.now() })).length
}

/** Alice lets the intermediary charge at R2 (its grants are its own, not the calling agent's). */
async function grantChain(): Promise<void> {
  const at = Date.now()
  await ps.store.commit({ grants: ['', 'payments:charge'].map((scope, i) => ({ id: `chain-${i}-${at}`, personId: alice, agentIss: r1, agentSub: chain.agentId, resource: r2.origin, scope, createdAt: at })) })
}

beforeAll(async () => {
  const ap = await startAgentProvider()
  apIssuer = ap.issuer
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  const r2Keys = await resourceKeys()
  r2 = await startApp('hono', { routes: { '/charge': { access: 'auth', scope: 'payments:charge' }, '/refund': { access: 'auth', scope: 'payments:refund' } }, options: () => ({ keys: r2Keys, personServers: [ps.issuer], metadata: { name: 'Payments API' } }) })
  await startR1()
  const key = await generateKeyPair('Ed25519')
  const signer = await createSigner(key.privateJwk)
  agentSigner = signer
  agent = createAgentClient({
    credentials: new AgentCredentials({
      refresh: async () => {
        const agentToken = await ap.ap.issue({ local: 'travel-bot.7f3c', cnfJwk: key.publicJwk, ps: ps.issuer })
        agentId = decodeJwt(agentToken).payload['sub'] as string
        return { agentToken, signer }
      },
    }),
    ...LOOPBACK,
    minPollIntervalMs: 0,
    // The person follows links themselves here (a PS relay would put them on Alice's dashboard).
    relayInteraction: false,
    onInteraction: async ({ code: given, userUrl, origin, pendingUrl }) => {
      let code = given
      if (origin === r1) {
        chainedPending.push(pendingUrl)
        // Interaction chaining: R1's own link sends the person on to the PS's page for the downstream request.
        chainedInteraction.push(userUrl)
        const hop = await fetch(userUrl, { redirect: 'manual' })
        expect(hop.status).toBe(303)
        const next = new URL(hop.headers.get('location')!)
        expect(next.origin).toBe(ps.issuer)
        chainedHops.push(next.href)
        code = next.searchParams.get('code')!
      }
      const rec = await ps.ps.consent.findByCode(code)
      await ps.ps.consent.open(rec!.id, alice)
      await ps.ps.consent.decide(rec!.id, alice, { approve: true, remember: 'always' })
    },
  })
})
afterAll(async () => {
  await closeAll()
  await new Promise<void>((r) => r1Server.close(() => r()))
  await r2.close()
})

async function book(path = '/trips'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await agent.fetch(`${r1}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: 'SYD' }) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('call chaining', () => {
  it('CHAIN-01 the intermediary publishes agent metadata on its own origin with the resource issuer', async () => {
    const md = (await (await fetch(`${r1}/.well-known/aauth-agent.json`)).json()) as Record<string, unknown>
    expect(md).toMatchObject({ issuer: r1, jwks_uri: `${r1}/.well-known/jwks.json` })
    expect(chain.agentId).toBe(`aauth:trips@${new URL(r1).host}`)
  })

  it('without a grant for the intermediary, plain downstream() (no interaction capability) is refused user_unreachable, nothing issued', async () => {
    const before = await issuedToChain()
    const r = await book()
    expect(r.status).toBe(502)
    expect(r.body).toEqual({ error: 'user_unreachable' })
    expect(await issuedToChain()).toBe(before)
    // The intermediary was not bound to Alice by any of this (§Intermediary Agent Identity).
    expect(await ps.store.getBinding(r1, chain.agentId)).toBeUndefined()
  })

  it('CHAIN-02..04 / PS-PT-05 / PS-CH-05 / PS-CH-07 agent → R1 → R2: the PS issues for the upstream person, a different directed sub, bounded by the upstream token, recorded with it', async () => {
    await grantChain()
    const r = await book()
    expect(r).toMatchObject({ status: 200, body: { downstream: 200, body: { mode: 'auth', scopes: ['payments:charge'] } } })
    const upstream = served.at(-1)!.access
    expect(upstream.token.type).toBe('aa-auth+jwt')
    const downstream = r2.runs.at(-1)!.access!
    // Two resources, two directed identifiers for Alice; never copied across the chain.
    expect(upstream.person?.sub).toBeDefined()
    expect(downstream.person?.sub).toBeDefined()
    expect(downstream.person?.sub).not.toBe(upstream.person?.sub)
    expect(downstream.person?.ps).toBe(ps.issuer)
    expect(await ps.store.personForSubject(r2.origin, downstream.person!.sub)).toBe(alice)
    // Both downstream tokens are recorded with the upstream token and expire no later than it.
    const up = upstream.token.claims
    const down = await ps.store.issuedFromUpstream([up.jti], Date.now())
    expect(down.map((t) => t.kind).sort()).toEqual(['auth', 'person'])
    for (const t of down) {
      expect(t).toMatchObject({ personId: alice, agentIss: r1, agentSub: chain.agentId, resource: r2.origin, upstreamIss: ps.issuer, upstreamJti: up.jti })
      expect(t.expiresAt).toBeLessThanOrEqual(up.exp * 1000)
    }
    // The downstream auth token the resource saw is bound to the intermediary's key, not the agent's.
    expect(downstream.token.claims.exp).toBeLessThanOrEqual(up.exp)
    expect(downstream.agentJkt).not.toBe(upstream.agentJkt)
    // Audited with the chain.
    const events = await ps.store.queryAudit({ personId: alice, agentSub: chain.agentId, limit: 1000 })
    const issued = events.filter((e) => e.type === 'auth_token.issued' || e.type === 'person_token.issued')
    expect(issued.length).toBeGreaterThanOrEqual(2)
    for (const e of issued) expect(e.detail).toMatchObject({ upstream: { iss: ps.issuer, jti: up.jti } })
  })

  it('PS-PT-05 a person token served on identity is an upstream token too', async () => {
    // Presented by hand: the agent client would present its auth token for R1 here.
    const pt = await agent.personToken(r1)
    const r = await send(`${r1}/itinerary`, { signer: agentSigner, token: pt.token }, { json: { to: 'SYD' } })
    expect(r.res.status).toBe(200)
    expect(await r.res.json()).toMatchObject({ downstream: 200 })
    expect(served.at(-1)!.access.token.type).toBe('aa-person+jwt')
    const down = await ps.store.issuedFromUpstream([pt.jti], Date.now())
    expect(down.map((t) => t.kind).sort()).toEqual(['auth', 'person'])
    for (const t of down) expect(t.expiresAt).toBeLessThanOrEqual(pt.exp * 1000)
  })
})

describe('interaction chaining', () => {
  it('CHAIN-05 the downstream PS needs the person: R1 answers its own 202 requirement=interaction with its own code and Location, the person is sent on, and the result arrives at R1’s pending URL', async () => {
    const before = served.length
    const r = await book('/refund')
    expect(r).toMatchObject({ status: 201, body: { downstream: 200, body: { mode: 'auth', scopes: ['payments:refund'] } } })
    expect(served.length).toBe(before + 1)
    // The person went through R1's interaction URL to the PS's page for the downstream request.
    expect(chainedHops.length).toBe(1)
    expect(chainedHops[0]).toMatch(new RegExp(`^${ps.issuer}/interaction\\?code=`))
    // The grant Alice gave is the intermediary's, and it is still bound to no one.
    expect((await ps.store.listGrants(alice)).filter((g) => g.scope === 'payments:refund').map((g) => g.agentSub)).toEqual([chain.agentId])
    expect(await ps.store.getBinding(r1, chain.agentId)).toBeUndefined()
    // DEF-02: R1's pending URL answers the caller's key only; another key learns nothing.
    const pending = chainedPending.at(-1)!
    const caller = served.at(-1)!.access
    const stranger = chain.poll(new Request(pending), { ...caller, agentJkt: 'another-agents-key-thumbprint' })!
    expect(stranger.status).toBe(408)
    expect(await stranger.json()).toMatchObject({ error: 'expired' })
    // The interaction code was single use.
    expect((await fetch(chainedInteraction.at(-1)!, { redirect: 'manual' })).status).toBe(404)
    // The caller had its answer: the URL is gone now (410).
    const gone = chain.poll(new Request(pending), caller)!
    expect(gone.status).toBe(410)
    expect(await gone.json()).toMatchObject({ error: 'invalid_code' })
  })

  it('CHAIN-05 an unknown chained interaction code or pending URL is refused', async () => {
    expect((await fetch(`${r1}/aauth/chain/interaction?code=AAAA-AAAA`, { redirect: 'manual' })).status).toBe(404)
    // Unsigned: the middleware refuses it before the pending table is looked at.
    expect((await fetch(`${r1}/aauth/chain/pending/nope`)).status).toBe(401)
    const pt = await agent.personToken(r1)
    const gone = (await send(`${r1}/aauth/chain/pending/nope`, { signer: agentSigner, token: pt.token })).res
    expect(gone.status).toBe(408)
    expect(await gone.json()).toMatchObject({ error: 'expired' })
  })
})

describe('upstream_token refused', () => {
  let intermediaryAgent: Agent
  let upstream: string
  let other: Awaited<ReturnType<typeof loopIssuer>>
  const body = (upstream_token: unknown): Record<string, unknown> => ({ resource: r2.origin, upstream_token })
  beforeAll(async () => {
    // The intermediary's own agent token (another key of its own: the PS does not key on it).
    const key = await generateKeyPair('Ed25519')
    intermediaryAgent = { id: chain.agentId, signer: await createSigner(key.privateJwk), publicJwk: key.publicJwk, jkt: '', token: await chain.provider.issue({ local: 'trips', cnfJwk: key.publicJwk }) }
    upstream = served.find((s) => s.access.token.type === 'aa-auth+jwt' && s.downstream === 200)!.access.token.raw
    other = await loopIssuer('aauth-person.json')
  })
  const psKey = () => ps.ps.context.keys.current
  type Row = [name: string, make: () => Promise<{ signer?: Agent; json: Record<string, unknown> }>, status: number, error: string]
  const rows: Row[] = [
    ['NEG-PS-16 an agent token (typ aa-agent+jwt)', async () => ({ json: body(intermediaryAgent.token) }), 400, 'invalid_upstream_token'],
    ['PS-CH-01 not a JWT', async () => ({ json: body('x') }), 400, 'invalid_upstream_token'],
    ['NEG-PS-14 aud is not the intermediary (a token for R2)', async () => ({ json: body(await createPersonToken({ key: psKey(), issuer: ps.issuer, aud: r2.origin, sub: 'someone', cnfJwk: intermediaryAgent.publicJwk, ...LOOPBACK })) }), 400, 'invalid_upstream_token'],
    ['NEG-PS-15 issued by another person server', async () => ({ json: body(await createPersonToken({ key: other.key, issuer: other.issuer, aud: r1, sub: 'someone', cnfJwk: intermediaryAgent.publicJwk, ...LOOPBACK })) }), 400, 'invalid_upstream_token'],
    ['PS-CH-01 expired', async () => ({ json: body(await forgeToken({ issuer: ps.issuer, dwk: 'aauth-person.json', key: psKey(), publicJwk: intermediaryAgent.publicJwk }, 'aa-person+jwt', { iss: ps.issuer, dwk: 'aauth-person.json', aud: r1, sub: 's', cnf: { jwk: intermediaryAgent.publicJwk }, jti: randomJti(), iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })) }), 400, 'expired_upstream_token'],
    ['PS-CH-06 a token this PS signed but has no record of (no calling agent)', async () => ({ json: body(await createPersonToken({ key: psKey(), issuer: ps.issuer, aud: r1, sub: 'someone', cnfJwk: intermediaryAgent.publicJwk, ...LOOPBACK })) }), 400, 'invalid_upstream_token'],
    ['NEG-PS-31 signed by an agent from another agent provider than the intermediary', async () => {
      const stranger = await loopIssuer('aauth-agent.json')
      const key = await generateKeyPair('Ed25519')
      const token = await createAgentToken({ key: stranger.key, issuer: stranger.issuer, sub: `aauth:trips@${new URL(stranger.issuer).host}`, cnfJwk: key.publicJwk, ...LOOPBACK })
      return { signer: { id: 'x', signer: await createSigner(key.privateJwk), publicJwk: key.publicJwk, jkt: '', token }, json: body(upstream) }
    }, 400, 'invalid_upstream_token'],
    ['PS-CH-01 with subagent_token as well', async () => ({ json: { ...body(upstream), subagent_token: intermediaryAgent.token } }), 400, 'invalid_request'],
    ['PS-CH-04 a mission_s256 of its own', async () => ({ json: { ...body(upstream), mission_s256: 'A'.repeat(43) } }), 400, 'invalid_request'],
  ]
  it.each(rows)('%s → refused, nothing issued', async (_n, make, status, error) => {
    const { signer, json } = await make()
    const before = await issuedToChain()
    const r = await send(`${ps.issuer}/person`, signer ?? intermediaryAgent, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect(await issuedToChain()).toBe(before)
  })

  it('the valid upstream token from the same intermediary is accepted (the rows above differ in one thing each)', async () => {
    const r = await send(`${ps.issuer}/person`, intermediaryAgent, { json: body(upstream) })
    expect(r.res.status).toBe(200)
  })

  it('PS-CH-01 a revoked upstream token → revoked_upstream_token, nothing issued', async () => {
    const personUpstream = served.find((s) => s.access.token.type === 'aa-person+jwt')!.access.token
    expect((await send(`${ps.issuer}/person`, intermediaryAgent, { json: body(personUpstream.raw) })).res.status).toBe(200)
    await ps.store.commit({ revokeIssued: [{ jti: personUpstream.claims.jti, at: Date.now() }] })
    const before = await issuedToChain()
    const r = await send(`${ps.issuer}/person`, intermediaryAgent, { json: body(personUpstream.raw) })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'revoked_upstream_token' })
    expect(await issuedToChain()).toBe(before)
  })

  it('NEG-PS-32 the calling agent no longer bound to its person (upstream token itself not revoked) → revoked_upstream_token, nothing issued', async () => {
    const binding = (await ps.store.getBinding(apIssuer, agentId))!
    await ps.store.commit({ revokeBindings: [{ agentIss: apIssuer, agentSub: agentId, at: Date.now() }] })
    try {
      expect((await ps.store.getIssued(decodeJwt(upstream).payload['jti'] as string))?.revokedAt).toBeUndefined()
      const before = await issuedToChain()
      const r = await send(`${ps.issuer}/person`, intermediaryAgent, { json: body(upstream) })
      expect(r.res.status).toBe(400)
      expect(await r.res.json()).toMatchObject({ error: 'revoked_upstream_token' })
      expect(await issuedToChain()).toBe(before)
    } finally {
      await ps.store.commit({ bindings: [{ ...binding, createdAt: Date.now() }] })
    }
  })

  it('REV-13 Alice revokes one grant of the calling agent at R1: what the intermediary obtained with the tokens behind it is revoked too', async () => {
    const r = await book()
    expect(r.status).toBe(200)
    const up = served.at(-1)!.access.token
    const downstream = await ps.store.issuedFromUpstream([up.claims.jti], Date.now())
    expect(downstream.length).toBeGreaterThan(0)
    const grant = (await ps.store.listGrants(alice)).find((g) => g.agentSub === agentId && g.resource === r1 && g.scope === 'trips:write' && g.revokedAt === undefined)!
    await ps.ps.consent.revokeGrant(alice, grant.id)
    for (const t of downstream) expect((await ps.store.getIssued(t.jti))?.revokedAt).toBeDefined()
    // The agent itself stays: its identity at R1 and its next request are not affected.
    expect((await ps.store.getBinding(apIssuer, agentId))?.revokedAt).toBeUndefined()
  })

  it('REV-11 / REV-13 Alice revokes the calling agent: its upstream tokens are refused revoked_upstream_token, and what the intermediary obtained with them is revoked and refused at R2', async () => {
    // A fresh chain: a new upstream token and the downstream tokens obtained with it.
    const r = await book()
    expect(r.status).toBe(200)
    const up = served.at(-1)!.access.token
    const downstream = await ps.store.issuedFromUpstream([up.claims.jti], Date.now())
    expect(downstream.map((t) => t.kind)).toContain('auth')
    const downAuthRaw = r2.runs.at(-1)!.access!.token.raw
    await ps.ps.revokeAgent(alice, apIssuer, agentId)
    expect(await ps.store.issuedFromUpstream([up.claims.jti], Date.now())).toEqual([])
    for (const t of downstream) expect((await ps.store.getIssued(t.jti))?.revokedAt).toBeDefined()
    const before = await issuedToChain()
    const again = await send(`${ps.issuer}/person`, intermediaryAgent, { json: body(up.raw) })
    expect(again.res.status).toBe(400)
    expect(await again.res.json()).toMatchObject({ error: 'revoked_upstream_token' })
    expect(await issuedToChain()).toBe(before)
    // R2 heard of it: the downstream tokens were revoked there, and the auth token is refused at its next use.
    for (const t of downstream) expect(await ps.store.outcomes(t.jti)).toMatchObject([{ recipient: r2.origin, outcome: 'revoked' }])
    const replay = await send(`${r2.origin}/charge`, { signer: intermediaryAgent.signer, token: downAuthRaw }, { json: { amount: 1 } })
    expect(replay.res.status).toBe(401)
    expect(replay.res.headers.get('signature-error')).toMatch(/error=revoked_jwt/)
  })
})

describe('chains of chains', () => {
  it('PS-CH-06 an upstream token two hops down is judged by the agent that started the chain: live and bound → valid; its binding revoked → not; a link missing → not', async () => {
    const { upstreamJtiStillValid } = await import('../../src/person-server/delegation.js')
    const at = Date.now()
    const dave = await ps.addPerson('dave')
    const rec = (jti: string, agentSub: string, upstreamJti?: string) => ({
      jti, kind: 'person' as const, personId: dave, agentIss: apIssuer, agentSub, resource: r2.origin, sub: 'directed', issuedAt: at, expiresAt: at + 600_000,
      ...(upstreamJti === undefined ? {} : { upstreamIss: ps.issuer, upstreamJti }),
    })
    await ps.store.commit({
      bindings: [{ agentIss: apIssuer, agentSub: 'aauth:origin@agents.example', personId: dave, createdAt: at }],
      // The calling agent's token, the first intermediary's (never bound), the second's.
      issued: [rec('hop0', 'aauth:origin@agents.example'), rec('hop1', 'aauth:i1@r1.example', 'hop0'), rec('hop2', 'aauth:i2@r2.example', 'hop1'), rec('dangling', 'aauth:i3@r3.example', 'nowhere')],
    })
    expect(await upstreamJtiStillValid(ps.ps.context, 'hop2')).toBe(true)
    expect(await upstreamJtiStillValid(ps.ps.context, 'dangling')).toBe(false)
    await ps.store.commit({ revokeBindings: [{ agentIss: apIssuer, agentSub: 'aauth:origin@agents.example', at: Date.now() }] })
    expect(await upstreamJtiStillValid(ps.ps.context, 'hop2')).toBe(false)
    expect(await upstreamJtiStillValid(ps.ps.context, 'hop1')).toBe(false)
  })
})
