/**
 * The framework-neutral resource core without an adapter: construction checks, session tokens,
 * served endpoints, and one full agent-identity round trip with Fetch Requests (the adapters'
 * table in adapters.test.ts runs every mode over HTTP).
 */
import { describe, expect, it } from 'vitest'
import { KeyRing } from '../../src/agent/index.js'
import { createResource, MemoryStore, SessionTokens } from '../../src/resource/index.js'
import { createAgentToken, createSigner, generateKeyPair, jwkThumbprint, signRequest } from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork } from '../helpers/issuers.js'
import { JwksCache } from '../../src/protocol/index.js'

describe('createResource: construction (RES-META-02)', () => {
  it('refuses a non-identifier issuer, PS or AS, and a resource-token lifetime over 5 minutes', () => {
    expect(() => createResource({ issuer: 'http://api.example' })).toThrow()
    expect(() => createResource({ issuer: 'https://api.example', personServers: ['https://ps.example/'] })).toThrow()
    expect(() => createResource({ issuer: 'https://api.example', accessServer: 'ftp://as.example' })).toThrow()
    expect(() => createResource({ issuer: 'https://api.example', resourceTokenLifetimeSec: 301 })).toThrow(RangeError)
  })

  it('RES-META-02 publishes metadata with issuer, jwks_uri, revocation and authorization endpoints; JWKS keys carry alg', async () => {
    const keys = await KeyRing.create()
    const r = createResource({ issuer: 'https://api.example', keys, metadata: { name: 'Flights', access_mode: 'auth-token', scope_descriptions: { 'flights.read': 'Read flights' } } })
    const md = await (await r.serve(new Request('https://api.example/.well-known/aauth-resource.json')))!.json()
    expect(md).toEqual({
      name: 'Flights',
      access_mode: 'auth-token',
      scope_descriptions: { 'flights.read': 'Read flights' },
      issuer: 'https://api.example',
      jwks_uri: 'https://api.example/.well-known/jwks.json',
      revocation_endpoint: 'https://api.example/aauth/revoke',
      authorization_endpoint: 'https://api.example/aauth/authorize',
    })
    const jwks = (await (await r.serve(new Request('https://api.example/.well-known/jwks.json')))!.json()) as { keys: { alg?: string }[] }
    expect(jwks.keys.every((k) => k.alg === 'Ed25519')).toBe(true)
    expect(await r.serve(new Request('https://api.example/other'))).toBeUndefined()
    expect((await r.serve(new Request('https://api.example/aauth/revoke')))!.status).toBe(405)
    // Without keys there are no resource tokens to publish keys for.
    const bare = createResource({ issuer: 'https://api.example' })
    expect(bare.metadata.jwks_uri).toBeUndefined()
    expect(await bare.serve(new Request('https://api.example/.well-known/jwks.json'))).toBeUndefined()
  })
})

describe('SessionTokens (RES-RM-02)', () => {
  it('binds a session to the agent key; tampering, another key, expiry and a short secret are refused', () => {
    let now = 1_800_000_000_000
    const s = new SessionTokens({ now: () => now, lifetimeSec: 60 })
    const t = s.issue('jkt-a', { user: 'u1' })
    expect(s.verify(t, 'jkt-a')).toMatchObject({ jkt: 'jkt-a', data: { user: 'u1' } })
    expect(s.verify(t, 'jkt-b')).toBeUndefined()
    expect(s.verify(`${t}x`, 'jkt-a')).toBeUndefined()
    expect(s.verify(t.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), 'jkt-a')).toBeUndefined()
    expect(s.verify('nodot', 'jkt-a')).toBeUndefined()
    expect(new SessionTokens().verify(t, 'jkt-a')).toBeUndefined()
    now += 61_000
    expect(s.verify(t, 'jkt-a')).toBeUndefined()
    expect(() => new SessionTokens({ secret: new Uint8Array(16) })).toThrow(RangeError)
  })
})

describe('resource core with Fetch Requests', () => {
  it('RES-ID-02 agent identity: the verified agent id; a replay is refused', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
    const key = await generateKeyPair()
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: 'aauth:bot@agents.example', cnfJwk: key.publicJwk })
    const r = createResource({ issuer: 'https://api.example', jwks: new JwksCache({ fetcher: net.fetcher }), store: new MemoryStore() })
    const { headers } = await signRequest({ method: 'GET', url: 'https://api.example/whoami', headers: new Headers() }, { signer: await createSigner(key.privateJwk), signatureKey: { scheme: 'jwt', jwt: token, cache: false } })
    const d = await r.authenticate(new Request('https://api.example/whoami', { headers }), { access: 'agent' })
    expect(d.ok && d.access.agent?.id).toBe('aauth:bot@agents.example')
    expect(d.ok && d.access.agentJkt).toBe(await jwkThumbprint(key.publicJwk))
    const again = await r.authenticate(new Request('https://api.example/whoami', { headers }), { access: 'agent' })
    expect(again.ok).toBe(false)
    expect(!again.ok && again.response.status).toBe(401)
  })
})
