import { createAdaptorServer } from '@hono/node-server'
import { createServer as createHttpsServer } from 'node:https'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentProvider, enroll, KeyRing, MemoryEnrollmentStore, requestAgentToken, type AttestationInput } from '../../../src/agent/index.js'
import {
  createMtlsFetch,
  createWorkloadApiSource,
  spiffeAgentCredentials,
  spiffeAttestation,
  staticTrustBundles,
  type SvidErrorReason,
  type SvidSource,
  type WorkloadApiSource,
  type X509Svid,
} from '../../../src/bridges/spiffe/index.js'
import { decodeJwt, generateKeyPair, jwkThumbprint, type PrivateJwk, type PublicJwk } from '../../../src/protocol/index.js'
import { TD, ID, createTestCa, pem, prepareJwks, startWorkloadApi, type IssuedCert, type TestCa, type TestWorkloadApi } from '../../helpers/spiffe.js'

const OTHER_ID = `spiffe://${TD}/agent/unmapped`
const AGENTS = { [ID]: { local: 'summarizer-tech', ps: 'https://ps.demo.example.com' }, [`spiffe://${TD}/agent/second`]: 'second' }

let ca: TestCa
let foreign: TestCa
let api: TestWorkloadApi
const servers: Server[] = []
const sources: WorkloadApiSource[] = []

beforeAll(async () => {
  ca = await prepareJwks(await createTestCa(TD))
  foreign = await prepareJwks(await createTestCa('foreign.example.org'))
  api = await startWorkloadApi({ ca, spiffeId: ID })
})
afterAll(async () => {
  for (const s of sources) s.close()
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))))
  await api.close()
})

/** What the attest hook saw: the SVIDs presented, per request. */
interface Seen {
  jwt?: string
  leaf?: Uint8Array
  phase: AttestationInput['phase']
}

async function startAp(mode: 'http' | 'mtls') {
  const store = new MemoryEnrollmentStore()
  const seen: Seen[] = []
  let issuer = 'https://agents.demo.example.com'
  let serverCert: IssuedCert | undefined
  let ap: ReturnType<typeof createAgentProvider> | undefined
  let server: Server
  if (mode === 'mtls') {
    serverCert = await ca.issueX509Svid(`spiffe://${TD}/agent-provider`, { dns: ['agents.demo.example.com'] })
    server = createAdaptorServer({
      fetch: (req: Request, env: unknown) => ap!.app.fetch(req, env),
      createServer: createHttpsServer,
      serverOptions: { key: pem(serverCert.pkcs8, 'PRIVATE KEY'), cert: pem(serverCert.der, 'CERTIFICATE'), requestCert: true, rejectUnauthorized: false },
    }) as Server
  } else server = createAdaptorServer({ fetch: (req: Request, env: unknown) => ap!.app.fetch(req, env) }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  const port = (server.address() as AddressInfo).port
  if (mode === 'http') issuer = `http://127.0.0.1:${port}`
  const attest = spiffeAttestation({ bundles: staticTrustBundles({ [TD]: ca.bundle() }), audience: issuer, agents: AGENTS })
  ap = createAgentProvider({
    issuer,
    keys: await KeyRing.create(),
    store,
    allowInsecureLoopback: mode === 'http',
    attest: async (input) => {
      const jwt = input.body['spiffe_jwt_svid']
      seen.push({ phase: input.phase, ...(typeof jwt === 'string' ? { jwt } : {}), ...(input.peerCertificates?.[0] === undefined ? {} : { leaf: input.peerCertificates[0] }) })
      return attest(input)
    },
  })
  return { ap, issuer, store, seen, port, connectTo: { host: '127.0.0.1', port } }
}

/** A fetch that keeps the last response (status and problem body) for the refusal checks. */
function recording(inner: typeof fetch = fetch) {
  const last: { status?: number; body?: Record<string, unknown> } = {}
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await inner(input, init)
    last.status = res.status
    last.body = (await res.clone().json()) as Record<string, unknown>
    return res
  }) as typeof fetch
  return { fetch: f, last }
}

/** An SvidSource handing out fixed SVIDs (for refusal cases the Workload API would not produce). */
function fixedSource(x509?: IssuedCert, jwt?: string): SvidSource {
  return {
    async x509Svid(): Promise<X509Svid> {
      if (x509 === undefined) throw new Error('no X.509-SVID')
      return { spiffeId: ID, certChain: [x509.der], privateKey: x509.pkcs8, bundle: [ca.root.der], expiresAt: x509.cert.notAfter.getTime() }
    },
    async jwtSvid() {
      if (jwt === undefined) throw new Error('no JWT-SVID')
      return { spiffeId: ID, token: jwt, expiresAt: Date.now() + 60_000 }
    },
    close() {},
  }
}

const thumb = async (jwk: unknown) => jwkThumbprint(jwk as PublicJwk)

function workloadSource(opts: { jwtRefreshMarginSec?: number } = {}): WorkloadApiSource {
  const s = createWorkloadApiSource({ socketPath: api.endpoint, ...opts })
  sources.push(s)
  return s
}

describe('SPIFFE-attested enrolment at an agent provider, JWT-SVID (AG-01)', () => {
  it('AG-01 enrols with a JWT-SVID from the Workload API; the token carries spiffe_id and binds the Ed25519 key', async () => {
    const { issuer, store, seen } = await startAp('http')
    const durableKey = (await generateKeyPair('Ed25519')).privateJwk
    const source = workloadSource({ jwtRefreshMarginSec: 3600 }) // every refresh fetches a new JWT-SVID
    const { agent, credentials } = await spiffeAgentCredentials({ source, provider: issuer, via: 'jwt-svid', durableKey, allowInsecureLoopback: true })
    expect(agent).toBe(`aauth:summarizer-tech@127.0.0.1:${new URL(issuer).port}`)
    const enrolled = await store.getEnrollment(await thumb(durableKey))
    expect(enrolled).toMatchObject({ sub: agent, ps: 'https://ps.demo.example.com', claims: { spiffe_id: ID }, reattest: true })

    const c1 = await credentials.current()
    expect(c1.claims).toMatchObject({ sub: agent, spiffe_id: ID, ps: 'https://ps.demo.example.com' })
    expect(c1.claims.cnf.jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' })
    expect(c1.jkt).toBe(await thumb(c1.claims.cnf.jwk))
    // Each refresh presents a new JWT-SVID, for the AP's audience.
    credentials.invalidate(c1.agentToken)
    await credentials.current()
    const tokens = seen.filter((s) => s.phase === 'token').map((s) => s.jwt)
    expect(tokens).toHaveLength(2)
    expect(tokens[0]).not.toBe(tokens[1])
    for (const t of tokens) expect(decodeJwt(t!).payload['aud']).toEqual([issuer])
  })

  it('single-key refresh binds the durable Ed25519 key itself', async () => {
    const { issuer } = await startAp('http')
    const { credentials, durableKey } = await spiffeAgentCredentials({ source: workloadSource(), provider: issuer, via: 'jwt-svid', singleKey: true, allowInsecureLoopback: true })
    expect(durableKey.crv).toBe('Ed25519')
    const c = await credentials.current()
    expect(await thumb(c.claims.cnf.jwk)).toBe(await thumb(durableKey))
  })

  it.each<[string, (issuer: string) => Promise<string>, SvidErrorReason]>([
    ['an expired JWT-SVID', (aud) => ca.mintJwtSvid(ID, aud, { ttlSec: -5 }), 'expired_svid'],
    ['a JWT-SVID for another audience', () => ca.mintJwtSvid(ID, 'https://elsewhere.example'), 'invalid_audience'],
    ['a JWT-SVID from another trust domain', (aud) => foreign.mintJwtSvid('spiffe://foreign.example.org/agent/x', aud), 'untrusted_trust_domain'],
    ['an unmapped SPIFFE ID', (aud) => ca.mintJwtSvid(OTHER_ID, aud), 'unmapped_spiffe_id'],
    ['an EdDSA JWT-SVID', (aud) => ca.mintJwtSvid(ID, aud, { alg: 'EdDSA' }), 'unsupported_algorithm'],
  ])('refuses %s: 403 with the exact svid_error, nothing enrolled', async (_name, make, reason) => {
    const { issuer, store } = await startAp('http')
    const rec = recording()
    const durableKey = (await generateKeyPair('Ed25519')).privateJwk
    await expect(spiffeAgentCredentials({ source: fixedSource(undefined, await make(issuer)), provider: issuer, via: 'jwt-svid', durableKey, fetch: rec.fetch, allowInsecureLoopback: true })).rejects.toMatchObject({ code: 'denied' })
    expect(rec.last.status).toBe(403)
    expect(rec.last.body).toMatchObject({ error: 'denied', svid_error: reason })
    expect(await store.getEnrollment(await thumb(durableKey))).toBeUndefined()
  })

  it('without any SVID, enrolment falls back to enrollment codes (400 invalid_request), nothing enrolled', async () => {
    const { issuer, store } = await startAp('http')
    const rec = recording()
    const durableKey = (await generateKeyPair('Ed25519')).privateJwk
    await expect(enroll({ provider: issuer, durableKey, body: {}, fetch: rec.fetch })).rejects.toMatchObject({ code: 'invalid_request' })
    expect(rec.last.status).toBe(400)
    expect(await store.getEnrollment(await thumb(durableKey))).toBeUndefined()
  })

  it('a token request of an SVID-enrolled agent needs a current SVID that maps to the same agent', async () => {
    const { issuer } = await startAp('http')
    const durableKey = (await generateKeyPair('Ed25519')).privateJwk
    await enroll({ provider: issuer, durableKey, body: { spiffe_jwt_svid: await ca.mintJwtSvid(ID, issuer) } })
    const cases: [Record<string, unknown>, string | undefined, RegExp][] = [
      [{}, 'invalid_svid', /present a current SVID/],
      [{ spiffe_jwt_svid: await ca.mintJwtSvid(ID, issuer, { ttlSec: -5 }) }, 'expired_svid', /expired/],
      [{ spiffe_jwt_svid: await ca.mintJwtSvid(`spiffe://${TD}/agent/second`, issuer) }, undefined, /maps to "second"/],
    ]
    for (const [body, reason, detail] of cases) {
      const rec = recording()
      await expect(requestAgentToken({ provider: issuer, durableKey, body, fetch: rec.fetch })).rejects.toMatchObject({ code: 'denied' })
      expect(rec.last.status).toBe(403)
      expect(rec.last.body?.['svid_error']).toBe(reason)
      expect(String(rec.last.body?.['detail'])).toMatch(detail)
    }
    const ok = await requestAgentToken({ provider: issuer, durableKey, body: { spiffe_jwt_svid: await ca.mintJwtSvid(ID, issuer) } })
    expect(decodeJwt(ok.agentToken).payload['spiffe_id']).toBe(ID)
  })
})

describe('SPIFFE-attested enrolment over mutual TLS with the X.509-SVID', () => {
  it('AG-01 enrols over mTLS; a refresh after rotation presents the new X.509-SVID', async () => {
    const { issuer, store, seen, connectTo } = await startAp('mtls')
    const source = workloadSource()
    const { agent, credentials, durableKey } = await spiffeAgentCredentials({ source, provider: issuer, via: 'mtls', ca: ca.root.der, connectTo })
    expect(agent).toBe('aauth:summarizer-tech@agents.demo.example.com')
    expect(await store.getEnrollment(await thumb(durableKey))).toMatchObject({ sub: agent, claims: { spiffe_id: ID } })
    const c1 = await credentials.current()
    expect(c1.claims).toMatchObject({ iss: issuer, sub: agent, spiffe_id: ID })
    expect(c1.claims.cnf.jwk).toMatchObject({ crv: 'Ed25519' })
    const before = seen.at(-1)!.leaf!
    expect(Buffer.from(before)).toEqual(Buffer.from((await source.x509Svid()).certChain[0]!))

    const rotated = new Promise<X509Svid>((resolve) => source.onRotate(resolve))
    const minted = await api.rotate()
    await rotated
    credentials.invalidate(c1.agentToken)
    const c2 = await credentials.current()
    expect(c2.agentToken).not.toBe(c1.agentToken)
    const after = seen.at(-1)!
    expect(after.phase).toBe('token')
    expect(Buffer.from(after.leaf!)).toEqual(Buffer.from(minted.der))
    expect(Buffer.from(after.leaf!)).not.toEqual(Buffer.from(before))
  })

  it.each<[string, () => Promise<IssuedCert>, SvidErrorReason]>([
    ['an expired X.509-SVID', () => ca.issueX509Svid(ID, { notBefore: new Date(Date.now() - 7200e3), notAfter: new Date(Date.now() - 3600e3) }), 'expired_svid'],
    ['an X.509-SVID from another trust domain', () => foreign.issueX509Svid('spiffe://foreign.example.org/agent/x'), 'untrusted_trust_domain'],
    ['an X.509-SVID with two URI SANs', () => ca.issueX509Svid(ID, { uris: [ID, OTHER_ID] }), 'invalid_svid'],
    ['an unmapped X.509-SVID', () => ca.issueX509Svid(OTHER_ID), 'unmapped_spiffe_id'],
  ])('refuses %s: 403 with the exact svid_error, nothing enrolled', async (_name, make, reason) => {
    const { issuer, store, connectTo } = await startAp('mtls')
    const rec = recording(createMtlsFetch(fixedSource(await make()), { ca: pem(ca.root.der, 'CERTIFICATE'), connectTo }))
    const durableKey: PrivateJwk = (await generateKeyPair('Ed25519')).privateJwk
    await expect(enroll({ provider: issuer, durableKey, body: {}, fetch: rec.fetch })).rejects.toMatchObject({ code: 'denied' })
    expect(rec.last.status).toBe(403)
    expect(rec.last.body).toMatchObject({ error: 'denied', svid_error: reason })
    expect(await store.getEnrollment(await thumb(durableKey))).toBeUndefined()
  })

  it('the mTLS fetch checks the AP server certificate against the given CA', async () => {
    const { issuer, connectTo } = await startAp('mtls')
    const durableKey = (await generateKeyPair('Ed25519')).privateJwk
    const wrongCa = createMtlsFetch(fixedSource(await ca.issueX509Svid(ID)), { ca: foreign.root.der, connectTo })
    await expect(enroll({ provider: issuer, durableKey, fetch: wrongCa })).rejects.toThrow(/certificate/)
  })
})
