/**
 * The mission endpoint (main draft §Mission and its subsections): proposal, approval with the
 * person's edits, the blob and its digest, person tokens for the approved resources, updates,
 * completion, the mission log, revocation, expiry, and the errors of §Mission Endpoint Errors —
 * over loopback HTTP with really signed requests against a real PS.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt } from '../../src/protocol/index.js'
import { MAX_MISSION_MISSES, readMissionLog } from '../../src/person-server/missions.js'
import type { MissionRecord } from '../../src/person-server/store/types.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

afterAll(closeAll)

const digest = (bytes: string | Uint8Array): string => createHash('sha256').update(bytes).digest('base64url')
const randomS256 = (): string => digest(randomBytes(16))
const FLIGHTS = 'https://flights.example'
const HOTELS = 'https://hotels.example'

/** Counts of everything a refused request must not have written. */
async function footprint(ps: RunningPs, personId: string) {
  return {
    audit: (await ps.store.queryAudit({ limit: 1000 })).length,
    pending: (await ps.store.openPending(personId)).length,
    missions: (await ps.store.listMissions(personId)).length,
  }
}

/** POSTs a proposal, approves it (as `personId`, with `choices`) and polls the answer. */
async function proposeAndApprove(ps: RunningPs, agent: Agent, personId: string, proposal: Record<string, unknown>, choices: Parameters<RunningPs['ps']['consent']['decide']>[2]['mission'] = {}) {
  const r = await send(`${ps.issuer}/mission`, agent, { json: proposal })
  expect(r.res.status).toBe(202)
  const location = r.res.headers.get('location')!
  const pendingId = location.split('/').pop()!
  await ps.ps.consent.open(pendingId, personId)
  await ps.ps.consent.decide(pendingId, personId, { approve: true, mission: choices })
  const poll = await send(location, agent)
  return { poll, body: (await poll.res.json()) as Record<string, unknown>, pendingId }
}

describe('mission endpoint', () => {
  let ps: RunningPs
  let ap: LoopIssuer
  let agent: Agent
  let other: Agent
  let alice: string
  let bob: string

  beforeAll(async () => {
    ap = await loopIssuer('aauth-agent.json')
    ps = await startRealPersonServer()
    alice = await ps.addPerson('alice')
    bob = await ps.addPerson('bob')
    agent = await makeAgent(ap, { local: 'travel-bot', ps: ps.issuer })
    other = await makeAgent(ap, { local: 'other-bot', ps: ps.issuer })
  })

  it('MIS-01 the metadata publishes mission_endpoint', async () => {
    const md = (await (await fetch(`${ps.issuer}/.well-known/aauth-person.json`)).json()) as Record<string, unknown>
    expect(md['mission_endpoint']).toBe(`${ps.issuer}/mission`)
  })

  let s256 = ''
  let blob: Record<string, unknown> = {}

  it('MIS-02..05 a first proposal waits for the person, binds the agent to whoever approves it, and answers the blob, its digest and person tokens', async () => {
    const proposal = {
      description: '# Plan Japan trip\n\nBook flights and a hotel for 2 adults.',
      tools: [
        { name: 'WebSearch', description: 'Search the web' },
        { name: 'BookFlight', description: 'Book flights' },
        { name: 'DeleteFiles', description: 'Delete files' },
      ],
      resources: [FLIGHTS, HOTELS],
    }
    const r = await send(`${ps.issuer}/mission`, agent, { json: proposal })
    expect(r.res.status).toBe(202)
    expect(r.res.headers.get('aauth-requirement')).toMatch(/requirement=interaction/)
    const pendingId = r.res.headers.get('location')!.split('/').pop()!
    const pending = (await ps.store.getPending(pendingId))!
    expect(pending.kind).toBe('mission')
    expect(pending.personId).toBeUndefined()
    expect(pending.view.missionRequest).toEqual({ action: 'propose', ...proposal })
    expect(await ps.store.getBinding(ap.issuer, agent.id)).toBeUndefined()

    await ps.ps.consent.open(pendingId, alice)
    const before = Date.now()
    await ps.ps.consent.decide(pendingId, alice, { approve: true, mission: { description: '# Plan Japan trip\n\nFlights only, under $2k.', tools: ['WebSearch', 'BookFlight'], resources: [FLIGHTS], expiry: 'day' } })
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(200)
    const body = (await poll.res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(['mission', 'person_tokens', 's256'])
    const bytes = Buffer.from(body['mission'] as string, 'base64url')
    // MIS-05: s256 is the digest of exactly the bytes returned, and those bytes are what the store holds.
    expect(body['s256']).toBe(digest(bytes))
    s256 = body['s256'] as string
    const record = (await ps.store.getMission(s256))!
    expect(record.blob).toBe(bytes.toString('utf8'))
    expect(record).toMatchObject({ status: 'active', personId: alice, agentSub: agent.id })
    // MIS-04: the members, in order; no approver.
    blob = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    expect(Object.keys(blob)).toEqual(['agent', 'approved_at', 'expires_at', 'description', 'approved_tools', 'approved_resources'])
    expect(blob).toMatchObject({
      agent: agent.id,
      description: '# Plan Japan trip\n\nFlights only, under $2k.',
      approved_tools: [{ name: 'WebSearch', description: 'Search the web' }, { name: 'BookFlight', description: 'Book flights' }],
      approved_resources: [FLIGHTS],
    })
    expect(Date.parse(blob['approved_at'] as string)).toBeGreaterThanOrEqual(before - 1000)
    expect(Date.parse(blob['expires_at'] as string) - Date.parse(blob['approved_at'] as string)).toBe(86_400_000)
    expect(record.expiresAt).toBe(Date.parse(blob['expires_at'] as string))
    // The approver is bound (first contact).
    expect((await ps.store.getBinding(ap.issuer, agent.id))?.personId).toBe(alice)
    // MIS-03: a person token per approved resource, carrying the mission, capped at expires_at (NEG-MIS-08).
    const tokens = body['person_tokens'] as Record<string, string>
    expect(Object.keys(tokens)).toEqual([FLIGHTS])
    const claims = decodeJwt(tokens[FLIGHTS]!).payload as Record<string, unknown>
    expect(claims).toMatchObject({ iss: ps.issuer, aud: FLIGHTS, mission_s256: s256 })
    expect(claims['exp'] as number).toBeLessThanOrEqual(Math.floor(record.expiresAt! / 1000))
    expect((await ps.store.getIssued(claims['jti'] as string))?.missionS256).toBe(s256)
    // The identity grant under the mission: a later person token request for it is immediate.
    const grants = (await ps.store.listGrants(alice)).filter((g) => g.missionS256 === s256)
    expect(grants.map((g) => [g.resource, g.scope])).toEqual([[FLIGHTS, '']])
    const again = await send(`${ps.issuer}/person`, agent, { json: { resource: FLIGHTS, mission_s256: s256 } })
    expect(again.res.status).toBe(200)
    expect((decodeJwt(((await again.res.json()) as { person_token: string }).person_token).payload as Record<string, unknown>)['mission_s256']).toBe(s256)
  })

  it('MIS-02 a proposal is refused by the person: 403 denied, no mission', async () => {
    const before = (await ps.store.listMissions(alice)).length
    const r = await send(`${ps.issuer}/mission`, agent, { json: { description: 'Buy a boat' } })
    const id = r.res.headers.get('location')!.split('/').pop()!
    await ps.ps.consent.open(id, alice)
    await ps.ps.consent.decide(id, alice, { approve: false })
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(403)
    expect(await poll.res.json()).toMatchObject({ error: 'denied' })
    expect((await ps.store.listMissions(alice)).length).toBe(before)
  })

  it('MIS-02 structured limits are kept in the approved blob', async () => {
    const { body } = await proposeAndApprove(ps, agent, alice, { description: 'Book my Sydney trip', limits: { amount: { max: 2000, currency: 'USD' } } })
    const b = JSON.parse(Buffer.from(body['mission'] as string, 'base64url').toString('utf8')) as Record<string, unknown>
    expect(b['limits']).toEqual({ amount: { max: 2000, currency: 'USD' } })
  })

  it('PS-TOK-10 / PS-PT-12 the capabilities declared with the proposal are used under the mission when a request sends none', async () => {
    const withInteraction = await proposeAndApprove(ps, agent, alice, { description: 'Plan a trip', capabilities: ['interaction'] })
    const without = await proposeAndApprove(ps, agent, alice, { description: 'Plan another trip' })
    expect((await ps.store.getMission(withInteraction.body['s256'] as string))?.capabilities).toEqual(['interaction'])
    // A new resource needs the person: reachable through the agent under the first mission, not the second.
    const a = await send(`${ps.issuer}/person`, agent, { json: { resource: 'https://cars.example', mission_s256: withInteraction.body['s256'] } })
    expect(a.res.status).toBe(202)
    const b = await send(`${ps.issuer}/person`, agent, { json: { resource: 'https://boats.example', mission_s256: without.body['s256'] } })
    expect(b.res.status).toBe(403)
    expect(await b.res.json()).toMatchObject({ error: 'user_unreachable' })
  })

  it('MIS-02 a proposal without tools or resources gives a blob without them and no person_tokens', async () => {
    const { body } = await proposeAndApprove(ps, agent, alice, { description: 'Summarise my inbox' })
    expect(Object.keys(body).sort()).toEqual(['mission', 's256'])
    const b = JSON.parse(Buffer.from(body['mission'] as string, 'base64url').toString('utf8')) as Record<string, unknown>
    expect(Object.keys(b)).toEqual(['agent', 'approved_at', 'description'])
  })

  const proposalRows: [string, () => Promise<{ who: Agent; json: unknown }>, number, string][] = [
    ['MIS-02 no description', async () => ({ who: agent, json: { tools: [] } }), 400, 'invalid_request'],
    ['MIS-02 empty description', async () => ({ who: agent, json: { description: '' } }), 400, 'invalid_request'],
    ['MIS-02 description too long', async () => ({ who: agent, json: { description: 'x'.repeat(16_001) } }), 400, 'invalid_request'],
    ['MIS-02 tools not an array', async () => ({ who: agent, json: { description: 'd', tools: 'WebSearch' } }), 400, 'invalid_request'],
    ['MIS-02 a tool without a description', async () => ({ who: agent, json: { description: 'd', tools: [{ name: 'A' }] } }), 400, 'invalid_request'],
    ['MIS-02 a tool listed twice', async () => ({ who: agent, json: { description: 'd', tools: [{ name: 'A', description: 'a' }, { name: 'A', description: 'b' }] } }), 400, 'invalid_request'],
    ['MIS-02 a resource that is not a server identifier', async () => ({ who: agent, json: { description: 'd', resources: ['https://flights.example/path'] } }), 400, 'invalid_request'],
    ['MIS-02 resources not an array', async () => ({ who: agent, json: { description: 'd', resources: FLIGHTS } }), 400, 'invalid_request'],
    ['limits not an object', async () => ({ who: agent, json: { description: 'd', limits: [2000] } }), 400, 'invalid_request'],
    ['limits with a name that is not an identifier', async () => ({ who: agent, json: { description: 'd', limits: { 'Amount!': { max: 1 } } } }), 400, 'invalid_request'],
    ['limits with a max that is not a number', async () => ({ who: agent, json: { description: 'd', limits: { amount: { max: '2000' } } } }), 400, 'invalid_request'],
    ['limits with an unknown member', async () => ({ who: agent, json: { description: 'd', limits: { amount: { max: 1, min: 0 } } } }), 400, 'invalid_request'],
    ['limits with a currency that is not a 3-letter code', async () => ({ who: agent, json: { description: 'd', limits: { amount: { max: 1, currency: 'dollars' } } } }), 400, 'invalid_request'],
    ['limits with more than 10 names', async () => ({ who: agent, json: { description: 'd', limits: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`l${i}`, { max: i }])) } }), 400, 'invalid_request'],
    [
      'PS-04 a sub-agent proposes itself',
      async () => {
        const sub = await makeAgent(ap, { local: 'sub', ps: ps.issuer })
        const token = await forgeToken(ap, 'aa-agent+jwt', { iss: ap.issuer, sub: sub.id, dwk: 'aauth-agent.json', ps: ps.issuer, parent_agent: agent.id, cnf: { jwk: sub.publicJwk }, jti: randomBytes(8).toString('hex'), iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 })
        return { who: { ...sub, token }, json: { description: 'd' } }
      },
      400,
      'invalid_request',
    ],
  ]
  it.each(proposalRows)('%s → refused, nothing written', async (_n, make, status, error) => {
    const { who, json } = await make()
    const before = await footprint(ps, alice)
    const r = await send(`${ps.issuer}/mission`, who, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect(await footprint(ps, alice)).toEqual(before)
  })

  it('MIS-08 an update is accepted at once: {s256} of the persisted bytes, logged; the blob and s256 stay', async () => {
    const description = '# Hotel unavailable\n\nA comparable hotel two blocks away.'
    const r = await send(`${ps.issuer}/mission/${s256}`, agent, { json: { action: 'update', description } })
    expect(r.res.status).toBe(200)
    const body = (await r.res.json()) as Record<string, unknown>
    expect(body).toEqual({ s256: digest(Buffer.from(description, 'utf8')) })
    const log = await ps.store.missionLog(s256)
    expect(log.at(-1)).toMatchObject({ type: 'update', detail: { description, s256: body['s256'] } })
    expect((await ps.store.getMission(s256))!.blob).toBe(JSON.stringify(blob))
  })

  const endpointRows: [string, () => string, unknown, number, string][] = [
    ['MIS-07 NEG-MIS-01 no action', () => `/mission/${s256}`, { description: 'x' }, 400, 'invalid_request'],
    ['MIS-07 an unknown action', () => `/mission/${s256}`, { action: 'reactivate' }, 400, 'invalid_request'],
    ['MIS-08 update without description', () => `/mission/${s256}`, { action: 'update' }, 400, 'invalid_request'],
    ['MIS-10 completion without summary', () => `/mission/${s256}`, { action: 'completion' }, 400, 'invalid_request'],
    ['NEG-MIS-02 s256 too short', () => `/mission/${s256.slice(1)}`, { action: 'update', description: 'x' }, 400, 'invalid_request'],
    ['NEG-MIS-02 s256 not base64url', () => `/mission/${'%2B'.repeat(43)}`, { action: 'update', description: 'x' }, 400, 'invalid_request'],
    ['MIS-ERR-01 an unknown mission', () => `/mission/${randomS256()}`, { action: 'update', description: 'x' }, 404, 'mission_not_found'],
  ]
  it.each(endpointRows)('%s → refused, nothing written', async (_n, path, json, status, error) => {
    const before = { ...(await footprint(ps, alice)), log: (await ps.store.missionLog(s256)).length }
    const r = await send(`${ps.issuer}${path()}`, agent, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect({ ...(await footprint(ps, alice)), log: (await ps.store.missionLog(s256)).length }).toEqual(before)
  })

  it('MIS-ERR-01 NEG-MIS-03 an unknown mission and another agent’s answer alike: status, body, headers and timing', async () => {
    // Bob's agent owns a few missions; `agent` asks about them and about missions nobody has.
    await ps.store.commit({ bindings: [{ agentIss: ap.issuer, agentSub: other.id, personId: bob, createdAt: Date.now() }] })
    const theirs: string[] = []
    for (let i = 0; i < 4; i++) {
      const { body } = await proposeAndApprove(ps, other, bob, { description: `Bob's mission ${i}` })
      theirs.push(body['s256'] as string)
    }
    const shape = async (path: string) => {
      const r = await send(`${ps.issuer}${path}`, agent, { json: { action: 'update', description: 'x' } })
      const headers: string[] = []
      r.res.headers.forEach((v, k) => {
        if (k !== 'date') headers.push(`${k}: ${v}`)
      })
      headers.sort()
      return { status: r.res.status, headers, body: await r.res.text() }
    }
    const unknown = await shape(`/mission/${randomS256()}`)
    const foreign = await shape(`/mission/${theirs[0]}`)
    expect(unknown.status).toBe(404)
    expect(foreign).toEqual(unknown)
    expect(JSON.parse(unknown.body)).toMatchObject({ error: 'mission_not_found' })
    // A coarse statistical comparison: medians of interleaved samples within 3x (machines are noisy;
    // this catches a path that does much more work, not microsecond differences).
    const times = { unknown: [] as number[], foreign: [] as number[] }
    for (let i = 0; i < 20; i++) {
      for (const [kind, path] of [['unknown', `/mission/${randomS256()}`], ['foreign', `/mission/${theirs[i % theirs.length]}`]] as const) {
        const t0 = performance.now()
        const r = await send(`${ps.issuer}${path}`, agent, { json: { action: 'completion', summary: 's' } })
        times[kind].push(performance.now() - t0)
        expect(r.res.status).toBe(404)
        await r.res.text()
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const ratio = median(times.unknown) / median(times.foreign)
    expect(ratio).toBeGreaterThan(1 / 3)
    expect(ratio).toBeLessThan(3)
    // Nothing of Bob's changed.
    for (const s of theirs) expect((await ps.store.missionLog(s)).filter((e) => e.type === 'update')).toEqual([])
  })

  it('MIS-ERR-02 an agent that keeps asking for missions it does not have is slowed down (429), unknown and foreign alike', async () => {
    const prober = await makeAgent(ap, { local: 'prober', ps: ps.issuer })
    for (let i = 0; i < MAX_MISSION_MISSES; i++) {
      const r = await send(`${ps.issuer}/mission/${randomS256()}`, prober, { json: { action: 'update', description: 'x' } })
      expect(r.res.status).toBe(404)
      await r.res.text()
    }
    for (const path of [`/mission/${randomS256()}`, `/mission/${s256}`]) {
      const r = await send(`${ps.issuer}${path}`, prober, { json: { action: 'update', description: 'x' } })
      expect(r.res.status).toBe(429)
      expect(Number(r.res.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(await r.res.json()).toMatchObject({ error: 'rate_limited' })
    }
    // Other agents are not affected.
    expect((await send(`${ps.issuer}/mission/${randomS256()}`, other, { json: { action: 'update', description: 'x' } })).res.status).toBe(404)
  })

  it('PS-CON-06 a token request under the mission shows the person the mission and its accepted updates', async () => {
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: HOTELS, mission_s256: s256, capabilities: ['interaction'], justification: 'To book the replacement hotel.' } })
    expect(r.res.status).toBe(202)
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'person_token' && p.view.missionS256 === s256)!
    expect(rec.view.mission).toEqual({ description: blob['description'], updates: ['# Hotel unavailable\n\nA comparable hotel two blocks away.'] })
    await ps.ps.consent.open(rec.id, alice)
    await ps.ps.consent.decide(rec.id, alice, { approve: true })
    expect((await send(r.res.headers.get('location')!, agent)).res.status).toBe(200)
  })

  it('MIS-10 completion: 202; a question leaves the mission active; acceptance terminates it as completed and answers 200 {}', async () => {
    const r = await send(`${ps.issuer}/mission/${s256}`, agent, { json: { action: 'completion', summary: 'Booked flights for 7-14 May.', capabilities: ['interaction', 'clarification'] } })
    expect(r.res.status).toBe(202)
    const location = r.res.headers.get('location')!
    const id = location.split('/').pop()!
    const rec = (await ps.store.getPending(id))!
    expect(rec).toMatchObject({ kind: 'mission', personId: alice })
    expect(rec.view.missionRequest).toEqual({ action: 'completion', summary: 'Booked flights for 7-14 May.' })
    expect(rec.view.mission?.updates).toHaveLength(1)
    await ps.ps.consent.open(id, alice)
    await ps.ps.consent.ask(id, alice, 'And the hotel?')
    const q = await send(location, agent)
    expect(q.res.status).toBe(202)
    expect(await q.res.json()).toMatchObject({ clarification: 'And the hotel?' })
    expect((await ps.store.getMission(s256))!.status).toBe('active')
    const answered = await send(location, agent, { json: { action: 'clarification_response', clarification_response: 'Booked too, see the itinerary.' } })
    expect(answered.res.status).toBe(202)
    await ps.ps.consent.decide(id, alice, { approve: true })
    const done = await send(location, agent)
    expect(done.res.status).toBe(200)
    expect(await done.res.json()).toEqual({})
    expect(await ps.store.getMission(s256)).toMatchObject({ status: 'terminated', terminationReason: 'completed' })
  })

  it('MIS-11 NEG-MIS-04 NEG-MIS-07 a completed mission stays terminated: update, completion and token requests get 403 mission_terminated (completed), nothing issued', async () => {
    for (const [path, json] of [
      [`/mission/${s256}`, { action: 'update', description: 'one more thing' }],
      [`/mission/${s256}`, { action: 'completion', summary: 'again' }],
      ['/person', { resource: FLIGHTS, mission_s256: s256 }],
      ['/permission', { action: 'BookFlight', mission_s256: s256 }],
      ['/audit', { action: 'BookFlight', mission_s256: s256 }],
    ] as const) {
      const before = { issued: (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length, log: (await ps.store.missionLog(s256)).length }
      const r = await send(`${ps.issuer}${path}`, agent, { json })
      expect(r.res.status, path).toBe(403)
      expect(await r.res.json()).toMatchObject({ error: 'mission_terminated', mission_status: 'terminated', termination_reason: 'completed' })
      expect({ issued: (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length, log: (await ps.store.missionLog(s256)).length }).toEqual(before)
    }
    // The store itself refuses to bring it back.
    const m = (await ps.store.getMission(s256))!
    await ps.store.commit({ missions: [{ ...m, status: 'active', terminationReason: undefined as never }] })
    expect(await ps.store.getMission(s256)).toMatchObject({ status: 'terminated', terminationReason: 'completed' })
  })

  it('MIS-LOG-01 the mission log is ordered and combines the mission’s entries with the audit events under it', async () => {
    const log = await readMissionLog(ps.ps.context, s256)
    const types = log.map((e) => `${e.source}:${e.type}`)
    const at = (t: string) => types.indexOf(t)
    for (const t of ['audit:mission.approved', 'mission:created', 'audit:person_token.issued', 'mission:update', 'audit:mission.updated', 'audit:request.pending', 'audit:mission.completion_proposed', 'mission:completion', 'mission:terminated']) expect(types, t).toContain(t)
    expect(at('mission:created')).toBeLessThan(at('mission:update'))
    expect(at('mission:update')).toBeLessThan(at('mission:completion'))
    expect(at('mission:completion')).toBeLessThan(at('mission:terminated'))
    for (let i = 1; i < log.length; i++) expect(log[i]!.at).toBeGreaterThanOrEqual(log[i - 1]!.at)
    // Token requests are logged with their justifications.
    expect(log.find((e) => e.type === 'request.pending')?.detail).toMatchObject({ justification: 'To book the replacement hotel.' })
  })

  it('REV-12 the person revokes a mission: terminated as revoked, grants and live tokens under it withdrawn, waiting requests end, later requests 403', async () => {
    const { body } = await proposeAndApprove(ps, agent, alice, { description: 'Plan a weekend', resources: [FLIGHTS, HOTELS] })
    const m = body['s256'] as string
    const jtis = Object.values(body['person_tokens'] as Record<string, string>).map((t) => (decodeJwt(t).payload as { jti: string }).jti)
    // A request waiting under the mission.
    const waiting = await send(`${ps.issuer}/permission`, agent, { json: { action: 'BookHotel', mission_s256: m } })
    expect(waiting.res.status).toBe(202)
    const report = await ps.ps.missions.revoke(alice, m)
    expect(report.tokens).toBe(2)
    expect(await ps.store.getMission(m)).toMatchObject({ status: 'terminated', terminationReason: 'revoked' })
    for (const jti of jtis) expect((await ps.store.getIssued(jti))?.revokedAt).toBeDefined()
    expect((await ps.store.listGrants(alice)).filter((g) => g.missionS256 === m && g.revokedAt === undefined)).toEqual([])
    const ended = await send(waiting.res.headers.get('location')!, agent)
    expect(ended.res.status).toBe(403)
    expect(await ended.res.json()).toMatchObject({ error: 'mission_terminated', termination_reason: 'revoked' })
    const before = (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: FLIGHTS, mission_s256: m } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'mission_terminated', mission_status: 'terminated', termination_reason: 'revoked' })
    expect((await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length).toBe(before)
    await expect(ps.ps.missions.revoke(alice, m)).rejects.toMatchObject({ code: 'closed' })
    await expect(ps.ps.missions.revoke(bob, m)).rejects.toMatchObject({ code: 'not_found' })
  })

  it('MIS-06 NEG-MIS-05 a mission past expires_at is terminated (expired) on every path, and recorded so', async () => {
    const s = randomS256()
    const m: MissionRecord = { s256: s, agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'active', blob: '{"description":"old"}', createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1000 }
    await ps.store.commit({ missions: [m] })
    for (const [path, json] of [
      ['/person', { resource: FLIGHTS, mission_s256: s }],
      ['/permission', { action: 'x', mission_s256: s }],
      ['/audit', { action: 'x', mission_s256: s }],
      ['/relay', { type: 'question', question: 'q', mission_s256: s }],
      [`/mission/${s}`, { action: 'update', description: 'x' }],
    ] as const) {
      const r = await send(`${ps.issuer}${path}`, agent, { json })
      expect(r.res.status, path).toBe(403)
      expect(await r.res.json()).toMatchObject({ error: 'mission_terminated', termination_reason: 'expired' })
    }
    expect(await ps.store.getMission(s)).toMatchObject({ status: 'terminated', terminationReason: 'expired' })
  })

  it('NEG-MIS-08 person tokens under a mission end no later than its expires_at', async () => {
    const s = randomS256()
    const expiresAt = Date.now() + 10 * 60_000
    await ps.store.commit({
      missions: [{ s256: s, agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'active', blob: '{"description":"short"}', createdAt: Date.now(), expiresAt }],
      grants: [{ id: randomS256(), personId: alice, agentIss: ap.issuer, agentSub: agent.id, resource: FLIGHTS, scope: '', missionS256: s, createdAt: Date.now() }],
    })
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: FLIGHTS, mission_s256: s } })
    expect(r.res.status).toBe(200)
    const exp = (decodeJwt(((await r.res.json()) as { person_token: string }).person_token).payload as { exp: number }).exp
    expect(exp).toBeLessThanOrEqual(Math.floor(expiresAt / 1000))
  })
})

describe('missions of a revoked agent', () => {
  it('REV-12 revoking an agent terminates its active missions as revoked; its terminated ones keep their reason', async () => {
    const ap = await loopIssuer('aauth-agent.json')
    const ps = await startRealPersonServer()
    const alice = await ps.addPerson('alice')
    const agent = await makeAgent(ap, { local: 'bot', ps: ps.issuer })
    const first = (await proposeAndApprove(ps, agent, alice, { description: 'One' })).body['s256'] as string
    const second = (await proposeAndApprove(ps, agent, alice, { description: 'Two' })).body['s256'] as string
    await ps.ps.missions.revoke(alice, second)
    const m = await ps.store.getMission(second)
    await ps.store.commit({ missions: [{ ...m!, terminationReason: 'completed' }] })
    await ps.ps.revokeAgent(alice, ap.issuer, agent.id)
    expect(await ps.store.getMission(first)).toMatchObject({ status: 'terminated', terminationReason: 'revoked' })
    expect(await ps.store.getMission(second)).toMatchObject({ status: 'terminated', terminationReason: 'revoked' })
    const r = await send(`${ps.issuer}/audit`, agent, { json: { action: 'x', mission_s256: first } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'mission_terminated', termination_reason: 'revoked' })
  })
})

describe('mission updates the person reviews (missionUpdates: ask)', () => {
  it('MIS-08 MIS-09 PS-CON-06 an update waits for the person, who sees the blob and every earlier update; acceptance answers {s256}', async () => {
    const ap = await loopIssuer('aauth-agent.json')
    const ps = await startRealPersonServer({ missionUpdates: 'ask' })
    const alice = await ps.addPerson('alice')
    const agent = await makeAgent(ap, { local: 'bot', ps: ps.issuer })
    const { body } = await proposeAndApprove(ps, agent, alice, { description: 'Organise the party' })
    const s = body['s256'] as string
    const texts = ['Venue changed', 'Guest list grew to 40']
    for (const [i, description] of texts.entries()) {
      const r = await send(`${ps.issuer}/mission/${s}`, agent, { json: { action: 'update', description } })
      expect(r.res.status).toBe(202)
      const id = r.res.headers.get('location')!.split('/').pop()!
      const rec = (await ps.store.getPending(id))!
      expect(rec.view.mission).toEqual({ description: 'Organise the party', updates: texts.slice(0, i) })
      expect(rec.view.missionRequest).toEqual({ action: 'update', description })
      expect((await ps.store.missionLog(s)).filter((e) => e.type === 'update')).toHaveLength(i)
      await ps.ps.consent.open(id, alice)
      await ps.ps.consent.decide(id, alice, { approve: true })
      const poll = await send(r.res.headers.get('location')!, agent)
      expect(poll.res.status).toBe(200)
      expect(await poll.res.json()).toEqual({ s256: digest(description) })
    }
    const detail = await ps.ps.missions.detail(alice, s)
    expect(detail.updates.map((u) => u.description)).toEqual(texts)
  })
})
