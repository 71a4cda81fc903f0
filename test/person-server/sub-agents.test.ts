/**
 * Parent-mediated authorization at the Person Server over loopback HTTP (main draft §Sub-Agents,
 * §Sub-Agent Identity, §Single-Level Depth, §Parent-Mediated Authorization; CHECKLIST PS-SUB-01..03,
 * SUB-01..06). The parent signs; `subagent_token` names the sub-agent; the tokens issued are bound
 * to the sub-agent's key and decided on the parent's grants. Every refusal is one row: exact
 * status and code, and nothing issued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentToken, createSigner, decodeJwt, generateKeyPair, jwkThumbprint, randomJti, type GeneratedKeyPair } from '../../src/protocol/index.js'
import { createAgentProvider, KeyRing } from '../../src/agent/index.js'
import { DELEGATION_EVENT } from '../../src/person-server/delegation.js'
import { closeAll, LOOPBACK } from '../helpers/aauth-servers.js'
import { bindWithGrants, startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

let ps: RunningPs
let ap: LoopIssuer
let otherAp: LoopIssuer
let res: LoopIssuer
let parent: Agent
let alice: string
let subKey: GeneratedKeyPair
let sub: Agent
let subId: string

const nowS = () => Math.floor(Date.now() / 1000)
const host = (i: LoopIssuer): string => new URL(i.issuer).host

async function subAgentToken(o: { local?: string; parentAgent?: string; issuer?: LoopIssuer; key?: GeneratedKeyPair; lifetimeSec?: number } = {}): Promise<string> {
  const issuer = o.issuer ?? ap
  return createAgentToken({
    key: issuer.key,
    issuer: issuer.issuer,
    sub: `aauth:${o.local ?? 'travel-bot.7f3c+pay'}@${host(issuer)}`,
    parentAgent: o.parentAgent ?? parent.id,
    cnfJwk: (o.key ?? subKey).publicJwk,
    ps: ps.issuer,
    ...(o.lifetimeSec === undefined ? {} : { lifetimeSec: o.lifetimeSec }),
    ...LOOPBACK,
  })
}

/** Live tokens of the parent and its sub-agents. */
async function issuedCount(): Promise<number> {
  return (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: parent.id, now: Date.now() })).length
}

function resourceToken(presented: string, claims: Record<string, unknown> = {}): Promise<string> {
  const p = decodeJwt(presented).payload
  return forgeToken(res, 'aa-resource+jwt', {
    iss: res.issuer,
    dwk: 'aauth-resource.json',
    aud: ps.issuer,
    ps: ps.issuer,
    sub: p['sub'],
    presented_jti: p['jti'],
    agent_jkt: sub.jkt,
    scope: 'read',
    jti: randomJti(),
    iat: nowS(),
    exp: nowS() + 300,
    ...claims,
  })
}

/** A person token for the sub-agent, obtained by the parent. */
async function subPersonToken(token?: string): Promise<string> {
  const r = await send(`${ps.issuer}/person`, parent, { json: { resource: res.issuer, subagent_token: token ?? sub.token } })
  expect(r.res.status).toBe(200)
  return ((await r.res.json()) as { person_token: string }).person_token
}

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json', { name: 'Test Agents' })
  otherAp = await loopIssuer('aauth-agent.json', { name: 'Other Agents' })
  res = await loopIssuer('aauth-resource.json', { name: 'Booking API' })
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  parent = await makeAgent(ap, { local: 'travel-bot.7f3c', ps: ps.issuer })
  const at = Date.now()
  await ps.store.commit({
    bindings: [{ agentIss: ap.issuer, agentSub: parent.id, personId: alice, createdAt: at }],
    grants: ['', 'read'].map((scope, i) => ({ id: `g-${i}-${at}`, personId: alice, agentIss: ap.issuer, agentSub: parent.id, resource: res.issuer, scope, createdAt: at })),
  })
  subKey = await generateKeyPair('Ed25519')
  subId = `aauth:travel-bot.7f3c+pay@${host(ap)}`
  sub = { id: subId, signer: await createSigner(subKey.privateJwk), publicJwk: subKey.publicJwk, jkt: await jwkThumbprint(subKey.publicJwk), token: '' }
  sub = { ...sub, token: await subAgentToken() }
})
afterAll(closeAll)

describe('parent-mediated person tokens', () => {
  it('SUB-02 / PS-SUB-01 / PS-SUB-03 the parent asks with subagent_token: the person token is bound to the sub-agent key, recorded with the parent, audited as a delegation', async () => {
    const pt = await subPersonToken()
    const claims = decodeJwt(pt).payload
    expect((claims['cnf'] as { jwk: { x: string } }).jwk.x).toBe(subKey.publicJwk.x)
    // The relationship never appears in tokens the resource sees (PS-SUB-03).
    expect(claims['parent_agent']).toBeUndefined()
    expect(JSON.stringify(claims)).not.toContain('travel-bot')
    const rec = await ps.store.getIssued(claims['jti'] as string)
    expect(rec).toMatchObject({ kind: 'person', agentSub: subId, parentAgent: parent.id, personId: alice })
    // The same directed sub as the parent's (one person at one resource).
    const parentPt = await send(`${ps.issuer}/person`, parent, { json: { resource: res.issuer } })
    expect(decodeJwt(((await parentPt.res.json()) as { person_token: string }).person_token).payload['sub']).toBe(claims['sub'])
    await subPersonToken()
    const trail = (await ps.store.queryAudit({ personId: alice, agentSub: subId, limit: 1000 })).filter((e) => e.type.startsWith('delegation.'))
    expect(trail.filter((e) => e.type === DELEGATION_EVENT.created)).toHaveLength(1)
    expect(trail.filter((e) => e.type === DELEGATION_EVENT.used).length).toBeGreaterThanOrEqual(2)
    expect(trail[0]).toMatchObject({ type: DELEGATION_EVENT.created, agentSub: subId, parentAgent: parent.id, resource: res.issuer, detail: { delegator: parent.id, agent: subId } })
    // The second person token renews the first: the original and both expiries are on record.
    const renewed = trail.filter((e) => e.type === DELEGATION_EVENT.renewed)
    expect(renewed).toHaveLength(1)
    expect(renewed[0]).toMatchObject({ agentSub: subId, parentAgent: parent.id, detail: { original: claims['jti'], originalExpiresAt: (claims['exp'] as number) * 1000, expiresAt: expect.any(Number) } })
    // The sub-agent is remembered for its person (dashboard, revocation by identifier).
    expect(await ps.store.getBinding(ap.issuer, subId)).toMatchObject({ personId: alice })
  })

  it('TOK-PT-02 the person token expires no later than the sub-agent token', async () => {
    const shortKey = await generateKeyPair('Ed25519')
    const short = await subAgentToken({ local: 'travel-bot.7f3c+short', key: shortKey, lifetimeSec: 900 })
    const pt = await subPersonToken(short)
    expect(decodeJwt(pt).payload['exp']).toBeLessThanOrEqual(decodeJwt(short).payload['exp'] as number)
  })
})

describe('parent-mediated auth tokens', () => {
  it('SUB-04 / PS-SUB-02 the auth token is bound to the sub-agent key, the resource token to its thumbprint', async () => {
    const pt = await subPersonToken()
    const rt = await resourceToken(pt)
    const r = await send(`${ps.issuer}/token`, parent, { json: { resource_token: rt, presented_token: pt, subagent_token: sub.token } })
    expect(r.res.status).toBe(200)
    const at = decodeJwt(((await r.res.json()) as { auth_token: string }).auth_token).payload
    expect(at).toMatchObject({ iss: ps.issuer, aud: res.issuer, scope: 'read', sub: decodeJwt(pt).payload['sub'] })
    expect((at['cnf'] as { jwk: { x: string } }).jwk.x).toBe(subKey.publicJwk.x)
    expect(at['exp']).toBeLessThanOrEqual(decodeJwt(sub.token).payload['exp'] as number)
    expect(await ps.store.getIssued(at['jti'] as string)).toMatchObject({ kind: 'auth', agentSub: subId, parentAgent: parent.id, scope: 'read' })
  })

  it('S3 scope attenuation: a scope the parent was not granted → 403 denied naming it, audited with the chain, nothing issued, nobody asked', async () => {
    const pt = await subPersonToken()
    const before = await issuedCount()
    const pendingBefore = (await ps.store.openPending(alice)).length
    const r = await send(`${ps.issuer}/token`, parent, { json: { resource_token: await resourceToken(pt, { scope: 'read write' }), presented_token: pt, subagent_token: sub.token, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(403)
    const body = (await r.res.json()) as { error: string; detail: string }
    expect(body.error).toBe('denied')
    expect(body.detail).toContain('write')
    expect(body.detail).not.toMatch(/\bread\b/)
    expect(await issuedCount()).toBe(before)
    expect((await ps.store.openPending(alice)).length).toBe(pendingBefore)
    const denied = (await ps.store.queryAudit({ personId: alice, agentSub: subId, order: 'desc', limit: 5 })).find((e) => e.type === 'request.denied')
    expect(denied).toMatchObject({ agentSub: subId, parentAgent: parent.id, decision: 'deny' })
  })
})

describe('subagent_token refused', () => {
  type Row = [name: string, endpoint: 'person' | 'token', make: () => Promise<{ signer?: Agent; json: Record<string, unknown> }>, status: number, error: string]
  const personBody = (subagent_token: unknown): Record<string, unknown> => ({ resource: res.issuer, subagent_token })
  const rows: Row[] = [
    ['PS-SUB-01 names another parent', 'person', async () => ({ json: personBody(await subAgentToken({ local: 'travel-bot.7f3c+x1', parentAgent: `aauth:someone-else@${host(ap)}` })) }), 400, 'invalid_subagent_token'],
    ['SUB-06 issued by another agent provider', 'person', async () => ({ json: personBody(await subAgentToken({ issuer: otherAp, local: 'travel-bot.7f3c+x2', parentAgent: `aauth:travel-bot.7f3c@${host(otherAp)}` })) }), 400, 'invalid_subagent_token'],
    ['PS-SUB-01 expired', 'person', async () => ({
      json: personBody(await forgeToken(ap, 'aa-agent+jwt', { iss: ap.issuer, dwk: 'aauth-agent.json', sub: `aauth:travel-bot.7f3c+old@${host(ap)}`, parent_agent: parent.id, cnf: { jwk: subKey.publicJwk }, jti: randomJti(), iat: nowS() - 7200, exp: nowS() - 3600 })),
    }), 400, 'expired_subagent_token'],
    ['PS-SUB-01 revoked by its agent provider', 'person', async () => {
      const t = await subAgentToken({ local: 'travel-bot.7f3c+gone' })
      const c = decodeJwt(t).payload
      await ps.store.addRevocation({ iss: ap.issuer, jti: c['jti'] as string, expiresAt: (c['exp'] as number) * 1000, receivedAt: Date.now() })
      return { json: personBody(t) }
    }, 400, 'revoked_subagent_token'],
    ['PS-SUB-01 an agent token without parent_agent', 'person', async () => ({ json: personBody(parent.token) }), 400, 'invalid_subagent_token'],
    ['PS-SUB-01 not a JWT', 'person', async () => ({ json: personBody(42) }), 400, 'invalid_subagent_token'],
    ['PS-SUB-01 a forged signature', 'person', async () => ({ json: personBody(await forgeToken(otherAp, 'aa-agent+jwt', { ...decodeJwt(sub.token).payload, jti: randomJti() })) }), 400, 'invalid_subagent_token'],
    ['SUB-01 / PS-04 the sub-agent signs itself', 'person', async () => ({ signer: sub, json: { resource: res.issuer } }), 400, 'invalid_request'],
    ['SUB-05 a sub-agent of a sub-agent, asked by the sub-agent', 'person', async () => ({ signer: sub, json: personBody(await forgeToken(ap, 'aa-agent+jwt', { iss: ap.issuer, dwk: 'aauth-agent.json', sub: `aauth:travel-bot.7f3c+deep@${host(ap)}`, parent_agent: subId, cnf: { jwk: subKey.publicJwk }, jti: randomJti(), iat: nowS(), exp: nowS() + 600 })) }), 400, 'invalid_request'],
    ['SUB-05 a sub-agent of a sub-agent, asked by the top-level parent', 'person', async () => ({ json: personBody(await forgeToken(ap, 'aa-agent+jwt', { iss: ap.issuer, dwk: 'aauth-agent.json', sub: `aauth:travel-bot.7f3c+deep@${host(ap)}`, parent_agent: subId, cnf: { jwk: subKey.publicJwk }, jti: randomJti(), iat: nowS(), exp: nowS() + 600 })) }), 400, 'invalid_subagent_token'],
    ['PS-SUB-01 resource token agent_jkt of the parent, not the sub-agent', 'token', async () => {
      const pt = await subPersonToken()
      return { json: { resource_token: await resourceToken(pt, { agent_jkt: parent.jkt }), presented_token: pt, subagent_token: sub.token } }
    }, 400, 'invalid_resource_token'],
    ['PS-SUB-01 auth request with a subagent_token of another parent', 'token', async () => {
      const pt = await subPersonToken()
      return { json: { resource_token: await resourceToken(pt), presented_token: pt, subagent_token: await subAgentToken({ local: 'travel-bot.7f3c+x3', parentAgent: `aauth:someone-else@${host(ap)}` }) } }
    }, 400, 'invalid_subagent_token'],
  ]
  it.each(rows)('%s → refused, nothing issued', async (_n, endpoint, make, status, error) => {
    const { signer, json } = await make()
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/${endpoint}`, signer ?? parent, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect(await issuedCount()).toBe(before)
  })

  it('PS-SUB-03 a sub-agent revoked on its own (by identifier) is refused revoked_subagent_token; its parent keeps working', async () => {
    const key = await generateKeyPair('Ed25519')
    const t = await subAgentToken({ local: 'travel-bot.7f3c+solo', key })
    await subPersonToken(t)
    const soloId = `aauth:travel-bot.7f3c+solo@${host(ap)}`
    const live = await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: soloId, now: Date.now() })
    expect(live.length).toBe(1)
    await ps.ps.revokeAgent(alice, ap.issuer, soloId)
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: soloId, now: Date.now() })).toEqual([])
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/person`, parent, { json: personBody(t) })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'revoked_subagent_token' })
    expect(await issuedCount()).toBe(before)
    const revoked = (await ps.store.queryAudit({ personId: alice, agentSub: soloId, limit: 1000 })).filter((e) => e.type === DELEGATION_EVENT.revoked)
    expect(revoked).toMatchObject([{ agentSub: soloId, parentAgent: parent.id }])
    // The parent and its other sub-agents are untouched.
    expect((await send(`${ps.issuer}/person`, parent, { json: personBody(sub.token) })).res.status).toBe(200)
  })
})

describe("subAgents: { consent: 'ask' }", () => {
  it('PS-SUB-01 beyond the parent’s grant, consent surfaces for the parent (shown as its sub-agent); approved, the token is bound to the sub-agent and the grant is the parent’s', async () => {
    const ps2 = await startRealPersonServer({ subAgents: { consent: 'ask' } })
    const bob = await ps2.addPerson('bob')
    const at = Date.now()
    await ps2.store.commit({
      bindings: [{ agentIss: ap.issuer, agentSub: parent.id, personId: bob, createdAt: at }],
      grants: ['', 'read'].map((scope, i) => ({ id: `g2-${i}-${at}`, personId: bob, agentIss: ap.issuer, agentSub: parent.id, resource: res.issuer, scope, createdAt: at })),
    })
    const ptRes = await send(`${ps2.issuer}/person`, parent, { json: { resource: res.issuer, subagent_token: sub.token } })
    expect(ptRes.res.status).toBe(200)
    const pt = ((await ptRes.res.json()) as { person_token: string }).person_token
    const rt = await resourceToken(pt, { aud: ps2.issuer, ps: ps2.issuer, scope: 'read write' })
    const r = await send(`${ps2.issuer}/token`, parent, { json: { resource_token: rt, presented_token: pt, subagent_token: sub.token, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const location = new URL(r.res.headers.get('location')!, ps2.issuer).href
    const [pending] = await ps2.store.openPending(bob)
    expect(pending).toMatchObject({ agentIss: ap.issuer, agentSub: parent.id, view: { agent: { sub: subId, parentAgent: parent.id }, newScopes: ['write'] } })
    await ps2.ps.consent.open(pending!.id, bob)
    await ps2.ps.consent.decide(pending!.id, bob, { approve: true, remember: 'always' })
    const done = await send(location, parent)
    expect(done.res.status).toBe(200)
    const claims = decodeJwt(((await done.res.json()) as { auth_token: string }).auth_token).payload
    expect(claims).toMatchObject({ scope: 'read write' })
    expect((claims['cnf'] as { jwk: { x: string } }).jwk.x).toBe(subKey.publicJwk.x)
    expect((await ps2.store.listGrants(bob)).filter((g) => g.scope === 'write').map((g) => g.agentSub)).toEqual([parent.id])
    // Approved through the page, the sub-agent is remembered and the delegation written, as on the direct path.
    expect(await ps2.store.getBinding(ap.issuer, subId)).toMatchObject({ personId: bob })
    const trail = (await ps2.store.queryAudit({ personId: bob, agentSub: subId, limit: 100 })).map((e) => e.type)
    expect(trail).toEqual(expect.arrayContaining([DELEGATION_EVENT.used]))
  })

  it('PS-SUB-01 a sub-agent revoked while its parent\'s request waits: the person\'s approval ends it as revoked, nothing issued', async () => {
    const ps3 = await startRealPersonServer({ subAgents: { consent: 'ask' } })
    const carol = await ps3.addPerson('carol')
    await bindWithGrants(ps3.store, { agentIss: ap.issuer, agentSub: parent.id, personId: carol, resource: res.issuer, scopes: ['read'] })
    const pt = ((await (await send(`${ps3.issuer}/person`, parent, { json: { resource: res.issuer, subagent_token: sub.token } })).res.json()) as { person_token: string }).person_token
    const rt = await resourceToken(pt, { aud: ps3.issuer, ps: ps3.issuer, scope: 'read write' })
    const r = await send(`${ps3.issuer}/token`, parent, { json: { resource_token: rt, presented_token: pt, subagent_token: sub.token, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const [pending] = await ps3.store.openPending(carol)
    // Carol revokes the sub-agent (by its identifier) before deciding its parent's request.
    await ps3.ps.revokeAgent(carol, ap.issuer, subId)
    await ps3.ps.consent.open(pending!.id, carol)
    const ended = await ps3.ps.consent.decide(pending!.id, carol, { approve: true })
    expect(ended).toMatchObject({ state: 'revoked', result: { status: 403, body: { error: 'revoked' } } })
    expect((await ps3.store.liveIssued({ agentIss: ap.issuer, agentSub: subId, now: Date.now() })).filter((t) => t.kind === 'auth')).toEqual([])
  })
})

describe('agent provider', () => {
  it('SUB-05 refuses to issue a sub-agent of a sub-agent', async () => {
    const provider = createAgentProvider({ issuer: 'https://agents.example', keys: await KeyRing.create() })
    const { publicJwk } = await generateKeyPair('Ed25519')
    const ok = decodeJwt(await provider.issue({ local: 'pay', parentLocal: 'travel-bot.7f3c', cnfJwk: publicJwk })).payload
    expect(ok).toMatchObject({ sub: 'aauth:travel-bot.7f3c+pay@agents.example', parent_agent: 'aauth:travel-bot.7f3c@agents.example' })
    await expect(provider.issue({ local: 'deeper', parentLocal: 'travel-bot.7f3c+pay', cnfJwk: publicJwk })).rejects.toBeInstanceOf(TypeError)
    await expect(provider.issue({ local: 'a+b', parentLocal: 'travel-bot.7f3c', cnfJwk: publicJwk })).rejects.toBeInstanceOf(TypeError)
  })
})
