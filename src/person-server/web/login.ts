/**
 * Logging in to the Person Server's pages: `GET`/`POST /login` (username and password) and
 * `POST /logout`.
 *
 * Failed logins are throttled in memory per username and per client address (by default 5 and
 * 20 failures a minute, then `429` until the window passes). Unknown usernames cost the same
 * scrypt work as known ones. After a successful login the browser is sent (303) to `next` when it
 * is a same-origin path (`/…`, not `//…`), else to `/account`.
 *
 * Other ways to log in (an OIDC provider such as Keycloak) plug in as a {@link LoginMethod}: it
 * adds markup to the login page (a "Log in with …" button) and mounts its own routes, and when it
 * has authenticated someone it calls {@link LoginHelpers.startSession}. Only the password method
 * is implemented here.
 *
 * @module
 */

import type { Context, Hono } from 'hono'
import type { PersonRecord } from '../store/types.js'
import { forbiddenPage, isCrossSite, readForm, requirePerson, sendPage, type WebContext, type WebEnv } from './context.js'
import { html, type HtmlValue } from './html.js'
import { MAX_PASSWORD_LENGTH, verifyDummyPassword, verifyPassword } from './password.js'

/** Where to go after login when `next` is missing or unsafe. */
export const DEFAULT_AFTER_LOGIN = '/account'

/**
 * `next` if it is a same-origin relative path (starts with one `/`, no backslash, no control
 * characters or whitespace, and still a plain path after URL normalisation), else `fallback`.
 * Never returns a value a browser could read as another origin.
 */
export function safeNext(raw: unknown, fallback: string = DEFAULT_AFTER_LOGIN): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048) return fallback
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) return fallback
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) return fallback
  let url: URL
  try {
    url = new URL(raw, 'http://ps.invalid')
  } catch {
    return fallback
  }
  if (url.origin !== 'http://ps.invalid') return fallback
  const path = url.pathname + url.search
  // Normalisation can turn `/.//evil.example` into `//evil.example`.
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) return fallback
  if (path === '/login' || path.startsWith('/login?') || path.startsWith('/logout')) return fallback
  return path
}

/** What {@link LoginMethod}s get to finish a login. */
export interface LoginHelpers {
  /**
   * Starts a session for `person` and answers 303 to `next` (made safe with {@link safeNext}).
   * Call only after the person was authenticated.
   */
  startSession(c: Context, person: PersonRecord, next: unknown): Response
  /** {@link safeNext}. */
  safeNext(raw: unknown): string
  /** The dependencies (store to look people up, clock…). */
  readonly ctx: WebContext
}

/**
 * Another way to log in, next to the password form (e.g. OIDC with Keycloak). Everything is
 * optional except the id.
 */
export interface LoginMethod {
  /** A short identifier, e.g. `'oidc'`. */
  readonly id: string
  /** Markup added to the login page under the password form, e.g. a "Log in with …" form/button. */
  loginPageExtras?(args: { readonly next: string }): HtmlValue
  /** Mounts the method's own routes (e.g. `/login/oidc`, `/login/oidc/callback`). */
  mount?(app: Hono<WebEnv>, helpers: LoginHelpers): void
}

/** Limits of failed logins. */
export interface LoginThrottleOptions {
  /** Failures allowed per username per window. Default 5. */
  readonly perUser?: number
  /** Failures allowed per client address per window. Default 20. */
  readonly perIp?: number
  /** The window, milliseconds. Default 60,000. */
  readonly windowMs?: number
}

/** A sliding-window failure counter, bounded in memory. */
export class FailureCounter {
  readonly #hits = new Map<string, number[]>()
  readonly #limit: number
  readonly #windowMs: number
  readonly #now: () => number
  readonly #maxKeys: number

  constructor(limit: number, windowMs: number, now: () => number, maxKeys = 10_000) {
    this.#limit = limit
    this.#windowMs = windowMs
    this.#now = now
    this.#maxKeys = maxKeys
  }

  #live(key: string): number[] {
    const cutoff = this.#now() - this.#windowMs
    const hits = (this.#hits.get(key) ?? []).filter((t) => t > cutoff)
    if (hits.length === 0) this.#hits.delete(key)
    else this.#hits.set(key, hits)
    return hits
  }

  /** Whether `key` has used up its failures in the current window. */
  blocked(key: string): boolean {
    return this.#live(key).length >= this.#limit
  }

  /** Records one failure of `key`. */
  fail(key: string): void {
    const hits = this.#live(key)
    hits.push(this.#now())
    this.#hits.delete(key)
    this.#hits.set(key, hits.slice(-this.#limit))
    while (this.#hits.size > this.#maxKeys) {
      const oldest = this.#hits.keys().next()
      if (oldest.done === true) break
      this.#hits.delete(oldest.value)
    }
  }

  /** Forgets `key`'s failures. */
  reset(key: string): void {
    this.#hits.delete(key)
  }
}

/** Options of {@link mountLogin}. */
export interface LoginOptions {
  readonly methods?: readonly LoginMethod[]
  readonly throttle?: LoginThrottleOptions
}

const MAX_USERNAME_LENGTH = 200

/** Mounts `/login` and `/logout` (and the routes of extra login methods) on `app`. */
export function mountLogin(app: Hono<WebEnv>, ctx: WebContext, options: LoginOptions = {}): void {
  const methods = options.methods ?? []
  const windowMs = options.throttle?.windowMs ?? 60_000
  const byUser = new FailureCounter(options.throttle?.perUser ?? 5, windowMs, ctx.now)
  const byIp = new FailureCounter(options.throttle?.perIp ?? 20, windowMs, ctx.now)
  const { sessions } = ctx

  const startSession = (_c: Context, person: PersonRecord, next: unknown): Response => {
    const session = sessions.issue(person.id)
    const headers = new Headers({ Location: safeNext(next) })
    headers.append('Set-Cookie', sessions.setCookie(session))
    headers.append('Set-Cookie', sessions.clearLoginNonce())
    return new Response(null, { status: 303, headers })
  }
  const helpers: LoginHelpers = { startSession, safeNext: (raw) => safeNext(raw), ctx }

  const loginPage = (c: Context<WebEnv>, next: string, status: number, error?: HtmlValue, username = ''): Response => {
    // Keep the browser's pre-login nonce if it has one (several tabs), else start one.
    let nonce = sessions.loginNonceFrom(c.req.header('cookie'))
    if (nonce === undefined) {
      const fresh = sessions.newLoginNonce()
      nonce = fresh.nonce
      c.header('Set-Cookie', fresh.cookie, { append: true })
    }
    const extras = methods.map((m) => m.loginPageExtras?.({ next }))
    return sendPage(c, ctx, {
      status,
      title: 'Log in',
      body: html`<h1>Log in</h1>
${error !== undefined && html`<div class="error" role="alert"><p>${error}</p></div>`}
<div class="card">
<form method="post" action="/login">
<input type="hidden" name="csrf" value="${sessions.loginCsrfToken(nonce)}">
<input type="hidden" name="next" value="${next}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="${MAX_USERNAME_LENGTH}" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}" required>
<div class="actions"><button class="primary" type="submit">Log in</button></div>
</form>
</div>
${extras}`,
    })
  }

  app.get('/login', async (c) => {
    const next = safeNext(c.req.query('next'))
    const session = sessions.fromCookieHeader(c.req.header('cookie'))
    if (session !== undefined && (await ctx.store.getPerson(session.personId)) !== undefined) return c.redirect(next, 303)
    return loginPage(c, next, 200)
  })

  app.post('/login', async (c) => {
    if (isCrossSite(c)) return forbiddenPage(c, ctx)
    const form = await readForm(c)
    const next = safeNext(form['next'])
    if (!sessions.checkLoginCsrf(sessions.loginNonceFrom(c.req.header('cookie')), form['csrf'])) {
      return loginPage(c, next, 403, 'This login form has expired or was not sent from this site. Please try again.')
    }
    const username = (form['username'] ?? '').trim()
    const password = form['password'] ?? ''
    const userKey = `u:${username.normalize('NFC').toLowerCase()}`
    const ipKey = `ip:${ctx.clientIp(c)}`
    if (byUser.blocked(userKey) || byIp.blocked(ipKey)) {
      c.header('Retry-After', String(Math.ceil(windowMs / 1000)))
      return sendPage(c, ctx, {
        status: 429,
        title: 'Too many attempts',
        body: html`<h1>Too many attempts</h1><div class="error"><p>Too many failed logins. Wait a minute, then try again.</p></div><p><a href="/login">Back to log in</a></p>`,
      })
    }
    const valid = username.length > 0 && username.length <= MAX_USERNAME_LENGTH && password.length > 0 && password.length <= MAX_PASSWORD_LENGTH
    const person = valid ? await ctx.store.getPersonByUsername(username) : undefined
    const ok = person?.passwordHash !== undefined ? await verifyPassword(password, person.passwordHash) : await verifyDummyPassword(password)
    if (!ok || person === undefined) {
      byUser.fail(userKey)
      byIp.fail(ipKey)
      return loginPage(c, next, 401, 'Wrong username or password.', username.slice(0, MAX_USERNAME_LENGTH))
    }
    byUser.reset(userKey)
    return startSession(c, person, next)
  })

  app.post('/logout', requirePerson(ctx), () => {
    const headers = new Headers({ Location: '/login' })
    headers.append('Set-Cookie', sessions.clearCookie())
    return new Response(null, { status: 303, headers })
  })

  for (const method of methods) method.mount?.(app, helpers)
}
