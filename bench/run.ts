/**
 * aauth-kit benchmark: `npm run bench` (full, ~6 min) or `npm run bench -- --quick` (~1.5 min).
 * The HTTP figures (hono-http, express-http) take about a minute each in full mode.
 *
 * stdout: one JSON line per figure `{"name","value","unit","baseline","ratio","target",…}` —
 * nothing else, so it can be piped. stderr: progress and an aligned table at the end.
 * All figures are also written to `.bench/results.json`.
 *
 * Options:
 *   --quick              fewer/shorter rounds, 100k tokens / 300k replay keys for the memory
 *                        figures, 2 s HTTP slices
 *   --only=a,b           run only the named figures (also `--only a,b`)
 *                        (cli-cold-start spawns dist/src/cli/main.js and builds dist/ first if stale;
 *                        ps-issuance-postgres starts a throwaway PostgreSQL like the store tests,
 *                        or uses AAUTH_TEST_PG_URL)
 *   --breakdown          also time, in situ, each step of the cached verify path, of the resource
 *                        core's authenticate and of signRequest (stderr + `breakdown` in
 *                        results.json; see breakdown.ts)
 *
 * Environment: BENCH_NO_GC=1 skips the forced GC before each figure.
 *
 * A figure that cannot run (e.g. PostgreSQL cannot be started) prints `{"name","error"}` instead
 * of its figure, and the others still run.
 *
 * Exit code 0 even when a target is missed (the `pass` field says so); non-zero only on errors
 * (including a figure that printed an error line).
 * `npm run bench` itself prints npm's `> aauth-kit@… bench` banner on stdout: use
 * `npm run -s bench` (or `npx tsx bench/run.ts`) when piping the JSON lines.
 */

import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { createFixture } from './fixtures.js'
import { agentPrepareSignFigure, resourceCoreVerify, resourceR3Enforce, signRequestFigure, verifyRequest, verifyRequestCold, verifyRequestConcurrent } from './figures.js'
import { getGc, log, table, type CompareOptions, type Figure } from './harness.js'
import { runTokenCacheMemory } from './token-cache-memory.js'
import { runReplayCacheMemory } from './replay-cache-memory.js'
import { runBreakdown } from './breakdown.js'
import { cliColdStartFigure } from './cli-cold-start.js'
import { httpFigure, httpOptions } from './http-throughput.js'
import { psIssuanceFigure } from './ps-issuance.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const breakdown = args.includes('--breakdown')
// `--only=a,b` or `--only a,b`.
const onlyAt = args.findIndex((a) => a === '--only' || a.startsWith('--only='))
const onlyValue = onlyAt < 0 ? undefined : args[onlyAt] === '--only' ? args[onlyAt + 1] : args[onlyAt]!.slice('--only='.length)
if (onlyAt >= 0 && (onlyValue === undefined || onlyValue === '' || onlyValue.startsWith('--'))) throw new Error('--only needs a comma-separated list of figure names')
const only = onlyValue === undefined ? undefined : new Set(onlyValue.split(','))

const opts: CompareOptions = quick ? { rounds: 15, roundMs: 80, warmupMs: 400 } : { rounds: 41, roundMs: 200, warmupMs: 1500 }
const memoryEntries = quick ? 100_000 : 1_000_000

function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ')
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadStart = loadavg()
  log(`aauth-kit bench (${quick ? 'quick' : 'full'}): node ${process.version}, ${os.availableParallelism()} cores, ` +
    `${opts.rounds} interleaved pairs × ${opts.roundMs} ms per side, gc ${getGc() === null ? 'unavailable' : 'once before each figure'}, load average ${loadavg()}`)
  const fx = await createFixture()
  const plan: [string, () => Promise<Figure>][] = [
    ['verify-request', () => verifyRequest(fx, opts)],
    ['verify-request-concurrent', () => verifyRequestConcurrent(fx, opts)],
    ['sign-request', () => signRequestFigure(fx, opts)],
    ['agent-prepare-sign', () => agentPrepareSignFigure(fx, opts)],
    ['verify-request-cold', () => verifyRequestCold(fx, opts)],
    ['resource-core-verify', () => resourceCoreVerify(fx, opts)],
    // R3 enforcement (operation match, r3_granted, a serving perCall decider) vs the plain auth route.
    ['resource-r3-enforce', () => resourceR3Enforce(fx, opts)],
    // Child-process servers loaded by autocannon over loopback, in whole-second slices.
    ['hono-http', () => httpFigure(fx, 'hono', httpOptions(quick))],
    ['express-http', () => httpFigure(fx, 'express', httpOptions(quick))],
    ['token-cache-memory', () => runTokenCacheMemory(memoryEntries)],
    // Diagnostic variant; 300k in full mode is past the plateau and keeps the run under 3 minutes.
    ['token-cache-memory-shared-key', () => runTokenCacheMemory(Math.min(memoryEntries, 300_000), true)],
    // Quick mode still goes past the store's bound (100,000).
    ['replay-cache-memory', () => runReplayCacheMemory(quick ? 300_000 : 1_000_000)],
    // Spawns the built CLI (runs `npm run build` first when dist/ is older than src/).
    ['cli-cold-start', () => cliColdStartFigure(quick)],
    // The Person Server's /token with a remembered grant, in process, 16 in flight, durable store.
    ['ps-issuance-sqlite', () => psIssuanceFigure(fx, 'sqlite', quick)],
    ['ps-issuance-postgres', () => psIssuanceFigure(fx, 'postgres', quick)],
  ]
  const unknown = [...(only ?? [])].filter((n) => !plan.some(([name]) => name === n))
  if (unknown.length > 0) throw new Error(`unknown figure(s) ${unknown.join(', ')}; known: ${plan.map(([n]) => n).join(', ')}`)
  const figures: Figure[] = []
  const errors: { name: string; error: string }[] = []
  for (const [name, run] of plan) {
    if (only !== undefined && !only.has(name)) continue
    const t0 = performance.now()
    log(`… ${name}`)
    let f: Figure
    try {
      f = await run()
    } catch (err) {
      // One figure that cannot run (a database that does not start…) does not end the bench.
      const line = { name, error: err instanceof Error ? err.message : String(err) }
      errors.push(line)
      process.exitCode = 1
      process.stdout.write(JSON.stringify(line) + '\n')
      log(`  ${name}: ERROR ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
      continue
    }
    figures.push(f)
    process.stdout.write(JSON.stringify(f) + '\n')
    const p99 = f.p99_ms === undefined ? '' : `, p99 ${f.p99_ms} ms`
    log(`  ${name}: ${f.value} ${f.unit}${p99} vs ${f.baseline} → ratio ${f.ratio}${f.pass === null ? '' : f.pass ? ' PASS' : ' FAIL'} (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  }
  const steps = breakdown ? await runBreakdown(fx, quick) : undefined
  const seconds = (performance.now() - started) / 1000
  mkdirSync('.bench', { recursive: true })
  writeFileSync(
    '.bench/results.json',
    JSON.stringify(
      {
        mode: quick ? 'quick' : 'full',
        date: new Date().toISOString(),
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        pairs: opts.rounds,
        sliceMs: opts.roundMs,
        seconds: Math.round(seconds * 10) / 10,
        loadAverageStart: loadStart,
        loadAverageEnd: loadavg(),
        method: "interleaved candidate/baseline slices (alternating order); one GC before each figure's warm-up, none between slices (a forced GC resets type feedback); value/baseline = medians of each side, ratio = median of per-pair ratios",
        figures,
        ...(errors.length === 0 ? {} : { errors }),
        ...(steps === undefined ? {} : { breakdown: steps }),
      },
      null,
      2,
    ) + '\n',
  )
  log('')
  log(table(figures))
  for (const e of errors) log(`${e.name}: ERROR ${e.error}`)
  log(`\n${figures.length} figures in ${seconds.toFixed(1)} s; written to .bench/results.json; load average ${loadStart} → ${loadavg()}`)
  const busy = Math.max(os.loadavg()[0]!, Number(loadStart.split(' ')[0])) > os.availableParallelism() * 0.75
  if (busy) log('warning: the machine was busy with other work during the run; JS-heavy code slows down more than raw crypto under contention (shared cores and caches), so ratios read low — rerun when idle')
}

main().catch((err: unknown) => {
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 1
})
