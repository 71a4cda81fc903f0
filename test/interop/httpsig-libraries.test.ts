/**
 * Cross-library RFC 9421 interop: our signer and verifier against http-message-sig 0.3.0
 * (Cloudflare), @hellocoop/httpsig 2.2.0 (AAuth reference SDK) and http-message-signatures 1.0.6
 * (dhensby), in both directions, for Ed25519 and ES256, over three request shapes.
 *
 * Each cell of the table libraries × algorithms × shapes runs four tests:
 *
 * 1. ours signs → the library verifies (key from the agent's public JWK); where the library hands
 *    its signature base to the crypto callback, that base equals ours byte for byte;
 * 2. the library signs with our `Signature-Key: sig=jwt;jwt="<agent token>"` and the profile's
 *    components → our full AAuth verifier (`createRequestVerifier`) accepts it; the library's
 *    `Signature-Key`, `Content-Digest` and `Signature-Input` equal what we emit for the same
 *    request and `created`, its exposed base equals ours, and for Ed25519 (deterministic) so does
 *    the `Signature` itself;
 * 3. the library's signature on a request whose path was changed → ours says `invalid_signature`;
 * 4. our signature on a request whose path was changed → the library rejects it.
 *
 * CHECKLIST: SIG-01, SIG-02, SIG-03, SIG-06, SIG-07, SIG-09, SK-16, NEG-SIG-16.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { verify as hcVerify } from '@hellocoop/httpsig'
import {
  createAgentToken,
  createRequestVerifier,
  createSignatureBase,
  createSigner,
  generateKeyPair,
  importVerifyKey,
  jwkThumbprint,
  messageView,
  parseSignature,
  parseSignatureInput,
  SignatureError,
  signRequest,
  verifySignatureBytes,
  type RequestVerifier,
  type SignedRequestHeaders,
  type Signer,
} from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor, type FakeIssuer, type FakeNetwork } from '../helpers/issuers.js'
import { hellocoopPeer, PEERS, type Alg, type ArrivingRequest, type InteropAgent, type Peer, type Shape } from './peers.js'

const ALGS: readonly Alg[] = ['Ed25519', 'ES256']

const SHAPES: readonly Shape[] = [
  {
    name: 'GET without query',
    method: 'GET',
    url: 'https://api.example/flights',
    components: ['@method', '@authority', '@path', 'signature-key'],
  },
  {
    name: 'GET with query',
    method: 'GET',
    url: 'https://api.example/flights?to=SYD&class=economy',
    components: ['@method', '@authority', '@path', '@query', 'signature-key'],
  },
  {
    name: 'POST JSON with Content-Digest',
    method: 'POST',
    url: 'https://ps.example/token',
    contentType: 'application/json',
    body: new TextEncoder().encode('{"resource_token":"eyJ.x.y","justification":"book SYD"}'),
    components: ['@method', '@authority', '@path', 'signature-key', 'content-type', 'content-digest'],
  },
]

type Direction = 'ours→peer' | 'peer→ours'

/**
 * Cells expected to fail because the two sides disagree on the wire. Each entry is run with
 * `it.fails`, so a fix on either side shows up as a failing test to clean up here.
 */
const KNOWN_MISMATCHES: readonly { peer: string; shape: string; directions: readonly Direction[] }[] = [
  // INTEROP: @hellocoop/httpsig 2.2.0 derives "@query" without the leading "?": fetch.js sets it
  // to `urlObj.search.substring(1)` and verify.js to `request.query || ''`, with `query` documented
  // as "without leading '?'". RFC 9421 §2.2.7 defines the value as the query *including* "?"
  // ("?" alone when empty), which is what we, http-message-sig and http-message-signatures build.
  // So every request covering @query fails between hellocoop and any RFC 9421 implementation, in
  // both directions, whatever the algorithm. Not an aauth-kit bug; the tests under
  // "@hellocoop/httpsig @query root cause" below pin the exact difference. Fix belongs upstream
  // (fetch: `urlObj.search || '?'`; verify: `'?' + (request.query ?? '')`).
  { peer: '@hellocoop/httpsig', shape: 'GET with query', directions: ['ours→peer', 'peer→ours'] },
]

function cell(peer: Peer, shape: Shape, direction: Direction): typeof it | typeof it.fails {
  const known = KNOWN_MISMATCHES.some((m) => m.peer === peer.name && m.shape === shape.name && m.directions.includes(direction))
  return known ? it.fails : it
}

interface Agent extends InteropAgent {
  readonly id: string
  readonly signer: Signer
}

let net: FakeNetwork
let ap: FakeIssuer
const agents = new Map<Alg, Agent>()

beforeAll(async () => {
  net = fakeNetwork()
  ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
  for (const alg of ALGS) {
    const { privateJwk, publicJwk } = await generateKeyPair(alg)
    const id = `aauth:interop-${alg.toLowerCase()}@agents.example`
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: id, cnfJwk: publicJwk })
    agents.set(alg, { alg, id, token, privateJwk, publicJwk, signer: await createSigner(privateJwk) })
  }
})

function agentFor(alg: Alg): Agent {
  const a = agents.get(alg)
  if (a === undefined) throw new Error(`no ${alg} agent`)
  return a
}

const nowSec = (): number => Math.floor(Date.now() / 1000)

function verifierFor(shape: Shape): RequestVerifier {
  return createRequestVerifier({ audience: new URL(shape.url).origin, jwks: jwksFor(net), requireBodyComponents: true })
}

function oursSign(shape: Shape, agent: Agent, created?: number): Promise<SignedRequestHeaders> {
  const headers = new Headers(shape.contentType === undefined ? {} : { 'content-type': shape.contentType })
  return signRequest(
    { method: shape.method, url: shape.url, headers },
    {
      signer: agent.signer,
      signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false },
      exposeBase: true,
      ...(created === undefined ? {} : { now: () => created * 1000 }),
      ...(shape.body === undefined ? {} : { body: shape.body }),
    },
  )
}

/** The request as it reaches the verifier; `tampered` prefixes its path. */
function arriving(shape: Shape, headers: Headers, tampered = false): ArrivingRequest {
  const url = new URL(shape.url)
  if (tampered) url.pathname = `/admin${url.pathname}`
  return { method: shape.method, url, headers, ...(shape.body === undefined ? {} : { body: shape.body }) }
}

function toFetch(r: ArrivingRequest): Request {
  return new Request(r.url, r.body === undefined ? { method: r.method, headers: r.headers } : { method: r.method, headers: r.headers, body: r.body as BufferSource })
}

async function oursVerify(shape: Shape, r: ArrivingRequest) {
  return verifierFor(shape).verify(toFetch(r), r.body)
}

for (const peer of PEERS) {
  describe(peer.name, () => {
    for (const alg of ALGS.filter((a) => peer.algs.includes(a))) {
      for (const shape of SHAPES) {
        describe(`${alg} · ${shape.name}`, () => {
          cell(peer, shape, 'ours→peer')('SIG-02 signed by aauth-kit → verified by the library (same signature base)', async () => {
            const agent = agentFor(alg)
            const ours = await oursSign(shape, agent)
            expect(ours.components).toEqual(shape.components)
            const r = await peer.verify(arriving(shape, ours.headers), shape, agent)
            expect(r).toMatchObject({ ok: true })
            if (peer.exposesBase) expect(r.base).toBe(ours.signatureBase)
            if (r.thumbprint !== undefined) expect(r.thumbprint).toBe(await jwkThumbprint(agent.publicJwk))
            if (r.jwt !== undefined) expect(r.jwt).toBe(agent.token)
          })

          cell(peer, shape, 'peer→ours')('SIG-01 signed by the library → accepted by createRequestVerifier (same fields and base as ours)', async () => {
            const agent = agentFor(alg)
            const theirs = await peer.sign(shape, agent, nowSec())
            const v = await oursVerify(shape, arriving(shape, theirs.headers))
            expect(v.label).toBe('sig')
            expect(v.components).toEqual(shape.components)
            expect(v.key.thumbprint).toBe(await jwkThumbprint(agent.publicJwk))
            expect(v.key.context.scheme === 'jwt' && v.key.context.type === 'aa-agent+jwt' ? v.key.context.claims.sub : undefined).toBe(agent.id)

            // The same request signed by us at the same `created` carries the same fields.
            const ours = await oursSign(shape, agent, v.created)
            for (const field of ['signature-key', 'content-type', 'content-digest', 'signature-input']) {
              expect(theirs.headers.get(field), field).toBe(ours.headers.get(field))
            }
            if (peer.exposesBase) expect(theirs.base).toBe(ours.signatureBase)
            // Ed25519 is deterministic: same key and base give the same signature bytes.
            if (alg === 'Ed25519') expect(theirs.headers.get('signature')).toBe(ours.headers.get('signature'))
          })

          it('NEG-SIG-16 signed by the library, path changed in transit → invalid_signature from ours', async () => {
            const agent = agentFor(alg)
            const theirs = await peer.sign(shape, agent, nowSec())
            const err = await oursVerify(shape, arriving(shape, theirs.headers, true)).catch((e: unknown) => e)
            expect(err).toBeInstanceOf(SignatureError)
            expect((err as SignatureError).code).toBe('invalid_signature')
          })

          it('signed by aauth-kit, path changed in transit → rejected by the library', async () => {
            const agent = agentFor(alg)
            const ours = await oursSign(shape, agent)
            const r = await peer.verify(arriving(shape, ours.headers, true), shape, agent)
            expect(r.ok).toBe(false)
            expect(r.code).toBe(peer.badSignatureCode)
          })
        })
      }
    }
  })
}

describe('@hellocoop/httpsig @query root cause', () => {
  const shape = SHAPES.find((s) => s.components.includes('@query'))!
  const url = new URL(shape.url)

  for (const alg of ALGS) {
    it(`${alg}: our signature verifies at hellocoop once its "query" argument keeps the "?"`, async () => {
      const agent = agentFor(alg)
      const ours = await oursSign(shape, agent)
      const documented = await hcVerify({ method: shape.method, authority: url.host, path: url.pathname, query: url.search.slice(1), headers: ours.headers })
      expect(documented.verified).toBe(false)
      const withQuestionMark = await hcVerify({ method: shape.method, authority: url.host, path: url.pathname, query: url.search, headers: ours.headers })
      expect(withQuestionMark).toMatchObject({ verified: true, keyType: 'jwt' })
    })

    it(`${alg}: hellocoop's signature is over "@query" without the "?"`, async () => {
      const agent = agentFor(alg)
      const theirs = await hellocoopPeer.sign(shape, agent, nowSec())
      const input = parseSignatureInput(theirs.headers.get('signature-input')!).get('sig')!
      const signature = parseSignature(theirs.headers.get('signature')!).get('sig')!
      const rfcBase = await createSignatureBase(messageView({ method: shape.method, url, headers: theirs.headers }), input.components, input.rawParams)
      expect(rfcBase).toContain(`\n"@query": ${url.search}\n`)
      const theirBase = rfcBase.replace(`"@query": ${url.search}`, `"@query": ${url.search.slice(1)}`)
      const key = await importVerifyKey(agent.publicJwk, alg)
      const enc = new TextEncoder()
      expect(await verifySignatureBytes(key, enc.encode(rfcBase), signature)).toBe(false)
      expect(await verifySignatureBytes(key, enc.encode(theirBase), signature)).toBe(true)
    })
  }
})
