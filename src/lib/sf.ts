/**
 * Thin wrappers over `structured-headers` (RFC 8941 / RFC 9651) that turn every parse failure
 * into a typed {@link HeaderError} naming the field. Private to the library.
 *
 * @module
 */

import {
  parseDictionary,
  parseList,
  Token,
  type BareItem,
  type Dictionary,
  type InnerList,
  type Item,
  type List,
  type Parameters,
} from 'structured-headers'
import { HeaderError } from '../protocol/errors.js'

export { Token }
export type { BareItem, Dictionary, InnerList, Item, List, Parameters }

/** Parses a Dictionary field or throws `HeaderError` for `header`. */
export function dictionaryField(header: string, value: string): Dictionary {
  try {
    return parseDictionary(value)
  } catch (cause) {
    throw new HeaderError(header, `${header} is not a valid structured-field Dictionary`, { cause })
  }
}

/** Parses a List field or throws `HeaderError` for `header`. */
export function listField(header: string, value: string): List {
  try {
    return parseList(value)
  } catch (cause) {
    throw new HeaderError(header, `${header} is not a valid structured-field List`, { cause })
  }
}

/** True for a member that is an Inner List rather than an Item. */
export function isInnerList(member: Item | InnerList): member is InnerList {
  return Array.isArray(member[0])
}

/** The string value of a Token or String bare item, else `undefined`. */
export function tokenOrString(item: BareItem): string | undefined {
  if (item instanceof Token) return item.toString()
  if (typeof item === 'string') return item
  return undefined
}

const SF_STRING_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/**
 * Serializes an sf-string (RFC 8941 §4.1.6). Throws `TypeError` for characters outside printable
 * ASCII, which cannot be represented.
 */
export function sfString(value: string): string {
  // Common case (JWTs, URLs, component names): nothing to escape.
  if (SF_STRING_PLAIN.test(value)) return `"${value}"`
  let out = '"'
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) throw new TypeError('sf-string allows printable ASCII only')
    if (c === 0x22 || c === 0x5c) out += '\\'
    out += value[i]
  }
  return out + '"'
}

const TOKEN_RE = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/
const KEY_RE = /^[a-z*][a-z0-9_\-.*]*$/

/** True when `value` can be serialized as an sf-token. */
export function isSfToken(value: string): boolean {
  return TOKEN_RE.test(value)
}

/** True when `value` is a valid dictionary/parameter key. */
export function isSfKey(value: string): boolean {
  return KEY_RE.test(value)
}
