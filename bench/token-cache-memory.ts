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
import { fileURLToPath } from 'node:url'
import { inlineVerifyKey, TOKEN_TYPE, VerifiedTokenCache, type CachedToken, type VerifyKey } from '../src/protocol/index.js'
import type { Figure } from './harness.js'
import { forkReport, isEntry, measureGrowth, memoryFigure, report, xorshift, type Growth } from './memory-child.js'

const LIMIT_MB = 100

interface Report extends Growth {
  readonly n: number
  readonly cacheSize: number
  readonly tokenChars: number
}

const HEADER = Buffer.from(JSON.stringify({ typ: TOKEN_TYPE.agent, alg: 'Ed25519', kid: 'agents-2026-11' })).toString('base64url')

const fill = xorshift()

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

function measureChild(n: number, shared: boolean): Report {
  const nowSec = Math.floor(Date.now() / 1000)
  const sharedKey = shared ? crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: crypto.randomBytes(32).toString('base64url') }, format: 'jwk' }) : undefined
  let tokenChars = 0
  const warm = (): void => {
    const cache = new VerifiedTokenCache(100)
    for (let i = 0; i < 1000; i++) {
      const { token, entry } = entryFor(-2 - i, nowSec, sharedKey)
      cache.set(token, entry)
    }
  }
  const put = (cache: VerifiedTokenCache, i: number): void => {
    const { token, entry } = entryFor(i, nowSec, sharedKey)
    cache.set(token, entry)
    tokenChars += token.length
  }
  const { growth, target } = measureGrowth(n, () => new VerifiedTokenCache(), put, warm)
  return { ...growth, n, cacheSize: target.size, tokenChars: Math.round(tokenChars / n) }
}

/**
 * Forks the measurement into a fresh `--expose-gc` process and returns the figure. `shared`: one
 * KeyObject for all entries (informational variant separating the KeyObjects' native memory).
 */
export async function runTokenCacheMemory(n: number, shared = false): Promise<Figure> {
  const r = await forkReport<Report>(fileURLToPath(import.meta.url), [String(n), shared ? 'shared' : 'distinct'], 'token-cache-memory')
  if (r.cacheSize !== 10_000) throw new Error(`token-cache-memory: cache holds ${r.cacheSize} entries, expected the default bound 10,000`)
  return memoryFigure(shared ? 'token-cache-memory-shared-key' : 'token-cache-memory', r, LIMIT_MB, shared,
    `from pushing ${n.toLocaleString('en')} distinct entries (~${r.tokenChars}-char tokens, JSON-parsed claims, ` +
      (shared ? 'ONE shared KeyObject for all entries (diagnostic: isolates the KeyObjects\' native memory)' : 'a distinct key each, kept as JWK as the verifier does for first-seen tokens') +
      ') through VerifiedTokenCache with its default bound (10,000)',
    { entries: n, cacheSize: r.cacheSize })
}

if (isEntry(import.meta.url)) report(measureChild(Number(process.argv[2] ?? 100_000), process.argv[3] === 'shared'))
