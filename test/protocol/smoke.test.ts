import { describe, expect, it } from 'vitest'
import { createRequestVerifier, signRequest, SignatureError } from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor, testAgent } from '../helpers/issuers.js'

describe('end to end: sign with an agent token, verify at a resource', () => {
  it('SIG-01 SIG-02 a signed GET verifies and yields the agent identity', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
    const agent = await testAgent(ap)
    const url = 'https://api.example/flights?to=SYD'
    const { headers } = await signRequest({ method: 'GET', url, headers: new Headers() }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false } })
    const verifier = createRequestVerifier({ audience: 'https://api.example', jwks: jwksFor(net) })
    const v = await verifier.verify(new Request(url, { headers }))
    expect(v.key.context.scheme).toBe('jwt')
    if (v.key.context.scheme === 'jwt') expect(v.key.context.claims.sub).toBe(agent.id)
    expect(v.components).toEqual(['@method', '@authority', '@path', '@query', 'signature-key'])
    // Cached path
    await verifier.verify(new Request(url, { headers }))
    expect(verifier.tokenCache.size).toBe(1)
  })

  it('SIG-03 a signed POST with Content-Digest verifies; a changed body is invalid_signature', async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
    const agent = await testAgent(ap)
    const url = 'https://ps.example/token'
    const body = new TextEncoder().encode('{"resource_token":"x"}')
    const { headers } = await signRequest(
      { method: 'POST', url, headers: new Headers({ 'content-type': 'application/json' }) },
      { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false }, body },
    )
    const verifier = createRequestVerifier({ audience: 'https://ps.example', jwks: jwksFor(net), requireBodyComponents: true })
    await verifier.verify(new Request(url, { method: 'POST', headers, body }), body)
    const tampered = new TextEncoder().encode('{"resource_token":"y"}')
    const err = await verifier.verify(new Request(url, { method: 'POST', headers, body: tampered }), tampered).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SignatureError)
    expect((err as SignatureError).code).toBe('invalid_signature')
  })
})
