/**
 * The agent's side of enrollment and refresh at its agent provider (bootstrap draft §8.1 Two-Key
 * Refresh, §8.2 Single-Key Refresh, §10). The durable key proves the agent's identity; each agent
 * token binds a fresh ephemeral key (two-key) or the durable key itself (single-key).
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import {
  AAuthError,
  createJktJwt,
  createSigner,
  generateKeyPair,
  signRequest,
  type PrivateJwk,
  type PublicJwk,
  type Signer,
} from '../protocol/index.js'
import { readFailure } from './errors.js'

/** Options shared by the enrollment client calls. */
export interface ProviderClientOptions {
  /** The agent provider's issuer URL. */
  readonly provider: string
  /** The agent's durable private key. */
  readonly durableKey: PrivateJwk
  readonly fetch?: typeof fetch
  readonly now?: () => number
}

function publicOf(k: PrivateJwk): PublicJwk {
  const out: PublicJwk = { kty: k.kty, alg: k.alg }
  for (const m of ['crv', 'x', 'y'] as const) if (k[m] !== undefined) out[m] = k[m]
  return out
}

async function post(opts: ProviderClientOptions, path: string, signer: Signer, signatureKey: Parameters<typeof signRequest>[1]['signatureKey'], body: unknown): Promise<Record<string, unknown>> {
  const url = `${opts.provider}${path}`
  const bytes = new TextEncoder().encode(JSON.stringify(body))
  const { headers } = await signRequest({ method: 'POST', url, headers: new Headers({ 'content-type': 'application/json' }) }, { signer, signatureKey, body: bytes, ...(opts.now === undefined ? {} : { now: opts.now }) })
  const res = await (opts.fetch ?? fetch)(url, { method: 'POST', headers, body: bytes, redirect: 'manual' })
  if (!res.ok) throw await readFailure(res, 'agent provider', url)
  return (await res.json()) as Record<string, unknown>
}

function hwkOf(key: PrivateJwk) {
  const p = publicOf(key) as Record<string, string>
  return { scheme: 'hwk' as const, jwk: { kty: p['kty']!, ...p } }
}

/**
 * Enrolls the durable key with a one-time enrollment code (or an attestation in `body`).
 *
 * @returns the assigned agent identifier.
 * @throws {ProblemError} `invalid_request` for a bad code; {@link SignatureError} when the AP
 *   refuses the signature.
 */
export async function enroll(opts: ProviderClientOptions & { code?: string; body?: Record<string, unknown> }): Promise<string> {
  const signer = await createSigner(opts.durableKey)
  const res = await post(opts, '/enroll', signer, hwkOf(opts.durableKey), { ...opts.body, ...(opts.code === undefined ? {} : { enrollment_code: opts.code }) })
  return String(res['agent'])
}

/** A freshly issued agent token with the key it binds. */
export interface IssuedAgentToken {
  readonly agentToken: string
  readonly agent: string
  readonly expiresIn: number
  /** Signs requests with the key in the token's `cnf.jwk`. */
  readonly signer: Signer
}

/**
 * Obtains an agent token. By default a fresh ephemeral key is generated and named by a `jkt-jwt`
 * from the durable key (two-key refresh); with `singleKey` the durable key signs and is bound.
 * `body` carries a fresh attestation for agents enrolled with one that must be renewed (SPIFFE).
 */
export async function requestAgentToken(opts: ProviderClientOptions & { singleKey?: boolean; body?: Record<string, unknown> }): Promise<IssuedAgentToken> {
  let signer: Signer
  let signatureKey: Parameters<typeof signRequest>[1]['signatureKey']
  if (opts.singleKey === true) {
    signer = await createSigner(opts.durableKey)
    signatureKey = hwkOf(opts.durableKey)
  } else {
    const ephemeral = await generateKeyPair(opts.durableKey.alg === 'ES256' ? 'ES256' : 'Ed25519')
    signer = await createSigner(ephemeral.privateJwk)
    const jwt = await createJktJwt({ durableKey: opts.durableKey, ephemeralJwk: ephemeral.publicJwk, ...(opts.now === undefined ? {} : { now: opts.now }) })
    signatureKey = { scheme: 'jkt-jwt', jwt, cache: false }
  }
  const res = await post(opts, '/token', signer, signatureKey, opts.body ?? {})
  if (typeof res['agent_token'] !== 'string') throw new AAuthError('server_error', 'agent provider returned no agent_token')
  return { agentToken: res['agent_token'], agent: String(res['agent']), expiresIn: Number(res['expires_in']), signer }
}
