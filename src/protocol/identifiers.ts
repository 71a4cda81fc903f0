/**
 * Agent identifiers (`aauth:local@domain`), server identifiers and endpoint URLs.
 *
 * Implements main draft §Agent Identifiers, §Server Identifiers and §Endpoint and Other URLs.
 * Validation works on the raw string, never on a `URL` object, because `new URL()` lower-cases,
 * drops default ports and resolves dot segments — and the drafts compare identifiers by exact
 * string equality (CHECKLIST ID-05, ID-07).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { IdentifierError, type IdentifierViolation } from './errors.js'

/** The URI scheme prefix of agent identifiers. */
export const AGENT_ID_PREFIX = 'aauth:'

/** Parsed form of an agent identifier. */
export interface AgentIdentifier {
  /** The full identifier string, unchanged. */
  readonly id: string
  /** The part before `@`, case preserved. */
  readonly local: string
  /** The agent provider's domain (a server identifier without `https://`). */
  readonly domain: string
  /**
   * For a `local` of the form `parent+discriminator`: `aauth:parent@domain`. Informational only:
   * the `parent_agent` claim is what marks a sub-agent (main draft §Agent Identifiers, ID-04).
   */
  readonly parentByName: string | undefined
}

/** Options shared by identifier validation. */
export interface IdentifierOptions {
  /**
   * Development only: also admit `http://127.0.0.1:PORT` and `http://localhost:PORT` (and, for agent
   * identifiers, the domains `127.0.0.1:PORT` / `localhost:PORT`). Off by default.
   */
  allowInsecureLoopback?: boolean
}

const LOCAL_CHARS = /^[A-Za-z0-9._+-]+$/
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const LOOPBACK_AUTHORITY = /^(?:127\.0\.0\.1|localhost)(?::(\d{1,5}))?$/

function fail(code: 'invalid_agent_identifier' | 'invalid_server_identifier' | 'invalid_url', v: IdentifierViolation, msg: string): never {
  throw new IdentifierError(code, v, msg)
}

function isLoopbackAuthority(authority: string): boolean {
  const m = LOOPBACK_AUTHORITY.exec(authority)
  if (m === null) return false
  return m[1] === undefined || Number(m[1]) <= 65535
}

/**
 * Checks a host name against the server-identifier host rules: lowercase, ASCII (A-labels for
 * IDNs), LDH labels of 1–63 characters, at most 253 characters. Returns the violation or
 * `undefined` when valid.
 */
function hostViolation(host: string): IdentifierViolation | undefined {
  if (host.length === 0 || host.length > 253) return 'host'
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(host)) return 'non_ascii'
  if (/[A-Z]/.test(host)) return 'uppercase'
  for (const label of host.split('.')) if (!LABEL.test(label)) return 'host'
  return undefined
}

/**
 * Validates an agent identifier and returns its parts.
 *
 * @param id - The identifier, e.g. `aauth:planner.7f3c+search1@vendor.example`.
 * @param options - `allowInsecureLoopback` admits `localhost:PORT` / `127.0.0.1:PORT` domains.
 * @returns The parsed identifier.
 * @throws {IdentifierError} `invalid_agent_identifier` with the exact `violation`.
 * @see main draft §Agent Identifiers (CHECKLIST ID-01..ID-05)
 * @example
 * ```ts
 * parseAgentIdentifier('aauth:Planner@agents.example').local // 'Planner' (case kept)
 * ```
 */
export function parseAgentIdentifier(id: unknown, options?: IdentifierOptions): AgentIdentifier {
  const code = 'invalid_agent_identifier'
  if (typeof id !== 'string') fail(code, 'not_a_string', 'agent identifier must be a string')
  if (!id.startsWith(AGENT_ID_PREFIX)) fail(code, 'scheme', 'agent identifier must start with "aauth:"')
  const rest = id.slice(AGENT_ID_PREFIX.length)
  const at = rest.lastIndexOf('@')
  if (at < 0) fail(code, 'missing_at', 'agent identifier must have the form aauth:local@domain')
  const local = rest.slice(0, at)
  const domain = rest.slice(at + 1)
  if (local.length === 0) fail(code, 'local_empty', 'agent identifier local part is empty')
  if (local.length > 255) fail(code, 'local_too_long', 'agent identifier local part exceeds 255 characters')
  if (!LOCAL_CHARS.test(local)) {
    fail(code, 'local_character', 'agent identifier local part allows only A-Z a-z 0-9 - _ + .')
  }
  const plus = local.indexOf('+')
  if (plus >= 0 && (plus === 0 || plus === local.length - 1 || local.indexOf('+', plus + 1) >= 0)) {
    fail(code, 'subagent_form', 'a sub-agent local part is <parent>+<discriminator>, with exactly one "+"')
  }
  if (domain.includes('://')) fail(code, 'scheme', 'agent identifier domain must not include a scheme')
  if (!(options?.allowInsecureLoopback === true && isLoopbackAuthority(domain))) {
    if (domain.includes(':')) fail(code, 'port', 'agent identifier domain must not include a port')
    if (domain.includes('/')) fail(code, 'path', 'agent identifier domain must not include a path')
    const v = hostViolation(domain)
    if (v !== undefined) fail(code, v, `agent identifier domain is not a valid domain name (${v})`)
  }
  const parentByName = plus >= 0 ? `${AGENT_ID_PREFIX}${local.slice(0, plus)}@${domain}` : undefined
  return { id, local, domain, parentByName }
}

/** True when `id` is a valid agent identifier. */
export function isAgentIdentifier(id: unknown, options?: IdentifierOptions): id is string {
  try {
    parseAgentIdentifier(id, options)
    return true
  } catch {
    return false
  }
}

/**
 * Validates a server identifier: `https`, host only (no port, path, query, fragment, userinfo),
 * no trailing slash, lowercase, ASCII. With `allowInsecureLoopback`, `http://127.0.0.1:PORT` and
 * `http://localhost:PORT` are also accepted (development only).
 *
 * @throws {IdentifierError} `invalid_server_identifier` with the exact `violation`.
 * @see main draft §Server Identifiers (CHECKLIST ID-06, ID-07)
 * @example
 * ```ts
 * assertServerIdentifier('https://ps.example')          // ok
 * assertServerIdentifier('https://ps.example/')         // throws, violation 'trailing_slash'
 * ```
 */
export function assertServerIdentifier(value: unknown, options?: IdentifierOptions): asserts value is string {
  const code = 'invalid_server_identifier'
  if (typeof value !== 'string') fail(code, 'not_a_string', 'server identifier must be a string')
  if (options?.allowInsecureLoopback === true && /^http:\/\//.test(value)) {
    const authority = value.slice('http://'.length)
    if (isLoopbackAuthority(authority)) return
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(value)
  if (m === null) fail(code, 'scheme', 'server identifier must be an absolute https URL')
  const [, scheme, rest] = m as unknown as [string, string, string]
  if (scheme !== 'https') {
    fail(code, scheme.toLowerCase() === 'https' ? 'uppercase' : 'scheme', 'server identifier must use the https scheme')
  }
  if (rest.includes('#')) fail(code, 'fragment', 'server identifier must not contain a fragment')
  if (rest.includes('?')) fail(code, 'query', 'server identifier must not contain a query')
  if (rest.includes('@')) fail(code, 'userinfo', 'server identifier must not contain userinfo')
  const slash = rest.indexOf('/')
  if (slash >= 0) {
    fail(code, slash === rest.length - 1 ? 'trailing_slash' : 'path', 'server identifier must not contain a path or trailing slash')
  }
  if (rest.startsWith('[')) fail(code, 'host', 'server identifier host must be a domain name')
  if (rest.includes(':')) fail(code, 'port', 'server identifier must not contain a port')
  const v = hostViolation(rest)
  if (v !== undefined) fail(code, v, `server identifier host is not a valid domain name (${v})`)
}

/** True when `value` is a valid server identifier. */
export function isServerIdentifier(value: unknown, options?: IdentifierOptions): value is string {
  try {
    assertServerIdentifier(value, options)
    return true
  } catch {
    return false
  }
}

/** How strictly {@link assertEndpointUrl} treats a URL. */
export type EndpointUrlKind =
  /** `auth_token_endpoint`, `person_token_endpoint`, `authorization_endpoint`, `mission_endpoint`, `callback_endpoint`, interaction `url`: https, no query, no fragment. */
  | 'endpoint'
  /** `jwks_uri`, `tos_uri`, `policy_uri`, `logo_uri`, `logo_dark_uri`, `documentation_uri`: https. */
  | 'url'

/**
 * Validates an endpoint or other URL from metadata or a header.
 *
 * @throws {IdentifierError} `invalid_url` with the violation.
 * @see main draft §Endpoint and Other URLs (CHECKLIST ID-08, ID-10)
 */
export function assertEndpointUrl(value: unknown, kind: EndpointUrlKind, options?: IdentifierOptions): asserts value is string {
  const code = 'invalid_url'
  if (typeof value !== 'string') fail(code, 'not_a_string', 'URL must be a string')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    fail(code, 'scheme', `not an absolute URL: ${JSON.stringify(value)}`)
  }
  const loopbackOk = options?.allowInsecureLoopback === true && url.protocol === 'http:' && isLoopbackAuthority(url.host)
  if (url.protocol !== 'https:' && !loopbackOk) fail(code, 'scheme', 'URL must use the https scheme')
  if (url.username !== '' || url.password !== '') fail(code, 'userinfo', 'URL must not contain userinfo')
  if (kind === 'endpoint') {
    if (value.includes('#')) fail(code, 'fragment', 'endpoint URL must not contain a fragment')
    if (value.includes('?')) fail(code, 'query', 'endpoint URL must not contain a query')
  }
}

/** True when the URL's host is `localhost` or `127.0.0.1` over http (the dev-loopback form). */
export function isInsecureLoopbackUrl(url: URL): boolean {
  return url.protocol === 'http:' && isLoopbackAuthority(url.host)
}
