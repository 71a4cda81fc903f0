/**
 * `hono-http` and `express-http`: requests per second over real HTTP on 127.0.0.1 of an app
 * behind `aauth(resource)` against the same app without it.
 *
 * Each side is its own child process (this file, run with `<framework> <side>`): a Hono app
 * served with `@hono/node-server`, or an Express 5 app on `node:http`, answering
 * `GET /flights?…` with `{"agent": …}` — the verified agent id behind `aauth()`, the same bytes
 * as a constant on the plain side. The AAuth side creates the bench fixture, so it holds the
 * agent provider's JWKS and the fixed clock, and hands the signed request's headers to this
 * process; both sides then receive that one request, with `Host: api.example` (the authority it
 * was signed for), over and over. The resource's store never reports a replay
 * (`noReplayStore`), so the repeated signature verifies every time (verification, revocation
 * lookup and replay check all still run).
 *
 * Load comes from autocannon (32 connections, keep-alive) in this process, in alternating
 * slices (A B, B A, …) via the harness's `compare`: `value`/`baseline` are the medians of each
 * side's req/s, `ratio` the median per-pair ratio. `cpuRatio` here is per second of the SERVER
 * process's CPU time (reported by the child), i.e. the server-side cost ratio, independent of how
 * the two cores are shared with the load generator.
 */

import autocannon from 'autocannon'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import { Hono } from 'hono'
import { fork, type ChildProcess } from 'node:child_process'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { aauth as expressAauth } from '../src/resource/express.js'
import { aauth as honoAauth, type AAuthEnv } from '../src/resource/hono.js'
import { rawVerifyOnce } from './figures.js'
import { benchResource, createFixture, URL_STRING, type Fixture } from './fixtures.js'
import { compare, figureFrom, log, median, sig3, syncSide, type CompareOptions, type Figure, type Rate, type Side } from './harness.js'

export type Framework = 'hono' | 'express'
type Variant = 'aauth' | 'plain'

const CONNECTIONS = 32
const PATH = new URL(URL_STRING).pathname + new URL(URL_STRING).search
const HOST = new URL(URL_STRING).host

/** What a server child reports once listening. */
interface Ready {
  readonly type: 'ready'
  readonly port: number
  readonly agent: string
  /** The signed request's headers (AAuth side only). */
  readonly headers?: Record<string, string>
}

// ---------------------------------------------------------------- child: one server

/** The app of one side, as a `node:http` server (not yet listening). */
async function appServer(framework: Framework, variant: Variant, plainAgent: string): Promise<{ server: Server; agent: string; headers?: Record<string, string> }> {
  const fx = variant === 'aauth' ? await createFixture() : undefined
  const resource = fx === undefined ? undefined : benchResource(fx).resource
  const agent = fx?.agent.id ?? plainAgent
  let headers: Record<string, string> | undefined
  if (fx !== undefined) {
    headers = {}
    fx.headers.forEach((value, name) => (headers![name] = value))
  }
  if (framework === 'hono') {
    const app = new Hono<AAuthEnv>()
    if (resource !== undefined) {
      app.use('*', honoAauth(resource))
      app.get('/flights', (c) => c.json({ agent: c.get('aauth').agent?.id }))
    } else app.get('/flights', (c) => c.json({ agent }))
    return { server: createAdaptorServer({ fetch: app.fetch }) as Server, agent, ...(headers === undefined ? {} : { headers }) }
  }
  const app = express()
  if (resource !== undefined) {
    app.use(expressAauth(resource))
    app.get('/flights', (req, res) => void res.json({ agent: req.aauth?.agent?.id }))
  } else app.get('/flights', (_req, res) => void res.json({ agent }))
  return { server: createServer(app), agent, ...(headers === undefined ? {} : { headers }) }
}

async function serveChild(framework: Framework, variant: Variant, plainAgent: string): Promise<void> {
  const { server, agent, headers } = await appServer(framework, variant, plainAgent)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const ready: Ready = { type: 'ready', port: (server.address() as AddressInfo).port, agent, ...(headers === undefined ? {} : { headers }) }
  process.send!(ready)
  // The parent asks for this process's CPU time around each slice; it ends the child by
  // closing the channel.
  process.on('message', () => process.send!({ type: 'cpu', micros: cpuMicros() }))
  process.on('disconnect', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}

function cpuMicros(): number {
  const u = process.cpuUsage()
  return u.user + u.system
}

// ---------------------------------------------------------------- parent: load and figures

interface ServerChild {
  readonly ready: Ready
  /** The child's process CPU time, µs. */
  cpu(): Promise<number>
  stop(): Promise<void>
}

function startChild(framework: Framework, variant: Variant, agent = ''): Promise<ServerChild> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [framework, variant, agent], { execArgv: process.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const next = <T>(type: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: { type?: string }) => {
        if (m.type !== type) return
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(m as T)
      }
      const onExit = (code: number | null) => reject(new Error(`bench: ${framework} ${variant} server exited (${code}) before answering`))
      child.on('message', onMessage)
      child.once('exit', onExit)
    })
  return next<Ready>('ready').then((ready) => ({
    ready,
    cpu: async () => {
      const answer = next<{ micros: number }>('cpu')
      child.send({ type: 'cpu' })
      return (await answer).micros
    },
    stop: async () => {
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }))
}

/** One request with node:http: status and body. */
function probe(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: PATH, headers: { ...headers, host: HOST } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Per-slice observations of one side, for the details. */
interface Observed {
  readonly p50: number[]
  readonly p99: number[]
  /** Server CPU time per request, µs. */
  readonly cpuUs: number[]
}

/** A side driven by autocannon for whole seconds; its CPU rate is per second of server CPU. */
function httpSide(server: ServerChild, headers: Record<string, string>, seen: Observed): Side {
  return {
    async run(ms): Promise<Rate> {
      const c0 = await server.cpu()
      const r = await autocannon({ url: `http://127.0.0.1:${server.ready.port}${PATH}`, headers: { ...headers, host: HOST }, connections: CONNECTIONS, duration: Math.max(1, Math.round(ms / 1000)) })
      const cpuS = ((await server.cpu()) - c0) / 1e6
      if (r.non2xx !== 0 || r.errors !== 0 || r['2xx'] === 0) throw new Error(`bench: ${r['2xx']} 2xx, ${r.non2xx} other statuses, ${r.errors} errors (${r.timeouts} timeouts) from port ${server.ready.port}`)
      seen.p50.push(r.latency.p50)
      seen.p99.push(r.latency.p99)
      seen.cpuUs.push((cpuS * 1e6) / r['2xx'])
      return { wall: r['2xx'] / r.duration, cpu: r['2xx'] / cpuS }
    },
  }
}

/** Slices of whole seconds: 5 pairs × 5 s (quick: 3 × 2 s), after 2 × 1 s of warm-up per side. */
export function httpOptions(quick: boolean): CompareOptions {
  return quick ? { rounds: 3, roundMs: 2000, warmupMs: 4000 } : { rounds: 5, roundMs: 5000, warmupMs: 4000 }
}

/** µs of one raw Ed25519 verify of the fixture's base, in this process (median of 5 × 200 ms). */
async function rawVerifyUs(fx: Fixture): Promise<number> {
  const side = syncSide(rawVerifyOnce(fx))
  const rates: number[] = []
  for (let i = 0; i < 5; i++) rates.push((await side.run(200)).wall)
  return 1e6 / median(rates)
}

/**
 * Starts both servers of `framework`, checks that they answer the signed request alike (and that
 * the AAuth side refuses it unsigned), measures, and stops them. `details.cpuRatioCeiling` is the
 * server-CPU ratio if the AAuth side cost exactly one raw Ed25519 verify more per request than
 * the plain side and nothing else: what no implementation on this machine can beat while the
 * server is CPU-bound.
 */
export async function httpFigure(fx: Fixture, framework: Framework, o: CompareOptions): Promise<Figure> {
  const signed = await startChild(framework, 'aauth')
  let plain: ServerChild | undefined
  try {
    plain = await startChild(framework, 'plain', signed.ready.agent)
    const headers = signed.ready.headers!
    const [a, p, unsigned] = await Promise.all([probe(signed.ready.port, headers), probe(plain.ready.port, headers), probe(signed.ready.port, {})])
    if (a.status !== 200 || a.body !== p.body || p.status !== 200 || a.body !== JSON.stringify({ agent: signed.ready.agent })) {
      throw new Error(`bench: ${framework} sides answer differently: aauth ${a.status} ${a.body}, plain ${p.status} ${p.body}`)
    }
    if (unsigned.status !== 401) throw new Error(`bench: ${framework} aauth side answered an unsigned request ${unsigned.status}`)
    const seen: Record<Variant, Observed> = { aauth: { p50: [], p99: [], cpuUs: [] }, plain: { p50: [], p99: [], cpuUs: [] } }
    log(`  ${o.rounds} pairs × ${o.roundMs / 1000} s per side, ${CONNECTIONS} connections`)
    const c = await compare(httpSide(signed, headers, seen.aauth), httpSide(plain, headers, seen.plain), o)
    const both = (f: (o: Observed) => number[]) => ({ aauth: sig3(median(f(seen.aauth))), plain: sig3(median(f(seen.plain))) })
    const verifyUs = await rawVerifyUs(fx)
    const plainCpuUs = median(seen.plain.cpuUs)
    const frameworkName = framework === 'hono' ? 'Hono (@hono/node-server)' : 'Express 5 (node:http)'
    return figureFrom(`${framework}-http`, 'req/s', c, framework === 'hono' ? { on: 'ratio', op: '>=', limit: 0.5 } : null,
      `${frameworkName} app with aauth(resource) (agent access, cached token, async crypto, store never reports a replay: one pre-signed GET sent repeatedly) vs the same app without it; ` +
        `each server a child process on 127.0.0.1, load by autocannon ${CONNECTIONS} connections from the bench process, alternating ${o.roundMs / 1000} s slices; cpuRatio per second of server CPU`,
      {
        connections: CONNECTIONS,
        sliceSeconds: o.roundMs / 1000,
        serverCpuUsPerRequest: both((x) => x.cpuUs),
        rawVerifyUs: sig3(verifyUs),
        cpuRatioCeiling: sig3(plainCpuUs / (plainCpuUs + verifyUs)),
        latencyP50Ms: both((x) => x.p50),
        latencyP99Ms: both((x) => x.p99),
      })
  } finally {
    await Promise.all([signed.stop(), plain?.stop()])
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [framework, variant, agent] = process.argv.slice(2) as [Framework, Variant, string | undefined]
  serveChild(framework, variant, agent ?? '').catch((e: unknown) => {
    process.stderr.write(`bench server ${framework} ${variant}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  })
}
