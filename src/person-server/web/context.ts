/**
 * What the page modules share: the Hono environment, the dependencies, the login guard with its
 * CSRF check, form reading, and the error pages.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from 'hono'
import { ConsentError, type ConsentErrorCode, type ConsentService } from '../consent.js'
import type { PersonRecord, PersonServerStore } from '../store/types.js'
import { SECURITY_HEADERS, html, layout, type HtmlValue } from './html.js'
import type { Session, SessionManager } from './session.js'

/** The store methods the pages use. */
export type PersonWebStore = Pick<PersonServerStore, 'getPerson' | 'getPersonByUsername' | 'queryAudit' | 'commit'>

/** Hono environment of the pages: set by {@link requirePerson}. */
export interface WebEnv {
  Variables: {
    /** The logged-in person. */
    person: PersonRecord
    session: Session
    /** The CSRF token of the session, for forms. */
    csrf: string
    /** The POST form fields (strings only), read once by {@link requirePerson}. */
    form: Readonly<Record<string, string>>
  }
}

/** Everything a page module needs. */
export interface WebContext {
  readonly consent: ConsentService
  readonly store: PersonWebStore
  readonly sessions: SessionManager
  /** The Person Server's display name. */
  readonly psName: string
  /** Clock, epoch milliseconds. */
  readonly now: () => number
  /** The client's address, for login throttling. */
  readonly clientIp: (c: Context) => string
}

/** Largest form body accepted (bytes). */
export const MAX_FORM_BYTES = 64 * 1024

/** The client address from `@hono/node-server`'s `env.incoming`, else `'unknown'`. */
export function defaultClientIp(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: unknown } } } | undefined
  const addr = env?.incoming?.socket?.remoteAddress
  return typeof addr === 'string' && addr.length > 0 ? addr : 'unknown'
}

/** Options of {@link sendPage}. */
export interface SendPageOptions {
  readonly title: string
  readonly body: HtmlValue
  readonly status?: number
}

/** Renders a full page; shows the logged-in person (and the log-out button) when there is one. */
export function sendPage(c: Context<WebEnv>, ctx: WebContext, options: SendPageOptions): Response {
  const person = c.get('person') as PersonRecord | undefined
  const csrf = c.get('csrf') as string | undefined
  const doc = layout({
    title: options.title,
    body: options.body,
    psName: ctx.psName,
    person: person !== undefined && csrf !== undefined ? { displayName: person.displayName, username: person.username, csrf } : undefined,
  })
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value)
  return c.html(doc.toString(), (options.status ?? 200) as 200)
}

/** A simple message page. */
export function messagePage(c: Context<WebEnv>, ctx: WebContext, status: number, title: string, message: HtmlValue, extra?: HtmlValue): Response {
  return sendPage(c, ctx, {
    status,
    title,
    body: html`<h1>${title}</h1><div class="card"><p>${message}</p>${extra}<p><a href="/account">Go to your account</a></p></div>`,
  })
}

/** The 403 page of a refused POST (no valid session, no or wrong CSRF token, cross-site). */
export function forbiddenPage(c: Context<WebEnv>, ctx: WebContext): Response {
  return sendPage(c, ctx, {
    status: 403,
    title: 'Not allowed',
    body: html`<h1>Not allowed</h1>
<div class="error"><p>Nothing was done. This form has expired, you are no longer logged in, or it was not sent from this site.</p></div>
<p><a class="button secondary" href="/login">Log in</a></p>`,
  })
}

const CONSENT_ERRORS: Readonly<Record<ConsentErrorCode, { readonly status: number; readonly title: string; readonly help: string }>> = {
  not_found: { status: 404, title: 'Request not found', help: 'There is no such request, or its code has already been used.' },
  not_yours: { status: 403, title: 'Not your request', help: 'This request belongs to another account.' },
  closed: { status: 409, title: 'Request already closed', help: 'This request is no longer open: it was already decided, withdrawn, or it expired.' },
  clarification_limit: { status: 429, title: 'No more questions', help: 'You have asked as many questions as allowed for this request. You can still approve or deny it.' },
  bad_input: { status: 400, title: 'That did not work', help: 'Something in the form was not acceptable.' },
}

/** The HTTP status shown for a {@link ConsentError} code. */
export function consentErrorStatus(code: ConsentErrorCode): number {
  return CONSENT_ERRORS[code]?.status ?? 400
}

/** A friendly page for a refused consent action; `back` links to the page to return to. */
export function consentErrorPage(c: Context<WebEnv>, ctx: WebContext, err: ConsentError, back?: string): Response {
  const info = CONSENT_ERRORS[err.code] ?? CONSENT_ERRORS.bad_input
  return sendPage(c, ctx, {
    status: info.status,
    title: info.title,
    body: html`<h1>${info.title}</h1>
<div class="error"><p>${info.help}</p>${err.message !== '' && html`<p class="muted">${err.message}</p>`}</div>
${back !== undefined && html`<p><a class="button secondary" href="${back}">Back to the request</a></p>`}
<p><a href="/account">Go to your account</a></p>`,
  })
}

/** Runs `fn`, turning a {@link ConsentError} into its page; other errors propagate. */
export async function withConsentErrors(c: Context<WebEnv>, ctx: WebContext, fn: () => Promise<Response>, back?: string): Promise<Response> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof ConsentError) return consentErrorPage(c, ctx, err, back)
    throw err
  }
}

/** Reads a urlencoded or multipart form body; file fields and non-form bodies give nothing. */
export async function readForm(c: Context): Promise<Record<string, string>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) return {}
  let body: Record<string, unknown>
  try {
    body = (await c.req.parseBody()) as Record<string, unknown>
  } catch {
    return {}
  }
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [name, value] of Object.entries(body)) if (typeof value === 'string') out[name] = value
  return out
}

/** Whether the browser says the request came from another site (`Sec-Fetch-Site`). */
export function isCrossSite(c: Context): boolean {
  const site = c.req.header('sec-fetch-site')
  return site === 'cross-site' || site === 'same-site'
}

/** The path and query of the request, for `/login?next=…`. */
export function currentPath(c: Context): string {
  const url = new URL(c.req.url)
  return url.pathname + url.search
}

/**
 * The login guard. A GET without a valid session is redirected (303) to `/login?next=<this
 * page>`; a POST without a valid session, without the session's CSRF token (form field `csrf`),
 * or sent cross-site gets the 403 page and nothing else happens. On success `person`, `session`,
 * `csrf` and (for POST) `form` are set.
 */
export function requirePerson(ctx: WebContext): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    const isPost = c.req.method === 'POST'
    const session = ctx.sessions.fromCookieHeader(c.req.header('cookie'))
    const person = session === undefined ? undefined : await ctx.store.getPerson(session.personId)
    if (isPost) {
      if (isCrossSite(c) || session === undefined || person === undefined) return forbiddenPage(c, ctx)
      const form = await readForm(c)
      if (!ctx.sessions.checkCsrf(session, form['csrf'])) return forbiddenPage(c, ctx)
      c.set('form', form)
    } else if (session === undefined || person === undefined) {
      const headers = new Headers({ Location: `/login?next=${encodeURIComponent(currentPath(c))}` })
      if (session !== undefined) headers.append('Set-Cookie', ctx.sessions.clearCookie())
      return new Response(null, { status: 303, headers })
    }
    c.set('session', session!)
    c.set('person', person!)
    c.set('csrf', ctx.sessions.csrfToken(session!))
    await next()
    return undefined
  }
}

/** The hidden CSRF field for forms of the current session. */
export function csrfField(c: Context<WebEnv>): HtmlValue {
  return html`<input type="hidden" name="csrf" value="${c.get('csrf')}">`
}
