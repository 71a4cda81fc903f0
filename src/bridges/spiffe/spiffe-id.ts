/**
 * SPIFFE IDs (SPIFFE-ID standard §2): `spiffe://<trust domain><path>`. The trust domain is
 * lowercase letters, digits, `.`, `-` and `_`; each path segment is letters, digits, `.`, `-` and
 * `_`, and is neither empty nor `.` / `..`. There is no port, userinfo, query or fragment, no
 * trailing slash, and the whole ID is at most 2048 bytes.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { SvidError } from './types.js'

/** A parsed SPIFFE ID. */
export interface SpiffeId {
  /** The whole ID, e.g. `spiffe://demo.example.com/agent/summarizer-tech`. */
  readonly id: string
  /** e.g. `demo.example.com`. */
  readonly trustDomain: string
  /** e.g. `/agent/summarizer-tech`; `''` for the ID of the trust domain itself. */
  readonly path: string
}

const SCHEME = 'spiffe://'
/** SPIFFE-ID §2.4: the maximum length of a SPIFFE ID, in bytes. */
export const MAX_SPIFFE_ID_BYTES = 2048
const TRUST_DOMAIN = /^[a-z0-9._-]+$/
const SEGMENT = /^[A-Za-z0-9._-]+$/

function invalid(why: string): never {
  throw new SvidError('invalid_svid', `not a SPIFFE ID: ${why}`)
}

/**
 * Parses and validates a SPIFFE ID.
 *
 * @throws {SvidError} `invalid_svid`, saying which rule failed; never any other error.
 * @example
 * ```ts
 * parseSpiffeId('spiffe://demo.example.com/agent/a1') // { trustDomain: 'demo.example.com', path: '/agent/a1', ... }
 * ```
 */
export function parseSpiffeId(value: unknown): SpiffeId {
  if (typeof value !== 'string') invalid('not a string')
  if (Buffer.byteLength(value, 'utf8') > MAX_SPIFFE_ID_BYTES) invalid(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`)
  if (!value.startsWith(SCHEME)) invalid('the scheme must be "spiffe://" (lowercase)')
  const rest = value.slice(SCHEME.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash)
  const path = slash < 0 ? '' : rest.slice(slash)
  if (trustDomain === '') invalid('the trust domain is empty')
  if (!TRUST_DOMAIN.test(trustDomain)) {
    const why = /[:]/.test(trustDomain) ? 'a port is not allowed' : /@/.test(trustDomain) ? 'userinfo is not allowed' : /[?#]/.test(trustDomain) ? 'a query or fragment is not allowed' : 'the trust domain may hold only lowercase letters, digits, ".", "-" and "_"'
    invalid(why)
  }
  if (path !== '') {
    if (path.endsWith('/')) invalid('a trailing slash is not allowed')
    for (const segment of path.slice(1).split('/')) {
      if (segment === '') invalid('empty path segments are not allowed')
      if (segment === '.' || segment === '..') invalid('"." and ".." path segments are not allowed')
      if (!SEGMENT.test(segment)) invalid(/[?#]/.test(segment) ? 'a query or fragment is not allowed' : 'path segments may hold only letters, digits, ".", "-" and "_"')
    }
  }
  return { id: value, trustDomain, path }
}

/** True when `value` is a valid SPIFFE ID (see {@link parseSpiffeId}). */
export function isSpiffeId(value: unknown): value is string {
  try {
    parseSpiffeId(value)
    return true
  } catch {
    return false
  }
}

/**
 * The trust domain of a SPIFFE ID.
 *
 * @throws {SvidError} `invalid_svid` when `id` is not a SPIFFE ID.
 */
export function trustDomainOf(id: string): string {
  return parseSpiffeId(id).trustDomain
}

/**
 * Parses the SPIFFE ID of a workload: like {@link parseSpiffeId}, and the path must not be empty
 * (an ID without a path names the trust domain, never a workload).
 *
 * @throws {SvidError} `invalid_svid`.
 */
export function parseWorkloadSpiffeId(value: unknown): SpiffeId {
  const id = parseSpiffeId(value)
  if (id.path === '') invalid('a workload SPIFFE ID needs a path')
  return id
}
