/**
 * A small, real OpenID Provider on 127.0.0.1 for unit-speed tests of the Keycloak bridge: a Hono
 * app serving a realm's discovery document and JWKS at Keycloak's paths
 * (`/realms/NAME/.well-known/openid-configuration`, `…/protocol/openid-connect/certs`), and tokens
 * signed with jose (RS256) in Keycloak's shapes. Keys rotate on demand (new `kid`, the old key
 * kept as Keycloak keeps a passive key); JWKS fetches are counted.
 *
 * The Keycloak container (test/helpers/keycloak.ts) is the end-to-end check; this is the fast one.
 */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'

/** A person of the realm, as the tokens describe them. */
export interface RealmUser {
  readonly sub: string
  readonly username: string
  readonly roles?: readonly string[]
  readonly departments?: readonly string[]
  readonly email?: string
}

/** How a token is signed and shaped beyond its claims. */
export interface TokenShape {
  /** Lifetime in seconds from `iat`. Default 300. */
  readonly lifetimeSec?: number
  /** `iat` in epoch seconds. Default now. */
  readonly iat?: number
  /** JOSE header `typ`. Default `JWT` (as Keycloak). */
  readonly typ?: string
  /** Header `kid` to claim (default: the current key's). */
  readonly kid?: string
}

/** A running provider. */
export interface OidcIssuer {
  /** `http://127.0.0.1:PORT/realms/NAME`. */
  readonly issuer: string
  /** The client the access tokens are issued to (`azp`). Default `aauth-person-server`. */
  readonly clientId: string
  /** How often the JWKS was fetched. */
  readonly jwksFetches: number
  /** The current signing key's `kid`. */
  readonly kid: string
  /** A Keycloak-shaped access token (payload `typ: Bearer`, `aud: account`, `azp` the client, realm roles, departments). */
  accessToken(user: RealmUser, claims?: JWTPayload, shape?: TokenShape): Promise<string>
  /** A Keycloak-shaped ID token (payload `typ: ID`, `aud` the client). */
  idToken(user: RealmUser, claims?: JWTPayload, shape?: TokenShape): Promise<string>
  /** Any claims, signed with the current key (`iss`, `iat`, `exp`, `jti` filled in unless given). */
  sign(claims: JWTPayload, shape?: TokenShape): Promise<string>
  /** A new signing key with a new `kid`; the previous one stays published. Returns the new `kid`. */
  rotate(): Promise<string>
  close(): Promise<void>
}

interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
}

async function newKey(n: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const kid = `rsa-${n}-${randomUUID().slice(0, 8)}`
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } }
}

/** Starts a provider for realm `realm` (default `demo`). */
export async function startOidcIssuer(o: { realm?: string; clientId?: string } = {}): Promise<OidcIssuer> {
  const realm = o.realm ?? 'demo'
  const clientId = o.clientId ?? 'aauth-person-server'
  const keys: SigningKey[] = [await newKey(1)]
  let jwksFetches = 0
  let issuer = ''
  const app = new Hono()
  app.get(`/realms/${realm}/.well-known/openid-configuration`, (c) =>
    c.json({
      issuer,
      authorization_endpoint: `${issuer}/protocol/openid-connect/auth`,
      token_endpoint: `${issuer}/protocol/openid-connect/token`,
      jwks_uri: `${issuer}/protocol/openid-connect/certs`,
      userinfo_endpoint: `${issuer}/protocol/openid-connect/userinfo`,
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
    }),
  )
  app.get(`/realms/${realm}/protocol/openid-connect/certs`, (c) => {
    jwksFetches++
    return c.json({ keys: keys.map((k) => k.publicJwk) })
  })
  const server = createAdaptorServer({ fetch: app.fetch }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realms/${realm}`

  const current = (): SigningKey => keys[keys.length - 1]!
  const sign = (claims: JWTPayload, shape: TokenShape = {}): Promise<string> => {
    const iat = shape.iat ?? Math.floor(Date.now() / 1000)
    const payload: JWTPayload = { iss: issuer, iat, exp: iat + (shape.lifetimeSec ?? 300), jti: randomUUID(), ...claims }
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: shape.typ ?? 'JWT', kid: shape.kid ?? current().kid }).sign(current().privateKey)
  }
  const userClaims = (u: RealmUser): JWTPayload => ({
    sub: u.sub,
    preferred_username: u.username,
    name: u.username[0]!.toUpperCase() + u.username.slice(1),
    email: u.email ?? `${u.username}@demo.example.com`,
    realm_access: { roles: [`default-roles-${realm}`, 'offline_access', ...(u.roles ?? [])] },
    ...(u.departments === undefined ? {} : { departments: [...u.departments] }),
  })
  return {
    issuer,
    clientId,
    get jwksFetches() {
      return jwksFetches
    },
    get kid() {
      return current().kid
    },
    accessToken: (u, claims = {}, shape) => sign({ ...userClaims(u), typ: 'Bearer', aud: 'account', azp: clientId, scope: 'openid profile email', ...claims }, shape),
    idToken: (u, claims = {}, shape) => sign({ ...userClaims(u), typ: 'ID', aud: clientId, azp: clientId, ...claims }, shape),
    sign,
    async rotate() {
      keys.push(await newKey(keys.length + 1))
      return current().kid
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
