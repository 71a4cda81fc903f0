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

/**
 * Parses `Signature-Input`.
 *
 * @throws {HeaderError} when the field is not a Dictionary of Inner Lists of Strings.
 * @see RFC 9421 §4.1
 */
export function parseSignatureInput(value: string): Map<string, SignatureInputEntry> {
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
