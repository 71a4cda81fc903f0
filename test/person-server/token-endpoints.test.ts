/**
 * The PS person and auth token endpoints over loopback HTTP (main draft §Person Token Endpoint,
 * §Auth Token Endpoint, §Resource Token Verification, §Token Endpoint Error Codes). Issuers (agent
 * provider, resource) publish real metadata and JWKS; requests are really signed. Every rejection
 * is one row: exact status and code, and no token issued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, randomJti } from '../../src/protocol/index.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { bindWithGrants, startRealPersonServer, type RunningPs } from '../helpers/person-server.js'
import { forgeToken, loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../resource/resource-fixture.js'

let ps: RunningPs
let ap: LoopIssuer
let res: LoopIssuer
let other: LoopIssuer
let agent: Agent
let stranger: Agent
let alice: string
let pt: string
let ptClaims: Record<string, unknown>

const now = () => Math.floor(Date.now() / 1000)

function bind(a: Agent, personId: string, scopes: string[]): Promise<void> {
  return bindWithGrants(ps.store, { agentIss: ap.issuer, agentSub: a.id, personId, resource: res.issuer, scopes })
}

function resourceToken(claims: Record<string, unknown> = {}, issuer: LoopIssuer = res): Promise<string> {
  return forgeToken(issuer, 'aa-resource+jwt', {
    iss: issuer.issuer,
    dwk: 'aauth-resource.json',
    aud: ps.issuer,
    ps: ps.issuer,
    sub: ptClaims['sub'],
    presented_jti: ptClaims['jti'],
    agent_jkt: agent.jkt,
    scope: 'read',
    jti: randomJti(),
    iat: now(),
    exp: now() + 300,
    ...claims,
  })
}

async function issuedCount(): Promise<number> {
  return (await ps.store.liveIssued({ agentIss: ap.issuer, agentSub: agent.id, now: Date.now() })).length
}

beforeAll(async () => {
  ap = await loopIssuer('aauth-agent.json', { name: 'Test Agents' })
  res = await loopIssuer('aauth-resource.json', { name: 'Booking API' })
  other = await loopIssuer('aauth-resource.json')
  ps = await startRealPersonServer()
  alice = await ps.addPerson('alice')
  agent = await makeAgent(ap, { local: 'travel-bot', ps: ps.issuer })
  stranger = await makeAgent(ap, { local: 'stranger', ps: ps.issuer })
  await bind(agent, alice, ['read'])
  const r = await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })
  expect(r.res.status).toBe(200)
  pt = ((await r.res.json()) as { person_token: string }).person_token
  ptClaims = decodeJwt(pt).payload
})
afterAll(closeAll)

describe('PS metadata', () => {
  it('PS-01 publishes the required endpoints and its JWKS', async () => {
    const md = (await (await fetch(`${ps.issuer}/.well-known/aauth-person.json`)).json()) as Record<string, unknown>
    expect(md).toMatchObject({ issuer: ps.issuer, jwks_uri: `${ps.issuer}/.well-known/jwks.json`, person_token_endpoint: `${ps.issuer}/person`, auth_token_endpoint: `${ps.issuer}/token`, revocation_endpoint: `${ps.issuer}/revoke` })
    const jwks = (await (await fetch(md['jwks_uri'] as string)).json()) as { keys: unknown[] }
    expect(jwks.keys).toHaveLength(1)
  })
})

describe('person token endpoint', () => {
  it('PS-PT-07 / PS-PT-11 issues a directed, key-bound token of at most 1 h with no scope', async () => {
    expect(ptClaims).toMatchObject({ iss: ps.issuer, aud: res.issuer, dwk: 'aauth-person.json', cnf: { jwk: { x: agent.publicJwk.x } } })
    expect(ptClaims['scope']).toBeUndefined()
    expect((ptClaims['exp'] as number) - (ptClaims['iat'] as number)).toBeLessThanOrEqual(3600)
    const again = decodeJwt(((await (await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })).res.json()) as { person_token: string }).person_token).payload
    expect(again['sub']).toBe(ptClaims['sub'])
  })

  it('PS-PT-08 records the issued token (jti, aud, exp)', async () => {
    const rec = await ps.store.getIssued(ptClaims['jti'] as string)
    expect(rec).toMatchObject({ kind: 'person', resource: res.issuer, personId: alice, expiresAt: (ptClaims['exp'] as number) * 1000 })
  })

  const bad: [string, Record<string, unknown>, number, string][] = [
    ['PS-PT-02 missing resource', {}, 400, 'invalid_request'],
    ['PS-PT-02 resource not a server identifier', { resource: 'https://res.example/path?q' }, 400, 'invalid_request'],
    ['PS-PT-03 malformed mission_s256', { resource: 'https://res.example', mission_s256: 'nope' }, 400, 'invalid_request'],
    ['PS-PT-03 unknown mission', { resource: 'https://res.example', mission_s256: 'A'.repeat(43) }, 404, 'mission_not_found'],
    ['PS-TOK-09 unknown platform', { resource: 'https://res.example', platform: 'toaster' }, 400, 'invalid_request'],
    ['PS-TOK-09 device over 64 characters', { resource: 'https://res.example', device: 'x'.repeat(65) }, 400, 'invalid_request'],
    ['PS-TOK-09 device with control characters', { resource: 'https://res.example', device: 'a\u0007b' }, 400, 'invalid_request'],
    ['capabilities not an array', { resource: 'https://res.example', capabilities: 'interaction' }, 400, 'invalid_request'],
  ]
  it.each(bad)('%s → refused, nothing issued', async (_n, json, status, error) => {
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/person`, agent, { json })
    expect(r.res.status).toBe(status)
    expect(await r.res.json()).toMatchObject({ error })
    expect(await issuedCount()).toBe(before)
  })

  it('PS-PT-12 / PS-TOK-10 a new resource without the interaction capability is user_unreachable (403)', async () => {
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: other.issuer, capabilities: [] } })
    expect(r.res.status).toBe(403)
    expect(await r.res.json()).toMatchObject({ error: 'user_unreachable' })
  })

  it('PS-PT-10 a new resource waits for the person: 202 with requirement=interaction', async () => {
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: other.issuer, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    expect(r.res.headers.get('aauth-requirement')).toMatch(new RegExp(`^requirement=interaction; url="${ps.issuer}/interaction"; code="[0-9A-Z]{4}-[0-9A-Z]{4}"$`))
    expect(r.res.headers.get('location')).toMatch(new RegExp(`^${ps.issuer}/pending/`))
    expect(r.res.headers.get('cache-control')).toBe('no-store')
  })

  it('PS-02 an unsigned request is 401 with Signature-Error', async () => {
    const r = await send(`${ps.issuer}/person`, undefined, { json: { resource: res.issuer } })
    expect(r.res.status).toBe(401)
    expect(r.res.headers.get('signature-error')).toMatch(/^error=/)
  })

  it('PS-02 a body outside the signature is 401 invalid_input', async () => {
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer }, unsignedBody: true })
    expect(r.res.status).toBe(401)
    expect(r.res.headers.get('signature-error')).toMatch(/^error=invalid_input/)
  })

  it('PS-04 a sub-agent calling the PS itself is refused', async () => {
    const { createAgentToken, createSigner, generateKeyPair, jwkThumbprint } = await import('../../src/protocol/index.js')
    const k = await generateKeyPair('Ed25519')
    const host = new URL(ap.issuer).host
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: `aauth:travel-bot+pay@${host}`, parentAgent: `aauth:travel-bot@${host}`, cnfJwk: k.publicJwk, allowInsecureLoopback: true })
    const sub = { signer: await createSigner(k.privateJwk), token, jkt: await jwkThumbprint(k.publicJwk) }
    const r = await send(`${ps.issuer}/person`, sub, { json: { resource: res.issuer } })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'invalid_request' })
  })
})

describe('auth token endpoint', () => {
  it('PS-AT-01..05 issues an auth token from a remembered grant', async () => {
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(), presented_token: pt } })
    expect(r.res.status).toBe(200)
    const body = (await r.res.json()) as { auth_token: string; expires_in: number }
    const c = decodeJwt(body.auth_token)
    expect(c.header['typ']).toBe('aa-auth+jwt')
    expect(c.payload).toMatchObject({ iss: ps.issuer, ps: ps.issuer, dwk: 'aauth-person.json', aud: res.issuer, sub: ptClaims['sub'], scope: 'read', cnf: { jwk: { x: agent.publicJwk.x } } })
    expect(c.payload['exp']).toBeLessThanOrEqual(ptClaims['exp'] as number)
    expect(await ps.store.getIssued(c.payload['jti'] as string)).toMatchObject({ kind: 'auth', presentedJti: ptClaims['jti'], scope: 'read' })
    const audit = await ps.store.queryAudit({ personId: alice })
    expect(audit.some((e) => e.type === 'auth_token.issued' && e.scope === 'read' && e.agentSub === agent.id)).toBe(true)
  })

  it('PS-TOK-12 a scope not yet granted waits for the person (incremental consent)', async () => {
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken({ scope: 'read write' }), presented_token: pt, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const rec = (await ps.store.openPending(alice)).find((p) => p.kind === 'auth_token' && p.view.scopes?.includes('write'))
    expect(rec?.view.newScopes).toEqual(['write'])
  })

  type Row = [string, () => Promise<Record<string, unknown>>, number, string]
  const rows: Row[] = [
    ['PS-TOK-01 missing resource_token', async () => ({ presented_token: pt }), 400, 'invalid_request'],
    ['PS-TOK-01 missing presented_token', async () => ({ resource_token: await resourceToken() }), 400, 'invalid_request'],
    ['PS-TOK-02 resource token not a JWT', async () => ({ resource_token: 'x.y.z', presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-TOK-02 resource token for another PS (aud)', async () => ({ resource_token: await resourceToken({ aud: 'https://other-ps.example' }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-TOK-02 resource token naming another ps', async () => ({ resource_token: await resourceToken({ ps: 'https://other-ps.example' }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-TOK-02 expired resource token', async () => ({ resource_token: await resourceToken({ iat: now() - 600, exp: now() - 300 }), presented_token: pt }), 400, 'expired_resource_token'],
    ['PS-RT-05 resource token for another agent key', async () => ({ resource_token: await resourceToken({ agent_jkt: stranger.jkt }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-TOK-02 resource token signed by a key the resource does not publish', async () => ({ resource_token: await forgeToken(other, 'aa-resource+jwt', { iss: res.issuer, dwk: 'aauth-resource.json', aud: ps.issuer, ps: ps.issuer, sub: ptClaims['sub'], presented_jti: ptClaims['jti'], agent_jkt: agent.jkt, jti: randomJti(), iat: now(), exp: now() + 300 }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-RT-03 presented token of another typ', async () => ({ resource_token: await resourceToken(), presented_token: await resourceToken() }), 400, 'invalid_presented_token'],
    ['PS-RT-03 presented token not for the resource (aud)', async () => ({ resource_token: await resourceToken({}, other), presented_token: pt }), 400, 'invalid_presented_token'],
    ['PS-RT-03 presented_jti names another token', async () => ({ resource_token: await resourceToken({ presented_jti: 'other' }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-RT-03 sub does not match', async () => ({ resource_token: await resourceToken({ sub: 'someone-else' }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-RT-03 mission stripped/added', async () => ({ resource_token: await resourceToken({ mission_s256: 'A'.repeat(43) }), presented_token: pt }), 400, 'invalid_resource_token'],
    ['PS-SUB-01 subagent_token that is not a JWT', async () => ({ resource_token: await resourceToken(), presented_token: pt, subagent_token: 'x' }), 400, 'invalid_subagent_token'],
    ['PS-CH-01 upstream_token that is not a JWT', async () => ({ resource_token: await resourceToken(), presented_token: pt, upstream_token: 'x' }), 400, 'invalid_upstream_token'],
  ]
  it.each(rows)('%s → refused, nothing issued', async (_n, body, status, error) => {
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/token`, agent, { json: await body() })
    expect(r.res.status).toBe(status)
    expect(r.res.headers.get('content-type')).toBe('application/problem+json')
    expect(await r.res.json()).toMatchObject({ error })
    expect(await issuedCount()).toBe(before)
  })

  it('PS-TOK-13 a presented token this PS revoked → revoked_presented_token', async () => {
    const r0 = await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })
    const pt2 = ((await r0.res.json()) as { person_token: string }).person_token
    const c2 = decodeJwt(pt2).payload
    await ps.store.commit({ revokeIssued: [{ jti: c2['jti'] as string, at: Date.now() }] })
    const before = await issuedCount()
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken({ presented_jti: c2['jti'] }), presented_token: pt2 } })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'revoked_presented_token' })
    expect(await issuedCount()).toBe(before)
  })

  it('REV-14 a resource token its resource revoked → revoked_resource_token', async () => {
    const jti = randomJti()
    await ps.store.addRevocation({ iss: res.issuer, jti, expiresAt: Date.now() + 300_000, receivedAt: Date.now() })
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken({ jti }), presented_token: pt } })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'revoked_resource_token' })
  })

  it('PS-05 a resource token naming a person this agent does not act for is refused', async () => {
    const bob = await ps.addPerson('bob')
    await bind(stranger, bob, ['read'])
    // The stranger presents Alice's person token (bound to agent's key, so rejected on cnf) — and with its own key a fresh token names Bob.
    const r = await send(`${ps.issuer}/token`, stranger, { json: { resource_token: await resourceToken({ agent_jkt: stranger.jkt }), presented_token: pt } })
    expect(r.res.status).toBe(400)
    expect(await r.res.json()).toMatchObject({ error: 'invalid_presented_token' })
  })

  it('replaying a signed token request is refused with 401', async () => {
    const first = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(), presented_token: pt } })
    expect(first.res.status).toBe(200)
    const { resend } = await import('../resource/resource-fixture.js')
    const again = await resend(first)
    expect(again.status).toBe(401)
    expect(again.headers.get('signature-error')).toMatch(/^error=/)
  })
})

describe('key rotation', () => {
  it('PS-01 after a rotation both keys are published, old tokens still redeem and new ones carry the new kid', async () => {
    const oldKid = decodeJwt(pt).header['kid']
    await ps.ps.context.keys.rotate()
    const jwks = (await (await fetch(`${ps.issuer}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }
    expect(jwks.keys.map((k) => k.kid)).toContain(oldKid)
    expect(jwks.keys).toHaveLength(2)
    const r = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken(), presented_token: pt } })
    expect(r.res.status).toBe(200)
    const at = ((await r.res.json()) as { auth_token: string }).auth_token
    expect(decodeJwt(at).header['kid']).not.toBe(oldKid)
    // A token signed with the new key redeems at once (no JWKS refetch floor for the PS's own keys).
    const r2 = await send(`${ps.issuer}/person`, agent, { json: { resource: res.issuer } })
    const pt2 = ((await r2.res.json()) as { person_token: string }).person_token
    const c2 = decodeJwt(pt2).payload
    const r3 = await send(`${ps.issuer}/token`, agent, { json: { resource_token: await resourceToken({ presented_jti: c2['jti'] }), presented_token: pt2 } })
    expect(r3.res.status).toBe(200)
  })
})

describe('distinct resources per agent', () => {
  it('PS-PT-09 an agent asking for more distinct resources than allowed per hour gets 429 rate_limited; known ones still work', async () => {
    const small = await startRealPersonServer({ maxResourcesPerAgentHour: 2 })
    const carol = await small.addPerson('carol')
    const a = await makeAgent(ap, { local: 'wanderer', ps: small.issuer })
    const at = Date.now()
    await small.store.commit({
      bindings: [{ agentIss: ap.issuer, agentSub: a.id, personId: carol, createdAt: at }],
      grants: ['https://one.example', 'https://two.example', 'https://three.example'].map((resource, i) => ({ id: `w-${i}`, personId: carol, agentIss: ap.issuer, agentSub: a.id, resource, scope: '', createdAt: at })),
    })
    expect((await send(`${small.issuer}/person`, a, { json: { resource: 'https://one.example' } })).res.status).toBe(200)
    expect((await send(`${small.issuer}/person`, a, { json: { resource: 'https://two.example' } })).res.status).toBe(200)
    const third = await send(`${small.issuer}/person`, a, { json: { resource: 'https://three.example' } })
    expect(third.res.status).toBe(429)
    expect(Number(third.res.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await third.res.json()).toMatchObject({ error: 'rate_limited' })
    expect((await send(`${small.issuer}/person`, a, { json: { resource: 'https://one.example' } })).res.status).toBe(200)
  })
})
