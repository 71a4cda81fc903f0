/**
 * The agent's side of RFC 8693 token exchange at a Person Server: an app that already holds a
 * person's realm access token (Keycloak) hands it to its agent, the agent sends it to the PS's
 * `token_exchange_endpoint` in a request it signs itself (the signer is the actor), and holds the
 * AAuth auth token it gets back, so its next calls to the resource present it without a consent
 * round trip (scenario S2).
 *
 * @module
 */

import type { AgentClient, HeldToken } from '../../agent/index.js'
import { AAuthError, createEgressFetcher, DWK, fetchMetadata, type EgressFetcher } from '../../protocol/index.js'

/** RFC 8693 §3 token type identifiers used here. */
export const TOKEN_TYPE_URN = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const

/** RFC 8693 §2.1 grant type. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'

/** The PS refused the exchange (RFC 8693 §2.2.2): its `error` and `error_description`. */
export class TokenExchangeError extends Error {
  /** The OAuth error code, e.g. `invalid_scope`, `invalid_grant`, `interaction_required`. */
  readonly error: string
  readonly status: number
  constructor(error: string, description: string, status: number) {
    super(`token exchange refused (${status} ${error}): ${description}`)
    this.name = 'TokenExchangeError'
    this.error = error
    this.status = status
  }
}

/** Arguments of {@link exchangeToken}. */
export interface ExchangeTokenOptions {
  /** The Person Server's issuer URL. */
  readonly personServer: string
  /** The person's realm access token (the subject). */
  readonly subjectToken: string
  /** The AAuth resource the auth token is for (`audience`). */
  readonly resource: string
  /** Space-separated scope values; default: everything the person and the agent may both do. */
  readonly scope?: string
  /** Fetches the PS metadata. Default: the library's egress fetcher. */
  readonly egress?: EgressFetcher
  /** Development only: admit `http://127.0.0.1:PORT` servers. */
  readonly allowInsecureLoopback?: boolean
}

/**
 * Exchanges a person's realm access token for an AAuth auth token and has `client` hold it.
 *
 * @returns the held token (its `scope` is what was granted).
 * @throws {TokenExchangeError} the PS's refusal; {@link AAuthError} `invalid_metadata` when the PS
 *   publishes no `token_exchange_endpoint` on its own origin; `AgentError` `token_rejected` when
 *   the returned token does not verify for this agent.
 */
export async function exchangeToken(client: AgentClient, o: ExchangeTokenOptions): Promise<HeldToken> {
  const idOpts = { allowInsecureLoopback: o.allowInsecureLoopback === true }
  const metadata = (await fetchMetadata(o.personServer, DWK.person, { fetcher: o.egress ?? createEgressFetcher(idOpts), ...idOpts })) as unknown as Record<string, unknown>
  const endpoint = metadata['token_exchange_endpoint']
  // The subject token goes only to the PS's own origin.
  if (typeof endpoint !== 'string' || new URL(endpoint).origin !== new URL(o.personServer).origin) {
    throw new AAuthError('invalid_metadata', `${o.personServer} publishes no token_exchange_endpoint on its own origin`)
  }
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: o.subjectToken,
    subject_token_type: TOKEN_TYPE_URN.accessToken,
    audience: o.resource,
    requested_token_type: TOKEN_TYPE_URN.jwt,
    ...(o.scope === undefined ? {} : { scope: o.scope }),
  })
  const res = await client.fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>
  if (res.status !== 200) throw new TokenExchangeError(String(body['error'] ?? 'server_error'), String(body['error_description'] ?? body['detail'] ?? ''), res.status)
  const token = body['access_token']
  if (typeof token !== 'string') throw new TokenExchangeError('server_error', 'the answer has no access_token', res.status)
  return client.holdAuthToken(token, { resource: o.resource, issuer: o.personServer })
}
