/**
 * Measurement core of the benchmark: interleaved candidate/baseline rounds, medians, and output.
 *
 * The machine is small (2 cores) and shared, so absolute ops/s drift by tens of percent between
 * runs and other processes come and go within a run. Every figure is therefore a ratio against a
 * baseline measured in the same process, in many short alternating slices (A B, B A, A B, …); the
 * reported ratio is the median of the per-pair ratios, so a burst of outside load that hits a few
 * slices does not move it. `value` and `baseline` are the medians of each side's slices, so
 * `ratio` is close to, but not exactly, `value / baseline`.
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
  /** 99th percentile latency per request (ms), for figures that time requests (ps-issuance-*). */
  readonly p99_ms?: number
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

/** Linear-interpolated quantile, `q` in [0, 1]. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5)
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
  if (process.env['BENCH_NO_GC'] === '1') return (gcFn = null)
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

/** Throughput of one slice: per wall-clock second, and per second of process CPU time. */
export interface Rate {
  readonly wall: number
  readonly cpu: number
}

/** Something whose throughput can be measured for a given wall time. */
export interface Side {
  run(durationMs: number): Promise<Rate>
}

/** Runs `body` (which returns its op count) and turns it into a {@link Rate}. */
async function rate(body: () => Promise<number> | number): Promise<Rate> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const n = await body()
  const wallS = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  const cpuS = (c.user + c.system) / 1e6
  return { wall: n / wallS, cpu: cpuS > 0 ? n / cpuS : NaN }
}

/** A synchronous operation, called in batches between clock reads. */
export function syncSide(fn: () => unknown, batch = 32): Side {
  return {
    run: (ms) =>
      rate(() => {
        let n = 0
        const t0 = performance.now()
        while (performance.now() - t0 < ms) {
          for (let i = 0; i < batch; i++) fn()
          n += batch
        }
        return n
      }),
  }
}

/** An asynchronous operation awaited one at a time (one request in flight). */
export function sequentialSide(fn: () => Promise<unknown>, batch = 32): Side {
  return {
    run: (ms) =>
      rate(async () => {
        let n = 0
        const t0 = performance.now()
        while (performance.now() - t0 < ms) {
          for (let i = 0; i < batch; i++) await fn()
          n += batch
        }
        return n
      }),
  }
}

/** An asynchronous operation with `inFlight` calls outstanding at all times until the deadline. */
export function concurrentSide(fn: () => Promise<unknown>, inFlight: number): Side {
  return {
    run: (ms) =>
      rate(async () => {
        let n = 0
        const deadline = performance.now() + ms
        const worker = async (): Promise<void> => {
          while (performance.now() < deadline) {
            await fn()
            n++
          }
        }
        await Promise.all(Array.from({ length: inFlight }, worker))
        return n
      }),
  }
}

export interface CompareOptions {
  /** Number of candidate/baseline pairs. */
  readonly rounds: number
  /** Wall time of each side's slice. */
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
  /** Interquartile range of the per-pair ratios. */
  readonly ratioP25: number
  readonly ratioP75: number
  /**
   * Median per-pair ratio of ops per second of process CPU time (all threads: GC helpers, JIT,
   * libuv pool). Diagnostic: below `ratio` when the candidate also keeps other threads busy.
   */
  readonly cpuRatio: number
  readonly rounds: number
}

/**
 * Warms both sides up, then runs `rounds` interleaved pairs of slices, alternating which side
 * goes first. The baseline allocates next to nothing, so it rarely pays for the candidate's
 * garbage; the candidate pays its own GC, as it would in production.
 */
export async function compare(candidate: Side, baseline: Side, o: CompareOptions): Promise<Comparison> {
  // One collection before the warm-up, none between slices: a forced full GC clears type
  // feedback (inline caches), so the JS-heavy candidate would re-warm after every slice while the
  // raw-crypto baseline barely notices (measured: 0.5 vs 0.82 on the concurrent figure).
  getGc()?.()
  for (let i = 0; i < 2; i++) {
    await candidate.run(o.warmupMs / 4)
    await baseline.run(o.warmupMs / 4)
  }
  const cs: number[] = []
  const bs: number[] = []
  const rs: number[] = []
  const cpu: number[] = []
  for (let r = 0; r < o.rounds; r++) {
    let c: Rate
    let b: Rate
    if (r % 2 === 0) {
      c = await candidate.run(o.roundMs)
      b = await baseline.run(o.roundMs)
    } else {
      b = await baseline.run(o.roundMs)
      c = await candidate.run(o.roundMs)
    }
    cs.push(c.wall)
    bs.push(b.wall)
    rs.push(c.wall / b.wall)
    cpu.push(c.cpu / b.cpu)
  }
  return { value: median(cs), baseline: median(bs), ratio: median(rs), ratioP25: quantile(rs, 0.25), ratioP75: quantile(rs, 0.75), cpuRatio: median(cpu), rounds: o.rounds }
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
    details: { ratioP25: sig3(c.ratioP25), ratioP75: sig3(c.ratioP75), cpuRatio: sig3(c.cpuRatio), pairs: c.rounds, ...details },
  }
}

/** The aligned, human-readable table (for stderr). */
export function table(figures: readonly Figure[]): string {
  const rows = [
    ['figure', 'value', 'unit', 'baseline', 'ratio', 'ratio IQR', 'cpu ratio', 'target', 'result'],
    ...figures.map((f) => {
      const d = f.details ?? {}
      const spread = typeof d['ratioP25'] === 'number' ? `${d['ratioP25']}–${d['ratioP75']}` : ''
      const cpu = typeof d['cpuRatio'] === 'number' ? String(d['cpuRatio']) : ''
      return [f.name, String(f.value), f.unit, String(f.baseline), String(f.ratio), spread, cpu, f.target ?? '(info)', f.pass === null ? '' : f.pass ? 'PASS' : 'FAIL']
    }),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const numeric = new Set([1, 3, 4, 6])
  const line = (r: string[]): string => r.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/** Progress and tables go to stderr so stdout stays pure JSON lines. */
export function log(msg: string): void {
  process.stderr.write(msg + '\n')
}
