/**
 * `token-cache-memory`: pushes N distinct agent-token entries through a `VerifiedTokenCache` with
 * its default bound and reports the RSS growth after GC.
 *
 * Each entry is what the verifier stores for a real agent token: a distinct ~650-character
 * compact JWT string (a flat string, as header parsing produces), its claims object (from
 * `JSON.parse` of the payload), the `cnf.jwk`, a thumbprint, and a distinct key kept as its JWK, as the verifier stores a first-seen token (imported only on reuse).
 *
 * Runs in a child process (`--expose-gc`, clean heap) so the other figures' garbage and code do not
 * blur the RSS reading; `runTokenCacheMemory` forks it and turns its report into a figure.
 */

import crypto, { type KeyObject } from 'node:crypto'
import { fork } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { inlineVerifyKey, TOKEN_TYPE, VerifiedTokenCache, type CachedToken, type VerifyKey } from '../src/protocol/index.js'
import { getGc, sig3, type Figure } from './harness.js'

const MB = 1024 * 1024
const LIMIT_MB = 100

interface Report {
  readonly n: number
  readonly cacheSize: number
  readonly tokenChars: number
  readonly rssGrowthMB: number
  readonly heapUsedGrowthMB: number
  readonly externalGrowthMB: number
  readonly peakRssGrowthMB: number
  readonly gc: boolean
  readonly seconds: number
}

const HEADER = Buffer.from(JSON.stringify({ typ: TOKEN_TYPE.agent, alg: 'Ed25519', kid: 'agents-2026-11' })).toString('base64url')

/**
 * Fast pseudo-random bytes (xorshift128, seeded from the OS): distinct per entry without the cost
 * of `randomBytes`/hashing in the fill loop, so 1M entries fit the time budget.
 */
let s0 = crypto.randomBytes(4).readUInt32LE() | 1
let s1 = 0x9e3779b9
let s2 = 0x243f6a88
let s3 = 0xb7e15162
function fill(buf: Buffer): Buffer {
  for (let o = 0; o < buf.length; o += 4) {
    const t = s0 ^ (s0 << 11)
    s0 = s1
    s1 = s2
    s2 = s3
    s3 = (s3 ^ (s3 >>> 19) ^ t ^ (t >>> 8)) >>> 0
    buf.writeUInt32LE(s3, o)
  }
  return buf
}

function entryFor(i: number, nowSec: number, sharedKey: KeyObject | undefined): { token: string; entry: CachedToken } {
  const rnd = fill(Buffer.allocUnsafe(112))
  const x = rnd.toString('base64url', 0, 32)
  const jwk = { kty: 'OKP', crv: 'Ed25519', x, alg: 'Ed25519' }
  const payloadJson = JSON.stringify({
    iss: 'https://agents.example',
    dwk: 'aauth-agent.json',
    sub: `aauth:travel-assistant-${i.toString(36)}@agents.example`,
    ps: 'https://ps.example',
    jti: rnd.toString('base64url', 32, 48),
    iat: nowSec,
    exp: nowSec + 3600,
    cnf: { jwk },
    agent_name: 'Travel assistant',
    agent_version: '2.4.1',
  })
  const sig = rnd.toString('base64url', 48, 112)
  // One flat string, as a header value is (no cons-string of the three parts).
  const token = Buffer.from(`${HEADER}.${Buffer.from(payloadJson).toString('base64url')}.${sig}`, 'latin1').toString('latin1')
  const claims = JSON.parse(payloadJson) as CachedToken['context']['claims'] & { exp: number }
  // As the verifier stores a token it has seen once: the key stays a JWK (inlineVerifyKey) and is
  // imported only if the token comes back, so a flood of single-use tokens pins no native keys.
  const key: VerifyKey = sharedKey !== undefined ? { alg: 'Ed25519', handle: sharedKey } : inlineVerifyKey(jwk, 'Ed25519')!
  const thumbprint = crypto.createHash('sha256').update(x).digest('base64url')
  const context = { scheme: 'jwt', type: TOKEN_TYPE.agent, token, claims } as CachedToken['context']
  return { token, entry: { context, resolved: { jwk: claims.cnf.jwk, alg: 'Ed25519', key, thumbprint, context }, exp: claims.exp } }
}

let liveCache: VerifiedTokenCache | undefined

function measureChild(n: number, shared: boolean): Report {
  const gc = getGc()
  const collect = (): void => {
    for (let i = 0; i < 3; i++) gc?.()
  }
  const nowSec = Math.floor(Date.now() / 1000)
  const sharedKey = shared ? crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: crypto.randomBytes(32).toString('base64url') }, format: 'jwk' }) : undefined
  // Warm up the code paths (and allocate their one-off structures) before the first reading.
  const warm = new VerifiedTokenCache(100)
  for (let i = 0; i < 1000; i++) {
    const { token, entry } = entryFor(-2 - i, nowSec, sharedKey)
    warm.set(token, entry)
  }
  warm.clear()
  collect()
  const m0 = process.memoryUsage()
  const t0 = performance.now()
  const cache = new VerifiedTokenCache()
  // Reachable from the module until the process ends, so V8 cannot collect it before the reading.
  liveCache = cache
  let peak = m0.rss
  let tokenChars = 0
  for (let i = 0; i < n; i++) {
    const { token, entry } = entryFor(i, nowSec, sharedKey)
    cache.set(token, entry)
    tokenChars += token.length
    if ((i & 0x3fff) === 0) peak = Math.max(peak, process.memoryUsage.rss())
  }
  peak = Math.max(peak, process.memoryUsage.rss())
  const seconds = (performance.now() - t0) / 1000
  collect()
  const m1 = process.memoryUsage()
  const report: Report = {
    n,
    cacheSize: cache.size,
    tokenChars: Math.round(tokenChars / n),
    rssGrowthMB: (m1.rss - m0.rss) / MB,
    heapUsedGrowthMB: (m1.heapUsed - m0.heapUsed) / MB,
    externalGrowthMB: (m1.external - m0.external) / MB,
    peakRssGrowthMB: (peak - m0.rss) / MB,
    gc: gc !== null,
    seconds,
  }
  return report
}

async function forkChild(n: number, shared: boolean): Promise<Report> {
  const file = fileURLToPath(import.meta.url)
  return new Promise<Report>((resolve, reject) => {
    const child = fork(file, [String(n), shared ? 'shared' : 'distinct'], { execArgv: [...process.execArgv, '--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    let got: Report | undefined
    child.on('message', (m) => (got = m as Report))
    child.on('error', reject)
    child.on('exit', (code) => (got !== undefined ? resolve(got) : reject(new Error(`token-cache-memory child exited with ${code}`))))
  })
}

/**
 * Forks the measurement into a fresh `--expose-gc` process and returns the figure. `shared`: one
 * KeyObject for all entries (informational variant separating the KeyObjects' native memory).
 */
export async function runTokenCacheMemory(n: number, shared = false): Promise<Figure> {
  const report = await forkChild(n, shared)
  if (report.cacheSize !== 10_000) throw new Error(`token-cache-memory: cache holds ${report.cacheSize} entries, expected the default bound 10,000`)
  const target = shared ? null : `value < ${LIMIT_MB} MB`
  return {
    name: shared ? 'token-cache-memory-shared-key' : 'token-cache-memory',
    value: sig3(report.rssGrowthMB),
    unit: 'MB',
    baseline: 0,
    ratio: sig3(report.rssGrowthMB / LIMIT_MB),
    target,
    pass: shared ? null : report.rssGrowthMB < LIMIT_MB,
    note:
      `RSS growth after ${report.gc ? 'GC' : 'NO GC (gc unavailable)'} from pushing ${n.toLocaleString('en')} distinct entries (~${report.tokenChars}-char tokens, JSON-parsed claims, ` +
      (shared ? 'ONE shared KeyObject for all entries (diagnostic: isolates the KeyObjects\' native memory)' : 'a distinct key each, kept as JWK as the verifier does for first-seen tokens') +
      ') through VerifiedTokenCache with its default bound (10,000); fresh child process; ratio = value / 100 MB',
    details: {
      entries: n,
      cacheSize: report.cacheSize,
      heapUsedGrowthMB: sig3(report.heapUsedGrowthMB),
      externalGrowthMB: sig3(report.externalGrowthMB),
      peakRssGrowthMB: sig3(report.peakRssGrowthMB),
      fillSeconds: sig3(report.seconds),
    },
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 100_000)
  const report = measureChild(n, process.argv[3] === 'shared')
  if (liveCache?.size !== report.cacheSize) throw new Error('cache changed after the reading')
  if (process.send !== undefined) process.send(report)
  else process.stderr.write(JSON.stringify(report) + '\n')
}
