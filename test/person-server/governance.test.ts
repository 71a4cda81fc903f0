/**
 * Permission, audit and interaction endpoints (main draft §Permission Endpoint, §Audit Endpoint,
 * §Interaction Endpoint, §Mission Status Errors) and organisation mode (the permission
 * intersection; scenario S2's rule), over loopback HTTP with really signed requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, randomJti } from '../../src/protocol/index.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

afterAll(closeAll)

const S256 = (c: string) => c.repeat(43)
const now = () => Math.floor(Date.now() / 1000)

async function bind(ps: RunningPs, ap: LoopIssuer, a: Agent, personId: string, resource?: string, scopes: string[] = []): Promise<void> {
  const at = Date.now()
  await ps.store.commit({
    bindings: [{ agentIss: ap.issuer, agentSub: a.id, personId, createdAt: at }],
    grants: resource === undefined ? [] : ['', ...scopes].map((scope, i) => ({ id: `${a.id}-${resource}-${i}`, personId, agentIss: ap.issuer, agentSub: a.id, resource, scope, createdAt: at })),
  })
}

describe('governance endpoints', () => {
  let ps: RunningPs
  let ap: LoopIssuer
  let agent: Agent
  let unbound: Agent
  let alice: string

  beforeAll(async () => {
    ap = await loopIssuer('aauth-agent.json')
    ps = await startRealPersonServer()
    alice = await ps.addPerson('alice')
    agent = await makeAgent(ap, { local: 'travel-bot', ps: ps.issuer })
    unbound = await makeAgent(ap, { local: 'newcomer', ps: ps.issuer })
    await bind(ps, ap, agent, alice)
    const at = Date.now()
    await ps.store.commit({
      missions: [
        { s256: S256('A'), agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'active', blob: '{"description":"trip"}', createdAt: at },
        { s256: S256('B'), agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'terminated', terminationReason: 'revoked', blob: '{}', createdAt: at },
        { s256: S256('C'), agentIss: ap.issuer, agentSub: unbound.id, personId: alice, status: 'active', blob: '{}', createdAt: at },
      ],
    })
  })

  it('PS-GOV-01 a permission nobody decided yet waits for the person (202); approve-and-remember answers later ones at once', async () => {
    const r = await send(`${ps.issuer}/permission`, agent, { json: { action: 'SendEmail', description: 'Send the itinerary', parameters: { to: 'alice@example.com' } } })
    expect(r.res.status).toBe(202)
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'permission')!
    expect(rec.view.permission).toEqual({ action: 'SendEmail', description: 'Send the itinerary', parameters: { to: 'alice@example.com' } })
    await ps.ps.consent.open(rec.id, alice)
    await ps.ps.consent.decide(rec.id, alice, { approve: true, remember: 'day' })
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(200)
    expect(await poll.res.json()).toEqual({ permission: 'granted' })
    const again = await send(`${ps.issuer}/permission`, agent, { json: { action: 'SendEmail' } })
    expect(again.res.status).toBe(200)
    expect(await again.res.json()).toEqual({ permission: 'granted' })
  })

  it('PS-CON-06 a question under a mission shows the person the mission it is part of', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'question', question: 'Window or aisle?', mission_s256: S256('A') } })
    expect(r.res.status).toBe(202)
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'question' && p.view.question === 'Window or aisle?')!
    expect(rec.view).toMatchObject({ missionS256: S256('A'), mission: { description: 'trip', updates: [] } })
    await ps.ps.consent.open(rec.id, alice)
    await ps.ps.consent.answer(rec.id, alice, 'Aisle.')
  })

  it('PS-GOV-01 a denied permission is 200 {permission: denied} with a reason', async () => {
    const r = await send(`${ps.issuer}/permission`, agent, { json: { action: 'DeleteEverything' } })
    const rec = (await ps.store.openPending(alice)).find((p) => p.view.permission?.action === 'DeleteEverything')!
    await ps.ps.consent.open(rec.id, alice)
    await ps.ps.consent.decide(rec.id, alice, { approve: false })
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(200)
    expect(await poll.res.json()).toMatchObject({ permission: 'denied', reason: expect.any(String) })
  })

  it('PS-GOV-02 audit: 201, recorded in the mission log and the audit trail', async () => {
    const r = await send(`${ps.issuer}/audit`, agent, { json: { mission_s256: S256('A'), action: 'WebSearch', description: 'flights', parameters: { q: 'SYD' }, result: { found: 12 } } })
    expect(r.res.status).toBe(201)
    const log = await ps.store.missionLog(S256('A'))
    expect(log.at(-1)).toMatchObject({ type: 'audit', detail: { action: 'WebSearch', result: { found: 12 } } })
    expect((await ps.store.queryAudit({ missionS256: S256('A') })).at(-1)).toMatchObject({ type: 'audit.recorded', agentSub: agent.id })
  })

  const auditRows: [string, Record<string, unknown>, number, string][] = [
    ['PS-GOV-02 audit without mission_s256', { action: 'x' }, 400, 'invalid_request'],
    ['PS-GOV-02 audit without action', { mission_s256: S256('A') }, 400, 'invalid_request'],
    ['MIS-ERR-01 audit under an unknown mission', { mission_s256: S256('Z'), action: 'x' }, 404, 'mission_not_found'],
    ['MIS-ERR-01 audit under another agent’s mission (same answer as unknown)', { mission_s256: S256('C'), action: 'x' }, 404, 'mission_not_found'],
    ['MIS-12 audit under a terminated mission', { mission_s256: S256('B'), action: 'x' }, 403, 'mission_terminated'],
    ['PS-GOV-02 parameters not an object', { mission_s256: S256('A'), action: 'x', parameters: [1] }, 400, 'invalid_request'],
  ]
  it.each(auditRows)('%s → refused, nothing logged', async (_n, json, status, error) => {
    const before = (await ps.store.queryAudit({ limit: 1000 })).length
    const r = await send(`${ps.issuer}/audit`, agent, { json })
    expect(r.res.status).toBe(status)
    const body = (await r.res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ error })
    if (error === 'mission_terminated') expect(body).toMatchObject({ mission_status: 'terminated', termination_reason: 'revoked' })
    expect((await ps.store.queryAudit({ limit: 1000 })).length).toBe(before)
  })

  it('PS-GOV-03 question: 202, then 200 {answer} once the person answers', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'question', question: 'Refundable or cheaper?' } })
    expect(r.res.status).toBe(202)
    expect(r.res.headers.get('aauth-requirement')).toBeNull()
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'question')!
    expect(rec.view.question).toBe('Refundable or cheaper?')
    await ps.ps.consent.open(rec.id, alice)
    await ps.ps.consent.answer(rec.id, alice, 'Refundable, please.')
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(200)
    expect(await poll.res.json()).toEqual({ answer: 'Refundable, please.' })
  })

  it('PS-GOV-03 interaction relay: 202, interacting once the person opens it', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'interaction', url: 'https://booking.example/confirm', code: 'X7K2-M9P4', description: 'Confirm payment' } })
    expect(r.res.status).toBe(202)
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'relay')!
    expect(rec.view.relay).toEqual({ type: 'interaction', url: 'https://booking.example/confirm', code: 'X7K2-M9P4', description: 'Confirm payment' })
    await ps.ps.consent.open(rec.id, alice)
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(202)
    expect(await poll.res.json()).toMatchObject({ status: 'interacting' })
  })

  const relayRows: [string, Agent | 'unbound', Record<string, unknown>, number, string][] = [
    ['PS-GOV-03 unknown type', 'unbound', { type: 'chat' }, 400, 'invalid_request'],
    ['PS-GOV-03 question without question', 'unbound', { type: 'question' }, 403, 'user_unreachable'],
    ['PS-GOV-04 an agent nobody is bound to cannot reach a person', 'unbound', { type: 'question', question: 'hi' }, 403, 'user_unreachable'],
  ]
  it.each(relayRows)('%s → refused', async (_n, who, json, status, error) => {
    const r = await send(`${ps.issuer}/relay`, who === 'unbound' ? unbound : who, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
  })

  it('PS-GOV-03 a non-https relay url is invalid_request', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'payment', url: 'javascript:alert(1)' } })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'invalid_request' })
  })

  it('PS-GOV-04 a PS that does not relay answers interaction_unavailable (424)', async () => {
    const quiet = await startRealPersonServer({ relay: false })
    const bob = await quiet.addPerson('bob')
    await bind(quiet, ap, agent, bob)
    const r = await send(`${quiet.issuer}/relay`, agent, { json: { type: 'interaction', url: 'https://booking.example/confirm' } })
    expect(r.res.status).toBe(424)
    expect(await r.res.json()).toMatchObject({ error: 'interaction_unavailable' })
  })

  it('DEF a pending URL answers 404 to another agent, and DELETE withdraws (410 after)', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'question', question: 'Window seat?' } })
    const loc = r.res.headers.get('location')!
    const other = await makeAgent(ap, { local: 'nosy', ps: ps.issuer })
    expect((await send(loc, other)).res.status).toBe(404)
    expect((await send(loc, agent, { method: 'DELETE' })).res.status).toBe(204)
    const after = await send(loc, agent)
    expect(after.res.status).toBe(410)
    const bad = await send(loc, agent, { json: { action: 'nonsense' } })
    expect(bad.res.status).toBe(410)
  })

  it('DEF-slow_down polling faster than Retry-After is 429 slow_down with Retry-After', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'question', question: 'Hotel?' } })
    const loc = r.res.headers.get('location')!
    expect((await send(loc, agent)).res.status).toBe(202)
    const fast = await send(loc, agent)
    expect(fast.res.status).toBe(429)
    expect(fast.res.headers.get('retry-after')).toBe('5')
    expect(await fast.res.json()).toMatchObject({ error: 'slow_down' })
  })

  it('DEF-abandoned a request the person opened and left is 403 abandoned; one nobody opened is 408 expired', async () => {
    const brief = await startRealPersonServer({ pendingTtlSec: 1 })
    const carol = await brief.addPerson('carol')
    await bind(brief, ap, agent, carol)
    const opened = await send(`${brief.issuer}/relay`, agent, { json: { type: 'question', question: 'Now?' } })
    const untouched = await send(`${brief.issuer}/relay`, agent, { json: { type: 'question', question: 'Later?' } })
    const rec = (await brief.store.openPending(carol)).find((p) => p.view.question === 'Now?')!
    await brief.ps.consent.open(rec.id, carol)
    await new Promise((r) => setTimeout(r, 1100))
    const a = await send(opened.res.headers.get('location')!, agent)
    expect(a.res.status).toBe(403)
    expect(await a.res.json()).toMatchObject({ error: 'abandoned' })
    const e = await send(untouched.res.headers.get('location')!, agent)
    expect(e.res.status).toBe(408)
    expect(await e.res.json()).toMatchObject({ error: 'expired' })
  })

  it('PS-03 a person token in Signature-Key is not an agent token: 401 invalid_jwt', async () => {
    const res = await loopIssuer('aauth-resource.json')
    await bind(ps, ap, agent, alice, res.issuer)
    const pt = ((await (await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })).res.json()) as { person_token: string }).person_token
    const r = await send(`${ps.issuer}/permission`, { signer: agent.signer, token: pt }, { json: { action: 'x' } })
    expect(r.res.status).toBe(401)
    expect(r.res.headers.get('signature-error')).toBe('error=invalid_jwt')
  })

  it('PS-CLAR a POST without a known action is 400', async () => {
    const r = await send(`${ps.issuer}/relay`, agent, { json: { type: 'question', question: 'Aisle?' } })
    const bad = await send(r.res.headers.get('location')!, agent, { json: { nothing: true } })
    expect(bad.res.status).toBe(400)
    expect(await bad.res.json()).toMatchObject({ error: 'invalid_request' })
  })
})

describe('organisation mode: the permission intersection', () => {
  let ps: RunningPs
  let ap: LoopIssuer
  let res: LoopIssuer
  const people: Record<string, string> = {}
  const agents: Record<string, Agent> = {}

  beforeAll(async () => {
    ap = await loopIssuer('aauth-agent.json')
    res = await loopIssuer('aauth-resource.json')
    const host = new URL(ap.issuer).host
    ps = await startRealPersonServer({
      organization: {
        agents: {
          [`aauth:summarizer-hr@${host}`]: { scopes: ['hr'] },
          [`aauth:summarizer-tech@${host}`]: { scopes: ['finance', 'engineering'] },
          [`aauth:reviewer-ops@${host}`]: { scopes: ['engineering', 'admin'] },
          [`aauth:summarizer-everything@${host}`]: { scopes: [] },
        },
      },
    })
    people['alice'] = await ps.addPerson('alice', undefined, { permissions: ['engineering', 'finance'] })
    people['bob'] = await ps.addPerson('bob', undefined, { permissions: ['hr'] })
    for (const name of ['summarizer-hr', 'summarizer-tech', 'reviewer-ops', 'summarizer-everything', 'rogue']) agents[name] = await makeAgent(ap, { local: name, ps: ps.issuer })
  })

  async function ask(person: string, agentName: string, scope: string): Promise<Response> {
    const a = agents[agentName]!
    // Each (person, agent) pair: bind (an agent acts for one person at a time, so end any earlier
    // binding first), get a person token (identity is pre-authorised), then redeem a resource token.
    await ps.store.commit({ revokeBindings: [{ agentIss: ap.issuer, agentSub: a.id, at: Date.now() }] })
    await bind(ps, ap, a, people[person]!)
    const pr = await send(`${ps.issuer}/person`, a, { json: { resource: res.issuer } })
    if (pr.res.status !== 200) return pr.res
    const pt = ((await pr.res.json()) as { person_token: string }).person_token
    const c = decodeJwt(pt).payload
    const rt = await forgeToken(res, 'aa-resource+jwt', { iss: res.issuer, dwk: 'aauth-resource.json', aud: ps.issuer, ps: ps.issuer, sub: c['sub'], presented_jti: c['jti'], agent_jkt: a.jkt, scope, jti: randomJti(), iat: now(), exp: now() + 300 })
    return (await send(`${ps.issuer}/token`, a, { json: { resource_token: rt, presented_token: pt } })).res
  }

  const table: [string, string, string, number][] = [
    ['alice', 'summarizer-tech', 'finance engineering', 200],
    ['alice', 'summarizer-tech', 'finance', 200],
    ['alice', 'summarizer-hr', 'hr', 403],
    ['bob', 'summarizer-hr', 'hr', 200],
    ['bob', 'summarizer-tech', 'finance', 403],
    ['alice', 'reviewer-ops', 'engineering', 200],
    ['alice', 'reviewer-ops', 'admin', 403],
    ['alice', 'summarizer-everything', 'engineering', 403],
    ['alice', 'rogue', 'engineering', 403],
  ]
  it.each(table)('S2 rule: %s + %s asking %s → %i', async (person, agentName, scope, status) => {
    const r = await ask(person, agentName, scope)
    expect(r.status).toBe(status)
    const body = (await r.json()) as Record<string, unknown>
    if (status === 200) expect(decodeJwt(body['auth_token'] as string).payload['scope']).toBe(scope)
    else {
      expect(body['error']).toBe('denied')
      const audit = await ps.store.queryAudit({ personId: people[person]!, agentSub: agents[agentName]!.id })
      expect(audit.some((e) => e.type === 'request.denied' && e.reason !== undefined)).toBe(true)
    }
  })
})
