/**
 * Fuzzing the Person Server's request bodies over loopback HTTP: arbitrary JSON (and near-miss
 * shapes of the real parameters) at the mission, token and governance endpoints never makes the
 * server fail (5xx) or answer without a problem code, and never issues anything.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/aauth-servers.js'
import { bindWithGrants, startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { numRuns } from '../helpers/property.js'
import { loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

let ps: RunningPs
let ap: LoopIssuer
let agent: Agent
let alice: string
const S256 = 'A'.repeat(43)

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json')
  const res = await loopIssuer('aauth-resource.json')
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  agent = await makeAgent(ap, { local: 'fuzzer', ps: ps.issuer })
  await bindWithGrants(ps.store, { agentIss: ap.issuer, agentSub: agent.id, personId: alice, resource: res.issuer, scopes: ['read'] })
  await ps.store.commit({ missions: [{ s256: S256, agentIss: ap.issuer, agentSub: agent.id, personId: alice, status: 'active', blob: '{}', createdAt: Date.now() }] })
})
afterAll(closeAll)

/** Values shaped like the parameters, and anything at all. */
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('eyJhbGciOiJFZERTQSJ9.e30.AA', 'a.b.c', '', 'https://res.example', S256, 'update', 'completion'),
  fc.array(fc.record({ name: fc.string(), description: fc.jsonValue() }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.record({ max: fc.jsonValue(), currency: fc.jsonValue() }), { maxKeys: 3 }),
)
const body = fc.dictionary(
  fc.constantFrom('description', 'tools', 'resources', 'limits', 'action', 'summary', 'resource', 'resource_token', 'presented_token', 'subagent_token', 'upstream_token', 'mission_s256', 'capabilities', 'justification', 'parameters', 'type', 'question'),
  value,
  { maxKeys: 6 },
)
const path = fc.constantFrom('/mission', `/mission/${S256}`, '/mission/not-a-hash', '/person', '/token', '/permission', '/audit', '/relay')

describe('PS request bodies (fuzz)', () => {
  it('arbitrary bodies at the mission, token and governance endpoints: a problem code, never a 5xx, nothing issued', async () => {
    await fc.assert(
      fc.asyncProperty(path, body, async (p, json) => {
        const r = await send(`${ps.issuer}${p}`, agent, { json: { ...json, capabilities: [] } })
        expect(r.res.status, `${p} ${JSON.stringify(json)}`).toBeLessThan(500)
        if (r.res.status >= 400) expect(((await r.res.json()) as { error?: unknown }).error, `${p} ${JSON.stringify(json)}`).toEqual(expect.any(String))
        else await r.res.body?.cancel()
      }),
      { numRuns: Math.min(numRuns, 300) },
    )
    expect(await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).toEqual([])
  }, 120_000)
})
