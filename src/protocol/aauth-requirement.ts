/**
 * The `AAuth-Requirement` response header (main draft §Requirement Responses, §Requirement
 * Values, §Interaction Required, §Approval Pending; CHECKLIST HDR-01..07).
 *
 * A Dictionary with a `requirement` Token member; requirement data are parameters of that
 * member. Unknown parameters are kept but ignored; an unknown requirement value parses (so an
 * agent can surface it, as the draft asks) and is flagged `recognized: false`.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { dictionaryField, isInnerList, sfString, Token, type BareItem } from '../lib/sf.js'
import { HeaderError } from './errors.js'
import { assertEndpointUrl, type IdentifierOptions } from './identifiers.js'

/** Header field name. */
export const AAUTH_REQUIREMENT_HEADER = 'aauth-requirement'

/** Requirement values defined by the main draft, with the status each is sent with. */
export const REQUIREMENT_STATUS = {
  'agent-token': [401],
  'person-token': [401],
  'auth-token': [401, 402, 202],
  interaction: [202],
  approval: [202],
  clarification: [202],
  claims: [202],
} as const
/** A requirement value the draft defines. */
export type RequirementValue = keyof typeof REQUIREMENT_STATUS

/** A requirement to send or as received. */
export type AAuthRequirement =
  | { readonly requirement: 'agent-token' }
  | { readonly requirement: 'person-token' }
  | { readonly requirement: 'auth-token'; readonly resourceToken: string }
  | { readonly requirement: 'interaction'; readonly url: string; readonly code: string }
  | { readonly requirement: 'approval' }
  | { readonly requirement: 'clarification' }
  | { readonly requirement: 'claims' }

/** A parsed header: the typed requirement, or an unrecognized value to surface to the caller. */
export type ParsedRequirement =
  | (AAuthRequirement & { readonly recognized: true; readonly parameters: ReadonlyMap<string, BareItem> })
  | { readonly recognized: false; readonly requirement: string; readonly parameters: ReadonlyMap<string, BareItem> }

function bad(message: string): HeaderError {
  return new HeaderError(AAUTH_REQUIREMENT_HEADER, message)
}

/**
 * Serializes an `AAuth-Requirement` value.
 *
 * @throws {TypeError} for an interaction URL that is not https without query/fragment, or a
 *   parameter value that cannot be an sf-string.
 * @example
 * ```ts
 * serializeRequirement({ requirement: 'auth-token', resourceToken: rt })
 * // 'requirement=auth-token; resource-token="eyJ..."'
 * ```
 */
export function serializeRequirement(r: AAuthRequirement, options?: IdentifierOptions): string {
  switch (r.requirement) {
    case 'auth-token':
      return `requirement=auth-token; resource-token=${sfString(r.resourceToken)}`
    case 'interaction':
      assertEndpointUrl(r.url, 'endpoint', options)
      return `requirement=interaction; url=${sfString(r.url)}; code=${sfString(r.code)}`
    default:
      return `requirement=${r.requirement}`
  }
}

/**
 * Parses an `AAuth-Requirement` value.
 *
 * @throws {HeaderError} when the field is malformed, `requirement` is missing or not a Token, or a
 *   defined requirement lacks its parameters (`resource-token`; `url` and `code`).
 */
export function parseRequirement(value: string, options?: IdentifierOptions): ParsedRequirement {
  const dict = dictionaryField(AAUTH_REQUIREMENT_HEADER, value)
  const member = dict.get('requirement')
  if (member === undefined) throw bad('AAuth-Requirement has no "requirement" member')
  if (isInnerList(member) || !(member[0] instanceof Token)) throw bad('"requirement" must be a Token')
  const requirement = member[0].toString()
  const parameters = member[1]
  const str = (name: string): string => {
    const v = parameters.get(name)
    if (typeof v !== 'string' || v === '') throw bad(`requirement=${requirement} needs a String "${name}" parameter`)
    return v
  }
  switch (requirement) {
    case 'auth-token':
      return { recognized: true, requirement, resourceToken: str('resource-token'), parameters }
    case 'interaction': {
      const url = str('url')
      try {
        assertEndpointUrl(url, 'endpoint', options)
      } catch (cause) {
        throw new HeaderError(AAUTH_REQUIREMENT_HEADER, 'interaction url must be https without query or fragment', { cause })
      }
      return { recognized: true, requirement, url, code: str('code'), parameters }
    }
    case 'agent-token':
    case 'person-token':
    case 'approval':
    case 'clarification':
    case 'claims':
      return { recognized: true, requirement, parameters }
    default:
      return { recognized: false, requirement, parameters }
  }
}
