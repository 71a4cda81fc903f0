import { describe, expect, it } from 'vitest'
import {
  createAgentToken,
  createAuthToken,
  createPersonToken,
  createResourceToken,
  decodeJwt,
  DWK,
  generateKeyPair,
  jwkThumbprint,
  SignatureError,
  verifyAgentToken,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  type PublicJwk,
} from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor } from '../helpers/issuers.js'

const T0 = 1_800_000_000_000
const now = () => T0
const MISSION = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'

async function setup() {
  const net = fakeNetwork()
  const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
  const ps = await fakeIssuer(net, 'https://ps.example', DWK.person, { auth_token_endpoint: 'https://ps.example/token', person_token_endpoint: 'https://ps.example/person' })
  const as = await fakeIssuer(net, 'https://as.api.example', DWK.access, { auth_token_endpoint: 'https://as.api.example/token' })
  const res = await fakeIssuer(net, 'https://api.example', DWK.resource)
  const agent = await generateKeyPair()
  return { net, ap, ps, as, res, agentJwk: agent.publicJwk as PublicJwk, jwks: jwksFor(net, now) }
}

describe('agent tokens (main draft §Agent Token)', () => {
  it('TOK-AG-01..04 round-trip with ps and parent_agent', async () => {
    const s = await setup()
    const token = await createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:planner+search1@agents.example', parentAgent: 'aauth:planner@agents.example', cnfJwk: s.agentJwk, ps: 'https://ps.example', now })
    const { header, payload } = decodeJwt(token)
    expect(header).toEqual({ typ: 'aa-agent+jwt', alg: 'Ed25519', kid: 'key-1' })
    expect(payload['exp'] as number - (payload['iat'] as number)).toBe(3600)
    const claims = await verifyAgentToken(token, { jwks: s.jwks, now })
    expect(claims).toMatchObject({ sub: 'aauth:planner+search1@agents.example', ps: 'https://ps.example', parent_agent: 'aauth:planner@agents.example', dwk: 'aauth-agent.json' })
    expect(claims.cnf.jwk).toEqual({ kty: 'OKP', alg: 'Ed25519', crv: 'Ed25519', x: s.agentJwk.x })
  })

  it('TOK-AG-02 lifetime at most 24 h; TOK-AG-05 a sub-agent comes from its parent\'s provider', async () => {
    const s = await setup()
    await expect(createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:a@agents.example', cnfJwk: s.agentJwk, lifetimeSec: 86_401 })).rejects.toThrow(RangeError)
    await expect(createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:a@other.example', cnfJwk: s.agentJwk })).rejects.toThrow(TypeError)
    await expect(createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:a+b@agents.example', parentAgent: 'aauth:a@other.example', cnfJwk: s.agentJwk })).rejects.toThrow(TypeError)
  })

  it('cnf.jwk must be a public key with alg', async () => {
    const s = await setup()
    const { privateJwk } = await generateKeyPair()
    await expect(createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:a@agents.example', cnfJwk: privateJwk })).rejects.toThrow(TypeError)
    await expect(createAgentToken({ key: s.ap.key, issuer: s.ap.issuer, sub: 'aauth:a@agents.example', cnfJwk: { ...s.agentJwk, alg: undefined } })).rejects.toThrow(TypeError)
  })
})

describe('person tokens (main draft §Person Token)', () => {
  it('TOK-PT-01/02 carries aud/sub/cnf/mission and never outlives the agent token or mission', async () => {
    const s = await setup()
    const agentTokenExp = T0 / 1000 + 600
    const token = await createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: 'https://api.example', sub: 'u-8f14e45f', cnfJwk: s.agentJwk, missionS256: MISSION, tenant: 'acme', agentTokenExp, missionExpiresAt: T0 / 1000 + 900, now })
    const claims = await verifyPersonToken(token, { jwks: s.jwks, now, audience: 'https://api.example' })
    expect(claims.exp).toBe(agentTokenExp)
    expect(claims).toMatchObject({ aud: 'https://api.example', sub: 'u-8f14e45f', mission_s256: MISSION, tenant: 'acme' })
    expect('scope' in claims).toBe(false)
  })

  it('TOK-PT-02 refuses to mint a token whose bounds have already passed, or over 1 h', async () => {
    const s = await setup()
    await expect(createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: 'https://api.example', sub: 'u', cnfJwk: s.agentJwk, agentTokenExp: T0 / 1000 - 1, now })).rejects.toThrow(RangeError)
    await expect(createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: 'https://api.example', sub: 'u', cnfJwk: s.agentJwk, lifetimeSec: 3601, now })).rejects.toThrow(RangeError)
  })

  it('TOK-PT-04 aud must be the verifier', async () => {
    const s = await setup()
    const token = await createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: 'https://api.example', sub: 'u', cnfJwk: s.agentJwk, now })
    await expect(verifyPersonToken(token, { jwks: s.jwks, now, audience: 'https://other.example' })).rejects.toMatchObject({ code: 'invalid_jwt' })
  })
})

describe('resource tokens (main draft §Resource Token)', () => {
  it('TOK-RT-01..04 round-trip at the PS and at the agent', async () => {
    const s = await setup()
    const jkt = await jwkThumbprint(s.agentJwk)
    const token = await createResourceToken({
      key: s.res.key, issuer: s.res.issuer, aud: 'https://ps.example', ps: 'https://ps.example', sub: 'u-1', presentedJti: 'pt-1', agentJkt: jkt,
      scope: 'bookings:write', missionS256: MISSION, interaction: { url: 'https://api.example/interact', code: 'ABCD-EFGH' }, now,
    })
    const { payload } = decodeJwt(token)
    expect(payload['exp'] as number - (payload['iat'] as number)).toBe(300)
    expect('cnf' in payload).toBe(false)
    const atPs = await verifyResourceToken(token, { jwks: s.jwks, now, audience: 'https://ps.example', agentJkt: jkt })
    expect(atPs).toMatchObject({ scope: 'bookings:write', presented_jti: 'pt-1', agent_jkt: jkt })
    await verifyResourceToken(token, { jwks: s.jwks, now, issuer: 'https://api.example', agentJkt: jkt })
    await expect(verifyResourceToken(token, { jwks: s.jwks, now, issuer: 'https://evil.example', agentJkt: jkt })).rejects.toBeInstanceOf(SignatureError)
    await expect(verifyResourceToken(token, { jwks: s.jwks, now, audience: 'https://ps.example', agentJkt: 'other' })).rejects.toMatchObject({ code: 'invalid_jwt' })
  })

  it('TOK-RT-03 lifetime at most 5 minutes', async () => {
    const s = await setup()
    await expect(createResourceToken({ key: s.res.key, issuer: s.res.issuer, aud: 'https://ps.example', ps: 'https://ps.example', sub: 'u', presentedJti: 'p', agentJkt: 'j', lifetimeSec: 301 })).rejects.toThrow(RangeError)
  })
})

describe('auth tokens (main draft §Auth Token)', () => {
  it('TOK-AT-01 PS-issued: dwk aauth-person.json, ps = iss; bounded by presented token and mission', async () => {
    const s = await setup()
    const token = await createAuthToken({ key: s.ps.key, issuer: s.ps.issuer, issuerRole: 'person', aud: 'https://api.example', ps: 'https://ps.example', sub: 'u-1', cnfJwk: s.agentJwk, scope: 'bookings:write', presentedTokenExp: T0 / 1000 + 100, now })
    const claims = await verifyAuthToken(token, { jwks: s.jwks, now, audience: 'https://api.example' })
    expect(claims).toMatchObject({ dwk: 'aauth-person.json', ps: 'https://ps.example', scope: 'bookings:write', exp: T0 / 1000 + 100 })
    await expect(createAuthToken({ key: s.ps.key, issuer: s.ps.issuer, issuerRole: 'person', aud: 'https://api.example', ps: 'https://other-ps.example', sub: 'u', cnfJwk: s.agentJwk })).rejects.toThrow(TypeError)
  })

  it('TOK-AT-01 AS-issued: dwk aauth-access.json', async () => {
    const s = await setup()
    const token = await createAuthToken({ key: s.as.key, issuer: s.as.issuer, issuerRole: 'access', aud: 'https://api.example', ps: 'https://ps.example', sub: 'u-1', cnfJwk: s.agentJwk, now })
    expect((await verifyAuthToken(token, { jwks: s.jwks, now, audience: 'https://api.example' })).dwk).toBe('aauth-access.json')
  })

  it('TOK-01 TOK-PT-05 a token of one type is never accepted as another', async () => {
    const s = await setup()
    const person = await createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: 'https://api.example', sub: 'u', cnfJwk: s.agentJwk, now })
    const auth = await createAuthToken({ key: s.ps.key, issuer: s.ps.issuer, issuerRole: 'person', aud: 'https://api.example', ps: 'https://ps.example', sub: 'u', cnfJwk: s.agentJwk, now })
    const opts = { jwks: s.jwks, now, audience: 'https://api.example' }
    await expect(verifyAuthToken(person, opts)).rejects.toMatchObject({ code: 'invalid_jwt' })
    await expect(verifyPersonToken(auth, opts)).rejects.toMatchObject({ code: 'invalid_jwt' })
    await expect(verifyAgentToken(auth, opts)).rejects.toMatchObject({ code: 'invalid_jwt' })
    await expect(verifyResourceToken(person, { ...opts, agentJkt: 'x' })).rejects.toMatchObject({ code: 'invalid_jwt' })
  })

  it('ES256 issuer keys and ES256 agent keys work end to end', async () => {
    const s = await setup()
    const es = await generateKeyPair('ES256')
    s.ps.jwks.keys.push({ ...es.publicJwk, kid: 'es-1' })
    const agentEs = await generateKeyPair('ES256')
    const token = await createAuthToken({ key: { kid: 'es-1', privateJwk: es.privateJwk }, issuer: s.ps.issuer, issuerRole: 'person', aud: 'https://api.example', ps: 'https://ps.example', sub: 'u', cnfJwk: agentEs.publicJwk, now })
    expect(decodeJwt(token).header['alg']).toBe('ES256')
    expect((await verifyAuthToken(token, { jwks: jwksFor(s.net, now), now, audience: 'https://api.example' })).cnf.jwk.alg).toBe('ES256')
  })
})
