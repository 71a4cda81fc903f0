/**
 * Who may decide what, and what still holds when they do (main draft §Agent-Person Binding,
 * §Updated Request, §Person Token Structure `tenant`, §Mission Status Errors; CHECKLIST PS-05,
 * PS-CON-03, PS-RT-04): regression tests for findings of the PS review.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentToken, decodeJwt, randomJti } from '../../src/protocol/index.js'
import { ConsentError } from '../../src/person-server/index.js'
import { closeAll, LOOPBACK } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

let ps: RunningPs
let ap: LoopIssuer
let res: LoopIssuer
let alice: string
let mallory: string

const now = () => Math.floor(Date.now() / 1000)

async function bind(a: Agent, personId: string, scopes: string[], p: RunningPs = ps): Promise<void> {
  const at = Date.now()
  await p.store.commit({
    bindings: [{ agentIss: ap.issuer, agentSub: a.id, personId, createdAt: at }],
    grants: ['', ...scopes].map((scope, i) => ({ id: `${a.id}-${i}-${at}-${Math.random()}`, personId, agentIss: ap.issuer, agentSub: a.id, resource: res.issuer, scope, createdAt: at })),
  })
}

async function personToken(a: Agent, p: RunningPs = ps): Promise<{ pt: string; claims: Record<string, unknown> }> {
  const r = await send(`${p.issuer}/person`, a, { json: { resource: res.issuer } })
  expect(r.res.status).toBe(200)
  const pt = ((await r.res.json()) as { person_token: string }).person_token
  return { pt, claims: decodeJwt(pt).payload }
}

function resourceToken(a: Agent, claims: Record<string, unknown>, extra: Record<string, unknown> = {}, p: RunningPs = ps): Promise<string> {
  return forgeToken(res, 'aa-resource+jwt', { iss: res.issuer, dwk: 'aauth-resource.json', aud: p.issuer, ps: p.issuer, sub: claims['sub'], presented_jti: claims['jti'], agent_jkt: a.jkt, scope: 'read', ...(claims['tenant'] === undefined ? {} : { tenant: claims['tenant'] }), jti: randomJti(), iat: now(), exp: now() + 300, ...extra })
}

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err)
  expect(e).toBeInstanceOf(ConsentError)
  expect((e as ConsentError).code).toBe(code)
}

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json')
  res = await loopIssuer('aauth-resource.json', { name: 'Booking API' })
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice', undefined, { tenant: 'alice-org' })
  mallory = await ps.addPerson('mallory')
})
afterAll(closeAll)

describe('PS-05 the person an auth token request names decides it', () => {
  it('an unknown agent with Alice’s person token and the same key: only Alice can approve, never Mallory', async () => {
    const x = await makeAgent(ap, { local: 'x', ps: ps.issuer })
    await bind(x, alice, ['read'])
    const { pt, claims } = await personToken(x)
    // A second identity of the same provider, with X's key.
    const x2token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: `aauth:x2@${new URL(ap.issuer).host}`, cnfJwk: x.publicJwk, ps: ps.issuer, ...LOOPBACK })
    const x2 = { ...x, id: `aauth:x2@${new URL(ap.issuer).host}`, token: x2token }
    const r = await send(`${ps.issuer}/token`, x2, { json: { resource_token: await resourceToken(x, claims, { scope: 'read write admin' }), presented_token: pt, capabilities: ['interaction'] } })
    expect(r.res.status, await r.res.clone().text()).toBe(202)
    const code = /code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement')!)![1]!
    const rec = (await ps.ps.consent.findByCode(code))!
    expect(rec.personId).toBe(alice)
    await refused(ps.ps.consent.open(rec.id, mallory), 'not_yours')
    await refused(ps.ps.consent.decide(rec.id, mallory, { approve: true }), 'not_yours')
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: x2.id, now: Date.now() })).toEqual([])
  })
})

describe('tenant', () => {
  it('a person token carries the person’s tenant, never the agent’s tenant parameter', async () => {
    const a = await makeAgent(ap, { local: 'tenant-probe', ps: ps.issuer })
    await bind(a, alice, [])
    const r = await send(`${ps.issuer}/person`, a, { json: { resource: res.issuer, tenant: 'bigbank' } })
    const claims = decodeJwt(((await r.res.json()) as { person_token: string }).person_token).payload
    expect(claims['tenant']).toBe('alice-org')
  })
})

describe('PS-CON-03 the person approves what they saw', () => {
  it('an updated_request after the page was rendered makes the approval of the old version fail (closed)', async () => {
    const a = await makeAgent(ap, { local: 'switcher', ps: ps.issuer })
    await bind(a, alice, ['read'])
    const { pt, claims } = await personToken(a)
    const first = await send(`${ps.issuer}/token`, a, { json: { resource_token: await resourceToken(a, claims, { scope: 'read calendar' }), presented_token: pt, capabilities: ['interaction'] } })
    expect(first.res.status, await first.res.clone().text()).toBe(202)
    const loc = first.res.headers.get('location')!
    const id = loc.split('/').at(-1)!
    const seen = (await ps.ps.consent.open(id, alice)).updatedAt
    const upd = await send(loc, a, { json: { action: 'updated_request', resource_token: await resourceToken(a, claims, { scope: 'read calendar payments.send' }), presented_token: pt } })
    expect(upd.res.status).toBe(202)
    await refused(ps.ps.consent.decide(id, alice, { approve: true, seen }), 'closed')
    const now2 = await ps.store.getPending(id)
    expect(now2?.view.newScopes).toEqual(['calendar', 'payments.send'])
    // Approving what is now shown works.
    const done = await ps.ps.consent.decide(id, alice, { approve: true, seen: now2!.updatedAt })
    expect(done.state).toBe('granted')
  })

  it('an updated_request signed by another key is refused', async () => {
    const a = await makeAgent(ap, { local: 'keyswap', ps: ps.issuer })
    await bind(a, alice, ['read'])
    const { pt, claims } = await personToken(a)
    const first = await send(`${ps.issuer}/token`, a, { json: { resource_token: await resourceToken(a, claims, { scope: 'read more' }), presented_token: pt, capabilities: ['interaction'] } })
    const other = await makeAgent(ap, { local: 'keyswap', ps: ps.issuer }) // same identifier, new key
    const upd = await send(first.res.headers.get('location')!, other, { json: { action: 'updated_request', resource_token: await resourceToken(other, claims, { scope: 'read more' }), presented_token: pt } })
    expect(upd.res.status).toBe(400)
  })
})

describe('PS-05 concurrent first approvals of one agent by two people', () => {
  it('exactly one person ends up bound, and only that person’s token exists', async () => {
    const a = await makeAgent(ap, { local: 'contested-concurrently', ps: ps.issuer })
    const ids: string[] = []
    for (const resource of ['https://one.example', 'https://two.example']) {
      const r = await send(`${ps.issuer}/person`, a, { json: { resource, capabilities: ['interaction'] } })
      ids.push((await ps.ps.consent.findByCode(/code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement')!)![1]!))!.id)
    }
    await ps.ps.consent.open(ids[0]!, alice)
    await ps.ps.consent.open(ids[1]!, mallory)
    const results = await Promise.allSettled([ps.ps.consent.decide(ids[0]!, alice, { approve: true }), ps.ps.consent.decide(ids[1]!, mallory, { approve: true })])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const binding = await ps.store.getBinding(ap.issuer, a.id)
    const tokens = await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: a.id, now: Date.now() })
    expect(tokens).toHaveLength(1)
    expect(tokens[0]!.personId).toBe(binding!.personId)
  })
})

describe('PS-RT-04 / MIS-12 a mission that ends while the request waits', () => {
  it('the approval ends the request with mission_terminated, and no token is issued', async () => {
    const a = await makeAgent(ap, { local: 'on-a-mission', ps: ps.issuer })
    const s256 = 'M'.repeat(43)
    await ps.store.commit({ missions: [{ s256, agentIss: ap.issuer, agentSub: a.id, personId: alice, status: 'active', blob: '{}', createdAt: Date.now() }] })
    await bind(a, alice, [])
    const r = await send(`${ps.issuer}/person`, a, { json: { resource: 'https://elsewhere.example', mission_s256: s256, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const id = r.res.headers.get('location')!.split('/').at(-1)!
    await ps.ps.consent.open(id, alice)
    await ps.store.commit({ missions: [{ s256, agentIss: ap.issuer, agentSub: a.id, personId: alice, status: 'terminated', terminationReason: 'revoked', blob: '{}', createdAt: Date.now() }] })
    const rec = await ps.ps.consent.decide(id, alice, { approve: true })
    expect(rec.state).toBe('revoked')
    const poll = await send(r.res.headers.get('location')!, a)
    expect(poll.res.status).toBe(403)
    expect(await poll.res.json()).toMatchObject({ error: 'mission_terminated', mission_status: 'terminated', termination_reason: 'revoked' })
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: a.id, resource: 'https://elsewhere.example', now: Date.now() })).toEqual([])
  })

  it('MIS-12 a mission past its expires_at answers termination_reason expired', async () => {
    const a = await makeAgent(ap, { local: 'late', ps: ps.issuer })
    const s256 = 'E'.repeat(43)
    await ps.store.commit({ missions: [{ s256, agentIss: ap.issuer, agentSub: a.id, personId: alice, status: 'active', blob: '{}', createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1 }] })
    await bind(a, alice, [])
    const r = await send(`${ps.issuer}/person`, a, { json: { resource: res.issuer, mission_s256: s256 } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'mission_terminated', termination_reason: 'expired' })
  })
})

describe('organisation mode cannot be bypassed', () => {
  let org: RunningPs
  let staff: string
  beforeAll(async () => {
    org = await startRealPersonServer({ organization: { agents: { [`aauth:approved@${new URL(ap.issuer).host}`]: { scopes: ['read'] } }, consent: 'ask' } })
    staff = await org.addPerson('staff', undefined, { permissions: ['read', 'write'] })
  })

  it('an agent the organisation did not authorise is refused at first contact (no pending request)', async () => {
    const a = await makeAgent(ap, { local: 'unknown-bot', ps: org.issuer })
    const r = await send(`${org.issuer}/person`, a, { json: { resource: res.issuer, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'denied' })
    expect(await org.store.openPending(staff)).toEqual([])
  })

  it('prompt=consent never turns a denial into a question', async () => {
    const a = await makeAgent(ap, { local: 'approved', ps: org.issuer })
    await bind(a, staff, [], org)
    const { pt, claims } = await personToken(a, org)
    const r = await send(`${org.issuer}/token`, a, { json: { resource_token: await resourceToken(a, claims, { scope: 'write' }, org), presented_token: pt, prompt: 'consent', capabilities: ['interaction'] } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'denied' })
  })

  it('an updated_request widening past the intersection is denied at once (the request ends; the person cannot approve it)', async () => {
    const a = await makeAgent(ap, { local: 'approved', ps: org.issuer })
    const { pt, claims } = await personToken(a, org)
    const first = await send(`${org.issuer}/token`, a, { json: { resource_token: await resourceToken(a, claims, { scope: 'read' }, org), presented_token: pt, capabilities: ['interaction'] } })
    expect(first.res.status).toBe(202)
    const loc = first.res.headers.get('location')!
    const upd = await send(loc, a, { json: { action: 'updated_request', resource_token: await resourceToken(a, claims, { scope: 'read write' }, org), presented_token: pt } })
    expect(upd.res.status).toBe(403)
    expect(await upd.res.json()).toMatchObject({ error: 'denied' })
    const id = loc.split('/').at(-1)!
    expect((await org.store.getPending(id))?.state).toBe('denied')
    await expect(org.ps.consent.decide(id, staff, { approve: true })).rejects.toMatchObject({ code: 'closed' })
    expect(await org.store.liveIssued({ agentIss: ap.issuer, agentSub: a.id, now: Date.now() }).then((t) => t.filter((x) => x.kind === 'auth'))).toEqual([])
  })
})

describe('request bodies', () => {
  it('a chunked body over 64 KiB without Content-Length is refused before it is buffered', async () => {
    const a = await makeAgent(ap, { local: 'big', ps: ps.issuer })
    const chunk = new Uint8Array(16 * 1024).fill(0x20)
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > 10 * 1024 * 1024) return controller.close()
        sent += chunk.byteLength
        controller.enqueue(chunk)
      },
    })
    const r = await fetch(`${ps.issuer}/person`, { method: 'POST', body, headers: { 'content-type': 'application/json', signature: 'x', 'signature-input': 'x', 'signature-key': `sig=jwt;jwt="${a.token}"` }, duplex: 'half' } as RequestInit)
    expect(r.status).toBe(400)
    expect(sent).toBeLessThan(8 * 1024 * 1024) // cut off long before the 10 MiB the client would send
  })
})

describe('REV-11 a revocation that lands while a token is being issued', () => {
  it('the token is withdrawn before it leaves the PS: 403 denied and its record marked revoked', async () => {
    let racing: RunningPs | undefined
    let armed = true
    const hookPs = await startRealPersonServer({
      policy: async (req) => {
        if (armed && req.kind === 'auth_token') {
          // The person revokes the agent between the decision and the commit.
          armed = false
          await racing!.store.commit({ revokeBindings: [{ agentIss: req.agent.iss, agentSub: req.agent.sub, at: Date.now() }] })
        }
        return undefined
      },
    })
    racing = hookPs
    const carol = await hookPs.addPerson('carol')
    const a = await makeAgent(ap, { local: 'racer', ps: hookPs.issuer })
    await bind(a, carol, ['read'], hookPs)
    const { pt, claims } = await personToken(a, hookPs)
    const r = await send(`${hookPs.issuer}/token`, a, { json: { resource_token: await resourceToken(a, claims, {}, hookPs), presented_token: pt } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'denied' })
    const auth = (await hookPs.store.queryAudit({ personId: carol })).filter((e) => e.type === 'auth_token.issued')
    expect(auth).toHaveLength(1)
    const rec = await hookPs.store.getIssued((auth[0]!.detail as { jti: string }).jti)
    expect(rec?.revokedAt).toBeDefined()
  })
})
