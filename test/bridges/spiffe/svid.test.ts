import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  parseTrustBundle,
  spiffeAttestation,
  staticTrustBundles,
  SvidError,
  trustBundleFromDer,
  verifyJwtSvid,
  verifyX509Svid,
  type SvidErrorReason,
  type TrustBundleSource,
} from '../../../src/bridges/spiffe/index.js'
import { TD, ID, AUD, createTestCa, prepareJwks, type TestCa } from '../../helpers/spiffe.js'

let ca: TestCa
let other: TestCa
let bundles: TrustBundleSource

beforeAll(async () => {
  ca = await prepareJwks(await createTestCa(TD))
  other = await prepareJwks(await createTestCa('other.example.org'))
  bundles = staticTrustBundles({ [TD]: JSON.stringify(ca.bundle()) })
})

async function refusal(p: Promise<unknown>): Promise<{ reason: SvidErrorReason; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(e).toBeInstanceOf(SvidError)
  return { reason: (e as SvidError).reason, message: (e as SvidError).message }
}

describe('SPIFFE bundle format (Trust Domain and Bundle §4)', () => {
  it('reads x509-svid and jwt-svid keys, sequence and refresh hint, ignoring other uses', () => {
    const b = parseTrustBundle(TD, ca.bundle())
    expect(b.x509Authorities).toHaveLength(1)
    expect(b.x509Authorities[0]!.ca).toBe(true)
    expect(b.jwtAuthorities.map((k) => k.kid)).toEqual(['es-1', 'rs-1'])
    expect(b.jwtAuthorities.every((k) => !('use' in k))).toBe(true)
    expect(b).toMatchObject({ trustDomain: TD, sequence: 1, refreshHintSec: 300 })
  })

  it('refuses malformed bundles with clear errors', () => {
    const root = Buffer.from(ca.root.der).toString('base64')
    expect(() => parseTrustBundle(TD, '{')).toThrow(/not JSON/)
    expect(() => parseTrustBundle(TD, { nokeys: [] })).toThrow(/no "keys" array/)
    expect(() => parseTrustBundle(TD, { keys: [{ kty: 'EC', use: 'x509-svid', x5c: [root, root] }] })).toThrow(/exactly one certificate/)
    expect(() => parseTrustBundle(TD, { keys: [{ kty: 'EC', use: 'x509-svid', x5c: ['AAAA'] }] })).toThrow(/not a DER certificate/)
    expect(() => parseTrustBundle(TD, { keys: [{ kty: 'EC', use: 'jwt-svid' }] })).toThrow(/must have a kid/)
    expect(() => parseTrustBundle('Bad_TD', { keys: [] })).toThrow(/not a trust domain name/)
    expect(() => staticTrustBundles({ 'a.example': parseTrustBundle(TD, { keys: [] }) })).toThrow(/filed under/)
  })

  it('builds a bundle from Workload API DER bytes (concatenated certificates)', () => {
    const two = Buffer.concat([ca.root.der, other.root.der])
    const b = trustBundleFromDer(TD, two, { keys: ca.bundle().keys.filter((k) => k['use'] === 'jwt-svid') })
    expect(b.x509Authorities.map((c) => c.subject)).toEqual([`CN=SPIFFE CA\nO=${TD}`, 'CN=SPIFFE CA\nO=other.example.org'])
    expect(b.jwtAuthorities).toHaveLength(2)
    expect(() => trustBundleFromDer(TD, new Uint8Array([0x30, 0x05, 1]))).toThrow(/not concatenated DER/)
  })
})

describe('X.509-SVID validation (X509-SVID §4, §5)', () => {
  it('accepts a leaf issued by the trust domain CA, and one through an intermediate', async () => {
    const leaf = await ca.issueX509Svid(ID)
    await expect(verifyX509Svid([leaf.der], { bundles })).resolves.toMatchObject({ spiffeId: ID, trustDomain: TD })
    const inter = await ca.issueIntermediate()
    const viaInter = await ca.issueX509Svid(ID, { issuer: inter })
    const v = await verifyX509Svid([viaInter.der, inter.der], { bundles })
    expect(v.spiffeId).toBe(ID)
    expect(v.expiresAt).toBe(viaInter.cert.notAfter.getTime())
  })

  it.each<[string, (ca: TestCa, other: TestCa) => Promise<Uint8Array[]>, SvidErrorReason, RegExp]>([
    ['expired', async (c) => [(await c.issueX509Svid(ID, { notBefore: new Date(Date.now() - 7200e3), notAfter: new Date(Date.now() - 3600e3) })).der], 'expired_svid', /expired at/],
    ['not yet valid', async (c) => [(await c.issueX509Svid(ID, { notBefore: new Date(Date.now() + 3600e3), notAfter: new Date(Date.now() + 7200e3) })).der], 'expired_svid', /not valid before/],
    ['from an untrusted trust domain', async (_c, o) => [(await o.issueX509Svid('spiffe://other.example.org/agent/x')).der], 'untrusted_trust_domain', /other\.example\.org/],
    ['claiming our trust domain but issued by another CA', async (_c, o) => [(await o.issueX509Svid(ID)).der], 'invalid_svid', /does not end at an X\.509 authority/],
    ['with two URI SANs', async (c) => [(await c.issueX509Svid(ID, { uris: [ID, `spiffe://${TD}/agent/evil`] })).der], 'invalid_svid', /exactly one URI SAN, this one has 2/],
    ['with no URI SAN', async (c) => [(await c.issueX509Svid('', { dns: ['a.example'] })).der], 'invalid_svid', /has 0/],
    ['with a URI SAN that is not a workload SPIFFE ID', async (c) => [(await c.issueX509Svid(`spiffe://${TD}`)).der], 'invalid_svid', /needs a path/],
    ['a CA as leaf', async (c) => [(await c.issueX509Svid(ID, { ca: true })).der], 'invalid_svid', /CA certificate/],
    ['without digitalSignature', async (c) => [(await c.issueX509Svid(ID, { keyUsage: x509.KeyUsageFlags.keyEncipherment })).der], 'invalid_svid', /digitalSignature/],
    ['with keyCertSign on a leaf', async (c) => [(await c.issueX509Svid(ID, { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign })).der], 'invalid_svid', /keyCertSign/],
    ['with a bad chain signature', async (c) => [(await c.issueX509Svid(ID, { badSignature: true })).der], 'invalid_svid', /does not end at an X\.509 authority/],
    ['through an intermediate that is not a CA', async (c) => {
      const inter = await c.issueIntermediate({ ca: false, keyUsage: x509.KeyUsageFlags.digitalSignature })
      return [(await c.issueX509Svid(ID, { issuer: inter })).der, inter.der]
    }, 'invalid_svid', /not a CA/],
    ['through an expired intermediate', async (c) => {
      const inter = await c.issueIntermediate({ notAfter: new Date(Date.now() - 60e3) })
      return [(await c.issueX509Svid(ID, { issuer: inter })).der, inter.der]
    }, 'expired_svid', /certificate 1 of the chain expired/],
    ['with the intermediate missing', async (c) => [(await c.issueX509Svid(ID, { issuer: await c.issueIntermediate() })).der], 'invalid_svid', /does not end at/],
    ['that is not DER', async () => [new Uint8Array([1, 2, 3])], 'invalid_svid', /not a DER X\.509 certificate/],
    ['that is empty', async () => [], 'invalid_svid', /no certificate/],
  ])('refuses an SVID %s', async (_name, make, reason, message) => {
    const r = await refusal(verifyX509Svid(await make(ca, other), { bundles }))
    expect(r.reason).toBe(reason)
    expect(r.message).toMatch(message)
  })

  it('honours the injected clock', async () => {
    const leaf = await ca.issueX509Svid(ID)
    const r = await refusal(verifyX509Svid([leaf.der], { bundles, now: () => leaf.cert.notAfter.getTime() + 1000 }))
    expect(r.reason).toBe('expired_svid')
  })
})

describe('JWT-SVID validation (JWT-SVID §3, §4)', () => {
  it('accepts ES256 and RS256 JWT-SVIDs for our audience (aud string or array)', async () => {
    for (const alg of ['ES256', 'RS256'] as const) {
      const token = await ca.mintJwtSvid(ID, [AUD, 'https://other.example'], { alg })
      await expect(verifyJwtSvid(token, { audience: AUD, bundles })).resolves.toMatchObject({ spiffeId: ID, trustDomain: TD })
    }
    await expect(verifyJwtSvid(await ca.mintJwtSvid(ID, AUD, { typ: 'JOSE' }), { audience: AUD, bundles })).resolves.toMatchObject({ spiffeId: ID })
  })

  it.each<[string, (ca: TestCa, other: TestCa) => Promise<string>, SvidErrorReason, RegExp]>([
    ['EdDSA', (c) => c.mintJwtSvid(ID, AUD, { alg: 'EdDSA' }), 'unsupported_algorithm', /"EdDSA" is not one SPIFFE allows/],
    ['HS256', (c) => c.mintJwtSvid(ID, AUD, { alg: 'HS256' }), 'unsupported_algorithm', /"HS256"/],
    ['alg none', (c) => c.mintJwtSvid(ID, AUD, { alg: 'none' }), 'unsupported_algorithm', /"none"/],
    ['expired', (c) => c.mintJwtSvid(ID, AUD, { ttlSec: -10 }), 'expired_svid', /expired at/],
    ['without exp', (c) => c.mintJwtSvid(ID, AUD, { omitExp: true }), 'expired_svid', /no exp/],
    ['for another audience', (c) => c.mintJwtSvid(ID, 'https://other.example'), 'invalid_audience', /does not include https:\/\/agents\.demo\.example\.com/],
    ['with an unknown kid', (c) => c.mintJwtSvid(ID, AUD, { kid: 'nope' }), 'invalid_svid', /kid "nope" is not a JWT authority/],
    ['from an untrusted trust domain', (_c, o) => o.mintJwtSvid('spiffe://other.example.org/agent/x', AUD), 'untrusted_trust_domain', /other\.example\.org/],
    ['signed by another trust domain key under our kid', (_c, o) => o.mintJwtSvid(ID, AUD), 'invalid_svid', /signature does not verify/],
    ['with a sub that is not a SPIFFE ID', (c) => c.mintJwtSvid('aauth:x@y.example', AUD), 'invalid_svid', /scheme/],
    ['with typ at+jwt', (c) => c.mintJwtSvid(ID, AUD, { typ: 'at+jwt' }), 'invalid_svid', /typ must be JWT or JOSE/],
    ['that is not a JWT', async () => 'not.a.jwt', 'invalid_svid', /not a well-formed JWT/],
  ])('refuses a JWT-SVID %s', async (_name, make, reason, message) => {
    const r = await refusal(verifyJwtSvid(await make(ca, other), { audience: AUD, bundles }))
    expect(r.reason).toBe(reason)
    expect(r.message).toMatch(message)
  })
})

describe('spiffeAttestation hook (agent provider side)', () => {
  const input = (body: Record<string, unknown>, phase: 'enroll' | 'token' = 'enroll', peerCertificates?: Uint8Array[]) => ({
    request: new Request('https://agents.demo.example.com/enroll', { method: 'POST' }),
    body,
    durableJkt: 'jkt',
    phase,
    ...(peerCertificates === undefined ? {} : { peerCertificates }),
  })

  it('maps through a function and returns spiffe_id with reattest', async () => {
    const hook = spiffeAttestation({ bundles, audience: AUD, agents: (id, td) => (td === TD ? { local: id.split('/').pop()!, ps: 'https://ps.example' } : undefined) })
    await expect(hook(input({ spiffe_jwt_svid: await ca.mintJwtSvid(ID, AUD) }))).resolves.toEqual({ local: 'summarizer-tech', ps: 'https://ps.example', claims: { spiffe_id: ID }, reattest: true })
    const leaf = await ca.issueX509Svid(ID)
    await expect(hook(input({}, 'token', [leaf.der]))).resolves.toMatchObject({ local: 'summarizer-tech' })
  })

  it('no SVID: undefined at enroll (enrollment codes), refused at token', async () => {
    const hook = spiffeAttestation({ bundles, audience: AUD, agents: { [ID]: 'summarizer-tech' } })
    await expect(hook(input({}))).resolves.toBeUndefined()
    expect((await refusal(hook(input({}, 'token')))).reason).toBe('invalid_svid')
  })

  it('honours accept, refuses non-string SVIDs and unmapped IDs (no prototype keys)', async () => {
    const x509Only = spiffeAttestation({ bundles, audience: AUD, agents: { [ID]: 'summarizer-tech' }, accept: ['x509-svid'] })
    expect((await refusal(x509Only(input({ spiffe_jwt_svid: await ca.mintJwtSvid(ID, AUD) })))).message).toMatch(/does not accept JWT-SVIDs/)
    const jwtOnly = spiffeAttestation({ bundles, audience: AUD, agents: { [ID]: 'summarizer-tech' }, accept: ['jwt-svid'] })
    await expect(jwtOnly(input({}, 'enroll', [(await ca.issueX509Svid(ID)).der]))).resolves.toBeUndefined()
    const hook = spiffeAttestation({ bundles, audience: AUD, agents: { [ID]: 'summarizer-tech' } })
    expect((await refusal(hook(input({ spiffe_jwt_svid: 42 })))).reason).toBe('invalid_svid')
    const proto = `spiffe://${TD}/constructor`
    expect((await refusal(hook(input({ spiffe_jwt_svid: await ca.mintJwtSvid(proto, AUD) })))).reason).toBe('unmapped_spiffe_id')
  })
})
