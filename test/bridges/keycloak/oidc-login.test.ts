/**
 * Person login at the PS through a Keycloak realm (authorization code + PKCE, public client),
 * over HTTP against real parts on loopback: the Keycloak-shaped realm as its own process
 * (test/fixtures/keycloak-realm.ts) and a real PS with {@link keycloakLogin}. A small cookie-jar
 * client follows the redirects and posts the realm's login form like a browser would.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkIdTokenClaims, keycloakLogin, RealmTokenError } from '../../../src/bridges/keycloak/index.js'
import { closeAll } from '../../helpers/aauth-servers.js'
import { closeKeycloakRealms, startKeycloakRealm, startPsWithKeycloakLogin, type KeycloakRealmProcess, type PsWithKeycloak } from '../../helpers/keycloak.js'

/** A browser's cookies and redirects, enough for the code flow. */
class Browser {
  readonly #cookies = new Map<string, Map<string, string>>()

  cookie(url: string, name: string): string | undefined {
    return this.#cookies.get(new URL(url).host)?.get(name)
  }

  /** One request, no redirect following; stores `Set-Cookie`s (an empty value or Max-Age=0 removes). */
  async fetch(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const host = new URL(url).host
    const jar = this.#cookies.get(host) ?? new Map<string, string>()
    this.#cookies.set(host, jar)
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers['cookie'] = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const res = await fetch(url, { method: init.method ?? (init.form === undefined ? 'GET' : 'POST'), headers, redirect: 'manual', ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() }) })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || /max-age=0\b/i.test(line)) jar.delete(name)
      else jar.set(name, value)
    }
    return res
  }

  /** Follows redirects from `url` until a non-redirect answer or a URL `stop` accepts. */
  async follow(url: string, stop: (url: string) => boolean = () => false, init: { form?: Record<string, string> } = {}): Promise<{ url: string; res: Response }> {
    let current = url
    let res = await this.fetch(current, init)
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.headers.get('location')!, current).href
      if (stop(current)) return { url: current, res }
      res = await this.fetch(current)
    }
    return { url: current, res }
  }
}

let realm: KeycloakRealmProcess
let world: PsWithKeycloak
let psCallback: string
const passwordOf = (u: string): string => realm.config.users.find((x) => x.username === u)!.password

/** Starts a login at a PS and stops at the realm's login form; returns its action URL. */
async function toRealmForm(b: Browser, next = '/account', w: PsWithKeycloak = world): Promise<string> {
  const { res } = await b.follow(`${w.ps.issuer}/login/${w.login.id}?next=${encodeURIComponent(next)}`)
  expect(res.status).toBe(200)
  const page = await res.text()
  const action = /<form id="kc-form-login" method="post" action="([^"]+)"/.exec(page)?.[1]
  expect(action).toBeDefined()
  return new URL(action!, realm.issuer).href
}

/** Posts the realm form and follows back to the PS callback (not fetched). */
async function toCallback(b: Browser, action: string, form: Record<string, string>, w: PsWithKeycloak = world): Promise<string> {
  const { url } = await b.follow(action, (u) => u.startsWith(w.redirectUri), { form })
  expect(url.startsWith(w.redirectUri)).toBe(true)
  return url
}

/** A full login of `username` at a PS: the callback URL and the PS's answer to it. */
async function login(b: Browser, username: string, next?: string, w: PsWithKeycloak = world): Promise<{ callback: string; res: Response }> {
  const callback = await toCallback(b, await toRealmForm(b, next, w), { username, password: passwordOf(username), login: '1' }, w)
  return { callback, res: await b.fetch(callback) }
}

function sessionCookie(res: Response): string | undefined {
  return res.headers.getSetCookie().find((c) => c.startsWith('aauth_ps_session=') && !/max-age=0\b/i.test(c))
}

/** The refusal page: status, no session cookie, the message. */
async function expectRefused(res: Response, status: number, text: RegExp): Promise<void> {
  expect(res.status).toBe(status)
  expect(sessionCookie(res)).toBeUndefined()
  const body = await res.text()
  expect(body).toMatch(text)
  expect(body).toContain('You are not logged in.')
}

beforeAll(async () => {
  realm = await startKeycloakRealm()
  world = await startPsWithKeycloakLogin(realm)
  psCallback = world.redirectUri
}, 30_000)

afterAll(async () => {
  await closeKeycloakRealms()
  await closeAll()
})

describe('keycloakLogin: authorization code + PKCE with a Keycloak-shaped realm', () => {
  it('the login page offers "Log in with Keycloak" carrying next', async () => {
    const page = await (await fetch(`${world.ps.issuer}/login?next=%2Faccount%2Fagents`)).text()
    expect(page).toMatch(/<a class="button secondary" href="\/login\/oidc\?next=%2Faccount%2Fagents">Log in with Keycloak<\/a>/)
  })

  it('sends the browser to the realm with a public-client PKCE S256 request, state and nonce', async () => {
    const b = new Browser()
    const res = await b.fetch(`${world.ps.issuer}/login/oidc?next=/account`)
    expect(res.status).toBe(303)
    const to = new URL(res.headers.get('location')!)
    expect(to.origin + to.pathname).toBe(`${realm.issuer}/protocol/openid-connect/auth`)
    const p = Object.fromEntries(to.searchParams)
    expect(p).toMatchObject({ client_id: 'aauth-person-server', response_type: 'code', scope: 'openid profile email', redirect_uri: psCallback, code_challenge_method: 'S256' })
    expect(p['state']).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(p['nonce']).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(p['code_challenge']).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(p['client_secret']).toBeUndefined()
    const flowCookie = res.headers.getSetCookie().find((c) => c.startsWith('aauth_ps_oidc_flow='))
    expect(flowCookie).toMatch(/HttpOnly/)
    expect(flowCookie).toMatch(/SameSite=Lax/)
  })

  it('logs alice in: session, next honoured, person record mapped from the realm claims', async () => {
    const b = new Browser()
    const { res } = await login(b, 'alice', '/account/agents')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/account/agents')
    expect(sessionCookie(res)).toBeDefined()
    expect(b.cookie(world.ps.issuer, 'aauth_ps_oidc_flow')).toBeUndefined()
    const person = await world.ps.store.getPersonByUsername('alice')
    expect(person).toMatchObject({ username: 'alice', displayName: 'Alice Example', email: 'alice@demo.example.com', permissions: ['engineering', 'finance'] })
    expect(person!.id).toMatch(/^oidc-/)
    expect(person!.passwordHash).toBeUndefined()
    const account = await b.fetch(`${world.ps.issuer}/account`)
    expect(account.status).toBe(200)
    expect(await account.text()).toContain('Alice Example')
  })

  it('a second login refreshes the permissions from the realm (same person id)', async () => {
    const before = await world.ps.store.getPersonByUsername('bob')
    expect(before).toBeUndefined()
    const first = await login(new Browser(), 'bob')
    expect(first.res.status).toBe(303)
    const { id, createdAt, permissions } = (await world.ps.store.getPersonByUsername('bob'))!
    expect(permissions).toEqual(['hr'])
    await realm.updateUser({ username: 'bob', roles: ['hr', 'admin'], departments: ['hr', 'legal'] })
    const second = await login(new Browser(), 'bob')
    expect(second.res.status).toBe(303)
    const after = await world.ps.store.getPerson(id)
    expect(after!.permissions).toEqual(['admin', 'hr', 'legal'])
    expect(after!.createdAt).toBe(createdAt)
  })

  it('an unsafe next falls back to /account', async () => {
    const { res } = await login(new Browser(), 'alice', '//evil.example/x')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/account')
  })

  it('a wrong password at the realm keeps the browser there (no code, no session)', async () => {
    const b = new Browser()
    const action = await toRealmForm(b)
    const res = await b.fetch(action, { form: { username: 'alice', password: 'wrong', login: '1' } })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('Invalid username or password.')
  })
})

describe('keycloakLogin refusals: an error page, no session, nothing written', () => {
  it('callback without state: 400', async () => {
    await expectRefused(await new Browser().fetch(`${psCallback}?code=abc`), 400, /Login expired/)
  })

  it('callback with an unknown state: 400', async () => {
    await expectRefused(await new Browser().fetch(`${psCallback}?code=abc&state=${'A'.repeat(43)}`), 400, /Login expired/)
  })

  it('a replayed callback (state already used): 400', async () => {
    const b = new Browser()
    const { callback, res } = await login(b, 'alice')
    expect(res.status).toBe(303)
    await expectRefused(await b.fetch(callback), 400, /Login expired/)
  })

  it('a callback from another browser (state bound to the starting browser): 400, and the owner can still finish', async () => {
    const owner = new Browser()
    const callback = await toCallback(owner, await toRealmForm(owner), { username: 'alice', password: passwordOf('alice'), login: '1' })
    await expectRefused(await new Browser().fetch(callback), 400, /not started in this browser/)
    const res = await owner.fetch(callback)
    expect(res.status).toBe(303)
    expect(sessionCookie(res)).toBeDefined()
  })

  it('the person cancels at the realm (access_denied): 403', async () => {
    const b = new Browser()
    const callback = await toCallback(b, await toRealmForm(b), { cancel: '1' })
    expect(new URL(callback).searchParams.get('error')).toBe('access_denied')
    await expectRefused(await b.fetch(callback), 403, /Login cancelled/)
  })

  it('another error from the realm: 502', async () => {
    const b = new Browser()
    const start = await b.fetch(`${world.ps.issuer}/login/oidc`)
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!
    await expectRefused(await b.fetch(`${psCallback}?error=temporarily_unavailable&state=${state}`), 502, /temporarily_unavailable/)
  })

  it('a code the token endpoint refuses (tampered): 502, and the state is spent', async () => {
    const b = new Browser()
    const callback = new URL(await toCallback(b, await toRealmForm(b), { username: 'alice', password: passwordOf('alice'), login: '1' }))
    const good = callback.href
    callback.searchParams.set('code', 'tampered-code')
    await expectRefused(await b.fetch(callback.href), 502, /did not issue tokens: status 400 \(invalid_grant\)/)
    await expectRefused(await b.fetch(good), 400, /Login expired/)
  })

  it('a login that took longer than 10 minutes: 400', async () => {
    let skew = 0
    const slow = await startPsWithKeycloakLogin(realm, { ps: { now: () => Date.now() + skew } })
    const b = new Browser()
    const callback = await toCallback(b, await toRealmForm(b, '/account', slow), { username: 'alice', password: passwordOf('alice'), login: '1' }, slow)
    skew = 10 * 60 * 1000 + 1
    await expectRefused(await b.fetch(callback), 400, /took too long/)
    expect(await slow.ps.store.getPersonByUsername('alice')).toBeUndefined()
  })

  it('callback without a code: 400', async () => {
    const b = new Browser()
    const start = await b.fetch(`${world.ps.issuer}/login/oidc`)
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!
    await expectRefused(await b.fetch(`${psCallback}?state=${state}`), 400, /no authorization code/)
  })

  it('an ID token the PS cannot verify (realm key algorithm not accepted): 401', async () => {
    const strict = await startPsWithKeycloakLogin(realm, { realmOptions: { algorithms: ['ES256'] } })
    const { res } = await login(new Browser(), 'alice', undefined, strict)
    await expectRefused(res, 401, /ID token was refused/)
    expect(await strict.ps.store.getPersonByUsername('alice')).toBeUndefined()
  })

  it('a username already held by a local account: 409, the local account untouched', async () => {
    const other = await startPsWithKeycloakLogin(realm)
    const localId = await other.ps.addPerson('bob')
    const { res } = await login(new Browser(), 'bob', undefined, other)
    await expectRefused(res, 409, /belongs to another account/)
    const local = await other.ps.store.getPersonByUsername('bob')
    expect(local!.id).toBe(localId)
    expect(local!.passwordHash).toBeDefined()
  })
})

describe('the realm process (Keycloak shape)', () => {
  it('serves discovery at the realm path with Keycloak endpoint paths and RS256', async () => {
    const meta = (await (await fetch(`${realm.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    const oc = `${realm.issuer}/protocol/openid-connect`
    expect(meta).toMatchObject({
      issuer: realm.issuer,
      authorization_endpoint: `${oc}/auth`,
      token_endpoint: `${oc}/token`,
      jwks_uri: `${oc}/certs`,
      userinfo_endpoint: `${oc}/userinfo`,
      end_session_endpoint: `${oc}/logout`,
      introspection_endpoint: `${oc}/token/introspect`,
      revocation_endpoint: `${oc}/revoke`,
      code_challenge_methods_supported: ['S256'],
    })
    expect(meta['id_token_signing_alg_values_supported']).toContain('RS256')
    expect(realm.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/realms\/demo$/)
  })

  it('Direct Access Grants give a Keycloak-shaped access token (typ JWT, aud with aauth-person-server)', async () => {
    const { access_token } = await realm.passwordGrant('alice')
    expect(decodeProtectedHeader(access_token)).toMatchObject({ alg: 'RS256', typ: 'JWT' })
    const claims = decodeJwt(access_token)
    expect(claims).toMatchObject({
      iss: realm.issuer,
      typ: 'Bearer',
      azp: 'documents-app',
      aud: ['aauth-person-server', 'account'],
      preferred_username: 'alice',
      email: 'alice@demo.example.com',
      email_verified: true,
      name: 'Alice Example',
      departments: ['engineering', 'finance'],
      groups: ['/engineering', '/finance'],
      resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
      scope: 'openid profile email',
    })
    expect((claims['realm_access'] as { roles: string[] }).roles).toEqual(expect.arrayContaining(['engineering', 'finance', 'offline_access', 'default-roles-demo']))
    await expect(realm.passwordGrant('alice', { password: 'wrong' })).rejects.toThrow(/400 invalid_grant/)
  })

  it('rotateKeys: the new key signs, the old one stays published', async () => {
    const before = decodeProtectedHeader((await realm.passwordGrant('bob')).access_token).kid
    await realm.rotateKeys()
    const after = decodeProtectedHeader((await realm.passwordGrant('bob')).access_token).kid
    expect(after).not.toBe(before)
    const jwks = (await (await fetch(`${realm.issuer}/protocol/openid-connect/certs`)).json()) as { keys: { kid: string; d?: string }[] }
    expect(jwks.keys.map((k) => k.kid)).toEqual([after, before])
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true)
  })

  it('writes nothing on stderr (oidc-provider development warnings silenced)', () => {
    expect(realm.stderr()).toBe('')
  })
})

describe('ID token claim checks (OIDC Core 3.1.3.7)', () => {
  const base = { sub: 's', aud: 'aauth-person-server', nonce: 'n-1' }
  it('accepts the flow nonce with one audience and no azp', () => {
    expect(() => checkIdTokenClaims(base, { clientId: 'aauth-person-server', nonce: 'n-1' })).not.toThrow()
  })
  it.each([
    ['a different nonce', { ...base, nonce: 'n-2' }, /nonce/],
    ['no nonce', { sub: 's', aud: 'aauth-person-server' }, /nonce/],
    ['several audiences without azp', { ...base, aud: ['aauth-person-server', 'other'] }, /several audiences/],
    ['azp naming another client', { ...base, azp: 'other' }, /azp "other"/],
  ])('refuses %s', (_name, claims, message) => {
    expect(() => checkIdTokenClaims(claims, { clientId: 'aauth-person-server', nonce: 'n-1' })).toThrow(RealmTokenError)
    expect(() => checkIdTokenClaims(claims, { clientId: 'aauth-person-server', nonce: 'n-1' })).toThrow(message)
  })
})

describe('keycloakLogin options', () => {
  it('refuses an unusable redirectUri, id or clientId when created', () => {
    const realmOptions = { issuer: 'https://sso.example.com/realms/demo' }
    expect(() => keycloakLogin({ realm: realmOptions, clientId: 'c', redirectUri: '/login/oidc/callback' })).toThrow(/not an absolute URL/)
    expect(() => keycloakLogin({ realm: realmOptions, clientId: 'c', redirectUri: 'https://ps.example/cb?x=1' })).toThrow(/no query/)
    expect(() => keycloakLogin({ realm: realmOptions, clientId: 'c', redirectUri: 'https://ps.example/cb', id: 'Bad/Id' })).toThrow(/login method id/)
    expect(() => keycloakLogin({ realm: realmOptions, clientId: '', redirectUri: 'https://ps.example/cb' })).toThrow(/clientId/)
  })
})
