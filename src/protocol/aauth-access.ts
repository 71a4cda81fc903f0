/**
 * The `AAuth-Access` response header and the `Authorization: AAuth <token>` request credential
 * (main draft §AAuth-Access Response Header; CHECKLIST HDR-10, SIG-04). Both carry a `token68`.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { HeaderError } from './errors.js'

/** Header field name. */
export const AAUTH_ACCESS_HEADER = 'aauth-access'
/** The HTTP authentication scheme name. */
export const AAUTH_AUTH_SCHEME = 'AAuth'

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * Checks a session-token value: a non-empty `token68` with no whitespace, control characters or
 * second credential.
 *
 * @throws {HeaderError}
 */
export function parseAAuthAccess(value: string | null | undefined): string {
  if (value === null || value === undefined || value === '') throw new HeaderError(AAUTH_ACCESS_HEADER, 'AAuth-Access is empty')
  // token68 excludes ",", whitespace and controls, so a second credential fails here too.
  if (!TOKEN68.test(value)) throw new HeaderError(AAUTH_ACCESS_HEADER, 'AAuth-Access is not a single token68')
  return value
}

/**
 * Reads `Authorization: AAuth <token68>`. Returns `undefined` when the header is absent or uses
 * another scheme.
 *
 * @throws {HeaderError} for an `AAuth` credential that is empty, malformed or repeated.
 */
export function parseAAuthAuthorization(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined
  const m = /^AAuth(?:\s+(.*))?$/is.exec(value)
  if (m === null) return undefined
  const cred = m[1] ?? ''
  if (cred === '' || /\s/.test(cred)) throw new HeaderError('authorization', 'Authorization: AAuth needs exactly one token68 credential')
  return parseAAuthAccess(cred)
}

/** Builds the `Authorization` value for a session token. */
export function aauthAuthorization(token: string): string {
  return `${AAUTH_AUTH_SCHEME} ${parseAAuthAccess(token)}`
}
