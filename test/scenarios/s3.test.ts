/**
 * Scenario S3 (/work/shared/scenarios.md): sub-agents, revocation, audit. The travel agent
 * `aauth:travel-bot.7f3c@…` spawns its payment sub-agent `aauth:travel-bot.7f3c+pay@…` (parent-
 * mediated; main draft §Parent-Mediated Authorization). Everything is real and on loopback: the
 * agent provider, Alice's Person Server, a Hono resource, and two agent clients. (On loopback the
 * identifiers' domain is the provider's `127.0.0.1:PORT`, not `agents.example`.)
 *
 * The steps run in order against one world.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jwkThumbprint, ProblemError } from '../../src/protocol/index.js'
import { DELEGATION_EVENT } from '../../src/person-server/delegation.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { delegationWorld, type DelegationWorld } from '../helpers/delegation-world.js'

const ROUTES = {
  '/bookings': { access: 'auth', scope: 'bookings:write' },
  '/payments': { access: 'auth', scope: 'payments:charge' },
} as const

const MISSION_BLOB = JSON.stringify({ description: 'Book Alice a trip to Sydney in March and pay for it', approved_tools: [] })
const MISSION = createHash('sha256').update(MISSION_BLOB).digest('base64url')

let w: DelegationWorld

function post(client: DelegationWorld['parent'], path: string): Promise<Response> {
  return client.fetch(`${w.app.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fare: 'ECO-SYD', amount: 320 }) })
}

/** Sends what the client would send first (its held auth token), without recovering from a refusal. */
async function presentHeld(client: DelegationWorld['parent'], path: string): Promise<{ res: Response; presenting: string }> {
  const p = await client.prepare(`${w.app.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ again: true }) })
  const res = await fetch(p.url, { method: p.method, headers: p.headers, ...(p.body === undefined ? {} : { body: p.body as BufferSource }) })
  return { res, presenting: p.presenting }
}

beforeAll(async () => {
  w = await delegationWorld(ROUTES, { parent: { mission: MISSION }, subAgent: { mission: MISSION } })
  await w.ps.store.commit({ missions: [{ s256: MISSION, agentIss: w.apIssuer, agentSub: w.parentId, personId: w.alice, status: 'active', blob: MISSION_BLOB, createdAt: Date.now() }] })
})
afterAll(closeAll)

describe('S3 sub-agents, revocation, audit', () => {
  it('S3 Alice approves the travel agent once; its payment sub-agent then books within the parent’s grant (200), without a prompt and without calling the PS', async () => {
    expect((await post(w.parent, '/bookings')).status).toBe(200)
    const prompts = w.codes.length
    const res = await post(w.subAgent, '/bookings')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ mode: 'auth', token: 'aa-auth+jwt', scopes: ['bookings:write'] })
    // The resource saw the sub-agent's key, and the mission (the relationship itself stays at the PS).
    const run = w.app.runs.at(-1)!
    expect(run.access?.agentJkt).toBe(await jwkThumbprint(w.subKey.publicJwk))
    expect(run.access?.mission).toBe(MISSION)
    expect(JSON.stringify(run.access?.token.claims)).not.toContain('parent')
    expect(w.codes.length).toBe(prompts)
    // SUB-01: every request the sub-agent sent went to the resource.
    const sent = w.subSteps.filter((s) => s.type === 'request').map((s) => new URL((s as { url: string }).url).origin)
    expect(sent.length).toBeGreaterThan(0)
    expect(new Set(sent)).toEqual(new Set([w.app.origin]))
    // The tokens the sub-agent holds are recorded for it, under its parent, in the mission.
    const live = await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.subAgentId, now: Date.now() })
    expect(live.map((t) => t.kind).sort()).toEqual(['auth', 'person'])
    for (const t of live) expect(t).toMatchObject({ agentSub: w.subAgentId, parentAgent: w.parentId, missionS256: MISSION, personId: w.alice })
  })

  it('S3 beyond the parent’s scope: the sub-agent’s payment is refused 403 denied, nothing issued, Alice not asked', async () => {
    const prompts = w.codes.length
    const before = (await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.parentId, now: Date.now() })).length
    const err = await post(w.subAgent, '/payments').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProblemError)
    expect(err).toMatchObject({ code: 'denied', status: 403 })
    expect((err as ProblemError).message).toContain('payments:charge')
    expect((await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.parentId, now: Date.now() })).length).toBe(before)
    expect(w.codes.length).toBe(prompts)
    expect(await w.ps.store.openPending(w.alice)).toEqual([])
    const denied = (await w.ps.store.queryAudit({ personId: w.alice, order: 'desc', limit: 20 })).find((e) => e.type === 'request.denied')
    expect(denied).toMatchObject({ agentSub: w.subAgentId, parentAgent: w.parentId, scope: 'payments:charge', missionS256: MISSION, decision: 'deny' })
  })

  it('S3 Alice revokes the travel agent: at the next use the parent’s and the sub-agent’s auth tokens are refused (revoked_jwt), and a new parent-mediated request is refused', async () => {
    const outcomes = await w.ps.ps.revokeAgent(w.alice, w.apIssuer, w.parentId)
    expect(outcomes.tokens).toBeGreaterThanOrEqual(4)
    for (const client of [w.parent, w.subAgent]) {
      const { res, presenting } = await presentHeld(client, '/bookings')
      expect(presenting).toBe('auth')
      expect(res.status).toBe(401)
      expect(res.headers.get('signature-error')).toMatch(/error=revoked_jwt/)
    }
    // Nothing derived from the parent is live any more.
    expect(await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.parentId, now: Date.now() })).toEqual([])
    // A new request the parent makes for its sub-agent is refused: the parent acts for no one now.
    const subagentToken = (await w.subAgent.credentials.current()).agentToken
    // (Under the mission the refusal may come first from the mission, if revoking the agent ended it.)
    const underMission = await w.mediator.personToken({ subagentToken, resource: w.app.origin, mission: MISSION }).catch((e: unknown) => e)
    expect(underMission).toBeInstanceOf(ProblemError)
    expect(underMission).toMatchObject({ status: 403 })
    expect(['denied', 'mission_terminated']).toContain((underMission as ProblemError).code)
    await expect(w.mediator.personToken({ subagentToken, resource: w.app.origin })).rejects.toMatchObject({ code: 'denied', status: 403 })
    // And the sub-agent's own client, starting over, is refused too (never a token).
    await expect(post(w.subAgent, '/bookings')).rejects.toMatchObject({ status: 403 })
    expect(await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.parentId, now: Date.now() })).toEqual([])
  })

  it('S3 the PS audit shows the delegation created, used and revoked, each with the chain (parent → sub-agent) and the mission', async () => {
    const trail = await w.ps.store.queryAudit({ personId: w.alice, agentSub: w.subAgentId, limit: 1000 })
    const created = trail.filter((e) => e.type === DELEGATION_EVENT.created)
    const used = trail.filter((e) => e.type === DELEGATION_EVENT.used)
    const revoked = trail.filter((e) => e.type === DELEGATION_EVENT.revoked)
    expect(created).toHaveLength(1)
    expect(used.length).toBeGreaterThanOrEqual(2)
    expect(revoked).toHaveLength(1)
    for (const e of [...created, ...used, ...revoked]) expect(e).toMatchObject({ agentSub: w.subAgentId, parentAgent: w.parentId, missionS256: MISSION })
    expect(created[0]!.detail).toMatchObject({ delegator: w.parentId, agent: w.subAgentId })
    expect(typeof created[0]!.detail!['expiresAt']).toBe('number')
    expect(used.some((e) => e.scope === 'bookings:write' && e.resource === w.app.origin)).toBe(true)
    expect(revoked[0]).toMatchObject({ decision: 'revoke', reason: expect.any(String) })
    // The sub-agent's tokens were withdrawn as such (token.revoked with the chain), the parent as an agent.
    const withdrawn = trail.filter((e) => e.type === 'token.revoked')
    expect(withdrawn.length).toBe(2)
    for (const e of withdrawn) expect(e).toMatchObject({ agentSub: w.subAgentId, parentAgent: w.parentId, missionS256: MISSION })
    const all = await w.ps.store.queryAudit({ personId: w.alice, limit: 1000 })
    expect(all.find((e) => e.type === 'agent.revoked')).toMatchObject({ agentSub: w.parentId })
    // In order: created before used before revoked.
    const seqOf = (t: string) => trail.findIndex((e) => e.type === t)
    expect(seqOf(DELEGATION_EVENT.created)).toBeLessThan(seqOf(DELEGATION_EVENT.revoked))
  })
})

describe('S3 revocation by the agent provider', () => {
  it('S3 the agent provider revokes the travel agent’s token at Alice’s PS: the sub-agent’s tokens go with it (refused revoked_jwt at the resource), the delegation is recorded as revoked', async () => {
    const v = await delegationWorld(ROUTES)
    expect((await v.parent.fetch(`${v.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200)
    expect((await v.subAgent.fetch(`${v.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200)
    const parentToken = (await v.parent.credentials.current()).agentToken
    expect(await v.ap.revokeAgentToken(parentToken)).toBe(true)
    const p = await v.subAgent.prepare(`${v.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"again":1}' })
    expect(p.presenting).toBe('auth')
    const res = await fetch(p.url, { method: p.method, headers: p.headers, body: p.body as BufferSource })
    expect(res.status).toBe(401)
    expect(res.headers.get('signature-error')).toMatch(/error=revoked_jwt/)
    expect(await v.ps.store.liveIssued({ agentIss: v.apIssuer, agentSub: v.parentId, now: Date.now() })).toEqual([])
    const revoked = (await v.ps.store.queryAudit({ agentSub: v.subAgentId, limit: 1000 })).filter((e) => e.type === DELEGATION_EVENT.revoked)
    expect(revoked).toMatchObject([{ agentSub: v.subAgentId, parentAgent: v.parentId, reason: 'the agent provider revoked the agent token' }])
  })
})
