/**
 * `replay-cache-memory`: N distinct `add(key, expiresAt)` calls into a `MemoryStore` (the
 * resource's default replay cache) with its default bound (100,000), RSS growth after GC, in a
 * fresh child process (see memory-child.ts).
 *
 * Each key is what the verifier hands the store: the unpadded base64url of a SHA-256 (43
 * characters; here 32 pseudo-random bytes, which look the same), with the expiry the verifier
 * gives it — the end of the signature window, 61 s ahead — so every entry is still live when the
 * bound is reached and it is the LRU bound, not expiry, that holds the store down. After the
 * reading the child regenerates the same key sequence and asks the store which keys it still
 * holds: exactly the last 100,000 (the store has no size accessor; this is its observable size).
 */

import { fileURLToPath } from 'node:url'
import { MemoryStore } from '../src/resource/index.js'
import type { Figure } from './harness.js'
import { forkReport, isEntry, measureGrowth, memoryFigure, report, xorshift, type Growth } from './memory-child.js'

const BOUND = 100_000
const WINDOW_MS = 61_000
/**
 * The bound of the figure. Live data: 100,000 entries, each a 43-character key string (~64 B on
 * the heap), an entry object `{ value, expiresAt }` (~32 B) whose expiry is a heap number (~16 B)
 * and a slot in the Map's hash table (~24 B, the table sized up to 2× for growth and deletions):
 * about 150–200 B, so 15–20 MB (measured: heapUsed grows by ~18.5 MB). RSS after GC also keeps
 * pages V8 grew to during the fill (25–30 MB over heapUsed here and in token-cache-memory). 64 MB
 * is that plus margin; a store that grew with the number of calls (1,000,000 in full mode, 10×
 * the bound: ~185 MB of entries) would break it.
 */
const LIMIT_MB = 64

interface Report extends Growth {
  readonly n: number
  /** Keys of the sequence the store still holds after the fill. */
  readonly held: number
  /** Index of the first key still held (n - held when exactly the most recent are kept). */
  readonly firstHeld: number
  /** `add` calls answered `false` (a live duplicate): none expected, the keys are distinct. */
  readonly refused: number
  readonly keyChars: number
}

function measureChild(n: number): Report {
  const seed = Date.now() >>> 0
  const key = (fill: (b: Buffer) => Buffer): string => fill(Buffer.allocUnsafe(32)).toString('base64url')
  let refused = 0
  const warm = (): void => {
    const store = new MemoryStore({ maxEntries: 100 })
    const fill = xorshift(seed ^ 0x5bd1e995)
    for (let i = 0; i < 1000; i++) store.add(key(fill), Date.now() + WINDOW_MS)
  }
  const fill = xorshift(seed)
  const put = (store: MemoryStore): void => {
    if (!store.add(key(fill), Date.now() + WINDOW_MS)) refused++
  }
  const { growth, target } = measureGrowth(n, () => new MemoryStore(), put, warm)
  // The same sequence again: which keys are still there.
  const again = xorshift(seed)
  let held = 0
  let firstHeld = -1
  for (let i = 0; i < n; i++) {
    if (!target.has(key(again))) continue
    held++
    if (firstHeld < 0) firstHeld = i
  }
  return { ...growth, n, held, firstHeld, refused, keyChars: key(xorshift()).length }
}

export async function runReplayCacheMemory(n: number): Promise<Figure> {
  const r = await forkReport<Report>(fileURLToPath(import.meta.url), [String(n)], 'replay-cache-memory')
  const expected = Math.min(n, BOUND)
  if (r.refused !== 0 || r.held !== expected || r.firstHeld !== n - expected) {
    throw new Error(`replay-cache-memory: the store holds ${r.held} keys from #${r.firstHeld} (${r.refused} refused); expected the last ${expected}`)
  }
  return memoryFigure('replay-cache-memory', r, LIMIT_MB, false,
    `from ${n.toLocaleString('en')} distinct add(key, now + 61 s) calls (${r.keyChars}-char base64url keys, as the verifier's hashed replay keys) into MemoryStore with its default bound (100,000); ` +
      `afterwards it holds exactly the last ${r.held.toLocaleString('en')} keys`,
    { entries: n, storeSize: r.held, bound: BOUND })
}

if (isEntry(import.meta.url)) report(measureChild(Number(process.argv[2] ?? 100_000)))
