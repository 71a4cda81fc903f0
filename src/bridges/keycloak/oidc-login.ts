/**
 * Logging in to the Person Server through a Keycloak realm (or any OpenID Provider): a
 * {@link LoginMethod} running the authorization code flow with PKCE as a **public client** — no
 * client secret anywhere (OpenID Connect Core 1.0 §3.1; RFC 7636 with `S256`).
 *
 * - `GET /login/{id}?next=…` starts a flow: fresh `state`, `nonce` and code verifier, kept in the
 *   PS's memory (single use, 10 minutes) and bound to the browser by a random HttpOnly cookie
 *   (only its hash is stored), then a 303 to the realm's authorization endpoint.
 * - The callback (the path of `redirectUri`) accepts a flow only once, only from the browser that
 *   started it, exchanges the code (with the verifier) at the token endpoint, and verifies the ID
 *   token: realm signature, issuer, lifetime, `aud` naming the client, `azp` (when present, or when
 *   there are several audiences) equal to the client, and `nonce` equal to the flow's. Then the
 *   person record is created or refreshed from the claims ({@link upsertRealmPerson}) and a session
 *   starts; the browser goes to the flow's `next` (made safe by the PS).
 * - Every refusal shows an error page and starts no session: unknown, expired, replayed or
 *   foreign `state` (400), an error from the realm such as `access_denied` (403 for a refusal,
 *   502 otherwise), a failing token endpoint (502), an ID token that does not verify (401), a
 *   username already held by another account of this PS (409).
 *
 * Pending flows live in this process: behind a load balancer, keep a browser on one PS instance
 * for the few seconds of a login (or run one instance).
 *
 * @module
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context, Hono } from 'hono'
import type { JWTPayload } from 'jose'
import { AAuthError, jsonObject } from '../../protocol/index.js'
import { readCookie } from '../../person-server/web/session.js'
import { sendPage, type WebEnv } from '../../person-server/web/context.js'
import { html } from '../../person-server/web/html.js'
import type { LoginHelpers, LoginMethod } from '../../person-server/web/login.js'
import { upsertRealmPerson, type PersonMapping } from './person-mapping.js'
import { KeycloakRealm, RealmTokenError, type RealmOptions } from './realm.js'

/** Options of {@link keycloakLogin}. */
export interface KeycloakLoginOptions {
  /** The realm, or the options to make one (`issuer` like `https://sso.example.com/realms/demo`). */
  readonly realm: KeycloakRealm | RealmOptions
  /** The PS's client id at the realm (a public client with PKCE S256 required). */
  readonly clientId: string
  /** The absolute callback URL registered at the realm, e.g. `${psIssuer}/login/oidc/callback`. */
  readonly redirectUri: string
  /** Scopes asked for. Default `['openid', 'profile', 'email']` (`openid` is always included). */
  readonly scopes?: readonly string[]
  /** How claims become the person record. Default: roles and `departments` as permissions. */
  readonly mapping?: PersonMapping
  /** The login page button's text. Default `'Log in with Keycloak'`. */
  readonly label?: string
  /** The method id and route segment (`/login/{id}`). Default `'oidc'`. */
  readonly id?: string
  /** How long a started login may take, seconds. Default 600. */
  readonly flowTtlSec?: number
  /** At most this many logins pending at once (oldest dropped). Default 10,000. */
  readonly maxPendingFlows?: number
}

interface Flow {
  readonly verifier: string
  readonly nonce: string
  readonly next: string
  readonly browser: Buffer
  readonly expiresAt: number
}

const B64URL_43 = /^[A-Za-z0-9_-]{43}$/

const random = (): string => randomBytes(32).toString('base64url')
const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

function sameString(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

/** Why a login was refused: the page's status, title and message. */
class LoginRefused extends Error {
  readonly status: number
  readonly title: string
  constructor(status: number, title: string, message: string) {
    super(message)
    this.name = 'LoginRefused'
    this.status = status
    this.title = title
  }
}

/**
 * The checks of an ID token beyond {@link KeycloakRealm.verify} (OpenID Connect Core 1.0 §3.1.3.7):
 * the `nonce` is the flow's, and an `azp` (required when `aud` has several values) names the client.
 *
 * @throws {RealmTokenError} naming the failed check.
 */
export function checkIdTokenClaims(claims: JWTPayload, o: { readonly clientId: string; readonly nonce: string }): void {
  const nonce = claims['nonce']
  if (typeof nonce !== 'string' || !sameString(nonce, o.nonce)) throw new RealmTokenError('ID token nonce does not match this login')
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  const azp = claims['azp']
  if (aud.length > 1 && azp === undefined) throw new RealmTokenError('ID token has several audiences and no azp')
  if (azp !== undefined && azp !== o.clientId) throw new RealmTokenError(`ID token azp "${String(azp)}" is not this client`)
}

/**
 * A {@link LoginMethod} that delegates person login to a Keycloak realm (authorization code +
 * PKCE, public client). Pass it to `createPersonServer({ loginMethods: [...] })`.
 *
 * @throws {TypeError} at once for an unusable `redirectUri`, `clientId` or `id`.
 */
export function keycloakLogin(options: KeycloakLoginOptions): LoginMethod {
  const realm = options.realm instanceof KeycloakRealm ? options.realm : new KeycloakRealm(options.realm)
  const id = options.id ?? 'oidc'
  if (!/^[a-z0-9-]{1,32}$/.test(id)) throw new TypeError(`login method id "${id}" must be 1-32 of a-z, 0-9, -`)
  if (options.clientId === '') throw new TypeError('clientId is required')
  let callback: URL
  try {
    callback = new URL(options.redirectUri)
  } catch {
    throw new TypeError(`redirectUri "${options.redirectUri}" is not an absolute URL`)
  }
  if (callback.search !== '' || callback.hash !== '') throw new TypeError('redirectUri must have no query or fragment')
  const scope = [...new Set(['openid', ...(options.scopes ?? ['profile', 'email'])])].join(' ')
  const label = options.label ?? 'Log in with Keycloak'
  const ttlMs = (options.flowTtlSec ?? 600) * 1000
  const maxFlows = options.maxPendingFlows ?? 10_000
  const flows = new Map<string, Flow>()
  const startPath = `/login/${id}`

  return {
    id,
    // A link, not a form: the page's CSP `form-action 'self'` would stop the redirect to the realm.
    loginPageExtras: ({ next }) => html`<div class="card login-${id}">
<p><a class="button secondary" href="${`${startPath}?next=${encodeURIComponent(next)}`}">${label}</a></p>
</div>`,
    mount(app: Hono<WebEnv>, helpers: LoginHelpers) {
      const { ctx } = helpers
      const secure = ctx.sessions.cookieName.startsWith('__Host-')
      const cookieName = `${secure ? '__Host-' : ''}aauth_ps_${id.replace(/-/g, '_')}_flow`
      const cookie = (value: string, maxAge: number): string => `${cookieName}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? '; Secure' : ''}`

      const refusedPage = (c: Context<WebEnv>, e: LoginRefused): Response =>
        sendPage(c, ctx, {
          status: e.status,
          title: e.title,
          body: html`<h1>${e.title}</h1>
<div class="error" role="alert"><p>${e.message}</p><p>You are not logged in.</p></div>
<p><a class="button secondary" href="/login">Back to log in</a></p>`,
        })

      app.get(startPath, async (c) => {
        const next = helpers.safeNext(c.req.query('next'))
        let authorize: URL
        try {
          const meta = await realm.metadata()
          const methods = meta.code_challenge_methods_supported
          if (methods !== undefined && !methods.includes('S256')) throw new Error('the realm does not support PKCE S256')
          authorize = new URL(meta.authorization_endpoint)
        } catch {
          return refusedPage(c, new LoginRefused(502, 'Login service unavailable', `The identity provider ${realm.issuer} could not be reached or is misconfigured. Try again later.`))
        }
        const now = ctx.now()
        for (const [k, f] of flows) if (f.expiresAt <= now) flows.delete(k)
        while (flows.size >= maxFlows) flows.delete(flows.keys().next().value!)
        const presented = readCookie(c.req.header('cookie'), cookieName)
        const browser = presented !== undefined && B64URL_43.test(presented) ? presented : random()
        const state = random()
        const flow: Flow = { verifier: random(), nonce: random(), next, browser: sha256(browser), expiresAt: now + ttlMs }
        flows.set(state, flow)
        const challenge = createHash('sha256').update(flow.verifier, 'ascii').digest('base64url')
        for (const [k, v] of Object.entries({ client_id: options.clientId, response_type: 'code', scope, redirect_uri: options.redirectUri, state, nonce: flow.nonce, code_challenge: challenge, code_challenge_method: 'S256' })) {
          authorize.searchParams.set(k, v)
        }
        const headers = new Headers({ Location: authorize.href, 'Cache-Control': 'no-store' })
        headers.append('Set-Cookie', cookie(browser, Math.ceil(ttlMs / 1000)))
        return new Response(null, { status: 303, headers })
      })

      app.get(callback.pathname, async (c) => {
        try {
          const q = c.req.query()
          const state = q['state']
          const flow = state === undefined ? undefined : flows.get(state)
          if (state === undefined || flow === undefined || flow.expiresAt <= ctx.now()) {
            if (state !== undefined) flows.delete(state)
            throw new LoginRefused(400, 'Login expired', 'This login is unknown, was already used, or took too long. Please start again.')
          }
          const presented = readCookie(c.req.header('cookie'), cookieName)
          if (presented === undefined || !timingSafeEqual(sha256(presented), flow.browser)) {
            // Not this browser's login (e.g. a link from someone else): leave the flow to its owner.
            throw new LoginRefused(400, 'Login not started here', 'This login was not started in this browser. Please start again.')
          }
          flows.delete(state)
          if (q['error'] !== undefined) {
            const denied = q['error'] === 'access_denied'
            throw new LoginRefused(denied ? 403 : 502, denied ? 'Login cancelled' : 'Login failed', denied ? 'The identity provider did not log you in (access denied).' : `The identity provider answered with the error "${q['error'].slice(0, 64)}".`)
          }
          const code = q['code']
          if (code === undefined || code === '') throw new LoginRefused(400, 'Login failed', 'The identity provider sent no authorization code.')
          const claims = await redeem(code, flow)
          let person
          try {
            person = await upsertRealmPerson(ctx.store, realm.issuer, claims, options.mapping, ctx.now())
          } catch (e) {
            if (e instanceof AAuthError && e.code === 'invalid_request') throw new LoginRefused(409, 'Account conflict', `${e.message}. Ask the administrator to resolve it.`)
            throw e
          }
          const started = helpers.startSession(c, person, flow.next)
          const headers = new Headers(started.headers)
          headers.append('Set-Cookie', cookie('', 0))
          return new Response(null, { status: started.status, headers })
        } catch (e) {
          if (e instanceof LoginRefused) return refusedPage(c, e)
          throw e
        }
      })

      /** Code → tokens at the realm, then the verified ID token claims. */
      async function redeem(code: string, flow: Flow): Promise<JWTPayload> {
        const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: options.redirectUri, client_id: options.clientId, code_verifier: flow.verifier })
        let body: Record<string, unknown> | undefined
        let status = 0
        try {
          const res = await realm.tokenRequest(form)
          status = res.status
          body = jsonObject(res)
        } catch {
          throw new LoginRefused(502, 'Login failed', 'The identity provider’s token endpoint could not be reached.')
        }
        if (status !== 200 || typeof body?.['id_token'] !== 'string') {
          const err = typeof body?.['error'] === 'string' ? ` (${body['error'].slice(0, 64)})` : ''
          throw new LoginRefused(502, 'Login failed', `The identity provider did not issue tokens: status ${status}${err}.`)
        }
        try {
          const claims = await realm.verify(body['id_token'], { audience: options.clientId, requiredClaims: ['nonce'] })
          checkIdTokenClaims(claims, { clientId: options.clientId, nonce: flow.nonce })
          return claims
        } catch (e) {
          if (e instanceof RealmTokenError || e instanceof AAuthError) throw new LoginRefused(401, 'Login failed', `The identity provider’s ID token was refused: ${e.message}.`)
          throw e
        }
      }
    },
  }
}
