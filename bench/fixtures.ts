/**
 * Benchmark fixtures: one agent provider on the fake network, one agent with its token, and one
 * signed GET, plus the raw `node:crypto` material the baselines need (the exact signature base
 * bytes, the signature, and KeyObjects for the agent key); and a resource (`createResource`)
 * whose store never reports a replay, so the one signed GET can be verified again and again.
 */

import crypto, { type KeyObject } from 'node:crypto'
import { createResource, type AAuthStore, type R3Options, type Resource } from '../src/resource/index.js'
import { createAuthToken, signRequest, type JwksCache, type SignatureKeyMember } from '../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor, testAgent, type FakeIssuer, type TestAgent } from '../test/helpers/issuers.js'

export const AUDIENCE = 'https://api.example'
export const URL_STRING = 'https://api.example/flights?to=SYD&date=2026-12-01'

export interface Fixture {
  /** Fixed clock (epoch ms) used for signing and verifying, so `created` stays in the window. */
  readonly now: () => number
  readonly agent: TestAgent
  /** The agent's person server (`ps` of its agent token) on the fake network: it issues the auth tokens. */
  readonly ps: FakeIssuer
  /** A new JWKS cache over the fake network (filled by its first lookup). */
  readonly jwks: () => JwksCache
  readonly signatureKey: SignatureKeyMember
  /** The signed request's headers (Fetch `Headers`, as `signRequest` returns them). */
  readonly headers: Headers
  /** The exact RFC 9421 signature base that was signed, as bytes. */
  readonly base: Uint8Array
  readonly signature: Uint8Array
  readonly publicKey: KeyObject
  readonly privateKey: KeyObject
}

export async function createFixture(): Promise<Fixture> {
  const t = Date.now()
  const now = (): number => t
  const net = fakeNetwork()
  const ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
  const ps = await fakeIssuer(net, 'https://ps.example', 'aauth-person.json', { auth_token_endpoint: 'https://ps.example/token', person_token_endpoint: 'https://ps.example/person-token' })
  const agent = await testAgent(ap, 'travel-bot', { now, ps: ps.issuer })
  const signatureKey: SignatureKeyMember = { scheme: 'jwt', jwt: agent.token, cache: false }
  const signed = await signRequest({ method: 'GET', url: URL_STRING, headers: new Headers({ accept: 'application/json' }) }, { signer: agent.signer, signatureKey, now, exposeBase: true })
  const sigHeader = signed.headers.get('signature') ?? ''
  const m = /^sig=:([A-Za-z0-9+/=]+):$/.exec(sigHeader)
  if (m === null || signed.signatureBase === undefined) throw new Error(`unexpected Signature header ${sigHeader}`)
  const signature = new Uint8Array(Buffer.from(m[1]!, 'base64'))
  const base = new TextEncoder().encode(signed.signatureBase)
  const { alg: _alg, ...pub } = agent.publicJwk
  const publicKey = crypto.createPublicKey({ key: pub as crypto.JsonWebKey, format: 'jwk' })
  const { alg: _a, ...priv } = agent.privateJwk
  const privateKey = crypto.createPrivateKey({ key: priv as crypto.JsonWebKey, format: 'jwk' })
  if (!crypto.verify(null, base, publicKey, signature)) throw new Error('fixture: raw verify of the signed base failed')
  // One JWKS cache per verifier on the fake network; the verifier's first (warm-up) call fills it,
  // and the fixed clock keeps it fresh for the whole run.
  const jwks = (): JwksCache => jwksFor(net, now)
  return { now, agent, ps, jwks, signatureKey, headers: signed.headers, base, signature, publicKey, privateKey }
}

/** An {@link AAuthStore} that never sees a replay or a revocation; `adds` counts replay-cache calls. */
export interface NoReplayStore extends AAuthStore {
  readonly adds: number
}

/**
 * The store of the bench resources: `add` always answers "fresh" (the replay check still runs —
 * the replay key is hashed and handed to the store — but never refuses), `has` answers "not
 * revoked". `createResource` always uses a store for replay, so this is what lets one signed
 * request be verified repeatedly.
 */
export function noReplayStore(): NoReplayStore {
  let adds = 0
  return {
    get adds() {
      return adds
    },
    add: () => {
      adds++
      return true
    },
    has: () => false,
    increment: () => 1,
  }
}

/**
 * A resource for the fixture's audience, verifying with its JWKS and clock, over
 * {@link noReplayStore}; `syncCrypto` as the core's option (default async).
 */
export function benchResource(fx: Fixture, syncCrypto = false, r3?: R3Options): { resource: Resource; store: NoReplayStore; jwks: JwksCache } {
  const store = noReplayStore()
  const jwks = fx.jwks()
  return { resource: createResource({ issuer: AUDIENCE, jwks, now: fx.now, store, syncCrypto, ...(r3 === undefined ? {} : { r3 }) }), store, jwks }
}

/** A signed request with a body, as the core's `authenticate` takes it: the Fetch `Request` and its body bytes. */
export interface SignedCall {
  readonly request: Request
  readonly body: Uint8Array
}

/**
 * A POST of `json` to `url` on the fixture's audience, signed by the fixture's agent (covering
 * `content-type` and `Content-Digest`) and presenting an auth token (`typ` `aa-auth+jwt`) from
 * the fixture's PS: `aud` the resource, `sub` `user-1`, `cnf.jwk` the agent key, `scope`, plus
 * `extraClaims` (R3's `r3_uri`, `r3_s256`, `r3_granted`…). The `Request` is built once.
 */
export async function authTokenCall(fx: Fixture, url: string, json: unknown, scope: string, extraClaims?: Record<string, unknown>): Promise<SignedCall> {
  const token = await createAuthToken({
    key: fx.ps.key,
    issuer: fx.ps.issuer,
    issuerRole: 'person',
    aud: AUDIENCE,
    ps: fx.ps.issuer,
    sub: 'user-1',
    cnfJwk: fx.agent.publicJwk,
    scope,
    now: fx.now,
    ...(extraClaims === undefined ? {} : { extraClaims }),
  })
  const body = new TextEncoder().encode(JSON.stringify(json))
  const { headers } = await signRequest(
    { method: 'POST', url, headers: new Headers({ 'content-type': 'application/json', accept: 'application/json' }) },
    { signer: fx.agent.signer, signatureKey: { scheme: 'jwt', jwt: token, cache: false }, now: fx.now, body },
  )
  if (!headers.has('content-digest')) throw new Error('fixture: the signed POST has no Content-Digest')
  return { request: new Request(url, { method: 'POST', headers, body: body as BufferSource }), body }
}
