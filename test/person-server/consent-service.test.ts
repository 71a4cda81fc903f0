/**
 * The consent service behind the person's pages (main draft §User Interaction, §Agent-Person
 * Binding, §Clarification Limits): every refusal has its code and changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConsentError } from '../../src/person-server/index.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

let ps: RunningPs
let ap: LoopIssuer
let alice: string
let bob: string

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json', { name: 'Test Agents' })
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  bob = await ps.addPerson('bob')
})
afterAll(closeAll)

/** A first-contact person token request of a new agent: returns the pending id and the agent. */
async function firstContact(local: string, capabilities = ['interaction', 'clarification'], resource = 'https://res.example'): Promise<{ id: string; agent: Agent }> {
  const agent = await makeAgent(ap, { local, ps: ps.issuer })
  const r = await send(`${ps.issuer}/person`, agent, { json: { resource, capabilities } })
  expect(r.res.status).toBe(202)
  const code = /code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement')!)![1]!
  const rec = await ps.ps.consent.findByCode(code)
  return { id: rec!.id, agent }
}

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err)
  expect(e).toBeInstanceOf(ConsentError)
  expect((e as ConsentError).code).toBe(code)
}

describe('consent service', () => {
  it('PS-CON-02 a code is single use: once opened it no longer finds the request', async () => {
    const agent = await makeAgent(ap, { local: 'single', ps: ps.issuer })
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: 'https://res.example', capabilities: ['interaction'] } })
    const code = /code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement')!)![1]!
    const rec = await ps.ps.consent.findByCode(code.toLowerCase())
    expect(rec).toBeDefined()
    await ps.ps.consent.open(rec!.id, alice)
    expect(await ps.ps.consent.findByCode(code)).toBeUndefined()
    expect(await ps.ps.consent.findByCode('not a code')).toBeUndefined()
  })

  it('not_found for an unknown request', async () => {
    await refused(ps.ps.consent.open('nope', alice), 'not_found')
    await refused(ps.ps.consent.decide('nope', alice, { approve: true }), 'not_found')
  })

  it('PS-05 not_yours: a request opened by Alice cannot be decided by Bob', async () => {
    const { id } = await firstContact('shared')
    await ps.ps.consent.open(id, alice)
    await refused(ps.ps.consent.decide(id, bob, { approve: true }), 'not_yours')
    await refused(ps.ps.consent.get(id, bob), 'not_yours')
    expect((await ps.store.getPending(id))?.state).toBe('interacting')
  })

  it('PS-05 two first-contact requests opened by two people: the first approval binds, the second is not_yours', async () => {
    const agent = await makeAgent(ap, { local: 'contested', ps: ps.issuer })
    const ids: string[] = []
    for (const resource of ['https://one.example', 'https://two.example']) {
      const r = await send(`${ps.issuer}/person`, agent, { json: { resource, capabilities: ['interaction'] } })
      ids.push((await ps.ps.consent.findByCode(/code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement')!)![1]!))!.id)
    }
    await ps.ps.consent.open(ids[0]!, alice)
    await ps.ps.consent.open(ids[1]!, bob)
    await ps.ps.consent.decide(ids[0]!, alice, { approve: true })
    await refused(ps.ps.consent.decide(ids[1]!, bob, { approve: true }), 'not_yours')
    expect((await ps.store.getBinding(ap.issuer, agent.id))?.personId).toBe(alice)
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, personId: bob, now: Date.now() })).toEqual([])
  })

  it('closed: a decided request cannot be decided again (no second token)', async () => {
    const { id, agent } = await firstContact('twice')
    await ps.ps.consent.open(id, alice)
    await ps.ps.consent.decide(id, alice, { approve: true })
    await refused(ps.ps.consent.decide(id, alice, { approve: true }), 'closed')
    await refused(ps.ps.consent.ask(id, alice, 'why?'), 'closed')
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).toHaveLength(1)
  })

  it('concurrent approvals of one request issue exactly one token', async () => {
    const { id, agent } = await firstContact('race')
    await ps.ps.consent.open(id, alice)
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => ps.ps.consent.decide(id, alice, { approve: true })))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).toHaveLength(1)
  })

  it('PS-CLAR-03 clarification_limit after five questions; bad_input for an empty question or a second while one waits', async () => {
    const { id } = await firstContact('curious')
    await ps.ps.consent.open(id, alice)
    await refused(ps.ps.consent.ask(id, alice, '   '), 'bad_input')
    for (let i = 0; i < 5; i++) {
      await ps.ps.consent.ask(id, alice, `question ${i}`)
      await refused(ps.ps.consent.ask(id, alice, 'another'), 'bad_input')
      // The agent answers (what its POST to the pending URL does).
      const rec = (await ps.store.getPending(id))!
      await ps.store.commit({ pending: { id, from: ['clarification'], patch: { state: 'interacting', chat: [...rec.chat!, { from: 'agent', text: 'because', at: Date.now() }], updatedAt: Date.now() } } })
    }
    await refused(ps.ps.consent.ask(id, alice, 'sixth'), 'clarification_limit')
  })

  it('bad_input: asking an agent that did not declare clarification; approving a question instead of answering it', async () => {
    const { id } = await firstContact('mute', ['interaction'])
    await ps.ps.consent.open(id, alice)
    await refused(ps.ps.consent.ask(id, alice, 'why?'), 'bad_input')
  })

  it('revoking someone else’s grant or agent is not_yours; unknown ones are not_found', async () => {
    const { id, agent } = await firstContact('owned')
    await ps.ps.consent.open(id, alice)
    await ps.ps.consent.decide(id, alice, { approve: true, remember: 'always' })
    const grant = (await ps.ps.consent.grants(alice)).find((g) => g.agentSub === agent.id)!
    await refused(ps.ps.consent.revokeGrant(bob, grant.id), 'not_yours')
    await refused(ps.ps.consent.revokeAgent(bob, ap.issuer, agent.id), 'not_yours')
    await refused(ps.ps.consent.revokeGrant(alice, 'nope'), 'not_found')
    await refused(ps.ps.consent.revokeAgent(alice, ap.issuer, 'aauth:nobody@x.example'), 'not_found')
    expect((await ps.store.getGrant(grant.id))?.revokedAt).toBeUndefined()
  })

  it('revokeAgent ends the binding, the grants and the open requests of that agent', async () => {
    const { id, agent } = await firstContact('leaving')
    await ps.ps.consent.open(id, alice)
    await ps.ps.consent.decide(id, alice, { approve: true, remember: 'always' })
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: 'https://elsewhere.example', capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const report = await ps.ps.consent.revokeAgent(alice, ap.issuer, agent.id)
    expect(report.tokens).toBe(1)
    expect((await ps.store.getBinding(ap.issuer, agent.id))?.revokedAt).toBeDefined()
    expect((await ps.ps.consent.grants(alice)).filter((g) => g.agentSub === agent.id && g.revokedAt === undefined)).toEqual([])
    const poll = await send(r.res.headers.get('location')!, agent)
    expect(poll.res.status).toBe(403)
    expect(await poll.res.json()).toMatchObject({ error: 'revoked' })
    // The agent is a stranger again: its next request waits for a person.
    expect((await send(`${ps.issuer}/person`, agent, { json: { resource: 'https://res.example', capabilities: ['interaction'] } })).res.status).toBe(202)
  })
})
