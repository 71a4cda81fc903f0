/**
 * Sessions and CSRF (CHECKLIST PS-CON-01: the approver is authenticated before consent is acted
 * on): tampered, expired and foreign cookies send the browser to the login page; a POST without
 * the session's CSRF token is refused with 403 and reaches no ConsentService method.
 */
import { describe, expect, it } from 'vitest'
import { SessionManager } from '../../../src/person-server/web/session.js'
import { createPersonWeb } from '../../../src/person-server/web/index.js'
import { harness, Jar, sampleRecord, SECRET, T0 } from './fakes.js'

describe('SessionManager', () => {
  const now = (): number => T0
  const sessions = new SessionManager({ secret: SECRET, now })

  it('issues and verifies', () => {
    const s = sessions.issue('person-alice')
    expect(sessions.verify(s.value)).toEqual(s)
    expect(s.expiresAt - s.issuedAt).toBe(12 * 3600)
  })
  it('needs a 32-byte secret', () => {
    expect(() => new SessionManager({ secret: 'short' })).toThrow(RangeError)
    expect(() => new SessionManager({ secret: new Uint8Array(31) })).toThrow(RangeError)
    expect(() => new SessionManager({ secret: new Uint8Array(32) })).not.toThrow()
  })
  it('refuses every tampering', () => {
    const s = sessions.issue('person-alice')
    const [id, iat, exp, mac] = s.value.split('.') as [string, string, string, string]
    const flip = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1)
    const bob = Buffer.from('person-bob').toString('base64url')
    for (const value of [
      `${bob}.${iat}.${exp}.${mac}`,
      `${id}.${iat}.${Number(exp) + 3600}.${mac}`,
      `${id}.${Number(iat) - 1}.${exp}.${mac}`,
      `${id}.${iat}.${exp}.${flip(mac)}`,
      `${id}.${iat}.${exp}.${mac.slice(0, -1)}`,
      `${id}.${iat}.${exp}`,
      `${id}.${iat}.${exp}.${mac}.x`,
      `${id}=.${iat}.${exp}.${mac}`,
      '',
      'garbage',
    ]) {
      expect(sessions.verify(value)).toBeUndefined()
    }
  })
  it('refuses expired sessions and sessions from the future', () => {
    const s = sessions.issue('person-alice')
    expect(new SessionManager({ secret: SECRET, now: () => T0 + 12 * 3600_000 }).verify(s.value)).toBeUndefined()
    expect(new SessionManager({ secret: SECRET, now: () => T0 + 12 * 3600_000 - 1000 }).verify(s.value)).toBeDefined()
    expect(new SessionManager({ secret: SECRET, now: () => T0 - 3600_000 }).verify(s.value)).toBeUndefined()
  })
  it('refuses a session longer than the configured lifetime', () => {
    const long = new SessionManager({ secret: SECRET, now, ttlSec: 48 * 3600 }).issue('person-alice')
    expect(sessions.verify(long.value)).toBeUndefined()
  })
  it('refuses a cookie signed with another secret', () => {
    const other = new SessionManager({ secret: SECRET + 'x', now }).issue('person-alice')
    expect(sessions.verify(other.value)).toBeUndefined()
  })
  it('cookie attributes: HttpOnly, SameSite=Lax, Path=/, Secure with the __Host- prefix by default', () => {
    const s = sessions.issue('p')
    expect(sessions.setCookie(s)).toBe(`__Host-aauth_ps_session=${s.value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200; Secure`)
    const dev = new SessionManager({ secret: SECRET, now, secureCookies: false })
    expect(dev.setCookie(s)).toBe(`aauth_ps_session=${s.value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200`)
  })
  it('CSRF tokens are per session and checked exactly', () => {
    const a = sessions.issue('person-alice')
    const b = sessions.issue('person-bob')
    expect(sessions.checkCsrf(a, sessions.csrfToken(a))).toBe(true)
    expect(sessions.checkCsrf(a, sessions.csrfToken(b))).toBe(false)
    expect(sessions.checkCsrf(a, undefined)).toBe(false)
    expect(sessions.checkCsrf(a, '')).toBe(false)
    expect(sessions.checkCsrf(undefined, sessions.csrfToken(a))).toBe(false)
    expect(sessions.checkCsrf(a, sessions.csrfToken(a) + 'A')).toBe(false)
  })
})

describe('sessions through the app', () => {
  it('a valid session reaches the account page', async () => {
    const h = await harness()
    const jar = await h.login()
    const res = await h.request('/account', {}, jar)
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('Hello, Alice Example')
  })

  const toLogin = async (res: Response): Promise<void> => {
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/login?next=%2Faccount')
  }

  it('no cookie: redirected to log in', async () => {
    const h = await harness()
    await toLogin(await h.request('/account'))
  })
  it('a modified cookie: redirected to log in', async () => {
    const h = await harness()
    const jar = await h.login()
    const value = jar.cookies.get('aauth_ps_session')!
    jar.cookies.set('aauth_ps_session', value.slice(0, -3) + (value.endsWith('AAA') ? 'BBB' : 'AAA'))
    await toLogin(await h.request('/account', {}, jar))
  })
  it('a cookie naming another person: redirected to log in', async () => {
    const h = await harness()
    const jar = await h.login()
    const [, ...rest] = jar.cookies.get('aauth_ps_session')!.split('.')
    jar.cookies.set('aauth_ps_session', [Buffer.from('person-bob').toString('base64url'), ...rest].join('.'))
    await toLogin(await h.request('/account', {}, jar))
  })
  it('an expired session: redirected to log in', async () => {
    const h = await harness()
    const jar = await h.login()
    h.clock.advance(12 * 3600_000 + 1000)
    await toLogin(await h.request('/account', {}, jar))
  })
  it('a custom lifetime', async () => {
    const h = await harness({ sessionTtlSec: 600 })
    const jar = await h.login()
    h.clock.advance(599_000)
    expect((await h.request('/account', {}, jar)).status).toBe(200)
    h.clock.advance(2000)
    await toLogin(await h.request('/account', {}, jar))
  })
  it('a cookie from an app with another secret: redirected to log in', async () => {
    const h = await harness()
    const other = await harness({ secret: SECRET + ' but different' })
    const jar = await other.login()
    await toLogin(await h.request('/account', {}, jar))
  })
  it('a person who no longer exists: redirected to log in', async () => {
    const h = await harness()
    const jar = await h.login()
    h.store.persons.delete('person-alice')
    await toLogin(await h.request('/account', {}, jar))
  })
  it('secure cookies by default', async () => {
    const h = await harness()
    const app = createPersonWeb({ consent: h.consent, store: h.store, secret: SECRET, now: h.clock.now })
    const jar = new Jar()
    const page = jar.take(await app.request('/login'))
    expect(page.headers.getSetCookie()[0]).toMatch(/^__Host-aauth_ps_login=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure$/)
    const csrf = h.csrfOf(await page.text())
    const res = await app.request('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
      body: new URLSearchParams({ username: 'alice', password: 'correct horse battery staple', csrf }).toString(),
    })
    expect(res.status).toBe(303)
    expect(res.headers.getSetCookie()[0]).toMatch(/^__Host-aauth_ps_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200; Secure$/)
  })
})

describe('CSRF: a POST needs the session and its token, else 403 and nothing is done', () => {
  const setup = async () => {
    const h = await harness()
    h.consent.add(sampleRecord({ personId: 'person-alice', state: 'interacting' }))
    h.consent.grantList = [{ id: 'g1', personId: 'person-alice', agentIss: 'https://agents.example', agentSub: 'aauth:a@agents.example', resource: 'https://r.example', scope: 'read', createdAt: T0 }]
    const jar = await h.login()
    const page = await (await h.request('/interaction/req-1', {}, jar)).text()
    h.consent.calls.length = 0
    return { h, jar, csrf: h.csrfOf(page) }
  }
  const refused = async (res: Response, h: Awaited<ReturnType<typeof setup>>['h']): Promise<void> => {
    expect(res.status).toBe(403)
    expect(await res.text()).toContain('Nothing was done')
    expect(h.consent.calls).toEqual([])
  }

  it('the real token works (control)', async () => {
    const { h, jar, csrf } = await setup()
    const res = await h.post('/interaction/req-1', { action: 'approve', csrf }, jar)
    expect(res.status).toBe(303)
    expect(h.consent.mutations.map((c) => c.method)).toEqual(['decide'])
  })
  it('no token', async () => {
    const { h, jar } = await setup()
    await refused(await h.post('/interaction/req-1', { action: 'approve' }, jar), h)
  })
  it('an empty or wrong token', async () => {
    const { h, jar, csrf } = await setup()
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf: '' }, jar), h)
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf: csrf.slice(0, -2) + 'xx' }, jar), h)
  })
  it("the token of another person's session", async () => {
    const { h, jar } = await setup()
    const bobJar = await h.login('bob')
    const bobCsrf = h.csrfOf(await (await h.request('/account', {}, bobJar)).text())
    h.consent.calls.length = 0
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf: bobCsrf }, jar), h)
  })
  it("the token of another session of the same person", async () => {
    const { h, jar } = await setup()
    h.clock.advance(5000)
    const second = await h.login()
    const otherCsrf = h.csrfOf(await (await h.request('/account', {}, second)).text())
    h.consent.calls.length = 0
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf: otherCsrf }, jar), h)
  })
  it('a token without a session', async () => {
    const { h, csrf } = await setup()
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf }, new Jar()), h)
  })
  it('a valid token sent cross-site (Sec-Fetch-Site)', async () => {
    const { h, jar, csrf } = await setup()
    await refused(await h.post('/interaction/req-1', { action: 'approve', csrf }, jar, { headers: { 'sec-fetch-site': 'cross-site' } }), h)
  })
  it('the token in the query string instead of the body', async () => {
    const { h, jar, csrf } = await setup()
    await refused(await h.post(`/interaction/req-1?csrf=${csrf}`, { action: 'approve' }, jar), h)
  })
  it('a JSON body', async () => {
    const { h, jar, csrf } = await setup()
    const res = await h.request('/interaction/req-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'approve', csrf }) }, jar)
    await refused(res, h)
  })
  it('revocation and log-out need it too', async () => {
    const { h, jar } = await setup()
    await refused(await h.post('/account/grants/g1/revoke', { confirm: 'yes' }, jar), h)
    await refused(await h.post('/account/agents/revoke', { iss: 'https://agents.example', sub: 'aauth:a@agents.example', confirm: 'yes' }, jar), h)
    await refused(await h.post('/logout', {}, jar), h)
    expect((await h.request('/account', {}, jar)).status).toBe(200)
  })
})
