/**
 * The RFC 9421 `Signature-Input` and `Signature` fields: parsing into typed entries and
 * serializing the signature parameters (the `@signature-params` value).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { serializeParameters } from 'structured-headers'
import { dictionaryField, isInnerList, sfString, Token, type BareItem, type Parameters } from '../lib/sf.js'
import { HeaderError } from './errors.js'
import { decodeBase64 } from '../lib/base64url.js'

/** Header field names. */
export const SIGNATURE_INPUT_HEADER = 'signature-input'
export const SIGNATURE_HEADER = 'signature'

/** A covered component identifier: a name plus its parameters (`sf`, `key`, `name`, `req`, …). */
export interface ComponentIdentifier {
  /** The component name as sent (`@method`, `content-digest`, …). */
  readonly name: string
  /** Component parameters; empty for the plain form. */
  readonly params: Parameters
}

/** Signature parameters of one signature (RFC 9421 §2.3). Integer timestamps are Unix seconds. */
export interface SignatureParameters {
  readonly created?: number
  readonly expires?: number
  readonly keyid?: string
  readonly alg?: string
  readonly nonce?: string
  readonly tag?: string
}

/** One parsed `Signature-Input` member. */
export interface SignatureInputEntry {
  readonly label: string
  readonly components: readonly ComponentIdentifier[]
  /** All parameters in wire order, unknown ones included (they are part of `@signature-params`). */
  readonly rawParams: Parameters
  /** Typed view of the well-known parameters; a wrongly typed value is left out here. */
  readonly params: SignatureParameters
  /**
   * The member value exactly as received, when it is already in canonical serialization (the
   * fast path only matches that form), so `@signature-params` need not be serialized again.
   */
  readonly serialized?: string
}

const EMPTY: Parameters = new Map()

function typedParams(p: Parameters): SignatureParameters {
  const out: Record<string, string | number> = {}
  for (const k of ['created', 'expires'] as const) {
    const v = p.get(k)
    if (typeof v === 'number' && Number.isInteger(v)) out[k] = v
  }
  for (const k of ['keyid', 'alg', 'nonce', 'tag'] as const) {
    const v = p.get(k)
    if (typeof v === 'string') out[k] = v
  }
  return out
}

// The shape every AAuth signer sends — one label, an Inner List of plain component Strings, and
// Integer or plain-String parameters — is parsed without the general SF parser; anything else
// (whitespace, escapes, component parameters, several labels, …) takes the general path.
const SF_PLAIN_STRING = '"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"'
const SF_KEY = '[a-z*][a-z0-9_\\-.*]*'
const FAST_INPUT = new RegExp(`^(${SF_KEY})=\\(((?:${SF_PLAIN_STRING})(?: ${SF_PLAIN_STRING})*)?\\)((?:;${SF_KEY}=(?:0|-?[1-9][0-9]{0,14}|${SF_PLAIN_STRING}))*)$`)
const FAST_PARAM = new RegExp(`;(${SF_KEY})=(?:(0|-?[1-9][0-9]{0,14})|"([^"]*)")`, 'g')

function fastSignatureInput(value: string): Map<string, SignatureInputEntry> | undefined {
  const m = FAST_INPUT.exec(value)
  if (m === null) return undefined
  const label = m[1]!
  const list = m[2]
  const components: ComponentIdentifier[] = list === undefined ? [] : list.slice(1, -1).split('" "').map((name) => ({ name, params: EMPTY }))
  const rawParams: Parameters = new Map()
  let count = 0
  for (const p of m[3]!.matchAll(FAST_PARAM)) {
    rawParams.set(p[1]!, p[2] !== undefined ? Number(p[2]) : p[3]!)
    count++
  }
  // A repeated parameter is not in canonical form: leave it to the general parser.
  if (count !== rawParams.size) return undefined
  return new Map([[label, { label, components, rawParams, params: typedParams(rawParams), serialized: value.slice(label.length + 1) }]])
}

const FAST_SIGNATURE = /^([a-z*][a-z0-9_\-.*]*)=:([A-Za-z0-9+/]*={0,2}):$/

/**
 * Parses `Signature-Input`.
 *
 * @throws {HeaderError} when the field is not a Dictionary of Inner Lists of Strings.
 * @see RFC 9421 §4.1
 */
export function parseSignatureInput(value: string): Map<string, SignatureInputEntry> {
  const fast = fastSignatureInput(value)
  if (fast !== undefined) return fast
  const out = new Map<string, SignatureInputEntry>()
  for (const [label, member] of dictionaryField(SIGNATURE_INPUT_HEADER, value)) {
    if (!isInnerList(member)) throw new HeaderError(SIGNATURE_INPUT_HEADER, `member ${label} must be an Inner List`)
    const [items, rawParams] = member
    const components = items.map(([name, params]) => {
      if (typeof name !== 'string') {
        throw new HeaderError(SIGNATURE_INPUT_HEADER, `member ${label}: component identifiers must be Strings`)
      }
      return { name, params: params.size === 0 ? EMPTY : params }
    })
    out.set(label, { label, components, rawParams, params: typedParams(rawParams) })
  }
  return out
}

/**
 * Parses `Signature` into `label → signature bytes`.
 *
 * @throws {HeaderError} when a member is not a Byte Sequence.
 * @see RFC 9421 §4.2
 */
export function parseSignature(value: string): Map<string, Uint8Array> {
  // One label with a padded base64 Byte Sequence: what every signer sends.
  const fast = FAST_SIGNATURE.exec(value)
  if (fast !== null) {
    const bytes = decodeBase64(fast[2]!)
    if (bytes !== undefined) return new Map([[fast[1]!, bytes]])
  }
  const out = new Map<string, Uint8Array>()
  for (const [label, member] of dictionaryField(SIGNATURE_HEADER, value)) {
    const item = member[0] as BareItem | unknown[]
    if (isInnerList(member) || !(item instanceof ArrayBuffer)) {
      throw new HeaderError(SIGNATURE_HEADER, `member ${label} must be a Byte Sequence`)
    }
    out.set(label, new Uint8Array(item))
  }
  return out
}

function bareItem(v: BareItem): string {
  if (typeof v === 'number' && Number.isInteger(v)) return String(v)
  if (typeof v === 'string') return sfString(v)
  if (v === true) return ''
  // Rare shapes (decimals, tokens, byte sequences, false) go through the library serializer.
  return serializeParameters(new Map([['x', v]])).slice(';x='.length)
}

function params(p: Parameters): string {
  let s = ''
  for (const [k, v] of p) {
    const item = bareItem(v)
    s += v === true ? `;${k}` : `;${k}=${item}`
  }
  return s
}

/**
 * Serializes the Inner List that is both the `Signature-Input` member value and the
 * `@signature-params` line of the signature base (RFC 9421 §2.3).
 *
 * @example
 * ```ts
 * serializeSignatureParams([{ name: '@method', params: new Map() }], new Map([['created', 1]]))
 * // '("@method");created=1'
 * ```
 */
export function serializeSignatureParams(components: readonly ComponentIdentifier[], rawParams: Parameters): string {
  let s = '('
  for (let i = 0; i < components.length; i++) {
    const c = components[i]!
    if (i > 0) s += ' '
    s += sfString(c.name)
    if (c.params.size > 0) s += params(c.params)
  }
  return s + ')' + params(rawParams)
}

/** Builds the parameter map for signing, in the conventional order. */
export function signatureParamsMap(p: SignatureParameters): Parameters {
  const m: Parameters = new Map()
  if (p.created !== undefined) m.set('created', p.created)
  if (p.expires !== undefined) m.set('expires', p.expires)
  if (p.nonce !== undefined) m.set('nonce', p.nonce)
  if (p.keyid !== undefined) m.set('keyid', p.keyid)
  if (p.tag !== undefined) m.set('tag', p.tag)
  if (p.alg !== undefined) m.set('alg', p.alg)
  return m
}

/** Parses a plain component list such as `["@method", "content-type"]` into identifiers. */
export function components(names: readonly string[]): ComponentIdentifier[] {
  return names.map((name) => ({ name, params: EMPTY }))
}

export { Token }
