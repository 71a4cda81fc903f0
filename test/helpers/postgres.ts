/**
 * A real PostgreSQL for the store tests, on loopback only. `.ci/run` starts one and sets
 * `AAUTH_TEST_PG_URL`; without it (a developer's `npm test`), the first call to
 * {@link postgresUrl} creates a throwaway cluster (`initdb` into a temporary directory, trust
 * authentication, UTF-8) and starts `postgres` on a free 127.0.0.1 port, with its Unix socket in
 * that directory, for this test process; {@link stopPostgres} (in `afterAll`) stops it and removes
 * the directory. PostgreSQL refuses to run as root: when the tests run as root, `initdb` and
 * `postgres` run as the `postgres` system user, which owns the directory. When neither is possible
 * the call throws: the tests fail, they never skip.
 *
 * Each test gets its own schema ({@link freshSchema}), so that files and cases never see each
 * other's rows; {@link stopPostgres} drops the schemas it handed out when the server is not its
 * own.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { untilReady } from './spawn-ready.js'
import pg from 'pg'
import { freePort } from './redis.js'

const ENV = 'AAUTH_TEST_PG_URL'

interface Spawned {
  readonly child: ChildProcess
  readonly url: string
  readonly dir: string
}

let spawned: Promise<Spawned> | undefined
const schemas: string[] = []

/** The URL of a running PostgreSQL (superuser): `AAUTH_TEST_PG_URL`, or one started for this process. */
export async function postgresUrl(): Promise<string> {
  const fromEnv = process.env[ENV]
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  spawned ??= start()
  return (await spawned).url
}

/**
 * A new schema name, unique to this call (`aauth_test_…`); `PostgresStore.connect({ schema })`
 * creates it.
 */
export function freshSchema(): string {
  const name = `aauth_test_${randomBytes(8).toString('hex')}`
  schemas.push(name)
  return name
}

/**
 * Stops the PostgreSQL that {@link postgresUrl} started, if any, and removes its directory; on a
 * server from the environment, drops the schemas {@link freshSchema} handed out instead.
 */
export async function stopPostgres(): Promise<void> {
  const s = spawned
  spawned = undefined
  const names = schemas.splice(0)
  if (s === undefined) {
    const fromEnv = process.env[ENV]
    if (fromEnv !== undefined && fromEnv !== '' && names.length > 0) await dropSchemas(fromEnv, names)
    return
  }
  let r: Spawned
  try {
    r = await s
  } catch {
    return
  }
  await kill(r.child)
  rmSync(r.dir, { recursive: true, force: true })
}

async function dropSchemas(url: string, names: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    for (const n of names) await client.query(`DROP SCHEMA IF EXISTS "${n}" CASCADE`)
  } finally {
    await client.end()
  }
}

/** The directory of `initdb` and `postgres`: `pg_config --bindir`, the newest `/usr/lib/postgresql/N/bin`, or `PATH`. */
function binDir(): string {
  const candidates: string[] = []
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } catch { /* no pg_config */ }
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`))
  } catch { /* not Debian's layout */ }
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir !== '') candidates.push(dir)
  const found = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')))
  if (found === undefined) {
    throw new Error(`PostgreSQL is not installed (no initdb/postgres found): install it (apt-get install postgresql) or set ${ENV}=postgres://user@host:port/db for the PostgreSQL store tests`)
  }
  return found
}

/** The uid and gid to run PostgreSQL as: this process's own, or the `postgres` user's when this process is root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    if (Number.isInteger(uid) && Number.isInteger(gid) && uid !== 0) return { uid, gid }
  } catch { /* no such user */ }
  throw new Error(`the tests run as root, which PostgreSQL refuses, and there is no 'postgres' user to run it as: create one (useradd -r postgres) or set ${ENV}`)
}

async function start(): Promise<Spawned> {
  const bin = binDir()
  const user = runAs()
  const dir = mkdtempSync(join(tmpdir(), 'aauth-pg-'))
  try {
    chmodSync(dir, 0o700)
    if (user !== undefined) chownSync(dir, user.uid, user.gid)
    await initdb(bin, dir, user)
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  let last: unknown
  // Another process may take the free port between the probe and the server's bind: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(bin, dir, user, await freePort())
    } catch (e) {
      last = e
    }
  }
  rmSync(dir, { recursive: true, force: true })
  throw new Error('could not start postgres for the PostgreSQL store tests', { cause: last })
}

/** `initdb` of a cluster in `dir/data`: superuser `postgres`, trust authentication, UTF-8, C locale. */
async function initdb(bin: string, dir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  const args = ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']
  const child = spawn(join(bin, 'initdb'), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...user })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { output += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { output += d })
  const code = await new Promise<number | string>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (c, signal) => resolve(c ?? signal ?? 'unknown'))
  })
  if (code !== 0) throw new Error(`initdb failed (${code}): ${output.trim()}`)
}

async function startOn(bin: string, dir: string, user: { uid: number; gid: number } | undefined, port: number): Promise<Spawned> {
  const args = ['-D', join(dir, 'data'), '-h', '127.0.0.1', '-p', String(port), '-k', dir, '-c', 'fsync=on', '-c', 'log_min_messages=warning']
  const child = spawn(join(bin, 'postgres'), args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], ...user })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  // A test process that dies without afterAll must not leave the server (or its files) behind:
  // SIGQUIT is PostgreSQL's immediate shutdown, which also ends its backends.
  const onExit = (): void => {
    child.kill('SIGQUIT')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', onExit)
  child.once('exit', () => process.off('exit', onExit))
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  try {
    await untilReady(child, {
      probe: () => ready(url),
      intervalMs: 100,
      timeoutMs: 20_000,
      exited: (code, signal) => new Error(`postgres exited (${code ?? signal}) before accepting connections: ${stderr.trim()}`),
      timedOut: () => new Error(`postgres did not accept connections on 127.0.0.1:${port} within 20 s: ${stderr.trim()}`),
    })
  } catch (e) {
    await kill(child)
    throw e
  }
  return { child, url, dir }
}

/** Whether the server answers a query. */
async function ready(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Fast shutdown (SIGINT: abort transactions, disconnect clients), then SIGKILL after 5 s. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGINT')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}
