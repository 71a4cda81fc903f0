/**
 * Measurement core of the benchmark: interleaved candidate/baseline rounds, medians, and output.
 *
 * The machine is small (2 cores) and shared, so absolute ops/s drift by tens of percent between
 * runs. Every figure is therefore a ratio against a baseline measured in the same process, in
 * alternating rounds (A B, B A, A B, …), and the reported ratio is the median of the per-round
 * paired ratios. `value` and `baseline` are the medians of each side's rounds, so `ratio` is close
 * to, but not exactly, `value / baseline`.
 */

import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'

/** One benchmark figure, printed as one JSON line on stdout. */
export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline: number
  readonly ratio: number
  /** Human-readable target, e.g. `ratio >= 0.8`; `null` for informational figures. */
  readonly target: string | null
  /** Whether the target is met; `null` for informational figures. */
  readonly pass: boolean | null
  readonly note?: string
  readonly details?: Readonly<Record<string, unknown>>
}

/** A target on the ratio or on the value. */
export interface Target {
  readonly on: 'ratio' | 'value'
  readonly op: '>=' | '<'
  readonly limit: number
}

export function targetString(t: Target | null, unit: string): string | null {
  if (t === null) return null
  return t.on === 'ratio' ? `ratio ${t.op} ${t.limit}` : `value ${t.op} ${t.limit} ${unit}`
}

export function meets(t: Target | null, value: number, ratio: number): boolean | null {
  if (t === null) return null
  const x = t.on === 'ratio' ? ratio : value
  return t.op === '>=' ? x >= t.limit : x < t.limit
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Rounds to 3 significant digits (keeps the JSON lines short and readable). */
export function sig3(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x
  const d = Math.ceil(Math.log10(Math.abs(x)))
  const f = 10 ** (3 - d)
  return Math.round(x * f) / f
}

let gcFn: (() => void) | null | undefined
/**
 * `global.gc` when the process runs with `--expose-gc`; otherwise the flag is switched on at run
 * time and `gc` is taken from a fresh context (works on Node 20). `null` when neither works.
 */
export function getGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return (gcFn = g)
  try {
    setFlagsFromString('--expose-gc')
    const f = runInNewContext('gc') as unknown
    gcFn = typeof f === 'function' ? (f as () => void) : null
  } catch {
    gcFn = null
  }
  return gcFn
}

/** Something whose throughput can be measured for a given wall time; resolves to ops/s. */
export interface Side {
  run(durationMs: number): Promise<number>
}

/** A synchronous operation, called in batches between clock reads. */
export function syncSide(fn: () => unknown, batch = 32): Side {
  return {
    async run(ms) {
      let n = 0
      const t0 = performance.now()
      let t = t0
      while ((t = performance.now()) - t0 < ms) {
        for (let i = 0; i < batch; i++) fn()
        n += batch
      }
      return n / ((t - t0) / 1000)
    },
  }
}

/** An asynchronous operation awaited one at a time (one request in flight). */
export function sequentialSide(fn: () => Promise<unknown>, batch = 32): Side {
  return {
    async run(ms) {
      let n = 0
      const t0 = performance.now()
      let t = t0
      while ((t = performance.now()) - t0 < ms) {
        for (let i = 0; i < batch; i++) await fn()
        n += batch
      }
      return n / ((t - t0) / 1000)
    },
  }
}

/** An asynchronous operation with `inFlight` calls outstanding at all times until the deadline. */
export function concurrentSide(fn: () => Promise<unknown>, inFlight: number): Side {
  return {
    async run(ms) {
      let n = 0
      const t0 = performance.now()
      const deadline = t0 + ms
      const worker = async (): Promise<void> => {
        while (performance.now() < deadline) {
          await fn()
          n++
        }
      }
      await Promise.all(Array.from({ length: inFlight }, worker))
      return n / ((performance.now() - t0) / 1000)
    },
  }
}

export interface CompareOptions {
  readonly rounds: number
  readonly roundMs: number
  readonly warmupMs: number
}

export interface Comparison {
  /** Median candidate ops/s. */
  readonly value: number
  /** Median baseline ops/s. */
  readonly baseline: number
  /** Median of per-round candidate/baseline ratios. */
  readonly ratio: number
  readonly ratioMin: number
  readonly ratioMax: number
  readonly rounds: number
}

/**
 * Warms both sides up, then runs `rounds` interleaved rounds, alternating which side goes first,
 * with a GC (when available) before every measured run so neither side pays the other's garbage.
 */
export async function compare(candidate: Side, baseline: Side, o: CompareOptions): Promise<Comparison> {
  const gc = getGc()
  for (let i = 0; i < 2; i++) {
    await candidate.run(o.warmupMs / 4)
    await baseline.run(o.warmupMs / 4)
  }
  const cs: number[] = []
  const bs: number[] = []
  const rs: number[] = []
  for (let r = 0; r < o.rounds; r++) {
    let c: number
    let b: number
    if (r % 2 === 0) {
      gc?.()
      c = await candidate.run(o.roundMs)
      gc?.()
      b = await baseline.run(o.roundMs)
    } else {
      gc?.()
      b = await baseline.run(o.roundMs)
      gc?.()
      c = await candidate.run(o.roundMs)
    }
    cs.push(c)
    bs.push(b)
    rs.push(c / b)
  }
  return { value: median(cs), baseline: median(bs), ratio: median(rs), ratioMin: Math.min(...rs), ratioMax: Math.max(...rs), rounds: o.rounds }
}

/** Builds a figure from a comparison. */
export function figureFrom(name: string, unit: string, c: Comparison, target: Target | null, note: string, details: Record<string, unknown> = {}): Figure {
  return {
    name,
    value: sig3(c.value),
    unit,
    baseline: sig3(c.baseline),
    ratio: sig3(c.ratio),
    target: targetString(target, unit),
    pass: meets(target, c.value, c.ratio),
    note,
    details: { ratioMin: sig3(c.ratioMin), ratioMax: sig3(c.ratioMax), rounds: c.rounds, ...details },
  }
}

/** The aligned, human-readable table (for stderr). */
export function table(figures: readonly Figure[]): string {
  const rows = [
    ['figure', 'value', 'unit', 'baseline', 'ratio', 'spread', 'target', 'result'],
    ...figures.map((f) => {
      const d = f.details ?? {}
      const spread = typeof d['ratioMin'] === 'number' ? `${d['ratioMin']}–${d['ratioMax']}` : ''
      return [f.name, String(f.value), f.unit, String(f.baseline), String(f.ratio), spread, f.target ?? '(info)', f.pass === null ? '' : f.pass ? 'PASS' : 'FAIL']
    }),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const numeric = new Set([1, 3, 4])
  const line = (r: string[]): string => r.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/** Progress and tables go to stderr so stdout stays pure JSON lines. */
export function log(msg: string): void {
  process.stderr.write(msg + '\n')
}
