import { describe, expect, it } from 'vitest'
import {
  createJktJwt,
  createSigner,
  decodeJwt,
  generateKeyPair,
  jwkThumbprint,
  resolveHwk,
  resolveJktJwt,
  signRequest,
  signToken,
  verifyRequestSignature,
  SignatureError,
  type SelfProvenContext,
  type SignatureKeyMember,
} from '../../src/protocol/index.js'

const T = 1_800_000_000_000
const now = () => T
const URL_ = 'https://ap.example/refresh'

const resolveKey = (member: SignatureKeyMember) => {
  if (member.scheme === 'jkt-jwt') return resolveJktJwt(member.jwt, { now })
  if (member.scheme === 'hwk') return resolveHwk(member, { now })
  throw new SignatureError('unsupported_scheme', 'no')
}
const verify = (headers: Headers) => verifyRequestSignature<SelfProvenContext>({ method: 'POST', url: URL_, headers }, { resolveKey, acceptedSchemes: ['jkt-jwt', 'hwk'], now })
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof SignatureError ? e.code : String(e)))

async function keys() {
  const durable = await generateKeyPair()
  const ephemeral = await generateKeyPair()
  return { durable, ephemeral, signer: await createSigner(ephemeral.privateJwk) }
}

describe('jkt-jwt: two-key refresh (SK §3.5; bootstrap §8.1)', () => {
  it('SK-08 a naming JWT verifies; the request is signed by the ephemeral key; the durable key is reported', async () => {
    const k = await keys()
    const jwt = await createJktJwt({ durableKey: k.durable.privateJwk, ephemeralJwk: k.ephemeral.publicJwk, now })
    expect(decodeJwt(jwt).header['typ']).toBe('jkt-s256+jwt')
    const { headers } = await signRequest({ method: 'POST', url: URL_, headers: new Headers() }, { signer: k.signer, signatureKey: { scheme: 'jkt-jwt', jwt, cache: false }, now })
    const v = await verify(headers)
    expect(v.key.context).toMatchObject({ scheme: 'jkt-jwt', durableJkt: await jwkThumbprint(k.durable.publicJwk) })
    expect(v.key.thumbprint).toBe(await jwkThumbprint(k.ephemeral.publicJwk))
  })

  it('SK-08 the request must be signed by the named key, not the durable one', async () => {
    const k = await keys()
    const jwt = await createJktJwt({ durableKey: k.durable.privateJwk, ephemeralJwk: k.ephemeral.publicJwk, now })
    const { headers } = await signRequest({ method: 'POST', url: URL_, headers: new Headers() }, { signer: await createSigner(k.durable.privateJwk), signatureKey: { scheme: 'jkt-jwt', jwt, cache: false }, now })
    expect(await codeOf(verify(headers))).toBe('invalid_signature')
  })

  it.each([
    ['iss not the header key thumbprint', async (k: Awaited<ReturnType<typeof keys>>) => {
      const other = await generateKeyPair()
      return signToken('aa-agent+jwt' as never, { iss: 'urn:jkt:sha-256:' + (await jwkThumbprint(other.publicJwk)), dwk: '', jti: 'j', iat: T / 1000, exp: T / 1000 + 60, cnf: { jwk: k.ephemeral.publicJwk } }, { kid: 'x', privateJwk: k.durable.privateJwk })
    }, 'invalid_jwt'],
    ['expired', (k: Awaited<ReturnType<typeof keys>>) => createJktJwt({ durableKey: k.durable.privateJwk, ephemeralJwk: k.ephemeral.publicJwk, now: () => T - 600_000 }), 'expired_jwt'],
    ['not a JWT', () => Promise.resolve('abc'), 'invalid_jwt'],
  ] as const)('SK-08 rejects a naming JWT: %s', async (_name, make, code) => {
    const k = await keys()
    expect(await codeOf(resolveJktJwt(await make(k), { now }))).toBe(code)
  })
})

describe('hwk: single-key requests to the agent provider (SK §3.4; bootstrap §8.2)', () => {
  it('SK-07 an inline key with alg verifies and is identified by its thumbprint', async () => {
    const k = await keys()
    const { kty, crv, x, alg } = k.ephemeral.publicJwk as Record<string, string>
    const { headers } = await signRequest({ method: 'POST', url: URL_, headers: new Headers() }, { signer: k.signer, signatureKey: { scheme: 'hwk', jwk: { kty: kty!, crv, x, alg } }, now })
    expect(headers.get('signature-key')).toMatch(/^sig=hwk;kty="OKP";crv="Ed25519";x="[^"]+";alg="Ed25519"$/)
    expect((await verify(headers)).key.context).toEqual({ scheme: 'hwk', jkt: await jwkThumbprint(k.ephemeral.publicJwk) })
  })

  it.each([
    ['sig=hwk;kty="OKP";crv="Ed25519";x="AAAA"', 'unsupported_algorithm'],
    ['sig=hwk;kty="OKP";crv="Ed25519";x="AAAA";alg="Ed25519";kid="k"', 'invalid_key'],
    ['sig=hwk;kty="OKP";alg="Ed25519"', 'invalid_key'],
    ['sig=hwk;kty="oct";k="c2VjcmV0";alg="HS256"', 'unsupported_algorithm'],
  ])('SK-07 ALG-07 rejects %s with %s', async (value, code) => {
    const headers = new Headers({ 'signature-key': value, 'signature-input': `sig=("@method" "@authority" "@path" "signature-key");created=${T / 1000}`, signature: 'sig=:AAAA:' })
    expect(await codeOf(verify(headers))).toBe(code)
  })
})
