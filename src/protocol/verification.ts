/**
 * Verifying signed requests under the AAuth profile of RFC 9421 (main draft §Verification
 * (Server), §Freshness and Replay; SK §3, §3.1; CHECKLIST SIG-10..SIG-16, SK-02, SK-16, SK-27).
 *
 * {@link verifyRequestSignature} runs the seven steps of the draft in order, each failure a
 * {@link SignatureError} with the draft's code. Obtaining the key (step 5) is delegated to a
 * {@link KeyResolver}, so this module knows nothing about tokens; `request-verifier.ts` supplies
 * the AAuth resolvers (`jwt` with agent/person/auth tokens, `jwks_uri` for servers).
 *
 * This is deliberately not `http-message-signatures`' `verifyMessage`: that returns a bare boolean,
 * picks no label and checks no freshness by default (see shared ecosystem notes).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { BoundedCache } from '../lib/bounded-cache.js'
import { utf8 } from '../lib/base64url.js'
import { HeaderError, SignatureError } from './errors.js'
import { sha256Base64urlFast, verifySignatureBytes, type PublicJwk, type SupportedAlgorithm, type VerifyKey } from './crypto.js'
import { CONTENT_DIGEST_HEADER, verifyContentDigest } from './digest.js'
import { interpretSignatureKeyMember, parseSignatureKey, SIGNATURE_KEY_HEADER, type SignatureKeyMember } from './signature-key.js'
import { parseSignature, parseSignatureInput, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER, type SignatureInputEntry } from './signature-input.js'
import { profileSignatureBase, referenceSignatureBase, messageView, type MessageView, type RequestLike } from './signature-base.js'

/** The components every AAuth signature covers (main draft §Covered Components). */
export const BASE_COMPONENTS = ['@method', '@authority', '@path', 'signature-key'] as const
/** Default signature validity window in seconds. */
export const DEFAULT_SIGNATURE_WINDOW = 60

/** A key the resolver obtained for the selected `Signature-Key` member. */
export interface ResolvedKey<C = unknown> {
  /** The JWK, with `alg` already checked (Algorithm Determination). */
  readonly jwk: PublicJwk
  readonly alg: SupportedAlgorithm
  readonly key: VerifyKey
  /** RFC 7638 thumbprint, used in the replay key and by callers (`agent_jkt`). */
  readonly thumbprint: string
  /** What the resolver learned (verified token claims, server identity, …). */
  readonly context: C
}

/** Step 5: turns the selected member into a verification key, or throws a `SignatureError`. */
export type KeyResolver<C> = (member: SignatureKeyMember, input: SignatureInputEntry) => ResolvedKey<C> | Promise<ResolvedKey<C>>

/** A replay cache keyed by `(jkt, created, @method, @authority, @path)` (SIG-16). */
export interface ReplayCache {
  /** Records `key` until `expiresAt` (epoch ms); resolves false when it was already present. */
  add(key: string, expiresAt: number): boolean | Promise<boolean>
}

/** Bounded in-memory {@link ReplayCache}. */
export class MemoryReplayCache implements ReplayCache {
  readonly #seen: BoundedCache<string, true>
  constructor(maxEntries = 100_000, now: () => number = Date.now) {
    this.#seen = new BoundedCache(maxEntries, now)
  }
  add(key: string, expiresAt: number): boolean {
    return this.#seen.add(key, true, expiresAt)
  }
}

/** Options of {@link verifyRequestSignature}. */
export interface VerifyRequestOptions<C> {
  /** Step 5. */
  readonly resolveKey: KeyResolver<C>
  /** Schemes accepted (step 4). Default `['jwt']`. Listed in `Accept-Signature-Scheme` on refusal. */
  readonly acceptedSchemes?: readonly string[]
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Signature validity window in seconds (`signature_window`). Default 60. */
  readonly windowSec?: number
  /** Components required beyond the base set (`additional_signature_components`). */
  readonly requiredComponents?: readonly string[]
  /**
   * Require `content-type` and `content-digest` when the request has a body — true at PS, AS and
   * revocation endpoints (SIG-03). Default false.
   */
  readonly requireBodyComponents?: boolean
  /** The raw body bytes. When given and `content-digest` is covered, the digest is checked. */
  readonly body?: Uint8Array
  /** Only verify this label. Default: the single label present, or the first with a key member. */
  readonly label?: string
  /** Optional replay cache (SIG-16). */
  readonly replayCache?: ReplayCache
  /** Use synchronous crypto (lowest latency, blocks the event loop). Default false. */
  readonly syncCrypto?: boolean
}

/** A verified request. */
export interface VerifiedSignature<C> {
  readonly label: string
  readonly created: number
  readonly components: readonly string[]
  readonly key: ResolvedKey<C>
}

function fail(code: 'invalid_signature' | 'clock_skew', message: string, cause?: unknown): SignatureError {
  return new SignatureError(code, message, cause === undefined ? undefined : { cause })
}

function parseOr<T>(f: () => T, header: string): T {
  try {
    return f()
  } catch (cause) {
    if (cause instanceof HeaderError) throw fail('invalid_signature', `${header} is malformed`, cause)
    throw cause
  }
}

/** The components a request must cover under the options (SIG-02..05). */
export function requiredComponentsFor(m: MessageView, hasBody: boolean, options: Pick<VerifyRequestOptions<unknown>, 'requiredComponents' | 'requireBodyComponents'>): string[] {
  const req: string[] = [...BASE_COMPONENTS]
  if (hasBody && options.requireBodyComponents === true) req.push('content-type', CONTENT_DIGEST_HEADER)
  if (/^aauth\s/i.test(m.header('authorization') ?? '')) req.push('authorization')
  for (const c of options.requiredComponents ?? []) if (!req.includes(c)) req.push(c)
  return req
}

function selectLabel(inputs: Map<string, SignatureInputEntry>, keys: Map<string, unknown>, wanted: string | undefined): string {
  if (wanted !== undefined) return wanted
  if (inputs.size === 1) return inputs.keys().next().value as string
  for (const label of inputs.keys()) if (keys.has(label)) return label
  return inputs.keys().next().value as string
}

/**
 * Verifies the HTTP Message Signature of a request, in the order of main draft §Verification
 * (Server):
 *
 * 1. `Signature`, `Signature-Input`, `Signature-Key` present → else `invalid_signature`;
 * 2. required components covered → else `invalid_input` with `required_input`;
 * 3. `created` present and inside the window → else `invalid_signature` (too old / missing) or
 *    `clock_skew` (ahead); a past `expires` → `invalid_signature`;
 * 4. the label's `Signature-Key` member exists (else `invalid_signature`) and its scheme is
 *    accepted → else `unsupported_scheme` with `Accept-Signature-Scheme`;
 * 5. key from the resolver (its own codes);
 * 6. the algorithm comes from the key's `alg` (the resolver has applied Algorithm Determination;
 *    a `Signature-Input` `alg` parameter is ignored, SIG-07; `keyid` must name the same key, SIG-08);
 * 7. `Content-Digest` matches the body when covered, and the signature verifies → else
 *    `invalid_signature`; then the replay cache, if any.
 *
 * @throws {SignatureError}
 * @example
 * ```ts
 * const v = await verifyRequestSignature(request, { resolveKey, body })
 * v.key.context // what the resolver returned, e.g. the verified agent token claims
 * ```
 */
export async function verifyRequestSignature<C>(message: Request | RequestLike | MessageView, options: VerifyRequestOptions<C>): Promise<VerifiedSignature<C>> {
  const m = 'header' in message ? message : messageView(message)
  let body = options.body
  // A Fetch Request carries its body: read it, so SIG-03 and Content-Digest are never skipped
  // because the caller forgot to pass the bytes (fail closed).
  if (body === undefined && typeof Request === 'function' && message instanceof Request && message.body !== null) {
    body = new Uint8Array(await message.clone().arrayBuffer())
  }
  // Step 1
  const sigInputValue = m.header(SIGNATURE_INPUT_HEADER)
  const sigValue = m.header(SIGNATURE_HEADER)
  const sigKeyValue = m.header(SIGNATURE_KEY_HEADER)
  if (sigInputValue === undefined || sigValue === undefined || sigKeyValue === undefined) {
    throw fail('invalid_signature', 'Signature, Signature-Input and Signature-Key are all required')
  }
  const inputs = parseOr(() => parseSignatureInput(sigInputValue), 'Signature-Input')
  const signatures = parseOr(() => parseSignature(sigValue), 'Signature')
  const keys = parseOr(() => parseSignatureKey(sigKeyValue), 'Signature-Key')
  if (inputs.size === 0) throw fail('invalid_signature', 'Signature-Input has no signature')
  const label = selectLabel(inputs, keys, options.label)
  const input = inputs.get(label)
  const signature = signatures.get(label)
  if (input === undefined || signature === undefined) throw fail('invalid_signature', `no signature labelled ${label}`)

  // Step 2
  const hasBody = (body?.byteLength ?? 0) > 0 || (m.header('content-length') ?? '0') !== '0' || m.header('transfer-encoding') !== undefined
  const required = requiredComponentsFor(m, hasBody, options)
  const covered = new Set<string>()
  for (const c of input.components) if (c.params.size === 0) covered.add(c.name)
  for (const r of required) {
    if (!covered.has(r)) {
      throw new SignatureError('invalid_input', `covered components must include ${JSON.stringify(r)}`, { requiredInput: required })
    }
  }

  // Step 3
  const now = Math.floor((options.now ?? Date.now)() / 1000)
  const windowSec = options.windowSec ?? DEFAULT_SIGNATURE_WINDOW
  const created = input.rawParams.get('created')
  if (typeof created !== 'number' || !Number.isInteger(created)) throw fail('invalid_signature', 'Signature-Input has no integer created')
  if (now - created > windowSec) throw fail('invalid_signature', `signature created ${now - created}s ago, outside the ${windowSec}s window`)
  if (created - now > windowSec) throw fail('clock_skew', `signature created ${created - now}s ahead of the verifier clock`)
  const expires = input.rawParams.get('expires')
  if (expires !== undefined && (typeof expires !== 'number' || expires <= now)) throw fail('invalid_signature', 'signature has expired')

  // Step 4
  const raw = keys.get(label)
  if (raw === undefined) throw fail('invalid_signature', `Signature-Key has no member for label ${label}`)
  const accepted = options.acceptedSchemes ?? ['jwt']
  if (raw.scheme === undefined || !accepted.includes(raw.scheme)) {
    throw new SignatureError('unsupported_scheme', `Signature-Key scheme ${JSON.stringify(raw.scheme ?? null)} is not accepted`, { acceptSignatureScheme: accepted })
  }
  const member = interpretSignatureKeyMember(raw)

  // Steps 5 and 6
  const pendingKey = options.resolveKey(member, input)
  const resolved = pendingKey instanceof Promise ? await pendingKey : pendingKey
  const keyid = input.rawParams.get('keyid')
  if (keyid !== undefined && keyid !== resolved.thumbprint && keyid !== resolved.jwk.kid) {
    throw fail('invalid_signature', 'Signature-Input keyid names a different key than Signature-Key')
  }

  // Step 7
  if (covered.has(CONTENT_DIGEST_HEADER)) {
    // A covered digest is always checked; no body given means an empty body (fail closed).
    const digest = m.header(CONTENT_DIGEST_HEADER)
    if (digest === undefined) throw fail('invalid_signature', 'Content-Digest is covered but absent')
    await verifyContentDigest(digest, body ?? new Uint8Array(0))
  }
  // The lean builder is synchronous; only the reference path needs an await.
  const base = profileSignatureBase(m, input.components, input.rawParams, input.serialized) ?? (await referenceSignatureBase(m, input.components, input.rawParams))
  const pending = verifySignatureBytes(resolved.key, utf8(base), signature, options.syncCrypto === true)
  const ok = typeof pending === 'boolean' ? pending : await pending
  if (!ok) throw fail('invalid_signature', 'signature does not verify with the key from Signature-Key')

  if (options.replayCache !== undefined) {
    // The draft's key (key, created, method, authority, path) plus the signature base: an exact
    // replay has the same base, while a distinct request signed in the same second — an agent's
    // retry with another token after a challenge, a server's second revocation — does not.
    // Hashed: @path is attacker-sized, and the cache is bounded by entries, not bytes.
    const tuple = `${resolved.thumbprint}|${created}|${m.method}|${m.url.host}|${m.url.pathname}|${base}`
    const hashed = sha256Base64urlFast(tuple)
    const replayKey = typeof hashed === 'string' ? hashed : await hashed
    const added = options.replayCache.add(replayKey, (created + windowSec + 1) * 1000)
    const fresh = typeof added === 'boolean' ? added : await added
    if (!fresh) throw fail('invalid_signature', 'signature replayed within its validity window')
  }
  return { label, created, components: input.components.map((c) => c.name), key: resolved }
}
