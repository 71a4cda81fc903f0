/**
 * Test fixtures: in-memory issuers (agent provider, PS, AS, resource) served through a fake
 * egress fetcher, plus helpers to mint tokens and sign requests. The fake fetcher stands in for
 * the remote parties only; everything under test runs for real.
 */
import {
  createAgentToken,
  createSigner,
  generateKeyPair,
  JwksCache,
  type EgressFetcher,
  type EgressResponse,
  type IssuerKey,
  type PrivateJwk,
  type PublicJwk,
  type Signer,
} from '../../src/protocol/index.js'

export interface FakeIssuer {
  issuer: string
  dwk: string
  key: IssuerKey
  publicJwk: PublicJwk
  /** Mutable metadata document served at the well-known URL. */
  metadata: Record<string, unknown>
  /** Mutable JWKS served at jwks_uri. */
  jwks: { keys: Record<string, unknown>[] }
}

export interface FakeNetwork {
  fetcher: EgressFetcher
  /** URL → number of fetches. */
  hits: Map<string, number>
  routes: Map<string, () => EgressResponse | Promise<EgressResponse>>
  serveJson(url: string, body: unknown, headers?: Record<string, string>, status?: number): void
}

export function fakeNetwork(): FakeNetwork {
  const routes = new Map<string, () => EgressResponse | Promise<EgressResponse>>()
  const hits = new Map<string, number>()
  const fetcher: EgressFetcher = async (url) => {
    hits.set(url, (hits.get(url) ?? 0) + 1)
    const route = routes.get(url)
    if (route === undefined) return { url, status: 404, headers: new Headers(), body: new Uint8Array() }
    return route()
  }
  return {
    fetcher,
    hits,
    routes,
    serveJson(url, body, headers = {}, status = 200) {
      routes.set(url, () => ({ url, status, headers: new Headers({ 'content-type': 'application/json', ...headers }), body: new TextEncoder().encode(JSON.stringify(body)) }))
    },
  }
}

export async function fakeIssuer(net: FakeNetwork, issuer: string, dwk: string, extra: Record<string, unknown> = {}, kid = 'key-1'): Promise<FakeIssuer> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const jwksUri = `${issuer}/.well-known/jwks.json`
  const fi: FakeIssuer = {
    issuer,
    dwk,
    key: { kid, privateJwk },
    publicJwk,
    metadata: { issuer, jwks_uri: jwksUri, ...extra },
    jwks: { keys: [{ ...publicJwk, kid }] },
  }
  net.routes.set(`${issuer}/.well-known/${dwk}`, () => ({ url: '', status: 200, headers: new Headers(), body: new TextEncoder().encode(JSON.stringify(fi.metadata)) }))
  net.routes.set(jwksUri, () => ({ url: '', status: 200, headers: new Headers(), body: new TextEncoder().encode(JSON.stringify(fi.jwks)) }))
  return fi
}

export interface TestAgent {
  id: string
  signer: Signer
  privateJwk: PrivateJwk
  publicJwk: PublicJwk
  token: string
}

export async function testAgent(ap: FakeIssuer, local = 'bot', extra: Partial<Parameters<typeof createAgentToken>[0]> = {}): Promise<TestAgent> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const id = `aauth:${local}@${new URL(ap.issuer).host}`
  const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: id, cnfJwk: publicJwk, ...extra })
  return { id, signer: await createSigner(privateJwk), privateJwk, publicJwk, token }
}

export function jwksFor(net: FakeNetwork, now?: () => number): JwksCache {
  return new JwksCache({ fetcher: net.fetcher, ...(now === undefined ? {} : { now }) })
}
