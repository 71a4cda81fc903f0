/**
 * The Person Server's web pages for the person: log in, the consent page, and the account
 * dashboard, as one Hono app ({@link createPersonWeb}) to mount next to the protocol endpoints.
 *
 * ```ts
 * const web = createPersonWeb({ consent, store, secret: process.env.PS_WEB_SECRET!, name: 'My PS' })
 * app.route('/', web)
 * ```
 *
 * Routes:
 *
 * | Method | Path | |
 * |---|---|---|
 * | GET | `/` | 303 to `/account` |
 * | GET, POST | `/login` | username and password |
 * | POST | `/logout` | |
 * | GET | `/interaction?code=…` | find the request by code, open it, 303 to `/interaction/{id}` (no code: a form) |
 * | GET, POST | `/interaction/{id}` | the consent page; `action=approve\|deny\|ask\|answer` |
 * | GET | `/account` | agents, grants, waiting requests, audit trail (filters `agent`, `mission`, `from`, `to`) |
 * | GET | `/account/audit.json` | the audit query as JSON |
 * | POST | `/account/agents/revoke` | confirm, then revoke an agent (`iss`, `sub`, `confirm=yes`) |
 * | POST | `/account/grants/{id}/revoke` | confirm, then revoke a grant (`confirm=yes`) |
 * | GET | `/account/missions` | the person's missions |
 * | GET | `/account/missions/{s256}` | one mission: the blob as stored, accepted updates, the mission log (`.json`: the same as JSON) |
 * | POST | `/account/missions/{s256}/revoke` | confirm, then revoke a mission (`confirm=yes`) |
 *
 * Every page but `/login` needs a session; every POST needs the session's CSRF token. Responses
 * carry a strict CSP, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
 * `Cache-Control: no-store`. The pages use no JavaScript.
 *
 * @module
 */

import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { ConsentService } from '../consent.js'
import { mountConsentPages } from './consent-page.js'
import { defaultClientIp, MAX_FORM_BYTES, messagePage, type PersonWebStore, type WebContext, type WebEnv } from './context.js'
import { mountDashboard } from './dashboard.js'
import { mountMissionPages } from './missions-page.js'
import type { MissionService } from '../missions.js'
import { SECURITY_HEADERS } from './html.js'
import { mountLogin, type LoginMethod, type LoginThrottleOptions } from './login.js'
import { SessionManager } from './session.js'

export { hashPassword, verifyPassword } from './password.js'
export { renderMarkdown } from './markdown.js'
export { safeNext, type LoginMethod, type LoginHelpers, type LoginThrottleOptions } from './login.js'
export { SessionManager, type Session, type SessionOptions } from './session.js'
export type { PersonWebStore, WebEnv } from './context.js'

/** The paths the pages own (their middleware runs only there). */
const PAGE_PATHS = ['/', '/login', '/login/*', '/logout', '/interaction', '/interaction/:id', '/account', '/account/*'] as const

/** Options of {@link createPersonWeb}. */
export interface PersonWebOptions {
  /** What the pages may do (implemented by the Person Server). */
  readonly consent: ConsentService
  /** The person's missions; without it the `/account/missions` pages are not served. */
  readonly missions?: MissionService
  /** People (login, session) and the audit trail. */
  readonly store: PersonWebStore
  /** Key of the session and CSRF MACs, at least 32 bytes. Keep it stable across restarts and instances. */
  readonly secret: string | Uint8Array
  /**
   * `false` for plain-HTTP loopback development only: cookies lose `Secure` and the `__Host-`
   * prefix. Default `true`.
   */
  readonly secureCookies?: boolean
  /** The Person Server's display name. Default `'Person Server'`. */
  readonly name?: string
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Session lifetime, seconds. Default 12 hours. */
  readonly sessionTtlSec?: number
  /** More ways to log in (e.g. OIDC), next to the password form. */
  readonly loginMethods?: readonly LoginMethod[]
  /** Failed-login limits. Default 5 per username and 20 per client address per minute. */
  readonly loginThrottle?: LoginThrottleOptions
  /**
   * The client's address, for login throttling. Default: the socket address from
   * `@hono/node-server` (behind a reverse proxy, supply one that reads the proxy's header).
   */
  readonly clientIp?: (c: Context) => string
}

/**
 * Builds the person-facing web app of a Person Server.
 *
 * @throws {RangeError} for a secret shorter than 32 bytes or a bad `sessionTtlSec`.
 */
export function createPersonWeb(options: PersonWebOptions): Hono<WebEnv> {
  const now = options.now ?? Date.now
  const sessions = new SessionManager({
    secret: options.secret,
    now,
    ...(options.sessionTtlSec !== undefined ? { ttlSec: options.sessionTtlSec } : {}),
    ...(options.secureCookies !== undefined ? { secureCookies: options.secureCookies } : {}),
  })
  const ctx: WebContext = {
    consent: options.consent,
    store: options.store,
    sessions,
    psName: options.name ?? 'Person Server',
    now,
    clientIp: options.clientIp ?? defaultClientIp,
  }
  const app = new Hono<WebEnv>()

  // Only on the pages' own paths: mounted with `app.route('/', web)` next to the protocol
  // endpoints, a `'*'` middleware would also run for them.
  for (const path of PAGE_PATHS) {
    app.use(path, async (c, next) => {
      await next()
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value)
    })
    app.use(
      path,
      bodyLimit({
        maxSize: MAX_FORM_BYTES,
        onError: (c) => messagePage(c as Context<WebEnv>, ctx, 413, 'Too much', 'The form sent was too large.'),
      }),
    )
  }

  mountLogin(app, ctx, {
    ...(options.loginMethods !== undefined ? { methods: options.loginMethods } : {}),
    ...(options.loginThrottle !== undefined ? { throttle: options.loginThrottle } : {}),
  })
  mountConsentPages(app, ctx)
  mountDashboard(app, ctx)
  if (options.missions !== undefined) mountMissionPages(app, ctx, options.missions)

  app.notFound((c) => messagePage(c, ctx, 404, 'Page not found', 'There is no page at this address.'))
  app.onError((err, c) => {
    console.error('person-server web:', err)
    return messagePage(c, ctx, 500, 'Something went wrong', 'The server could not finish this. Please try again in a moment.')
  })
  return app
}
