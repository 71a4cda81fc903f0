/**
 * A Keycloak-shaped realm as a separate process (test/fixtures/keycloak-realm.ts: oidc-provider
 * with Keycloak's issuer, paths and token shapes) on 127.0.0.1, for the Keycloak bridge tests and
 * the S2 end-to-end test. {@link startKeycloakRealm} spawns it, waits for its `READY <issuer>`
 * line, and `close()` kills it; every realm still open is also killed by {@link closeKeycloakRealms}.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { keycloakLogin, type KeycloakLoginOptions, type RealmOptions } from '../../src/bridges/keycloak/index.js'
import type { LoginMethod } from '../../src/person-server/web/login.js'
import { demoRealm, type RealmConfig, type RealmUserConfig } from '../fixtures/keycloak-realm.js'
import { startRealPersonServer, type RunningPs } from './person-server.js'

export { demoRealm, type RealmClientConfig, type RealmConfig, type RealmUserConfig } from '../fixtures/keycloak-realm.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/keycloak-realm.ts', import.meta.url))
const READY_TIMEOUT_MS = 15_000

/** A token endpoint answer (Keycloak's members). */
export interface RealmTokenResponse {
  readonly access_token: string
  readonly token_type: string
  readonly expires_in: number
  readonly scope?: string
  readonly id_token?: string
  readonly [member: string]: unknown
}

/** A running realm process. */
export interface KeycloakRealmProcess {
  /** `http://127.0.0.1:PORT/realms/NAME`. */
  readonly issuer: string
  /** The config it runs (users with their passwords, clients). */
  readonly config: RealmConfig
  /** `{issuer}/protocol/openid-connect/token`. */
  readonly tokenEndpoint: string
  /**
   * A person's access token through the password grant (Keycloak "Direct Access Grants") of a
   * public client (default: the first client with `directAccessGrants`). The password defaults to
   * the config's. @throws {Error} when the realm refuses (status and OAuth error in the message).
   */
  passwordGrant(username: string, o?: { readonly password?: string; readonly clientId?: string; readonly scope?: string }): Promise<RealmTokenResponse>
  /** Changes a user (roles, departments, groups, email, name, password); the next tokens show it. */
  updateUser(patch: Partial<RealmUserConfig> & { readonly username: string }): Promise<void>
  /** Replaces a client's redirect URIs (ongoing logins at the realm reset). */
  setRedirectUris(clientId: string, redirectUris: readonly string[]): Promise<void>
  /** Adds one redirect URI to a client's (ongoing logins at the realm reset). */
  addRedirectUri(clientId: string, redirectUri: string): Promise<void>
  /** A new signing key (new `kid`) signs from now on; the old one stays in the JWKS. */
  rotateKeys(): Promise<void>
  /** Kills the process. */
  close(): Promise<void>
  /** What the process wrote on stderr so far (for failure messages). */
  stderr(): string
}

/** Options of {@link startKeycloakRealm}. */
export interface StartRealmOptions {
  /** Default: {@link demoRealm} with random passwords (read them from `config.users`). */
  readonly config?: RealmConfig
}

const running = new Set<KeycloakRealmProcess>()

/** Random passwords for a demo realm run. */
export function randomPassword(): string {
  return randomBytes(12).toString('base64url')
}

/** Spawns a realm and waits until it serves. */
export async function startKeycloakRealm(options: StartRealmOptions = {}): Promise<KeycloakRealmProcess> {
  const config = options.config ?? demoRealm({ alicePassword: randomPassword(), bobPassword: randomPassword() })
  const dir = mkdtempSync(join(tmpdir(), 'aauth-realm-'))
  const configPath = join(dir, 'realm.json')
  writeFileSync(configPath, JSON.stringify(config), { mode: 0o600 })
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, '--port', '0', '--config', configPath], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err = (err + s).slice(-16_000)
  })
  const lines = createInterface({ input: child.stdout! })
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  let sent = 0
  let exited = false
  const issuer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the Keycloak realm did not start within ${READY_TIMEOUT_MS} ms; stderr: ${err}`))
    }, READY_TIMEOUT_MS)
    child.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once('exit', (code, signal) => {
      exited = true
      clearTimeout(timer)
      reject(new Error(`the Keycloak realm exited (${code ?? signal}) before it was ready; stderr: ${err}`))
      for (const w of waiting.values()) w.reject(new Error(`the Keycloak realm exited (${code ?? signal})`))
      waiting.clear()
    })
    lines.on('line', (line) => {
      const ready = /^READY (\S+)$/.exec(line)
      if (ready !== null) {
        clearTimeout(timer)
        resolve(ready[1]!)
        return
      }
      const answer = /^(OK|ERR) (\d+)(?: (.*))?$/.exec(line)
      if (answer === null) return
      const w = waiting.get(Number(answer[2]))
      waiting.delete(Number(answer[2]))
      if (answer[1] === 'OK') w?.resolve()
      else w?.reject(new Error(`realm command failed: ${answer[3] ?? ''}`))
    })
  }).finally(() => rmSync(dir, { recursive: true, force: true }))

  const command = (cmd: Record<string, unknown>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (exited) return reject(new Error('the Keycloak realm is not running'))
      const id = ++sent
      waiting.set(id, { resolve, reject })
      child.stdin!.write(`${JSON.stringify(cmd)}\n`)
    })
  const users = new Map(config.users.map((u) => [u.username, u]))
  const redirects = new Map(config.clients.map((c) => [c.clientId, [...(c.redirectUris ?? [])]]))
  const tokenEndpoint = `${issuer}/protocol/openid-connect/token`
  const realm: KeycloakRealmProcess = {
    issuer,
    config,
    tokenEndpoint,
    async passwordGrant(username, o = {}) {
      const clientId = o.clientId ?? config.clients.find((c) => c.directAccessGrants === true)?.clientId
      if (clientId === undefined) throw new Error('the realm has no client with directAccessGrants')
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', client_id: clientId, username, password: o.password ?? users.get(username)?.password ?? '', scope: o.scope ?? 'openid profile email' }),
      })
      const body = (await res.json()) as Record<string, unknown>
      if (res.status !== 200 || typeof body['access_token'] !== 'string') throw new Error(`password grant for ${username} refused: ${res.status} ${String(body['error'])}`)
      return body as unknown as RealmTokenResponse
    },
    async updateUser(patch) {
      await command({ cmd: 'updateUser', ...patch })
      users.set(patch.username, { ...users.get(patch.username)!, ...patch })
    },
    async setRedirectUris(clientId, redirectUris) {
      await command({ cmd: 'setRedirectUris', clientId, redirectUris })
      redirects.set(clientId, [...redirectUris])
    },
    addRedirectUri: (clientId, redirectUri) => realm.setRedirectUris(clientId, [...(redirects.get(clientId) ?? []), redirectUri]),
    rotateKeys: () => command({ cmd: 'rotateKeys' }),
    close: () => {
      running.delete(realm)
      return kill(child)
    },
    stderr: () => err,
  }
  running.add(realm)
  return realm
}

/** Kills every realm this test process started and did not close yet. */
export async function closeKeycloakRealms(): Promise<void> {
  await Promise.all([...running].map((r) => r.close()))
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), 3_000)
    child.once('exit', () => {
      clearTimeout(hard)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Options of {@link startPsWithKeycloakLogin}. */
export interface PsWithKeycloakOptions {
  /** The PS's client at the realm. Default `aauth-person-server`. */
  readonly clientId?: string
  /** More realm options (e.g. `algorithms`); issuer and loopback are set. */
  readonly realmOptions?: Partial<RealmOptions>
  /** More {@link keycloakLogin} options (mapping, label, scopes…). */
  readonly login?: Partial<Omit<KeycloakLoginOptions, 'realm' | 'clientId' | 'redirectUri'>>
  /** More PS options (organisation policy, store…). */
  readonly ps?: Parameters<typeof startRealPersonServer>[0]
}

/** A PS whose login page offers "Log in with Keycloak" for `realm`. */
export interface PsWithKeycloak {
  readonly ps: RunningPs
  readonly login: LoginMethod
  /** `${ps.issuer}/login/{id}/callback`, registered at the realm's client. */
  readonly redirectUri: string
}

/**
 * Starts a real PS on loopback with {@link keycloakLogin} for `realm` (loopback HTTP admitted)
 * and adds its callback to the realm client's redirect URIs.
 */
export async function startPsWithKeycloakLogin(realm: KeycloakRealmProcess, o: PsWithKeycloakOptions = {}): Promise<PsWithKeycloak> {
  const clientId = o.clientId ?? 'aauth-person-server'
  const id = o.login?.id ?? 'oidc'
  let login: LoginMethod | undefined
  let redirectUri = ''
  const ps = await startRealPersonServer({
    ...o.ps,
    loginMethodsFor: (issuer) => {
      redirectUri = `${issuer}/login/${id}/callback`
      login = keycloakLogin({ realm: { ...o.realmOptions, issuer: realm.issuer, allowInsecureLoopback: true }, clientId, redirectUri, ...o.login })
      return [login]
    },
  })
  await realm.addRedirectUri(clientId, redirectUri)
  return { ps, login: login!, redirectUri }
}
