import { describe, expect, it } from 'vitest'
import {
  components,
  createAuthToken,
  createPersonToken,
  createRequestVerifier,
  createSignatureBase,
  createSigner,
  decodeJwt,
  jwkThumbprint,
  type ComponentIdentifier,
  DWK,
  encodeSig,
  MemoryReplayCache,
  messageView,
  serializeSignatureKey,
  serializeSignatureParams,
  signatureParamsMap,
  signRequest,
  SignatureError,
  type RequestVerifierOptions,
} from './verification-helpers.js'
import { fakeIssuer, fakeNetwork, jwksFor, testAgent } from '../helpers/issuers.js'

let t = 1_800_000_000_000
const now = () => t
const API = 'https://api.example'

async function setup(opts: Partial<RequestVerifierOptions> = {}) {
  const net = fakeNetwork()
  const ap = await fakeIssuer(net, 'https://agents.example', DWK.agent)
  const ps = await fakeIssuer(net, 'https://ps.example', DWK.person, { auth_token_endpoint: 'https://ps.example/token', person_token_endpoint: 'https://ps.example/person' })
  const agent = await testAgent(ap, 'bot', { now, ps: 'https://ps.example' })
  const verifier = createRequestVerifier({ audience: API, jwks: jwksFor(net, now), now, ...opts })
  const sign = async (jwt: string, url = `${API}/flights`, init: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {}) => {
    const { headers } = await signRequest({ method: init.method ?? 'GET', url, headers: new Headers(init.headers) }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt, cache: false }, now, ...(init.body ? { body: init.body } : {}) })
    return { method: init.method ?? 'GET', url, headers }
  }
  return { net, ap, ps, agent, verifier, sign }
}

/** Signs `headers` (which already carry Signature-Key) over `comps` with `params`, by hand. */
async function manualSign(signer: { sign(d: Uint8Array): Promise<Uint8Array> }, url: string, headers: Headers, comps: ComponentIdentifier[], params: ReturnType<typeof signatureParamsMap>, label = 'sig') {
  const base = await createSignatureBase(messageView({ method: 'GET', url, headers }), comps, params)
  headers.set('signature-input', `${label}=${serializeSignatureParams(comps, params)}`)
  headers.set('signature', `${label}=:${encodeSig(await signer.sign(new TextEncoder().encode(base)))}:`)
  return { method: 'GET', url, headers, base }
}
const BASE = components(['@method', '@authority', '@path', 'signature-key'])

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof SignatureError ? e.code : `non-signature error: ${String(e)}`))

describe('request verification with each token type (main draft §Keying Material)', () => {
  it('person and auth tokens sign requests just like agent tokens; context says which', async () => {
    const s = await setup()
    const person = await createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: API, sub: 'u-1', cnfJwk: s.agent.publicJwk, now })
    const auth = await createAuthToken({ key: s.ps.key, issuer: s.ps.issuer, issuerRole: 'person', aud: API, ps: s.ps.issuer, sub: 'u-1', cnfJwk: s.agent.publicJwk, scope: 'flights:read', now })
    for (const [jwt, type] of [[s.agent.token, 'aa-agent+jwt'], [person, 'aa-person+jwt'], [auth, 'aa-auth+jwt']] as const) {
      const v = await s.verifier.verify(await s.sign(jwt))
      expect(v.key.context).toMatchObject({ scheme: 'jwt', type })
    }
  })

  it('TOK-PT-05 a verifier that accepts only auth tokens refuses a person token', async () => {
    const s = await setup({ acceptedTokenTypes: ['aa-auth+jwt'] })
    const person = await createPersonToken({ key: s.ps.key, issuer: s.ps.issuer, aud: API, sub: 'u-1', cnfJwk: s.agent.publicJwk, now })
    expect(await codeOf(s.verifier.verify(await s.sign(person)))).toBe('invalid_jwt')
  })

  it('NEG-SIG-15 a token for agent X presented with agent Y\'s key fails (stolen token)', async () => {
    const s = await setup()
    const thief = await testAgent(s.ap, 'thief', { now })
    const { headers } = await signRequest({ method: 'GET', url: `${API}/x`, headers: new Headers() }, { signer: thief.signer, signatureKey: { scheme: 'jwt', jwt: s.agent.token, cache: false }, now })
    expect(await codeOf(s.verifier.verify({ method: 'GET', url: `${API}/x`, headers }))).toBe('invalid_signature')
  })
})

describe('cached tokens keep being checked', () => {
  it('TOK-04 an expired cached token is refused with expired_jwt', async () => {
    const s = await setup()
    const req = await s.sign(s.agent.token)
    await s.verifier.verify(req)
    const saved = t
    t += 3600_000 + 1000
    expect(await codeOf(s.verifier.verify(await s.sign(s.agent.token)))).toBe('expired_jwt')
    t = saved
  })

  it('NEG-SIG-21 TOK-09 a token revoked after it was cached is refused with revoked_jwt', async () => {
    const revoked = new Set<string>()
    const s = await setup({ isRevoked: (iss, jti) => revoked.has(`${iss}|${jti}`) })
    await s.verifier.verify(await s.sign(s.agent.token))
    const { payload } = decodeJwt(s.agent.token)
    revoked.add(`${String(payload['iss'])}|${String(payload['jti'])}`)
    expect(await codeOf(s.verifier.verify(await s.sign(s.agent.token)))).toBe('revoked_jwt')
  })
})

describe('profile rules', () => {
  it('SIG-16 NEG-SIG-10 the replay cache refuses the same (jkt, created, method, authority, path)', async () => {
    const s = await setup({ replayCache: new MemoryReplayCache(1000, now) })
    const req = await s.sign(s.agent.token)
    await s.verifier.verify(req)
    expect(await codeOf(s.verifier.verify(req))).toBe('invalid_signature')
  })

  it('SIG-04 NEG-SIG-04 Authorization: AAuth must be covered; the signer covers it', async () => {
    const s = await setup()
    const req = await s.sign(s.agent.token, `${API}/docs`, { headers: { authorization: 'AAuth session-abc' } })
    expect(req.headers.get('signature-input')).toContain('"authorization"')
    await s.verifier.verify(req)
    const unsigned = await s.sign(s.agent.token, `${API}/docs`)
    unsigned.headers.set('authorization', 'AAuth session-abc')
    const e = await s.verifier.verify(unsigned).catch((x: unknown) => x as SignatureError)
    expect(e).toMatchObject({ code: 'invalid_input' })
    expect((e as SignatureError).requiredInput).toContain('authorization')
  })

  it('SIG-03 PS/AS endpoints require content-type and content-digest on bodies', async () => {
    const s = await setup({ requireBodyComponents: true })
    const body = new TextEncoder().encode('{"a":1}')
    const good = await s.sign(s.agent.token, `${API}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    await s.verifier.verify(good, body)
    // A body sent with a signature that covers only the base components.
    const bare = await s.sign(s.agent.token, `${API}/token`, { method: 'POST' })
    expect(await codeOf(s.verifier.verify(bare, body))).toBe('invalid_input')
  })

  it('SIG-05 additional components are enforced and satisfiable', async () => {
    const s = await setup({ requiredComponents: ['@query'] })
    expect(await codeOf(s.verifier.verify(await s.sign(s.agent.token, `${API}/flights`)))).toBe('invalid_input')
    await s.verifier.verify(await s.sign(s.agent.token, `${API}/flights?to=SYD`))
  })

  it('SK-02 SK-27 NEG-SIG-23 an extra Signature-Key member with an unknown scheme for another label is ignored', async () => {
    const s = await setup()
    const url = `${API}/multi`
    const headers = new Headers({ 'signature-key': `${serializeSignatureKey({ sig: { scheme: 'jwt', jwt: s.agent.token, cache: false } })}, sig9=frob;x=1` })
    const req = await manualSign(s.agent.signer, url, headers, BASE, signatureParamsMap({ created: Math.floor(t / 1000) }))
    // A second signature label without a Signature-Key member is present but not selected.
    req.headers.set('signature-input', `other=("@method");created=${Math.floor(t / 1000)}, ${req.headers.get('signature-input')!}`)
    req.headers.set('signature', `other=:AAAA:, ${req.headers.get('signature')!}`)
    expect((await s.verifier.verify(req)).label).toBe('sig')
  })

  it('SIG-08 a keyid that names the same key (thumbprint) is accepted', async () => {
    const s = await setup()
    const headers = new Headers({ 'signature-key': serializeSignatureKey({ sig: { scheme: 'jwt', jwt: s.agent.token, cache: false } }) })
    const params = signatureParamsMap({ created: Math.floor(t / 1000), keyid: await jwkThumbprint(s.agent.publicJwk), alg: 'ed25519' })
    await s.verifier.verify(await manualSign(s.agent.signer, `${API}/k`, headers, BASE, params))
  })

  it('reference path: components with parameters are built by http-message-signatures', async () => {
    const s = await setup()
    const headers = new Headers({ 'x-list': 'a,   b', 'signature-key': serializeSignatureKey({ sig: { scheme: 'jwt', jwt: s.agent.token, cache: false } }) })
    const comps = [...BASE, { name: 'x-list', params: new Map([['sf', true]]) }]
    const req = await manualSign(s.agent.signer, `${API}/sf`, headers, comps, signatureParamsMap({ created: Math.floor(t / 1000) }))
    expect(req.base).toContain('"x-list";sf: a, b')
    await s.verifier.verify(req)
  })
})

describe('servers signing in their own right (SIG-19)', () => {
  it('jwks_uri is accepted only when enabled, and yields the server identity', async () => {
    const s = await setup({ acceptServerSignatures: true })
    const psSigner = await createSigner(s.ps.key.privateJwk)
    const { headers } = await signRequest({ method: 'POST', url: `${API}/revoke`, headers: new Headers({ 'content-type': 'application/json' }) }, {
      signer: psSigner, signatureKey: { scheme: 'jwks_uri', id: 'https://ps.example', dwk: 'aauth-person.json', kid: 'key-1' }, now, body: new TextEncoder().encode('{"jti":"x","exp":1}'),
    })
    const v = await s.verifier.verify({ method: 'POST', url: `${API}/revoke`, headers }, new TextEncoder().encode('{"jti":"x","exp":1}'))
    expect(v.key.context).toEqual({ scheme: 'jwks_uri', issuer: 'https://ps.example', dwk: 'aauth-person.json', kid: 'key-1' })
    const strict = await setup()
    const e = await strict.verifier.verify({ method: 'POST', url: `${API}/revoke`, headers }).catch((x: unknown) => x as SignatureError)
    expect(e).toMatchObject({ code: 'unsupported_scheme', acceptSignatureScheme: ['jwt'] })
  })

  it('NEG-SIG-24 a server whose metadata issuer differs from id is refused with issuer_mismatch', async () => {
    const s = await setup({ acceptServerSignatures: true })
    s.ps.metadata['issuer'] = 'https://evil.example'
    const { headers } = await signRequest({ method: 'GET', url: `${API}/r`, headers: new Headers() }, {
      signer: await createSigner(s.ps.key.privateJwk), signatureKey: { scheme: 'jwks_uri', id: 'https://ps.example', dwk: 'aauth-person.json', kid: 'key-1' }, now,
    })
    expect(await codeOf(s.verifier.verify({ method: 'GET', url: `${API}/r`, headers }))).toBe('issuer_mismatch')
  })
})
