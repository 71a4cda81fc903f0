/**
 * `--breakdown`: where the time goes on the hot paths, step by step, measured in situ.
 *
 * Each path is replayed with the same exported functions, in the same order as the library code
 * (`verifyRequestSignature` for a cached agent token; `signRequest` for a GET), with a
 * `performance.now()` lap after every step. Timing inside the real sequence (rather than each step
 * alone in a hot loop) keeps the cache and GC effects the real path pays. The replay's total is
 * shown next to the real call's, so a drift between the replay and `src/` is visible.
 *
 * Informational: printed on stderr and stored under `breakdown` in `.bench/results.json`.
 */

import crypto from 'node:crypto'
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
  verifySignatureBytes,
  type JwtMember,
} from '../src/protocol/index.js'
import { AUDIENCE, URL_STRING, type Fixture } from './fixtures.js'
import { getGc, log, median, sig3 } from './harness.js'

export interface Breakdown {
  readonly path: string
  /** µs per call of the real library call, of the replay, and of the raw crypto baseline. */
  readonly realUs: number
  readonly replayUs: number
  readonly rawCryptoUs: number
  readonly steps: readonly { readonly step: string; readonly us: number }[]
}

type Laps = (lap: () => void) => Promise<void>

async function profile(path: string, names: readonly string[], replay: Laps, real: () => Promise<unknown>, raw: () => unknown, quick: boolean): Promise<Breakdown> {
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
  }
  acc.fill(0)
  const reals: number[] = []
  const replays: number[] = []
  const raws: number[] = []
  for (let r = 0; r < rounds; r++) {
    reals.push(await timeIt(real, n))
    replays.push(await timeIt(runReplay, n))
    raws.push(await timeIt(raw, n))
  }
  const calls = n * rounds
  const steps = names.map((step, i) => ({ step, us: sig3((acc[i]! / calls) * 1000) }))
  return { path, realUs: sig3(median(reals)), replayUs: sig3(median(replays)), rawCryptoUs: sig3(median(raws)), steps }
}

function verifyPath(fx: Fixture, quick: boolean): Promise<Breakdown> {
  const verifier = createRequestVerifier({ audience: AUDIENCE, jwks: fx.jwks(), now: fx.now, syncCrypto: true })
  const names = [
    'messageView (new URL + wrapper)',
    'header reads (Fetch Headers.get ×4)',
    'parseSignatureInput',
    'parseSignature',
    'parseSignatureKey',
    'required components + covered check',
    'created window check',
    'interpretSignatureKeyMember',
    'token cache lookup (async resolveKey)',
    'createSignatureBase',
    'TextEncoder.encode(base)',
    'crypto verify (verifySignatureBytes)',
  ]
  const replay: Laps = async (lap) => {
    const m = messageView({ method: 'GET', url: URL_STRING, headers: fx.headers })
    lap()
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
    lap()
    const base = await createSignatureBase(m, input.components, input.rawParams)
    lap()
    const data = new TextEncoder().encode(base)
    lap()
    const ok = await verifySignatureBytes(cached.resolved.key, data, sigs.get('sig')!, true)
    lap()
    if (!ok) throw new Error('breakdown: signature does not verify')
  }
  const real = async (): Promise<unknown> => verifier.verify(messageView({ method: 'GET', url: URL_STRING, headers: fx.headers }))
  return real().then(() =>
    profile('verify-request (cached token, syncCrypto)', names, replay, real, () => crypto.verify(null, fx.base, fx.publicKey, fx.signature), quick),
  )
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
}

/** Runs both breakdowns, printing them on stderr. */
export async function runBreakdown(fx: Fixture, quick: boolean): Promise<Breakdown[]> {
  const out = [await verifyPath(fx, quick), await signPath(fx, quick)]
  out.forEach(print)
  return out
}
