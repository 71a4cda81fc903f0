/**
 * Stateless login sessions and CSRF tokens for the Person Server's pages (CHECKLIST PS-CON-01:
 * the person is authenticated before any consent or denial is acted on).
 *
 * **Session cookie.** The value is
 *
 * ```
 * base64url(personId) "." issuedAt "." expiresAt "." base64url(HMAC-SHA256(secret, personId "|" issuedAt "|" expiresAt))
 * ```
 *
 * (times in epoch seconds), sent `HttpOnly; SameSite=Lax; Path=/` and `Secure` unless
 * `secureCookies: false` (plain-HTTP loopback development). With `Secure` the cookie is named
 * `__Host-aauth_ps_session`, which browsers only accept from a secure origin without `Domain`.
 * Nothing is stored server-side: a session ends when it expires (12 h by default) or the
 * browser drops the cookie at log-out.
 *
 * **CSRF.** Every form carries `csrf = base64url(HMAC-SHA256(secret, "csrf|" + cookie value))`;
 * every POST must present the token of the session that sends it, compared in constant time. The
 * login form, which has no session yet, is bound the same way to a short-lived random
 * pre-login cookie (`"login|" + nonce`), so another site cannot log a browser into someone else's
 * account. The MAC inputs cannot collide: a session MAC input ends in two all-digit fields, a CSRF
 * input ends in a cookie value that contains dots.
 *
 * @module
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Options of {@link SessionManager}. */
export interface SessionOptions {
  /** The HMAC key; at least 32 bytes (a string is taken as UTF-8). Keep it secret and stable. */
  readonly secret: string | Uint8Array
  /** Session lifetime in seconds. Default 12 hours. */
  readonly ttlSec?: number
  /** `false` drops `Secure` and the `__Host-` prefix (plain-HTTP loopback only). Default `true`. */
  readonly secureCookies?: boolean
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/** A verified session. */
export interface Session {
  readonly personId: string
  /** Epoch seconds. */
  readonly issuedAt: number
  /** Epoch seconds. */
  readonly expiresAt: number
  /** The cookie value (the CSRF token is derived from it). */
  readonly value: string
}

/** The default session lifetime: 12 hours. */
export const DEFAULT_SESSION_TTL_SEC = 12 * 60 * 60
/** Lifetime of the pre-login cookie that binds the login form. */
const LOGIN_NONCE_TTL_SEC = 60 * 60
const MAX_COOKIE_LENGTH = 4096
const B64URL = /^[A-Za-z0-9_-]+$/
const SECONDS = /^[0-9]{1,12}$/
/** Clock skew tolerated on `issuedAt`. */
const SKEW_SEC = 60

function macEqual(presented: unknown, expected: Buffer): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 128 || !B64URL.test(presented)) return false
  const bytes = Buffer.from(presented, 'base64url')
  if (bytes.length !== expected.length) return false
  return timingSafeEqual(bytes, expected)
}

/** Issues and checks session cookies and CSRF tokens. One instance per web app. */
export class SessionManager {
  readonly #key: Buffer
  readonly #ttlSec: number
  readonly #secure: boolean
  readonly #now: () => number
  /** The session cookie's name. */
  readonly cookieName: string
  /** The pre-login cookie's name. */
  readonly loginCookieName: string

  /** @throws {RangeError} for a secret shorter than 32 bytes or a bad `ttlSec`. */
  constructor(options: SessionOptions) {
    const key = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : Buffer.from(options.secret)
    if (key.length < 32) throw new RangeError('the session secret needs at least 32 bytes')
    const ttl = options.ttlSec ?? DEFAULT_SESSION_TTL_SEC
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > 30 * 24 * 3600) throw new RangeError('ttlSec must be an integer between 60 and 2592000')
    this.#key = key
    this.#ttlSec = ttl
    this.#secure = options.secureCookies !== false
    this.#now = options.now ?? Date.now
    this.cookieName = this.#secure ? '__Host-aauth_ps_session' : 'aauth_ps_session'
    this.loginCookieName = this.#secure ? '__Host-aauth_ps_login' : 'aauth_ps_login'
  }

  #mac(input: string): Buffer {
    return createHmac('sha256', this.#key).update(input, 'utf8').digest()
  }

  #nowSec(): number {
    return Math.floor(this.#now() / 1000)
  }

  #cookie(name: string, value: string, maxAge: number): string {
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${this.#secure ? '; Secure' : ''}`
  }

  /** Starts a session for `personId`. */
  issue(personId: string): Session {
    const issuedAt = this.#nowSec()
    const expiresAt = issuedAt + this.#ttlSec
    const mac = this.#mac(`${personId}|${issuedAt}|${expiresAt}`).toString('base64url')
    const value = `${Buffer.from(personId, 'utf8').toString('base64url')}.${issuedAt}.${expiresAt}.${mac}`
    return { personId, issuedAt, expiresAt, value }
  }

  /** The `Set-Cookie` value that stores `session` in the browser. */
  setCookie(session: Session): string {
    return this.#cookie(this.cookieName, session.value, Math.max(0, session.expiresAt - this.#nowSec()))
  }

  /** The `Set-Cookie` value that removes the session cookie. */
  clearCookie(): string {
    return this.#cookie(this.cookieName, '', 0)
  }

  /** Checks a cookie value: well-formed, MAC valid, not expired, lifetime within `ttlSec`. */
  verify(value: string | undefined): Session | undefined {
    if (value === undefined || value.length === 0 || value.length > MAX_COOKIE_LENGTH) return undefined
    const parts = value.split('.')
    if (parts.length !== 4) return undefined
    const [idPart, iatPart, expPart, macPart] = parts as [string, string, string, string]
    if (!B64URL.test(idPart) || !SECONDS.test(iatPart) || !SECONDS.test(expPart)) return undefined
    const personId = Buffer.from(idPart, 'base64url').toString('utf8')
    if (personId.length === 0 || Buffer.from(personId, 'utf8').toString('base64url') !== idPart) return undefined
    const issuedAt = Number(iatPart)
    const expiresAt = Number(expPart)
    if (!macEqual(macPart, this.#mac(`${personId}|${issuedAt}|${expiresAt}`))) return undefined
    const now = this.#nowSec()
    if (expiresAt <= now || issuedAt > now + SKEW_SEC || expiresAt - issuedAt > this.#ttlSec || expiresAt <= issuedAt) return undefined
    return { personId, issuedAt, expiresAt, value }
  }

  /** The session of a request, from its `Cookie` header. */
  fromCookieHeader(cookieHeader: string | null | undefined): Session | undefined {
    return this.verify(readCookie(cookieHeader, this.cookieName))
  }

  /** The CSRF token of a session (the same for every form of that session). */
  csrfToken(session: Session): string {
    return this.#mac(`csrf|${session.value}`).toString('base64url')
  }

  /** Whether `token` is the CSRF token of `session` (constant time). */
  checkCsrf(session: Session | undefined, token: unknown): boolean {
    if (session === undefined) return false
    return macEqual(token, this.#mac(`csrf|${session.value}`))
  }

  /** A fresh random pre-login nonce and the `Set-Cookie` value that stores it. */
  newLoginNonce(): { readonly nonce: string; readonly cookie: string } {
    const nonce = randomBytes(18).toString('base64url')
    return { nonce, cookie: this.#cookie(this.loginCookieName, nonce, LOGIN_NONCE_TTL_SEC) }
  }

  /** The pre-login nonce of a request, if it has a well-formed one. */
  loginNonceFrom(cookieHeader: string | null | undefined): string | undefined {
    const nonce = readCookie(cookieHeader, this.loginCookieName)
    return nonce !== undefined && nonce.length === 24 && B64URL.test(nonce) ? nonce : undefined
  }

  /** The `Set-Cookie` value that removes the pre-login cookie. */
  clearLoginNonce(): string {
    return this.#cookie(this.loginCookieName, '', 0)
  }

  /** The login form's CSRF token for a pre-login nonce. */
  loginCsrfToken(nonce: string): string {
    return this.#mac(`login|${nonce}`).toString('base64url')
  }

  /** Whether `token` belongs to the pre-login nonce (constant time). */
  checkLoginCsrf(nonce: string | undefined, token: unknown): boolean {
    if (nonce === undefined) return false
    return macEqual(token, this.#mac(`login|${nonce}`))
  }
}

/** One cookie's value from a `Cookie` header (the first of that name); `undefined` if absent. */
export function readCookie(cookieHeader: string | null | undefined, name: string): string | undefined {
  if (typeof cookieHeader !== 'string' || cookieHeader.length > 16 * 1024) return undefined
  for (const pair of cookieHeader.split(';')) {
    const eq = pair.indexOf('=')
    if (eq < 0) continue
    if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}
