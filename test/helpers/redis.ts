/**
 * A real Redis for the store tests, on loopback only. `.ci/run` starts one and sets
 * `AAUTH_TEST_REDIS_URL`; without it (a developer's `npm test`), the first call to
 * {@link redisUrl} starts a throwaway `redis-server` on a free 127.0.0.1 port, with no
 * persistence, for this test process, and {@link stopRedis} (in `afterAll`) stops it. When neither
 * is possible the call throws: the tests fail, they never skip.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { untilReady } from './spawn-ready.js'

const ENV = 'AAUTH_TEST_REDIS_URL'
const BIN = 'redis-server'

interface Spawned {
  readonly child: ChildProcess
  readonly url: string
  readonly dir: string
}

let spawned: Promise<Spawned> | undefined

/** The URL of a running Redis: `AAUTH_TEST_REDIS_URL`, or one started for this process. */
export async function redisUrl(): Promise<string> {
  const fromEnv = process.env[ENV]
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  spawned ??= start()
  return (await spawned).url
}

/** Stops the Redis that {@link redisUrl} started, if any (a Redis from the environment is left alone). */
export async function stopRedis(): Promise<void> {
  const s = spawned
  spawned = undefined
  if (s === undefined) return
  let r: Spawned
  try {
    r = await s
  } catch {
    return
  }
  await kill(r.child)
  rmSync(r.dir, { recursive: true, force: true })
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function start(): Promise<Spawned> {
  let last: unknown
  // Another process may take the free port between the probe and redis-server's bind: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(await freePort())
    } catch (e) {
      if (e instanceof Error && e.message.includes('not installed')) throw e
      last = e
    }
  }
  throw new Error(`could not start ${BIN} for the Redis tests`, { cause: last })
}

async function startOn(port: number): Promise<Spawned> {
  const dir = mkdtempSync(join(tmpdir(), 'aauth-redis-'))
  const child = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  // A test process that dies without afterAll must not leave the server behind.
  const onExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', onExit)
  child.once('exit', () => process.off('exit', onExit))
  try {
    await untilReady(child, {
      probe: () => ping(port),
      intervalMs: 50,
      timeoutMs: 10_000,
      spawnError: (e) =>
        e.code === 'ENOENT' ? new Error(`${BIN} is not installed: install it (apt-get install redis-server) or set ${ENV}=redis://host:port for the Redis store tests`) : e,
      exited: (code, signal) => new Error(`${BIN} exited (${code ?? signal}) before answering: ${stderr.trim()}`),
      timedOut: () => new Error(`${BIN} did not answer PING on 127.0.0.1:${port} within 10 s`),
    })
  } catch (e) {
    await kill(child)
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return { child, url: `redis://127.0.0.1:${port}`, dir }
}

/** Whether a Redis answers PING on the port (plain RESP over one short connection). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const end = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => end(false))
    socket.once('error', () => end(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d
      if (reply.includes('\r\n')) end(reply.startsWith('+PONG'))
    })
  })
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}
