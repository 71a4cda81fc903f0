/**
 * Hostile-input hardening: each case here was found by review and is kept as a regression.
 */
import { describe, expect, it } from 'vitest'
import {
  checkPublicJwk,
  createAuthToken,
  createEgressFetcher,
  createRequestVerifier,
  DWK,
  EgressError,
  interactionCodesMatch,
  JwksCache,
  JWKS_MAX_KEYS,
  parseRetryAfter,
  readDeferred,
  signToken,
  SignatureError,
  signRequest,
  verifyAgentToken,
  verifyResourceToken,
} from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor, testAgent } from '../helpers/issuers.js'

const T = 1_800_000_000_000
const now = () => T
const API = 'https://api.example'

describe('memory stays bounded under attacker-sized input', () => {
  it(`SK-15 a JWKS keeps at most ${JWKS_MAX_KEYS} keys and only JWK members`, async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
    ap.jwks.keys = Array.from({ length: 500 }, (_, i) => ({ ...ap.publicJwk, kid: `k${i}`, junk: 'x'.repeat(100) }))
    const jwks = new JwksCache({ fetcher: net.fetcher })
    expect(await jwks.getKey(ap.issuer, DWK.agent, `k${JWKS_MAX_KEYS - 1}`)).toBeDefined()
    const found = await jwks.getKey(ap.issuer, DWK.agent, 'k0')
    expect(found?.jwk).not.toHaveProperty('junk')
    expect(await jwks.getKey(ap.issuer, DWK.agent, `k${JWKS_MAX_KEYS}`)).toBeUndefined()
  })

  it('a token too large to cache is still verified, just not held', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
    const agent = await testAgent(ap, 'big', { now, extraClaims: { pad: 'p'.repeat(9000) } })
    const verifier = createRequestVerifier({ audience: API, jwks: jwksFor(net, now), now })
    const { headers } = await signRequest({ method: 'GET', url: `${API}/x`, headers: new Headers() }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false }, now })
    await verifier.verify({ method: 'GET', url: `${API}/x`, headers })
    expect(verifier.tokenCache.size).toBe(0)
  })
})

describe('no TypeError from hostile input', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('ALG-08 kty/alg %s is declined as unsupported_algorithm', (name) => {
    for (const jwk of [{ kty: name, alg: 'Ed25519' }, { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43), alg: name }]) {
      expect(() => checkPublicJwk(jwk)).toThrow(expect.objectContaining({ code: 'unsupported_algorithm' }))
    }
  })

  it('a hostile 202 Location or Retry-After cannot crash or spin the agent', async () => {
    await expect(readDeferred(new Response('{}', { status: 202, headers: { location: 'https://[' } }), 'https://ps.example/t')).rejects.toMatchObject({ code: 'invalid_request' })
    expect(parseRetryAfter('99999999999')).toBe(3600)
  })

  it('CODE-03 non-ASCII look-alikes never fold into a valid code', () => {
    expect(interactionCodesMatch('ıſ23-4567', '1S234567')).toBe(false)
  })
})

describe('fail closed', () => {
  it('SK-26 a literal IP in reserved space is refused before connecting', async () => {
    for (const url of ['https://198.18.0.1/x', 'https://203.0.113.9/x', 'https://224.0.0.1/x', 'https://[::ffff:10.0.0.1]/x']) {
      const e = await createEgressFetcher({ timeoutMs: 500 })(url).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(EgressError)
      expect((e as EgressError).code).toBe('egress_refused')
    }
  })

  it('SIG-03 a covered Content-Digest is checked even when the caller passed no body', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
    const agent = await testAgent(ap, 'bot', { now })
    const body = new TextEncoder().encode('{"a":1}')
    const { headers } = await signRequest({ method: 'POST', url: `${API}/x`, headers: new Headers({ 'content-type': 'application/json' }) }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false }, now, body })
    const verifier = createRequestVerifier({ audience: API, jwks: jwksFor(net, now), now })
    await expect(verifier.verify({ method: 'POST', url: `${API}/x`, headers })).rejects.toMatchObject({ code: 'invalid_signature' })
    const strict = createRequestVerifier({ audience: API, jwks: jwksFor(net, now), now, requireBodyComponents: true })
    expect(() => strict.verify({ method: 'POST', url: `${API}/x`, headers })).toThrow(TypeError)
  })

  it('TOK-RT-04 a resource token cannot be verified without the agent key binding', async () => {
    const net = fakeNetwork()
    await expect(verifyResourceToken('a.b.c', { jwks: jwksFor(net), audience: 'https://ps.example' } as never)).rejects.toThrow(TypeError)
  })

  it('a resource can pin the issuers of the auth tokens it accepts', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
    const evil = await fakeIssuer(net, 'https://evil.example', DWK.access, { auth_token_endpoint: 'https://evil.example/token' })
    const agent = await testAgent(ap, 'bot', { now })
    const auth = await createAuthToken({ key: evil.key, issuer: evil.issuer, issuerRole: 'access', aud: API, ps: 'https://ps.example', sub: 'u', cnfJwk: agent.publicJwk, scope: 'admin', now })
    const { headers } = await signRequest({ method: 'GET', url: `${API}/x`, headers: new Headers() }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: auth, cache: false }, now })
    const pinned = createRequestVerifier({ audience: API, jwks: jwksFor(net, now), now, authTokenIssuers: ['https://as.api.example'] })
    await expect(pinned.verify({ method: 'GET', url: `${API}/x`, headers })).rejects.toMatchObject({ code: 'invalid_jwt' })
  })

  it('TOK-04 a far-future iat does not stretch a token past its ceiling', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
    const agent = await testAgent(ap, 'bot', { now })
    const iat = T / 1000 + 365 * 86400
    const token = await signToken('aa-agent+jwt', { iss: ap.issuer, dwk: DWK.agent, jti: 'j', iat, exp: iat + 3600, sub: agent.id, cnf: { jwk: agent.publicJwk } }, ap.key)
    await expect(verifyAgentToken(token, { jwks: jwksFor(net, now), now })).rejects.toBeInstanceOf(SignatureError)
  })
})
