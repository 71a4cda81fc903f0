/**
 * Differential test of the `node:crypto` JWS fast path in tokens/common.ts against jose (the
 * field's library): tokens we sign are exactly what jose's SignJWT makes (Ed25519 is
 * deterministic) and verify with jose; tokens jose signs verify with ours; tampered tokens fail
 * in both. Property-based over claims.
 */
import fc from 'fast-check'
import { compactVerify, importJWK, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { generateKeyPair, jwkThumbprint, JwksCache, signToken, TOKEN_TYPE, verifyAgentToken, type EgressFetcher, type IssuerKey } from '../../src/protocol/index.js'

const ISS = 'https://agents.example'

async function issuer(alg: 'Ed25519' | 'ES256'): Promise<{ key: IssuerKey; jwks: JwksCache; publicJwk: Record<string, unknown> }> {
  const { privateJwk, publicJwk } = await generateKeyPair(alg)
  const kid = await jwkThumbprint(publicJwk)
  const pub = { ...publicJwk, kid }
  const fetcher: EgressFetcher = async (url) => {
    const body = url.endsWith('aauth-agent.json') ? { issuer: ISS, jwks_uri: `${ISS}/jwks.json` } : { keys: [pub] }
    return { url, status: 200, headers: new Headers({ 'content-type': 'application/json' }), body: new TextEncoder().encode(JSON.stringify(body)) }
  }
  return { key: { kid, privateJwk }, jwks: new JwksCache({ fetcher }), publicJwk: pub }
}

const claimsArb = fc.record({
  sub: fc.constantFrom('aauth:bot@agents.example', 'aauth:a.b_c-d@agents.example'),
  jti: fc.string({ minLength: 1, maxLength: 40 }),
  extra: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['iss', 'sub', 'jti', 'iat', 'exp', 'dwk', 'cnf'].includes(k)), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxKeys: 4 }),
})

describe('JWS fast path vs jose', () => {
  it('Ed25519: signToken output is byte-identical to jose SignJWT, and each verifies the other', async () => {
    const { key, jwks, publicJwk } = await issuer('Ed25519')
    const joseKey = await importJWK(key.privateJwk, 'Ed25519')
    const agentKey = await generateKeyPair('Ed25519')
    await fc.assert(
      fc.asyncProperty(claimsArb, async ({ sub, jti, extra }) => {
        const now = Math.floor(Date.now() / 1000)
        const claims = { ...extra, iss: ISS, dwk: 'aauth-agent.json', sub, jti, iat: now, exp: now + 600, cnf: { jwk: agentKey.publicJwk } }
        const ours = await signToken(TOKEN_TYPE.agent, claims, key)
        const theirs = await new SignJWT(claims).setProtectedHeader({ typ: TOKEN_TYPE.agent, alg: 'Ed25519', kid: key.kid }).sign(joseKey)
        expect(ours).toBe(theirs)
        await compactVerify(ours, await importJWK(publicJwk as never, 'Ed25519'))
        expect((await verifyAgentToken(theirs, { jwks })).jti).toBe(jti)
      }),
      { numRuns: 60 },
    )
  })

  it('ES256: our tokens verify with jose; jose tokens verify with ours', async () => {
    const { key, jwks, publicJwk } = await issuer('ES256')
    const agentKey = await generateKeyPair('Ed25519')
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: ISS, dwk: 'aauth-agent.json', sub: 'aauth:bot@agents.example', jti: 'j', iat: now, exp: now + 600, cnf: { jwk: agentKey.publicJwk } }
    const ours = await signToken(TOKEN_TYPE.agent, claims, key)
    await compactVerify(ours, await importJWK(publicJwk as never, 'ES256'))
    const theirs = await new SignJWT(claims).setProtectedHeader({ typ: TOKEN_TYPE.agent, alg: 'ES256', kid: key.kid }).sign(await importJWK(key.privateJwk, 'ES256'))
    expect((await verifyAgentToken(theirs, { jwks })).sub).toBe('aauth:bot@agents.example')
  })

  it('tampered tokens fail in both: payload, signature, header, truncation', async () => {
    const { key, jwks, publicJwk } = await issuer('Ed25519')
    const agentKey = await generateKeyPair('Ed25519')
    const now = Math.floor(Date.now() / 1000)
    const token = await signToken(TOKEN_TYPE.agent, { iss: ISS, dwk: 'aauth-agent.json', sub: 'aauth:bot@agents.example', jti: 'j', iat: now, exp: now + 600, cnf: { jwk: agentKey.publicJwk } }, key)
    const [h, p, sig] = token.split('.') as [string, string, string]
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
    const otherPayload = Buffer.from(JSON.stringify({ ...payload, sub: 'aauth:evil@agents.example' })).toString('base64url')
    const bad = [`${h}.${otherPayload}.${sig}`, `${h}.${p}.${flip(sig, 5)}`, `${h}.${p}.${sig.slice(0, -4)}`, `${h}.${p}.${sig}AAAA`, `${h}.${p}.!!!`]
    const joseKey = await importJWK(publicJwk as never, 'Ed25519')
    for (const t of bad) {
      await expect(compactVerify(t, joseKey)).rejects.toThrow()
      await expect(verifyAgentToken(t, { jwks })).rejects.toMatchObject({ code: 'invalid_jwt' })
    }
  })
})
