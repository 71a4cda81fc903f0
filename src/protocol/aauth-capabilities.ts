/**
 * The `AAuth-Capabilities` request header (main draft §AAuth-Capabilities Request Header;
 * CHECKLIST HDR-08, HDR-09): a List of Tokens. Unknown values and parameters are ignored, never
 * rejected; an absent header means no capabilities.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { isInnerList, listField, Token } from '../lib/sf.js'

/** Header field name. */
export const AAUTH_CAPABILITIES_HEADER = 'aauth-capabilities'
/** Capability values the draft defines. */
export const CAPABILITIES = ['interaction', 'clarification', 'payment'] as const
/** A defined capability. */
export type Capability = (typeof CAPABILITIES)[number]

/** Serializes capabilities (duplicates dropped, order kept). */
export function serializeCapabilities(caps: readonly Capability[]): string {
  return [...new Set(caps)].join(', ')
}

/**
 * Parses `AAuth-Capabilities` into the set of recognized capabilities. An absent header, a
 * malformed one, or one of only unknown tokens all yield the empty set: recipients must not assume
 * capabilities they were not clearly told about.
 */
export function parseCapabilities(value: string | null | undefined): Set<Capability> {
  const out = new Set<Capability>()
  if (value === null || value === undefined) return out
  let list
  try {
    list = listField(AAUTH_CAPABILITIES_HEADER, value)
  } catch {
    return out
  }
  for (const member of list) {
    if (isInnerList(member) || !(member[0] instanceof Token)) continue
    const v = member[0].toString()
    if ((CAPABILITIES as readonly string[]).includes(v)) out.add(v as Capability)
  }
  return out
}
