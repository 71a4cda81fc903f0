/** Log-in and log-out: the form, its own CSRF binding, `next` (no open redirect), throttling, extra login methods. */
import { describe, expect, it } from 'vitest'
import type { Context } from 'hono'
import { html } from '../../../src/person-server/web/html.js'
import { safeNext, type LoginMethod } from '../../../src/person-server/web/index.js'
import { harness, Jar, PASSWORD } from './fakes.js'

describe('login form', () => {
  it('GET /login renders the form with a CSRF token bound to a pre-login cookie, and security headers', async () => {
    const h = await harness()
    const res = await h.request('/login')
    expect(res.status).toBe(200)
    const body = await res.text()
    expect(body).toContain('<form method="post" action="/login">')
    expect(h.csrfOf(body)).not.toBe('')
    expect(res.headers.getSetCookie()[0]).toMatch(/^aauth_ps_login=/)
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">')
    expect(body).not.toMatch(/<script|<link|src="http/i)
  })

  it('logs in and goes to next', async () => {
    const h = await harness()
    const jar = new Jar()
    const csrf = h.csrfOf(await (await h.request('/login?next=%2Finteraction%3Fcode%3DK7QD-2M9X', {}, jar)).text())
    const res = await h.post('/login', { username: 'alice', password: PASSWORD, csrf, next: '/interaction?code=K7QD-2M9X' }, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/interaction?code=K7QD-2M9X')
    expect(jar.cookies.has('aauth_ps_session')).toBe(true)
    expect(jar.cookies.has('aauth_ps_login')).toBe(false)
  })

  it('a wrong password or unknown user: 401, no session', async () => {
    const h = await harness()
    for (const [username, password] of [
      ['alice', 'wrong'],
      ['nobody', PASSWORD],
      ['', PASSWORD],
      ['alice', ''],
    ] as const) {
      const jar = new Jar()
      const csrf = h.csrfOf(await (await h.request('/login', {}, jar)).text())
      const res = await h.post('/login', { username, password, csrf }, jar)
      expect(res.status).toBe(401)
      expect(await res.text()).toContain('Wrong username or password.')
      expect(jar.cookies.has('aauth_ps_session')).toBe(false)
    }
  })

  it('a person without a password (OIDC only) cannot log in with one', async () => {
    const h = await harness()
    h.store.persons.set('p-oidc', { id: 'p-oidc', username: 'carol', displayName: 'Carol', createdAt: 0 })
    const jar = new Jar()
    const csrf = h.csrfOf(await (await h.request('/login', {}, jar)).text())
    expect((await h.post('/login', { username: 'carol', password: 'anything', csrf }, jar)).status).toBe(401)
  })

  it('login CSRF: without the pre-login cookie or with a wrong token, 403 and no session', async () => {
    const h = await harness()
    const jar = new Jar()
    const csrf = h.csrfOf(await (await h.request('/login', {}, jar)).text())
    const noCookie = await h.post('/login', { username: 'alice', password: PASSWORD, csrf }, new Jar())
    expect(noCookie.status).toBe(403)
    expect(noCookie.headers.getSetCookie().some((c) => c.startsWith('aauth_ps_session='))).toBe(false)
    const wrong = await h.post('/login', { username: 'alice', password: PASSWORD, csrf: 'x' + csrf.slice(1) }, jar)
    expect(wrong.status).toBe(403)
    const cross = await h.post('/login', { username: 'alice', password: PASSWORD, csrf }, jar, { headers: { 'sec-fetch-site': 'cross-site' } })
    expect(cross.status).toBe(403)
    expect(jar.cookies.has('aauth_ps_session')).toBe(false)
  })

  it('already logged in: GET /login goes straight to next', async () => {
    const h = await harness()
    const jar = await h.login()
    const res = await h.request('/login?next=%2Finteraction', {}, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/interaction')
  })

  it('log-out clears the session', async () => {
    const h = await harness()
    const jar = await h.login()
    const csrf = h.csrfOf(await (await h.request('/account', {}, jar)).text())
    const res = await h.post('/logout', { csrf }, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/login')
    expect(jar.cookies.has('aauth_ps_session')).toBe(false)
    expect((await h.request('/account', {}, jar)).status).toBe(303)
  })
})

describe('next: same-origin relative paths only (no open redirect)', () => {
  const cases: readonly [unknown, string][] = [
    ['/interaction?code=K7QD-2M9X', '/interaction?code=K7QD-2M9X'],
    ['/account', '/account'],
    ['/interaction/req-1', '/interaction/req-1'],
    ['//evil.example', '/account'],
    ['//evil.example/path', '/account'],
    ['https://evil.example', '/account'],
    ['http://evil.example/', '/account'],
    ['javascript:alert(1)', '/account'],
    ['/\\evil.example', '/account'],
    ['\\\\evil.example', '/account'],
    ['/.//evil.example', '/account'],
    ['/..//evil.example', '/account'],
    ['/\t/evil.example', '/account'],
    ['/\n/evil.example', '/account'],
    [' /account', '/account'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
    ['evil.example', '/account'],
    ['', '/account'],
    [undefined, '/account'],
    [['/a'], '/account'],
    ['/login', '/account'],
    ['/logout', '/account'],
    ['/' + 'a'.repeat(3000), '/account'],
  ]
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)?.slice(0, 40)} → ${expected}`, () => {
      expect(safeNext(input)).toBe(expected)
    })
  }

  it('through the form: a hostile next lands on /account', async () => {
    const h = await harness()
    for (const next of ['//evil.example', 'https://evil.example', '/.//evil.example', '/\\evil.example']) {
      const jar = new Jar()
      const csrf = h.csrfOf(await (await h.request(`/login?next=${encodeURIComponent(next)}`, {}, jar)).text())
      const res = await h.post('/login', { username: 'alice', password: PASSWORD, csrf, next }, jar)
      expect(res.status).toBe(303)
      expect(res.headers.get('location')).toBe('/account')
    }
  })
})

describe('login throttling', () => {
  const attempt = async (h: Awaited<ReturnType<typeof harness>>, username: string, password: string, ip = '198.51.100.1'): Promise<Response> => {
    const jar = new Jar()
    const csrf = h.csrfOf(await (await h.request('/login', {}, jar)).text())
    return h.post('/login', { username, password, csrf }, jar, { headers: { 'x-test-ip': ip } })
  }
  const byHeader = { clientIp: (c: Context) => c.req.header('x-test-ip') ?? 'none' }

  it('5 failures for a username: 429 even with the right password, until the minute passes', async () => {
    const h = await harness(byHeader)
    for (let i = 0; i < 5; i++) expect((await attempt(h, 'alice', 'wrong', `203.0.113.${i}`)).status).toBe(401)
    const blocked = await attempt(h, 'alice', PASSWORD, '203.0.113.99')
    expect(blocked.status).toBe(429)
    expect(blocked.headers.get('retry-after')).toBe('60')
    expect(await blocked.text()).toContain('Too many failed logins')
    expect((await attempt(h, 'bob', PASSWORD)).status).toBe(303) // other users are not affected
    h.clock.advance(61_000)
    expect((await attempt(h, 'alice', PASSWORD)).status).toBe(303)
  })

  it('failures per client address, across usernames', async () => {
    const h = await harness({ ...byHeader, loginThrottle: { perIp: 3 } })
    for (const user of ['u1', 'u2', 'u3']) expect((await attempt(h, user, 'wrong', '192.0.2.7')).status).toBe(401)
    expect((await attempt(h, 'alice', PASSWORD, '192.0.2.7')).status).toBe(429)
    expect((await attempt(h, 'alice', PASSWORD, '192.0.2.8')).status).toBe(303)
  })

  it('a success resets the username counter', async () => {
    const h = await harness(byHeader)
    for (let i = 0; i < 4; i++) await attempt(h, 'alice', 'wrong', `203.0.113.${i}`)
    expect((await attempt(h, 'alice', PASSWORD)).status).toBe(303)
    for (let i = 0; i < 4; i++) expect((await attempt(h, 'alice', 'wrong', `203.0.113.${i}`)).status).toBe(401)
  })
})

describe('extra login methods', () => {
  it('add markup to the login page and can start a session', async () => {
    const method: LoginMethod = {
      id: 'test-sso',
      loginPageExtras: ({ next }) => html`<p class="sso"><a href="/login/test-sso?next=${encodeURIComponent(next)}">Log in with Test SSO</a></p>`,
      mount(app, helpers) {
        app.get('/login/test-sso', async (c) => {
          const person = await helpers.ctx.store.getPersonByUsername('bob')
          return helpers.startSession(c, person!, c.req.query('next'))
        })
      },
    }
    const h = await harness({ loginMethods: [method] })
    const page = await (await h.request('/login?next=%2Finteraction')).text()
    expect(page).toContain('<a href="/login/test-sso?next=%2Finteraction">Log in with Test SSO</a>')
    const jar = new Jar()
    const res = await h.request('/login/test-sso?next=//evil.example', {}, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/account')
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await (await h.request('/account', {}, jar)).text()).toContain('Hello, Bob Example')
  })
})
