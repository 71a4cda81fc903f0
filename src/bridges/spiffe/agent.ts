/**
 * The workload side of SPIFFE attestation: an agent that runs as a SPIFFE workload generates its
 * Ed25519 AAuth key in memory, enrols at its agent provider with an SVID from its
 * {@link SvidSource} (a JWT-SVID for the AP's audience, or its X.509-SVID as TLS client
 * certificate), and presents a current SVID again at every token refresh, so rotation is followed
 * without any restart.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { request as httpsRequest } from 'node:https'
import { AgentCredentials, type AgentCredential } from '../../agent/agent-credentials.js'
import { enroll, requestAgentToken } from '../../agent/enrollment-client.js'
import { assertServerIdentifier, generateKeyPair, type PrivateJwk } from '../../protocol/index.js'
import { SPIFFE_JWT_SVID_MEMBER } from './attestation.js'
import type { SvidSource } from './types.js'

/** Longest response body the mTLS fetch reads. */
const MAX_RESPONSE_BYTES = 1024 * 1024
const MTLS_TIMEOUT_MS = 15_000

/** Options of {@link spiffeAgentCredentials}. */
export interface SpiffeAgentOptions {
  /** Where the current SVIDs come from (e.g. {@link createWorkloadApiSource}). */
  readonly source: SvidSource
  /** The agent provider's issuer URL (the JWT-SVID audience). */
  readonly provider: string
  /** The durable AAuth key. Default: a new Ed25519 key, kept in memory only. */
  readonly durableKey?: PrivateJwk
  /** Present a JWT-SVID in the body, or the X.509-SVID as TLS client certificate. */
  readonly via: 'jwt-svid' | 'mtls'
  /** mTLS: trust anchors (PEM text or DER) for the AP's server certificate. Default Node's CAs. */
  readonly ca?: string | Uint8Array | readonly (string | Uint8Array)[]
  /** mTLS: dial this address instead of the provider's host (sidecars, tests); TLS still checks the provider's name. */
  readonly connectTo?: { readonly host: string; readonly port: number }
  /** Bind the durable key itself in each token (single-key refresh) instead of a fresh ephemeral key. */
  readonly singleKey?: boolean
  /** JWT-SVID mode: the `fetch` to reach the provider with. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** Development only: an `http://127.0.0.1:PORT` provider (JWT-SVID mode). */
  readonly allowInsecureLoopback?: boolean
  readonly refreshMarginSec?: number
  readonly onRefresh?: (credential: AgentCredential) => void
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/** An enrolled SPIFFE agent. */
export interface SpiffeAgent {
  /** The agent identifier the AP assigned. */
  readonly agent: string
  /** Agent tokens, each requested with a current SVID. */
  readonly credentials: AgentCredentials
  /** The durable key (so a caller may keep it; it is never written anywhere by this module). */
  readonly durableKey: PrivateJwk
}

const pem = (der: Uint8Array, label: string) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`

function caOption(ca: SpiffeAgentOptions['ca']): string[] | undefined {
  if (ca === undefined) return undefined
  const list = typeof ca === 'string' || ca instanceof Uint8Array ? [ca] : ca
  return list.map((c) => (typeof c === 'string' ? c : pem(c, 'CERTIFICATE')))
}

/**
 * A `fetch` that sends each request over a new TLS connection presenting the current X.509-SVID
 * of `source` as client certificate (a rotated SVID is used from the next request on). Request
 * bodies are sent as bytes; redirects are not followed.
 */
export function createMtlsFetch(source: SvidSource, options: Pick<SpiffeAgentOptions, 'ca' | 'connectTo'> = {}): typeof fetch {
  const ca = caOption(options.ca)
  return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init)
    const url = new URL(req.url)
    if (url.protocol !== 'https:') throw new TypeError(`mutual TLS needs an https URL, not ${url.origin}`)
    const svid = await source.x509Svid()
    const body = req.body === null ? undefined : Buffer.from(await req.arrayBuffer())
    const headers: Record<string, string> = {}
    req.headers.forEach((v, k) => (headers[k] = v))
    headers['host'] = url.host
    if (body !== undefined) headers['content-length'] = String(body.byteLength)
    return new Promise<Response>((resolve, reject) => {
      const r = httpsRequest(
        {
          host: options.connectTo?.host ?? url.hostname,
          port: options.connectTo?.port ?? (url.port === '' ? 443 : Number(url.port)),
          servername: url.hostname,
          method: req.method,
          path: `${url.pathname}${url.search}`,
          headers,
          cert: svid.certChain.map((c) => pem(c, 'CERTIFICATE')).join(''),
          key: pem(svid.privateKey, 'PRIVATE KEY'),
          ...(ca === undefined ? {} : { ca }),
          agent: false,
          timeout: MTLS_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.byteLength
            if (size > MAX_RESPONSE_BYTES) res.destroy(new Error(`response from ${url.origin} exceeds ${MAX_RESPONSE_BYTES} bytes`))
            else chunks.push(chunk)
          })
          res.on('error', reject)
          res.on('end', () => {
            const h = new Headers()
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) h.append(k, one)
            const status = res.statusCode ?? 502
            resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }))
          })
        },
      )
      r.on('timeout', () => r.destroy(new Error(`mutual TLS request to ${url.origin} timed out`)))
      r.on('error', reject)
      r.end(body)
    })
  }) as typeof fetch
}

/**
 * Enrols a SPIFFE workload at its agent provider and returns credentials that refresh with a
 * current SVID each time.
 *
 * @throws the AP's refusal (a `ProblemError` `denied` whose body names the `svid_error`) or the
 *   source's error when no SVID can be had.
 * @example
 * ```ts
 * const source = createWorkloadApiSource()
 * const { agent, credentials } = await spiffeAgentCredentials({ source, provider: 'https://agents.demo.example.com', via: 'jwt-svid' })
 * const client = createAgentClient({ credentials })
 * ```
 */
export async function spiffeAgentCredentials(options: SpiffeAgentOptions): Promise<SpiffeAgent> {
  assertServerIdentifier(options.provider, { allowInsecureLoopback: options.allowInsecureLoopback === true && options.via === 'jwt-svid' })
  const durableKey = options.durableKey ?? (await generateKeyPair('Ed25519')).privateJwk
  const { source, provider } = options
  const fetch = options.via === 'mtls' ? createMtlsFetch(source, options) : (options.fetch ?? globalThis.fetch)
  const attestation = async (): Promise<Record<string, unknown>> => (options.via === 'jwt-svid' ? { [SPIFFE_JWT_SVID_MEMBER]: (await source.jwtSvid(provider)).token } : {})
  const base = { provider, durableKey, fetch, ...(options.now === undefined ? {} : { now: options.now }) }
  const agent = await enroll({ ...base, body: await attestation() })
  const credentials = new AgentCredentials({
    refresh: async () => requestAgentToken({ ...base, body: await attestation(), ...(options.singleKey === true ? { singleKey: true } : {}) }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.refreshMarginSec === undefined ? {} : { refreshMarginSec: options.refreshMarginSec }),
    ...(options.onRefresh === undefined ? {} : { onRefresh: options.onRefresh }),
  })
  return { agent, credentials, durableKey }
}
