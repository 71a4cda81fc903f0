/**
 * The throughput figures: request verification (cached token, sync and concurrent async crypto),
 * cold verification (token not cached), request signing, and the agent client's prepare-and-sign —
 * each against raw `node:crypto` on the same bytes, in the same run.
 */

import crypto from 'node:crypto'
import { AgentCredentials, createAgentClient } from '../src/agent/index.js'
import { createRequestVerifier, messageView, signRequest, type RequestVerifier } from '../src/protocol/index.js'
import { AUDIENCE, URL_STRING, type Fixture } from './fixtures.js'
import { compare, concurrentSide, figureFrom, sequentialSide, syncSide, type CompareOptions, type Figure } from './harness.js'

export const IN_FLIGHT = 64

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
  const raw = syncSide(() => crypto.verify(null, fx.base, fx.publicKey, fx.signature))
  const c = await compare(ours, raw, o)
  if (fetches() !== f0 || v.tokenCache.size !== 1) throw new Error('bench: verify-request left the cached path')
  return figureFrom('verify-request', 'ops/s', c, { on: 'ratio', op: '>=', limit: 0.8 },
    'verifier.verify(messageView(GET with Fetch Headers)), agent token cached, syncCrypto:true, one at a time; baseline crypto.verify(null, base, KeyObject, sig) on the same base bytes', { baseBytes: fx.base.byteLength })
}

export async function verifyRequestConcurrent(fx: Fixture, o: CompareOptions): Promise<Figure> {
  const { v, fetches } = await warmVerifier(fx, false)
  const f0 = fetches()
  const ours = concurrentSide(() => v.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers })), IN_FLIGHT)
  const raw = concurrentSide(
    () => new Promise<boolean>((resolve, reject) => crypto.verify(null, fx.base, fx.publicKey, fx.signature, (err, ok) => (err === null ? resolve(ok) : reject(err)))),
    IN_FLIGHT,
  )
  // Longer slices: each one ramps up to and drains from 64 in flight.
  const c = await compare(ours, raw, { ...o, roundMs: Math.round(o.roundMs * 1.5), rounds: Math.max(5, Math.round((o.rounds * 2) / 3)) | 1 })
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
  const raw = syncSide(() => crypto.verify(null, fx.base, fx.publicKey, fx.signature))
  const c = await compare(ours, raw, o)
  if (jwks.fetchCount !== f0) throw new Error('bench: verify-request-cold refetched the JWKS')
  return figureFrom('verify-request-cold', 'ops/s', c, null,
    'token cache cleared before every call: agent-token JWS verification (jose compactVerify), claim checks, cnf.jwk import and thumbprint, then the request signature; issuer JWKS cached. Baseline one raw crypto.verify; two raw verifies would give 0.5', { baseBytes: fx.base.byteLength })
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
