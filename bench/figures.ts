/**
 * The throughput figures: request verification (cached token, sync and concurrent async crypto),
 * cold verification (token not cached), the resource core's `authenticate`, request signing, and
 * the agent client's prepare-and-sign — each against raw `node:crypto` on the same bytes, in the
 * same run.
 */

import crypto from 'node:crypto'
import { AgentCredentials, createAgentClient } from '../src/agent/index.js'
import { createRequestVerifier, messageView, R3_VOCABULARY, serializeR3, signRequest, type RequestVerifier } from '../src/protocol/index.js'
import { classDocument, R3_PATHS, type OperationDeclaration, type R3Options } from '../src/resource/index.js'
import { AUDIENCE, authTokenCall, benchResource, URL_STRING, type Fixture, type SignedCall } from './fixtures.js'
import { compare, concurrentSide, figureFrom, sequentialSide, sig3, syncSide, type CompareOptions, type Figure, type Side } from './harness.js'

export const IN_FLIGHT = 64

const RAW_VERIFY_NOTE = 'baseline crypto.verify(null, base, KeyObject, sig) on the same base bytes'

/** One raw synchronous Ed25519 verify of the fixture's signature base. */
export function rawVerifyOnce(fx: Fixture): () => boolean {
  return () => crypto.verify(null, fx.base, fx.publicKey, fx.signature)
}

/** The verification baseline: {@link rawVerifyOnce} in batches. */
function rawVerify(fx: Fixture): Side {
  return syncSide(rawVerifyOnce(fx))
}

/** The concurrent baseline: callback `crypto.verify` (libuv pool) with {@link IN_FLIGHT} in flight. */
function rawVerifyConcurrent(fx: Fixture): Side {
  return concurrentSide(
    () => new Promise<boolean>((resolve, reject) => crypto.verify(null, fx.base, fx.publicKey, fx.signature, (err, ok) => (err === null ? resolve(ok) : reject(err)))),
    IN_FLIGHT,
  )
}

/** Longer slices for the concurrent figures: each one ramps up to and drains from 64 in flight. */
function concurrentOptions(o: CompareOptions): CompareOptions {
  return { ...o, roundMs: Math.round(o.roundMs * 1.5), rounds: Math.max(5, Math.round((o.rounds * 2) / 3)) | 1 }
}

async function checkedVerify(v: RequestVerifier, fx: Fixture): Promise<void> {
  const r = await v.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers }))
  if (r.key.context.scheme !== 'jwt' || r.key.context.claims.sub !== fx.agent.id) throw new Error('bench: verification returned the wrong identity')
}

/** The verifier with its token already cached; fails loudly if the cache is not being hit. */
async function warmVerifier(fx: Fixture, syncCrypto: boolean): Promise<{ v: RequestVerifier; fetches: () => number }> {
  const jwks = fx.jwks()
  const v = createRequestVerifier({ audience: AUDIENCE, jwks, now: fx.now, syncCrypto })
  await checkedVerify(v, fx)
  if (v.tokenCache.get(fx.agent.token) === undefined) throw new Error('bench: agent token was not cached after the first verification')
  return { v, fetches: () => jwks.fetchCount }
}

export async function verifyRequest(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const { v, fetches } = await warmVerifier(fx, true)
  const f0 = fetches()
  // A fresh view per call: the URL is parsed and the headers read anew, as for a new request.
  const ours = sequentialSide(() => v.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers })))
  const c = await compare(ours, rawVerify(fx), o)
  if (fetches() !== f0 || v.tokenCache.size !== 1) throw new Error('bench: verify-request left the cached path')
  return figureFrom('verify-request', 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.8 },
    `verifier.verify(messageView(GET with Fetch Headers)), agent token cached, syncCrypto:true, one at a time; ${RAW_VERIFY_NOTE}`, { baseBytes: fx.base.byteLength })
}

export async function verifyRequestConcurrent(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const { v, fetches } = await warmVerifier(fx, false)
  const f0 = fetches()
  const ours = concurrentSide(() => v.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers })), IN_FLIGHT)
  const c = await compare(ours, rawVerifyConcurrent(fx), concurrentOptions(o))
  if (fetches() !== f0 || v.tokenCache.size !== 1) throw new Error('bench: verify-request-concurrent left the cached path')
  return figureFrom('verify-request-concurrent', 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.8 },
    `as verify-request with syncCrypto:false, ${IN_FLIGHT} in flight; baseline callback crypto.verify with ${IN_FLIGHT} in flight (libuv pool ${process.env['UV_THREADPOOL_SIZE'] ?? 4} threads)`, { inFlight: IN_FLIGHT })
}

export async function verifyRequestCold(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const jwks = fx.jwks()
  const v = createRequestVerifier({ audience: AUDIENCE, jwks, now: fx.now, syncCrypto: true })
  await checkedVerify(v, fx) // fills the JWKS cache (the issuer key stays cached; only the token is cold)
  const f0 = jwks.fetchCount
  const ours = sequentialSide(() => {
    v.tokenCache.clear()
    return v.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers }))
  })
  const c = await compare(ours, rawVerify(fx), o)
  if (jwks.fetchCount !== f0) throw new Error('bench: verify-request-cold refetched the JWKS')
  return figureFrom('verify-request-cold', 'ops/s', c, null,
    'token cache cleared before every call: agent-token JWS verification (jose compactVerify), claim checks, cnf.jwk import and thumbprint, then the request signature; issuer JWKS cached. Baseline one raw crypto.verify; two raw verifies would give 0.5', { baseBytes: fx.base.byteLength })
}

const AGENT_ACCESS = { access: 'agent' } as const
const EMPTY_BODY = new Uint8Array()

/**
 * `resource-core-verify`: `resource.authenticate(request, {access:'agent'}, emptyBody)` of the
 * fixture's GET, the Fetch `Request` built once (an adapter builds it per request: see
 * `--breakdown`), with the core's defaults — async crypto, a revocation lookup in the store, the
 * replay check — over {@link benchResource}'s store, which never reports a replay, so the same
 * signed request verifies every time. Baseline: the verify-request baseline. The same pair with
 * {@link IN_FLIGHT} calls in flight against the concurrent baseline goes into `details.concurrent`.
 */
export async function resourceCoreVerify(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const request = new Request(URL_STRING, { headers: fx.headers })
  /** One resource and its checked `authenticate` call. */
  const side = async (syncCrypto: boolean) => {
    const r = benchResource(fx, syncCrypto)
    let calls = 0
    const once = () => {
      calls++
      return r.resource.authenticate(request, AGENT_ACCESS, EMPTY_BODY)
    }
    const first = await once()
    if (!first.ok || first.access.agent?.id !== fx.agent.id) throw new Error('bench: resource-core-verify did not authenticate the agent')
    const f0 = r.jwks.fetchCount
    // Every call reached the replay check, which comes after the signature verified.
    const check = () => {
      if (r.jwks.fetchCount !== f0 || r.store.adds !== calls) throw new Error('bench: resource-core-verify left the cached path or failed a verification')
    }
    return { once, check }
  }
  const sync = await side(true)
  const c = await compare(sequentialSide(sync.once), rawVerify(fx), o)
  sync.check()
  const async = await side(false)
  const conc = await compare(concurrentSide(async.once, IN_FLIGHT), rawVerifyConcurrent(fx), concurrentOptions(o))
  async.check()
  return figureFrom('resource-core-verify', 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.8 },
    'resource.authenticate(Fetch Request of the verify-request GET, built once; {access:"agent"}; empty body), agent token cached, syncCrypto:true (like the raw sync baseline), revocation lookup and replay check ' +
      `over a store whose add always answers "fresh" (no-op replay cache: the same signed request verifies every time), one at a time; ${RAW_VERIFY_NOTE}`,
    { baseBytes: fx.base.byteLength, concurrent: { inFlight: IN_FLIGHT, value: sig3(conc.value), baseline: sig3(conc.baseline), ratio: sig3(conc.ratio), note: `core defaults (async crypto): ${IN_FLIGHT} authenticate calls in flight vs callback crypto.verify with ${IN_FLIGHT} in flight` } })
}

const BOOKINGS_SCOPE = 'bookings:write'
const AUTH_BOOKINGS = { access: 'auth', scope: BOOKINGS_SCOPE } as const
const BOOKINGS_URL = `${AUDIENCE}/bookings`
const BOOKING = { flight: 'QF1', date: '2026-12-01', passengers: [{ name: 'A. Traveller' }], fare: 'flex' }

/**
 * The R3 declarations of `resource-r3-enforce`: a small booking API, `createBooking` (`POST
 * /bookings`) matched by method and path template after two other operations, with a `perCall`
 * decider that serves every call (refundable and cheap: `undefined`) and counts its calls.
 */
function bookingOperations(): { r3: R3Options; decided: () => number } {
  let decided = 0
  const operations: OperationDeclaration[] = [
    { operationId: 'listBookings', method: 'GET', path: '/bookings', scope: 'bookings:read', display: { summary: 'See your bookings' } },
    { operationId: 'getBooking', method: 'GET', path: '/bookings/{id}', scope: 'bookings:read', display: { summary: 'See one booking' } },
    {
      operationId: 'createBooking', method: 'POST', path: '/bookings', scope: BOOKINGS_SCOPE, display: { summary: 'Book flights' },
      perCall: () => {
        decided++
        return undefined
      },
    },
    { operationId: 'cancelBooking', method: 'DELETE', path: '/bookings/{id}', scope: BOOKINGS_SCOPE, display: { summary: 'Cancel a booking' } },
  ]
  return { r3: { operations }, decided: () => decided }
}

/**
 * `resource-r3-enforce`: `resource.authenticate(POST /bookings, {access:'auth', scope:
 * 'bookings:write'}, body)` on a resource declaring `r3.operations`, presenting an auth token
 * whose `r3_granted` lists `createBooking` (`r3_uri`/`r3_s256` of the scope's real class
 * document): operation matching, JSON body parse, R3 claim checks and the `perCall` decider, all
 * served. Baseline: the same call on the same resource without `r3`, with the same auth token
 * minus the R3 claims. Both with syncCrypto:true, one at a time, over {@link benchResource}'s store.
 */
export async function resourceR3Enforce(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const { r3, decided } = bookingOperations()
  const doc = classDocument(r3.operations, R3_VOCABULARY.openapi, BOOKINGS_SCOPE)
  if (doc === undefined) throw new Error('bench: no class document for the bookings scope')
  const { s256 } = await serializeR3(doc)
  const r3Claims = { r3_uri: `${AUDIENCE}${R3_PATHS.document}${s256}`, r3_s256: s256, r3_granted: { vocabulary: R3_VOCABULARY.openapi, operations: [{ operationId: 'createBooking' }] } }
  /** One resource and its checked `authenticate` call. */
  const side = async (name: string, call: SignedCall, options?: R3Options) => {
    const r = benchResource(fx, true, options)
    let calls = 0
    const once = () => {
      calls++
      return r.resource.authenticate(call.request, AUTH_BOOKINGS, call.body)
    }
    const first = await once()
    if (!first.ok || first.access.token.type !== 'aa-auth+jwt' || first.access.person?.sub !== 'user-1' || !first.access.scopes.has(BOOKINGS_SCOPE)) {
      throw new Error(`bench: resource-r3-enforce ${name} side was not served${first.ok ? '' : ` (${first.response.status} ${await first.response.text()})`}`)
    }
    const f0 = r.jwks.fetchCount
    // Every call reached the replay check (after the signature verified); on the R3 side every
    // call also reached the decider, which comes after the R3 claim checks.
    const check = () => {
      if (r.jwks.fetchCount !== f0 || r.store.adds !== calls || (options !== undefined && decided() !== calls)) {
        throw new Error(`bench: resource-r3-enforce ${name} side left the cached path or failed a call`)
      }
    }
    return { once, check }
  }
  const withR3 = await side('r3', await authTokenCall(fx, BOOKINGS_URL, BOOKING, BOOKINGS_SCOPE, r3Claims), r3)
  const plain = await side('plain', await authTokenCall(fx, BOOKINGS_URL, BOOKING, BOOKINGS_SCOPE))
  const c = await compare(sequentialSide(withR3.once), sequentialSide(plain.once), o)
  withR3.check()
  plain.check()
  return figureFrom('resource-r3-enforce', 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.9 },
    'resource.authenticate(Fetch POST /bookings with a JSON body, Content-Digest covered; {access:"auth", scope:"bookings:write"}) presenting an auth token with r3_granted [createBooking], ' +
      'on a resource with r3.operations (4 declared; createBooking has a perCall decider returning undefined: served), syncCrypto:true, one at a time; ' +
      'baseline the same call on the same resource without r3, auth token without R3 claims', { bodyBytes: new TextEncoder().encode(JSON.stringify(BOOKING)).byteLength })
}

const RAW_SIGN_NOTE = 'baseline crypto.sign(null, base, private KeyObject) on the same base bytes'

/**
 * Compares `once` (one signing of the fixture's GET, one at a time) with the raw Ed25519 sign of
 * the fixture's signature base: the shared core of the signing figures. `once` is called first to
 * check that it yields the fixture's exact `Signature` (same base bytes, same key, same clock).
 */
async function signingFigure(fx: Fixture, o: CompareOptions, name: string, once: () => Promise<{ readonly headers: Headers }>, note: string): Promise<Figure> {
  if ((await once()).headers.get('signature') !== fx.headers.get('signature')) throw new Error(`bench: ${name} output differs from the fixture signature`)
  const raw = syncSide(() => crypto.sign(null, fx.base, fx.privateKey))
  const c = await compare(sequentialSide(once), raw, o)
  return figureFrom(name, 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.7 }, `${note}; ${RAW_SIGN_NOTE}`, { baseBytes: fx.base.byteLength })
}

/** `sign-request`: `signRequest` of the fixture's GET with a fresh `Headers`, one at a time. */
export async function signRequestFigure(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const once = () => signRequest({ method: 'GET', url: URL_STRING, headers: new Headers({ accept: 'application/json' }) }, { signer: fx.agent.signer, signatureKey: fx.signatureKey, now: fx.now })
  return signingFigure(fx, o, 'sign-request', once, 'signRequest(GET with query, string URL, new Headers, cached agent token, Signer.signSync)')
}

/**
 * `agent-prepare-sign`: `client.prepare(url)` of an agent client built once over a fixed agent
 * token and the fixture's `createSigner` key (no person or auth token held, nothing sent).
 */
export async function agentPrepareSignFigure(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const client = createAgentClient({ credentials: AgentCredentials.fixed(fx.agent.token, fx.agent.signer), now: fx.now, allowInsecureLoopback: false })
  const once = () => client.prepare(URL_STRING)
  if ((await once()).presenting !== 'agent') throw new Error('bench: agent-prepare-sign presented something other than the agent token')
  return signingFigure(fx, o, 'agent-prepare-sign', once, 'agentClient.prepare(GET with query, string URL, no init), fixed agent token, createSigner key')
}
