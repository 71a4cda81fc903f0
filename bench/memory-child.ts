/**
 * The machinery of the memory figures (`token-cache-memory`, `replay-cache-memory`): each pushes N
 * distinct entries through a bounded cache in a fresh child process (`--expose-gc`, clean heap, so
 * the other figures' garbage and code do not blur the RSS reading) and reports the RSS growth
 * after GC; the parent forks the child and turns its report into a figure.
 */

import crypto from 'node:crypto'
import { fork } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { getGc, sig3, type Figure } from './harness.js'

const MB = 1024 * 1024

/** Memory growth around a fill, as a child measures it. */
export interface Growth {
  readonly rssGrowthMB: number
  readonly heapUsedGrowthMB: number
  readonly externalGrowthMB: number
  readonly peakRssGrowthMB: number
  readonly gc: boolean
  /** Duration of the fill loop. */
  readonly seconds: number
}

/**
 * Fast pseudo-random bytes (xorshift128): distinct per entry without the cost of
 * `randomBytes`/hashing in the fill loop, so 1M entries fit the time budget. The same `seed`
 * gives the same sequence (a child can regenerate its keys to check what the cache kept).
 */
export function xorshift(seed: number = crypto.randomBytes(4).readUInt32LE()): (buf: Buffer) => Buffer {
  let s0 = seed | 1
  let s1 = 0x9e3779b9
  let s2 = 0x243f6a88
  let s3 = 0xb7e15162
  return (buf) => {
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
}

/** Reachable from the module until the process ends, so V8 cannot collect it before the reading. */
let retained: unknown

/**
 * Runs `warm` (the code paths and their one-off structures, before the first reading), then
 * measures the memory growth of `put(target, i)` for `i` in `[0, n)` into `create()`'s target.
 */
export function measureGrowth<T>(n: number, create: () => T, put: (target: T, i: number) => void, warm: () => void): { growth: Growth; target: T } {
  const gc = getGc()
  const collect = (): void => {
    for (let i = 0; i < 3; i++) gc?.()
  }
  warm()
  collect()
  const m0 = process.memoryUsage()
  const t0 = performance.now()
  const target = create()
  retained = target
  let peak = m0.rss
  for (let i = 0; i < n; i++) {
    put(target, i)
    if ((i & 0x3fff) === 0) peak = Math.max(peak, process.memoryUsage.rss())
  }
  peak = Math.max(peak, process.memoryUsage.rss())
  const seconds = (performance.now() - t0) / 1000
  collect()
  const m1 = process.memoryUsage()
  const growth: Growth = {
    rssGrowthMB: (m1.rss - m0.rss) / MB,
    heapUsedGrowthMB: (m1.heapUsed - m0.heapUsed) / MB,
    externalGrowthMB: (m1.external - m0.external) / MB,
    peakRssGrowthMB: (peak - m0.rss) / MB,
    gc: gc !== null,
    seconds,
  }
  if (retained !== target) throw new Error('unreachable')
  return { growth, target }
}

/** Whether the module at `moduleUrl` is the process's entry point (the child side). */
export function isEntry(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href
}

/** Sends the child's report to the parent (or prints it when run by hand). */
export function report(value: unknown): void {
  if (process.send !== undefined) process.send(value)
  else process.stderr.write(JSON.stringify(value) + '\n')
}

/** Forks `file` with `args` in a fresh `--expose-gc` process and resolves with its report. */
export function forkReport<R>(file: string, args: readonly string[], name: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const child = fork(file, args, { execArgv: [...process.execArgv, '--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    let got: R | undefined
    child.on('message', (m) => (got = m as R))
    child.on('error', reject)
    child.on('exit', (code) => (got !== undefined ? resolve(got) : reject(new Error(`${name} child exited with ${code}`))))
  })
}

/**
 * The figure of a memory measurement: value = RSS growth (MB), ratio = value / `limitMB`, target
 * `value < limitMB` (none when `limitMB` is undefined: informational).
 */
export function memoryFigure(name: string, g: Growth, limitMB: number, informational: boolean, note: string, details: Record<string, unknown>): Figure {
  return {
    name,
    value: sig3(g.rssGrowthMB),
    unit: 'MB',
    baseline: 0,
    ratio: sig3(g.rssGrowthMB / limitMB),
    target: informational ? null : `value < ${limitMB} MB`,
    pass: informational ? null : g.rssGrowthMB < limitMB,
    note: `RSS growth after ${g.gc ? 'GC' : 'NO GC (gc unavailable)'} ${note}; fresh child process; ratio = value / ${limitMB} MB`,
    details: {
      ...details,
      heapUsedGrowthMB: sig3(g.heapUsedGrowthMB),
      externalGrowthMB: sig3(g.externalGrowthMB),
      peakRssGrowthMB: sig3(g.peakRssGrowthMB),
      fillSeconds: sig3(g.seconds),
    },
  }
}
