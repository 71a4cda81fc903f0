import { describe, expect, it } from 'vitest'
import { fetchMetadata, JwksCache, MetadataError, validateMetadata, DWK } from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork } from '../helpers/issuers.js'

const ISS = 'https://agents.example'
const JWKS_URL = `${ISS}/.well-known/jwks.json`

function clock(start = 1_700_000_000_000) {
  let t = start
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

describe('JWKS discovery and caching (main draft §JWKS Discovery and Caching)', () => {
  it('JWKS-01 finds the key through {iss}/.well-known/{dwk} → jwks_uri → kid', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    const jwks = new JwksCache({ fetcher: net.fetcher })
    const found = await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(found?.jwk.x).toBe(ap.publicJwk.x)
    expect(await jwks.getKey(ISS, DWK.agent, 'nope')).toBeUndefined()
  })

  it('JWKS-04 caches: many lookups, one fetch', async () => {
    const net = fakeNetwork()
    await fakeIssuer(net, ISS, DWK.agent)
    const jwks = new JwksCache({ fetcher: net.fetcher })
    await Promise.all(Array.from({ length: 50 }, () => jwks.getKey(ISS, DWK.agent, 'key-1')))
    expect(net.hits.get(JWKS_URL)).toBe(1)
  })

  it('JWKS-05/06 NEG-META-06 an unknown kid refreshes, but never more than once per minute per issuer', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    const c = clock()
    const jwks = new JwksCache({ fetcher: net.fetcher, now: c.now })
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    c.advance(61_000)
    expect(await jwks.getKey(ISS, DWK.agent, 'rotated')).toBeUndefined() // one refresh
    expect(await jwks.getKey(ISS, DWK.agent, 'rotated-2')).toBeUndefined() // within the floor: no fetch
    c.advance(30_000)
    expect(await jwks.getKey(ISS, DWK.agent, 'rotated-3')).toBeUndefined()
    expect(net.hits.get(JWKS_URL)).toBe(2)
    // The issuer rotates; after the floor the new kid is found.
    ap.jwks.keys.push({ ...ap.publicJwk, kid: 'rotated' })
    c.advance(31_000)
    expect(await jwks.getKey(ISS, DWK.agent, 'rotated')).toBeDefined()
    expect(net.hits.get(JWKS_URL)).toBe(3)
  })

  it('JWKS-04 honours Cache-Control max-age and JWKS-08 never keeps a set beyond 24 h', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    net.serveJson(JWKS_URL, ap.jwks, { 'cache-control': 'max-age=120' })
    const c = clock()
    const jwks = new JwksCache({ fetcher: net.fetcher, now: c.now })
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    c.advance(100_000)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(net.hits.get(JWKS_URL)).toBe(1)
    c.advance(30_000)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(net.hits.get(JWKS_URL)).toBe(2)
    net.serveJson(JWKS_URL, ap.jwks, { 'cache-control': 'max-age=999999' })
    c.advance(200_000)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    c.advance(23 * 3600_000)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(net.hits.get(JWKS_URL)).toBe(3)
    c.advance(3600_000 + 1)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(net.hits.get(JWKS_URL)).toBe(4)
  })

  it('JWKS-07 a failed refresh falls back to the cached set and backs off', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    net.serveJson(JWKS_URL, ap.jwks, { 'cache-control': 'max-age=60' })
    const c = clock()
    const jwks = new JwksCache({ fetcher: net.fetcher, now: c.now })
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    net.serveJson(JWKS_URL, { error: 'down' }, {}, 503)
    c.advance(61_000)
    expect(await jwks.getKey(ISS, DWK.agent, 'key-1')).toBeDefined() // stale but served
    c.advance(61_000) // backoff after one failure is 120 s
    expect(await jwks.getKey(ISS, DWK.agent, 'key-1')).toBeDefined()
    expect(net.hits.get(JWKS_URL)).toBe(2)
    c.advance(60_000)
    await jwks.getKey(ISS, DWK.agent, 'key-1')
    expect(net.hits.get(JWKS_URL)).toBe(3)
  })

  it('a broken issuer is not hammered: failures count against the floor', async () => {
    const net = fakeNetwork()
    const c = clock()
    const jwks = new JwksCache({ fetcher: net.fetcher, now: c.now })
    for (let i = 0; i < 5; i++) await expect(jwks.getKey(ISS, DWK.agent, 'k')).rejects.toBeInstanceOf(MetadataError)
    expect(net.hits.get(`${ISS}/.well-known/aauth-agent.json`)).toBe(1)
  })

  it('JWKS-03 selects by kid and ignores unusable neighbours (unknown kty, no kid, use=enc)', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    ap.jwks.keys.unshift({ kty: 'AKP', alg: 'ML-DSA-65', kid: 'pq', pub: 'xx' }, { kty: 'OKP' }, { ...ap.publicJwk, kid: 'enc', use: 'enc' })
    const jwks = new JwksCache({ fetcher: net.fetcher })
    expect(await jwks.getKey(ISS, DWK.agent, 'key-1')).toBeDefined()
    expect(await jwks.getKey(ISS, DWK.agent, 'enc')).toBeUndefined()
  })

  it('SK-26 a cross-origin jwks_uri needs explicit admission', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, ISS, DWK.agent)
    ap.metadata['jwks_uri'] = 'https://keys.other.example/jwks.json'
    net.serveJson('https://keys.other.example/jwks.json', ap.jwks)
    await expect(new JwksCache({ fetcher: net.fetcher }).getKey(ISS, DWK.agent, 'key-1')).rejects.toMatchObject({ code: 'invalid_metadata' })
    expect(await new JwksCache({ fetcher: net.fetcher, allowCrossOriginJwksUri: true }).getKey(ISS, DWK.agent, 'key-1')).toBeDefined()
  })
})

describe('metadata documents (main draft §Metadata Documents)', () => {
  const base = { issuer: 'https://ps.example', jwks_uri: 'https://ps.example/jwks', auth_token_endpoint: 'https://ps.example/token', person_token_endpoint: 'https://ps.example/person' }

  it('META-06 a minimal PS document validates; unknown members are kept (META-04)', () => {
    expect(validateMetadata({ ...base, future_member: 1 }, DWK.person, 'https://ps.example')['future_member']).toBe(1)
  })

  it.each([
    [{ ...base, issuer: undefined }, 'issuer_missing'],
    [{ ...base, issuer: 'https://evil.example' }, 'issuer_mismatch'],
    [{ ...base, issuer: 'https://ps.example/' }, 'issuer_mismatch'],
    [{ ...base, issuer: 'https://PS.example' }, 'issuer_mismatch'],
    [{ ...base, jwks_uri: 'http://ps.example/jwks' }, 'invalid_metadata'],
    [{ ...base, auth_token_endpoint: undefined }, 'invalid_metadata'],
    [{ ...base, person_token_endpoint: 'https://ps.example/person?x=1' }, 'invalid_metadata'],
    [{ ...base, scopes_supported: 'openid' }, 'invalid_metadata'],
    [[1, 2], 'invalid_metadata'],
  ])('META-02/06 NEG-META-01..03,10 rejects %j with %s', (doc, code) => {
    expect(() => validateMetadata(doc, DWK.person, 'https://ps.example')).toThrow(expect.objectContaining({ code }))
  })

  it('META-08 resource metadata: signature_window is a positive integer, scope_descriptions strings', () => {
    const r = { issuer: 'https://api.example', signature_window: 120, scope_descriptions: { 'a.read': 'Read' }, additional_signature_components: ['content-type'] }
    expect(validateMetadata(r, DWK.resource, 'https://api.example').signature_window).toBe(120)
    expect(() => validateMetadata({ ...r, signature_window: -1 }, DWK.resource, 'https://api.example')).toThrow(MetadataError)
    expect(() => validateMetadata({ ...r, scope_descriptions: { a: 1 } }, DWK.resource, 'https://api.example')).toThrow(MetadataError)
  })

  it('fetchMetadata refuses a non-identifier issuer before any fetch', async () => {
    const net = fakeNetwork()
    await expect(fetchMetadata('https://ps.example/', DWK.person, { fetcher: net.fetcher })).rejects.toMatchObject({ code: 'invalid_server_identifier' })
    expect(net.hits.size).toBe(0)
  })
})
