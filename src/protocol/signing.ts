/**
 * Signing requests under the AAuth profile of RFC 9421 (main draft §Signing (Agent), §Covered
 * Components, §Signature Parameters; CHECKLIST SIG-01..SIG-09).
 *
 * Covered: `@method @authority @path`, `@query` when the URL has one, `signature-key`, and for a
 * request with a body `content-type` + `content-digest` (RFC 9530, sha-256); `authorization` when
 * it carries `AAuth` credentials (SIG-04); plus any components the server asks for. `created` is
 * always set; `alg` and `keyid` are never sent.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { encodeBase64, utf8 } from '../lib/base64url.js'
import { CONTENT_DIGEST_HEADER, createContentDigest } from './digest.js'
import { serializeSignatureKey, SIGNATURE_KEY_HEADER, type SignatureKeyMember } from './signature-key.js'
import { components, signatureParamsMap, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER } from './signature-input.js'
import { messageView, profileSignatureBase, referenceSignatureBase, type MessageView } from './signature-base.js'
import type { Signer } from './crypto.js'

const PARAMS_LINE = '"@signature-params": '

/** Options of {@link signRequest}. */
export interface SignRequestOptions {
  /** The agent's key. */
  readonly signer: Signer
  /** What goes in `Signature-Key` for this label; agents use `{ scheme: 'jwt', jwt, cache: false }`. */
  readonly signatureKey: SignatureKeyMember
  /** Signature label. Default `sig`. */
  readonly label?: string
  /** Clock in epoch milliseconds, for `created`. Default `Date.now`. */
  readonly now?: () => number
  /** Optional `expires` (Unix seconds). */
  readonly expires?: number
  /** Further components the server requires (`additional_signature_components`, `required_input`). */
  readonly additionalComponents?: readonly string[]
  /** The request body bytes, when there is one (needed for `Content-Digest`). */
  readonly body?: Uint8Array
  /** Return the signature base too (for `aauth fetch -v` and tests). */
  readonly exposeBase?: boolean
  /**
   * Sign `request.headers` in place instead of a copy: for callers that own the `Headers` object
   * (the agent client builds one per attempt). Default false.
   */
  readonly inPlace?: boolean
}

/** A request to sign: method, absolute URL and its current headers. */
export interface RequestToSign {
  readonly method: string
  readonly url: string | URL
  readonly headers: Headers
}

/** Result of {@link signRequest}. */
export interface SignedRequestHeaders {
  /** The input headers plus `Signature-Key`, `Signature-Input`, `Signature` (and `Content-Digest`). */
  readonly headers: Headers
  /** The covered components, in order. */
  readonly components: readonly string[]
  /** The exact signature base that was signed, when `exposeBase` was set. */
  readonly signatureBase?: string
}

// An agent sends the same token on every request until it renews it: keep the last serialization.
let lastKey: { label: string; jwt: string; scheme: string; cache: boolean; value: string } | undefined

function signatureKeyValue(label: string, member: SignatureKeyMember): string {
  if (member.scheme !== 'jwt' && member.scheme !== 'jkt-jwt') return serializeSignatureKey({ [label]: member })
  const k = lastKey
  if (k !== undefined && k.label === label && k.jwt === member.jwt && k.scheme === member.scheme && k.cache === member.cache) return k.value
  const value = serializeSignatureKey({ [label]: member })
  lastKey = { label, jwt: member.jwt, scheme: member.scheme, cache: member.cache, value }
  return value
}

// Serialized inner lists by component list: an agent signs the same few shapes over and over.
const innerLists = new Map<string, string>()
const PLAIN_NAME = /^[@a-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * `Signature-Input` parameters for plain components with `created` (and `expires`): the same
 * string `serializeSignatureParams` builds (pinned by a test), from a cached inner list;
 * `undefined` for a name that would need escaping.
 */
export function serializedParams(names: readonly string[], created: number, expires?: number): string | undefined {
  // Stored keys are plain names (no spaces, none empty), so count + join cannot collide.
  const key = `${names.length}:${names.join(' ')}`
  let list = innerLists.get(key)
  if (list === undefined) {
    // Only names that need no escaping as sf-strings; anything else takes the general path.
    if (!names.every((n) => PLAIN_NAME.test(n))) return undefined
    list = `(${names.map((n) => `"${n}"`).join(' ')})`
    if (innerLists.size >= 64) innerLists.clear()
    innerLists.set(key, list)
  }
  return expires === undefined ? `${list};created=${created}` : `${list};created=${created};expires=${expires}`
}

/** The components the AAuth profile covers for a request. */
export function profileComponents(url: URL, headers: Headers, hasBody: boolean, additional: readonly string[] = []): string[] {
  const list = ['@method', '@authority', '@path']
  if (url.search !== '') list.push('@query')
  list.push(SIGNATURE_KEY_HEADER)
  if (hasBody) list.push('content-type', CONTENT_DIGEST_HEADER)
  if (/^aauth\s/i.test(headers.get('authorization') ?? '')) list.push('authorization')
  for (const c of additional) if (!list.includes(c)) list.push(c)
  return list
}

/**
 * Signs a request: sets `Signature-Key`, computes `Content-Digest` for a body, and adds
 * `Signature-Input` and `Signature`.
 *
 * @throws {TypeError} when a body is given without a `Content-Type`, or a required component is
 *   missing from the request.
 * @example
 * ```ts
 * const { headers } = await signRequest(
 *   { method: 'GET', url: 'https://api.example/flights?to=SYD', headers: new Headers() },
 *   { signer, signatureKey: { scheme: 'jwt', jwt: agentToken, cache: false } },
 * )
 * await fetch('https://api.example/flights?to=SYD', { headers })
 * ```
 */
export async function signRequest(request: RequestToSign, options: SignRequestOptions): Promise<SignedRequestHeaders> {
  const label = options.label ?? 'sig'
  const url = request.url instanceof URL ? request.url : new URL(request.url)
  const headers = options.inPlace === true ? request.headers : new Headers(request.headers)
  const hasBody = options.body !== undefined && options.body.byteLength > 0
  if (hasBody) {
    if (!headers.has('content-type')) throw new TypeError('a request with a body needs a Content-Type to sign')
    headers.set(CONTENT_DIGEST_HEADER, await createContentDigest(options.body!))
  }
  const skValue = signatureKeyValue(label, options.signatureKey)
  headers.set(SIGNATURE_KEY_HEADER, skValue)
  const names = profileComponents(url, headers, hasBody, options.additionalComponents)
  const comps = components(names)
  const created = Math.floor((options.now ?? Date.now)() / 1000)
  const params = signatureParamsMap(options.expires === undefined ? { created } : { created, expires: options.expires })
  let base: string
  let serialized: string | undefined
  try {
    const view = messageView({ method: request.method, url, headers })
    const header = view.header
    // The Signature-Key value was just serialized here: read it back without a Headers lookup.
    const signing: MessageView = { method: view.method, url, header: (name) => (name === SIGNATURE_KEY_HEADER ? skValue : header(name)) }
    serialized = serializedParams(names, created, options.expires)
    base = profileSignatureBase(signing, comps, params, serialized) ?? (await referenceSignatureBase(view, comps, params))
  } catch (cause) {
    throw new TypeError(`cannot sign: ${(cause as Error).message}`, { cause })
  }
  const data = utf8(base)
  const sig = options.signer.signSync !== undefined ? options.signer.signSync(data) : await options.signer.sign(data)
  // The base ends with the serialized signature parameters: reuse them for Signature-Input.
  headers.set(SIGNATURE_INPUT_HEADER, `${label}=${serialized ?? base.slice(base.lastIndexOf(PARAMS_LINE) + PARAMS_LINE.length)}`)
  headers.set(SIGNATURE_HEADER, `${label}=:${encodeBase64(sig)}:`)
  return options.exposeBase === true ? { headers, components: names, signatureBase: base } : { headers, components: names }
}

/**
 * Signs a Fetch `Request` and returns a new `Request` carrying the signature headers.
 *
 * @throws {TypeError} as {@link signRequest}.
 */
export async function signFetchRequest(request: Request, options: Omit<SignRequestOptions, 'body'>): Promise<Request> {
  const body = request.body === null ? undefined : new Uint8Array(await request.clone().arrayBuffer())
  const { headers } = await signRequest(request, body === undefined ? options : { ...options, body })
  return new Request(request, { headers, ...(body === undefined ? {} : { body: body as BufferSource }) })
}
