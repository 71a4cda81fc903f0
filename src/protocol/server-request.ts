/**
 * A server calling another server in its own right (main draft §Keying Material, §Token
 * Revocation "Revocation Request"; CHECKLIST SIG-19, SIG-03): the request is signed with the
 * `jwks_uri` `Signature-Key` scheme — `id` is the caller's issuer, `dwk` its metadata document, `kid`
 * the key in its JWKS — and a body is covered by `content-type` and `content-digest`.
 *
 * Used by an agent provider revoking an agent token at a PS, by a PS revoking tokens at resources,
 * and by a server polling the pending URL of such a revocation.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { deadlineSignal } from '../lib/deadline.js'
import { createSigner, type Signer } from './crypto.js'
import { admitDestination } from './egress.js'
import { EgressError } from './errors.js'
import type { AAuthDwk } from './metadata.js'
import { signRequest } from './signing.js'
import type { IssuerKey } from './tokens/common.js'

/** Default deadline of a server-signed request (ms). */
export const SERVER_REQUEST_TIMEOUT_MS = 10_000

/** Options of {@link sendServerSigned}. */
export interface ServerSignedRequest {
  /** Where to send it; admitted by {@link admitDestination} (https to public addresses, or loopback when allowed). */
  readonly url: string
  readonly method: string
  /** A JSON body, sent as `application/json` and covered by the signature. */
  readonly json?: unknown
  /** The caller's server identifier: the `id` of the `jwks_uri` member. */
  readonly issuer: string
  /** The caller's metadata document name (`aauth-person.json`, `aauth-agent.json`, …). */
  readonly dwk: AAuthDwk
  /** The signing key; its `kid` must be published in the caller's JWKS. */
  readonly key: IssuerKey
  /** Clock in epoch milliseconds, for `created`. */
  readonly now?: () => number
  /** Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** Deadline of the whole exchange, the response body included. Default 10 s. */
  readonly timeoutMs?: number
  /** Development only: admit `http://127.0.0.1:PORT` and `http://localhost:PORT`. */
  readonly allowInsecureLoopback?: boolean
  /** Extra request headers, not covered by the signature (e.g. `Prefer: wait=N`). */
  readonly headers?: HeadersInit
}

// A server signs with the same key for many requests (a cascade): import each key once.
const signers = new WeakMap<IssuerKey, Promise<Signer>>()

function signerOf(key: IssuerKey): Promise<Signer> {
  let signer = signers.get(key)
  if (signer === undefined) {
    signer = createSigner(key.privateJwk)
    signers.set(key, signer)
    // A failed import is not remembered.
    signer.catch(() => signers.delete(key))
  }
  return signer
}

/**
 * Sends a request signed by a server as itself (`Signature-Key: sig=jwks_uri;id=…;dwk=…;kid=…`).
 * Redirects are not followed (`redirect: 'manual'`): a `3xx` comes back as it is.
 *
 * The deadline covers the whole exchange: when it passes before the response headers arrive the
 * promise rejects, and when it passes while the body is being read that read fails, in both
 * cases with {@link EgressError} `fetch_timeout`. Other transport failures are rethrown as
 * `fetch` raised them.
 *
 * @throws {EgressError} `egress_refused` for a URL egress admission refuses (nothing is sent);
 *   `fetch_timeout` at the deadline.
 * @throws {TypeError} for a key that cannot sign.
 * @see main draft §Token Revocation "Revocation Request"; CHECKLIST SIG-19.
 * @example
 * ```ts
 * const res = await sendServerSigned({
 *   url: 'https://ps.example/revoke', method: 'POST', json: { jti, exp },
 *   issuer: 'https://agents.example', dwk: DWK.agent, key: keys.current,
 * })
 * ```
 */
export async function sendServerSigned(request: ServerSignedRequest): Promise<Response> {
  const { url, method } = request
  await admitDestination(url, { allowInsecureLoopback: request.allowInsecureLoopback === true })
  const headers = new Headers(request.headers)
  const body = request.json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(request.json))
  if (body !== undefined) headers.set('content-type', 'application/json')
  const { key } = request
  const signed = await signRequest(
    { method, url, headers },
    {
      signer: await signerOf(key),
      signatureKey: { scheme: 'jwks_uri', id: request.issuer, dwk: request.dwk, kid: key.kid },
      ...(body === undefined ? {} : { body }),
      ...(request.now === undefined ? {} : { now: request.now }),
    },
  )
  const ms = request.timeoutMs ?? SERVER_REQUEST_TIMEOUT_MS
  // Not cleared on success: the signal also guards the body the caller reads (the timer is
  // unreferenced, and aborting a finished exchange does nothing).
  const deadline = deadlineSignal(ms, () => new EgressError('fetch_timeout', url, `no complete answer within ${ms} ms`))
  try {
    return await (request.fetch ?? globalThis.fetch)(url, {
      method,
      headers: signed.headers,
      ...(body === undefined ? {} : { body: body as BufferSource }),
      redirect: 'manual',
      signal: deadline.signal,
    })
  } catch (err) {
    deadline.clear()
    throw err
  }
}
