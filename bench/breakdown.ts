/**
 * `--breakdown`: where the time goes on the hot paths, step by step, measured in situ.
 *
 * Each path is replayed with the same exported functions, in the same order as the library code
 * (`verifyRequestSignature` for a cached agent token; `resource.authenticate` around it;
 * `signRequest` for a GET), with a `performance.now()` lap after every step. Timing inside the
 * real sequence (rather than each step alone in a hot loop) keeps the cache and GC effects the
 * real path pays. The replay's total is shown next to the real call's, so a drift between the
 * replay and `src/` is visible; related calls (what-ifs) can be timed beside a path.
 *
 * Informational: printed on stderr and stored under `breakdown` in `.bench/results.json`.
 */

import crypto from 'node:crypto'
import { revocationKey } from '../src/resource/index.js'
import {
  components,
  createRequestVerifier,
  createSignatureBase,
  interpretSignatureKeyMember,
  messageView,
  parseSignature,
  parseSignatureInput,
  parseSignatureKey,
  profileComponents,
  requiredComponentsFor,
  serializeSignatureKey,
  serializeSignatureParams,
  signatureParamsMap,
  signRequest,
  sha256Base64urlFast,
  verifySignatureBytes,
  type JwtMember,
  type MessageView,
  type ReplayCache,
  type RequestVerifier,
} from '../src/protocol/index.js'
import { AUDIENCE, benchResource, URL_STRING, type Fixture } from './fixtures.js'
import { rawVerifyOnce } from './figures.js'
import { getGc, log, median, sig3 } from './harness.js'

export interface Breakdown {
  readonly path: string
  /** µs per call of the real library call, of the replay, and of the raw crypto baseline. */
  readonly realUs: number
  readonly replayUs: number
  readonly rawCryptoUs: number
  readonly steps: readonly { readonly step: string; readonly us: number }[]
  /** Related calls timed in the same rounds (what-ifs, costs outside the path), µs per call. */
  readonly variants?: readonly { readonly name: string; readonly us: number }[]
}

/** A related call to time beside a path. */
interface Variant {
  readonly name: string
  readonly run: () => unknown
}

type Laps = (lap: () => void) => Promise<void>

async function profile(path: string, names: readonly string[], replay: Laps, real: () => Promise<unknown>, raw: () => unknown, quick: boolean, variants: readonly Variant[] = []): Promise<Breakdown> {
  const acc = new Float64Array(names.length)
  let k = 0
  let t = 0
  const lap = (): void => {
    const t1 = performance.now()
    acc[k++]! += t1 - t
    t = t1
  }
  const runReplay = async (): Promise<void> => {
    k = 0
    t = performance.now()
    await replay(lap)
  }
  const timeIt = async (f: () => unknown, n: number): Promise<number> => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await f()
    return ((performance.now() - t0) / n) * 1000
  }
  const n = quick ? 1000 : 4000
  const rounds = quick ? 3 : 7
  getGc()?.() // once, before warming up: forced GCs reset type feedback, so none between rounds
  for (let i = 0; i < 2; i++) {
    await timeIt(real, n)
    await timeIt(runReplay, n)
    await timeIt(raw, n)
    for (const v of variants) await timeIt(v.run, n)
  }
  acc.fill(0)
  const reals: number[] = []
  const replays: number[] = []
  const raws: number[] = []
  const others = variants.map((): number[] => [])
  for (let r = 0; r < rounds; r++) {
    reals.push(await timeIt(real, n))
    replays.push(await timeIt(runReplay, n))
    raws.push(await timeIt(raw, n))
    for (let i = 0; i < variants.length; i++) others[i]!.push(await timeIt(variants[i]!.run, n))
  }
  const calls = n * rounds
  const steps = names.map((step, i) => ({ step, us: sig3((acc[i]! / calls) * 1000) }))
  const timed = variants.length === 0 ? {} : { variants: variants.map((v, i) => ({ name: v.name, us: sig3(median(others[i]!)) })) }
  return { path, realUs: sig3(median(reals)), replayUs: sig3(median(replays)), rawCryptoUs: sig3(median(raws)), steps, ...timed }
}

/** What the resource core adds around the verifier's steps (see {@link verifySteps}). */
interface CoreExtras {
  /** The core's `isRevoked`: a store lookup, synchronous for an in-memory store. */
  readonly isRevoked: (iss: string, jti: string) => boolean | Promise<boolean>
  /** The core's replay cache. */
  readonly replay: ReplayCache
}

/**
 * The cached verify path's steps, as `verifyRequestSignature` takes them, with a lap after each:
 * sync crypto and nothing else (the verifier of verify-request), or with the resource core's
 * revocation lookup, async crypto and replay check.
 */
function verifySteps(core: CoreExtras | undefined): { names: string[]; run: (lap: () => void, m: MessageView, verifier: RequestVerifier, fx: Fixture) => Promise<void> } {
  const names = [
    'header reads (Fetch Headers.get ×4)',
    'parseSignatureInput',
    'parseSignature',
    'parseSignatureKey',
    'required components + covered check',
    'created window check',
    'interpretSignatureKeyMember',
    core === undefined ? 'token cache lookup (async resolveKey)' : 'token cache lookup + isRevoked (synchronous store.has)',
    'createSignatureBase',
    'TextEncoder.encode(base)',
    core === undefined ? 'crypto verify (verifySignatureBytes)' : 'crypto verify, async (libuv pool round trip)',
    ...(core === undefined ? [] : ['replay key (one-shot sha256 of tuple + base, base64url) + store.add']),
  ]
  const run = async (lap: () => void, m: MessageView, verifier: RequestVerifier, fx: Fixture): Promise<void> => {
    const si = m.header('signature-input')!
    const s = m.header('signature')!
    const sk = m.header('signature-key')!
    const cl = m.header('content-length') ?? '0'
    lap()
    const inputs = parseSignatureInput(si)
    lap()
    const sigs = parseSignature(s)
    lap()
    const keys = parseSignatureKey(sk)
    lap()
    const input = inputs.get('sig')!
    const required = requiredComponentsFor(m, cl !== '0', {})
    const covered = new Set<string>()
    for (const c of input.components) if (c.params.size === 0) covered.add(c.name)
    for (const r of required) if (!covered.has(r)) throw new Error(`breakdown: ${r} not covered`)
    lap()
    const now = Math.floor(fx.now() / 1000)
    const created = input.rawParams.get('created') as number
    if (now - created > 60 || created - now > 60) throw new Error('breakdown: outside window')
    lap()
    const member = interpretSignatureKeyMember(keys.get('sig')!) as JwtMember
    lap()
    const cached = await (async () => verifier.tokenCache.get(member.jwt))()
    if (cached === undefined) throw new Error('breakdown: token not cached')
    if (core !== undefined) {
      const c = cached.context.claims
      if (core.isRevoked(c.iss, c.jti) === true) throw new Error('breakdown: revoked')
    }
    lap()
    const base = await createSignatureBase(m, input.components, input.rawParams)
    lap()
    const data = new TextEncoder().encode(base)
    lap()
    const ok = await verifySignatureBytes(cached.resolved.key, data, sigs.get('sig')!, core === undefined)
    lap()
    if (!ok) throw new Error('breakdown: signature does not verify')
    if (core !== undefined) {
      const tuple = `${cached.resolved.thumbprint}|${created}|${m.method}|${m.url.host}|${m.url.pathname}|${base}`
      const hashed = sha256Base64urlFast(tuple)
      const key = typeof hashed === 'string' ? hashed : await hashed
      if (core.replay.add(key, (created + 61) * 1000) === false) throw new Error('breakdown: replay refused')
      lap()
    }
  }
  return { names, run }
}

function verifyPath(fx: Fixture, quick: boolean): Promise<Breakdown> {
  const verifier = createRequestVerifier({ audience: AUDIENCE, jwks: fx.jwks(), now: fx.now, syncCrypto: true })
  const steps = verifySteps(undefined)
  const replay: Laps = async (lap) => {
    const m = messageView({ method: 'GET', url: URL_STRING, headers: fx.headers })
    lap()
    await steps.run(lap, m, verifier, fx)
  }
  const real = async (): Promise<unknown> => verifier.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers }))
  return real().then(() =>
    profile('verify-request (cached token, syncCrypto)', ['messageView (new URL + wrapper)', ...steps.names], replay, real, rawVerifyOnce(fx), quick),
  )
}

/**
 * `resource.authenticate` of the resource-core-verify figure, replayed: the core's own steps
 * around the verifier's (body, the signed view of the request, the decision), with the verifier
 * configured as the core configures it. Variants time what an adapter adds (a `Request` per
 * request) and what the core would cost with synchronous crypto.
 */
async function resourceCorePath(fx: Fixture, quick: boolean): Promise<Breakdown> {
  const { resource, store } = benchResource(fx)
  const core: CoreExtras = { isRevoked: (iss, jti) => store.has(revocationKey(iss, jti)), replay: store }
  const configured = (syncCrypto: boolean): RequestVerifier =>
    createRequestVerifier({ audience: AUDIENCE, jwks: fx.jwks(), now: fx.now, replayCache: store, isRevoked: core.isRevoked, syncCrypto })
  const verifier = configured(false)
  const syncVerifier = configured(true)
  const request = new Request(URL_STRING, { headers: fx.headers })
  const access = { access: 'agent' } as const
  const empty = new Uint8Array()
  const authority = new URL(AUDIENCE).host
  const steps = verifySteps(core)
  const replay: Laps = async (lap) => {
    const body = await (async (given: Uint8Array | undefined) => given ?? new Uint8Array())(empty)
    lap()
    const url = new URL(request.url)
    if (url.host !== authority) url.host = authority
    lap()
    const m = messageView({ method: request.method, url, headers: request.headers })
    lap()
    await steps.run(lap, m, verifier, fx)
    const decision = { ok: true, access: { mode: access.access, agentJkt: '', scopes: new Set<string>(), body }, headers: new Headers() }
    await (async () => undefined)() // applyPolicy, no policy
    lap()
    if (!decision.ok) throw new Error('unreachable')
  }
  const real = (): Promise<unknown> => resource.authenticate(request, access, empty)
  const signedView = () => messageView({ method: request.method, url: new URL(request.url), headers: request.headers })
  await Promise.all([real(), verifier.verify(signedView(), empty), syncVerifier.verify(signedView(), empty)])
  const names = ['bodyOf(given) (async function + await)', 'asSigned (request.url + new URL + host check)', 'messageView over the URL', ...steps.names, 'decision (access object, new Headers, applyPolicy await)']
  return profile('resource-core-verify (resource.authenticate, cached token, core defaults)', names, replay, real, rawVerifyOnce(fx), quick, [
    { name: 'new Request(url, {headers}) (per request in an adapter; not in the figure)', run: () => new Request(URL_STRING, { headers: fx.headers }) },
    { name: 'authenticate with a new Request each call', run: () => resource.authenticate(new Request(URL_STRING, { headers: fx.headers }), access, empty) },
    { name: 'verifier as the core configures it (async crypto), on the signed view', run: () => verifier.verify(signedView(), empty) },
    { name: 'the same verifier with syncCrypto: true (what a syncCrypto option would give)', run: () => syncVerifier.verify(signedView(), empty) },
  ])
}

function signPath(fx: Fixture, quick: boolean): Promise<Breakdown> {
  const names = [
    'new URL',
    'new Headers(request.headers)',
    'serializeSignatureKey',
    'Headers.set(signature-key)',
    'profileComponents + components',
    'signatureParamsMap',
    'createSignatureBase (messageView over Headers)',
    'TextEncoder.encode(base)',
    'crypto sign (Signer.signSync)',
    'serializeSignatureParams (Signature-Input)',
    'Headers.set(signature-input)',
    'base64 + Headers.set(signature)',
  ]
  const input = new Headers({ accept: 'application/json' })
  const replay: Laps = async (lap) => {
    const url = new URL(URL_STRING)
    lap()
    const headers = new Headers(input)
    lap()
    const sk = serializeSignatureKey({ sig: fx.signatureKey })
    lap()
    headers.set('signature-key', sk)
    lap()
    const comps = components(profileComponents(url, headers, false))
    lap()
    const params = signatureParamsMap({ created: Math.floor(fx.now() / 1000) })
    lap()
    const base = await createSignatureBase(messageView({ method: 'GET', url, headers }), comps, params)
    lap()
    const data = new TextEncoder().encode(base)
    lap()
    const sig = fx.agent.signer.signSync!(data)
    lap()
    const si = `sig=${serializeSignatureParams(comps, params)}`
    lap()
    headers.set('signature-input', si)
    lap()
    headers.set('signature', `sig=:${Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('base64')}:`)
    lap()
  }
  const real = (): Promise<unknown> => signRequest({ method: 'GET', url: URL_STRING, headers: new Headers(input) }, { signer: fx.agent.signer, signatureKey: fx.signatureKey, now: fx.now })
  return profile('sign-request (GET, cached agent token)', names, replay, real, () => crypto.sign(null, fx.base, fx.privateKey), quick)
}

function print(b: Breakdown): void {
  const stepsSum = b.steps.reduce((a, s) => a + s.us, 0)
  log(`\n${b.path}: real ${b.realUs} µs/call, replay ${b.replayUs} µs (laps sum ${stepsSum.toFixed(1)}), raw crypto alone ${b.rawCryptoUs} µs`)
  for (const s of b.steps) log(`  ${s.step.padEnd(48)} ${s.us.toFixed(2).padStart(8)} µs  ${((100 * s.us) / stepsSum).toFixed(1).padStart(5)}%`)
  if (b.variants !== undefined) log('  timed beside it:')
  for (const v of b.variants ?? []) log(`    ${v.name}: ${v.us} µs/call`)
}

/** Runs the breakdowns, printing them on stderr. */
export async function runBreakdown(fx: Fixture, quick: boolean): Promise<Breakdown[]> {
  const out = [await verifyPath(fx, quick), await resourceCorePath(fx, quick), await signPath(fx, quick)]
  out.forEach(print)
  return out
}
