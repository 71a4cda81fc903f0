/**
 * `cli-cold-start`: how long the built `aauth` command takes from process spawn until a loopback
 * resource receives its first signed request — `node dist/src/cli/main.js fetch --token T --key
 * FILE URL`, which loads the CLI, reads the key file, signs and sends — against the floor of any
 * Node CLI: spawning bare `node -e ""` until it exits.
 *
 * Details carry the same measurement with `--provider` (one signed `POST /token` to a loopback
 * agent provider and a fresh ephemeral key first: two-key refresh) and `aauth --version` (start to
 * exit: the dispatcher alone).
 *
 * The CLI runs from `dist/`: `npm run build` is run first when `dist/src/cli/main.js` is missing or
 * older than any file under `src/`.
 */

import { createAdaptorServer } from '@hono/node-server'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAgentProvider, enroll, KeyRing, saveKeyFile, type AgentProvider } from '../src/agent/index.js'
import { generateKeyPair, jwkThumbprint } from '../src/protocol/index.js'
import { log, median, quantile, sig3, type Figure } from './harness.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLI = join(ROOT, 'dist/src/cli/main.js')

/** Newest modification time (ms) of the files under `dir`. */
function newest(dir: string): number {
  let t = 0
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) t = Math.max(t, statSync(join(f.parentPath, f.name)).mtimeMs)
  }
  return t
}

/** Builds `dist/` when the CLI is missing or older than the sources. */
function ensureBuilt(): void {
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= newest(join(ROOT, 'src'))) return
  log('  dist/ is missing or older than src/: npm run build (tsc -p tsconfig.build.json)')
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: ['ignore', 2, 2] }) // stdout stays JSON lines
  } catch (e) {
    // tsc emits despite type errors; measure what was emitted, but say so.
    if (!existsSync(CLI)) throw e
    log('  warning: tsc reported errors; measuring the JavaScript it emitted')
  }
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** The loopback resource: notes when each signed request arrives and answers 200. */
function resource(): { server: Server; next: () => Promise<number> } {
  let arrived: ((t: number) => void) | undefined
  const server = createServer((req, res) => {
    const t = performance.now()
    if (req.headers['signature'] === undefined || req.headers['signature-key'] === undefined) {
      res.writeHead(400).end('unsigned')
      return
    }
    arrived?.(t)
    arrived = undefined
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
  })
  return { server, next: () => new Promise<number>((resolve) => (arrived = resolve)) }
}

/** Spawns `node …args` and resolves when it has exited (0 required) with the time of `mark`. */
async function timed(args: readonly string[], env: NodeJS.ProcessEnv, mark?: () => Promise<number>): Promise<number> {
  const arrival = mark?.()
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const exit = await new Promise<{ code: number | null; t: number }>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, t: performance.now() }))
  })
  if (exit.code !== 0) throw new Error(`bench: node ${args.join(' ')} exited ${exit.code}: ${stderr}`)
  if (arrival === undefined) return exit.t - t0
  const t1 = await Promise.race([arrival, Promise.resolve(NaN)])
  if (Number.isNaN(t1)) throw new Error('bench: the CLI exited without its signed request reaching the resource')
  return t1 - t0
}

/**
 * Measures the figure in `rounds` interleaved rounds (the order of the four sides rotates), after
 * two warm-up rounds.
 */
export async function cliColdStartFigure(quick: boolean): Promise<Figure> {
  ensureBuilt()
  const dir = mkdtempSync(join(tmpdir(), 'aauth-bench-cli-'))
  const res = resource()
  let ap: AgentProvider | undefined
  const apServer = createAdaptorServer({ fetch: (req: Request) => ap!.app.fetch(req) }) as Server
  try {
    const origin = await listen(res.server)
    const issuer = await listen(apServer)
    ap = createAgentProvider({ issuer, keys: await KeyRing.create(), allowInsecureLoopback: true })
    const keyFile = join(dir, 'agent.key')
    const durable = await saveKeyFile(keyFile, (await generateKeyPair()).privateJwk)
    await enroll({ provider: issuer, durableKey: durable, code: await ap.createEnrollmentCode({ local: 'bench-bot' }) })
    const publicJwk = { kty: durable.kty, alg: durable.alg, crv: durable.crv!, x: durable.x! }
    if ((await jwkThumbprint(publicJwk)) !== durable.kid) throw new Error('bench: key file thumbprint mismatch')
    const token = await ap.issue({ local: 'bench-bot', cnfJwk: publicJwk })

    const env: NodeJS.ProcessEnv = { ...process.env, AAUTH_DEV_LOOPBACK: '1' }
    for (const k of ['AAUTH_PROVIDER', 'AAUTH_AGENT_KEY', 'AAUTH_AGENT_TOKEN', 'NODE_OPTIONS']) delete env[k]
    const url = `${origin}/first`
    const sides: Record<'node' | 'version' | 'token' | 'provider', () => Promise<number>> = {
      node: () => timed(['-e', ''], env),
      version: () => timed([CLI, '--version'], env),
      token: () => timed([CLI, 'fetch', '--token', token, '--key', keyFile, url], env, res.next),
      provider: () => timed([CLI, 'fetch', '--provider', issuer, '--key', keyFile, url], env, res.next),
    }
    const names = Object.keys(sides) as (keyof typeof sides)[]
    const ms: Record<keyof typeof sides, number[]> = { node: [], version: [], token: [], provider: [] }
    const ratios: number[] = []
    const rounds = quick ? 7 : 21
    for (let r = -2; r < rounds; r++) {
      const got: Partial<Record<keyof typeof sides, number>> = {}
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + Math.max(r, 0)) % names.length]!
        got[name] = await sides[name]()
      }
      if (r < 0) continue // warm-up: file cache, JIT of the bench itself
      for (const n of names) ms[n].push(got[n]!)
      ratios.push(got.token! / got.node!)
    }
    const q = (xs: number[], p: number) => sig3(quantile(xs, p))
    return {
      name: 'cli-cold-start',
      value: sig3(median(ms.token)),
      unit: 'ms',
      baseline: sig3(median(ms.node)),
      ratio: sig3(median(ratios)),
      target: null,
      pass: null,
      note: 'spawn of `node dist/src/cli/main.js fetch --token T --key FILE URL` until the loopback resource receives the signed request; baseline spawn of `node -e ""` until exit. Lower is better; ratio = median of per-round ratios',
      details: {
        ratioP25: q(ratios, 0.25),
        ratioP75: q(ratios, 0.75),
        rounds,
        tokenP25: q(ms.token, 0.25),
        tokenP75: q(ms.token, 0.75),
        providerMs: q(ms.provider, 0.5),
        providerNote: 'fetch --provider: POST /token to a loopback agent provider (two-key: fresh ephemeral key) before the request',
        versionMs: q(ms.version, 0.5),
        versionNote: 'aauth --version: spawn to exit (the dispatcher alone)',
      },
    }
  } finally {
    await close(res.server)
    await close(apServer)
    rmSync(dir, { recursive: true, force: true })
  }
}
