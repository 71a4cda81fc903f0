/**
 * RFC 9421 signature base construction (§2.5) for requests.
 *
 * Two paths produce the same bytes:
 *
 * - {@link profileSignatureBase}: a lean, synchronous builder for the components the AAuth profile
 *   uses — derived components without parameters and plain header fields. It is the hot path on
 *   both the signing and the verifying side.
 * - {@link referenceSignatureBase}: `http-message-signatures` (the RFC 9421 reference library),
 *   used for every component the lean builder does not handle (`;sf`, `;key`, `;bs`,
 *   `@query-param`, …). A differential test holds the two to identical output.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { SignatureError } from './errors.js'
import { serializeSignatureParams, type ComponentIdentifier } from './signature-input.js'
import type { Parameters } from '../lib/sf.js'

/** A request as seen by signing and verification: method, absolute URL and header lookup. */
export interface MessageView {
  readonly method: string
  readonly url: URL
  /** Combined field value (lines joined with `, `), or `undefined` when absent. Name is lowercase. */
  header(name: string): string | undefined
}

/** Anything that can be turned into a {@link MessageView}. */
export interface RequestLike {
  readonly method: string
  readonly url: string | URL
  readonly headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>
}

/**
 * Wraps a Fetch `Request` or a plain `{method, url, headers}` object.
 *
 * @throws {TypeError} when `url` is not absolute.
 */
export function messageView(message: RequestLike | Request): MessageView {
  const url = message.url instanceof URL ? message.url : new URL(message.url)
  const h = message.headers
  if (typeof (h as Headers).get === 'function') {
    const headers = h as Headers
    // A covered "component" that is not a valid field name makes Headers.get throw: treat it as absent.
    const header = (name: string): string | undefined => {
      try {
        return headers.get(name) ?? undefined
      } catch {
        return undefined
      }
    }
    return { method: message.method, url, header }
  }
  const rec = h as Readonly<Record<string, string | readonly string[] | undefined>>
  const lower = new Map<string, string>()
  for (const [k, v] of Object.entries(rec)) {
    if (v === undefined) continue
    const key = k.toLowerCase()
    const joined = typeof v === 'string' ? v.trim() : v.map((x) => x.trim()).join(', ')
    const prev = lower.get(key)
    lower.set(key, prev === undefined ? joined : `${prev}, ${joined}`)
  }
  return { method: message.method, url, header: (name) => lower.get(name) }
}

const NEWLINE = /[\r\n]/

function derived(name: string, m: MessageView): string | undefined {
  switch (name) {
    case '@method':
      return m.method
    case '@authority':
      return m.url.host
    case '@path':
      return m.url.pathname === '' ? '/' : m.url.pathname
    case '@query':
      return m.url.search === '' ? '?' : m.url.search
    case '@target-uri':
      return m.url.href
    case '@scheme':
      return m.url.protocol.slice(0, -1)
    case '@request-target':
      return m.url.pathname + m.url.search
    default:
      return undefined
  }
}

function missing(name: string): SignatureError {
  return new SignatureError('invalid_signature', `covered component ${JSON.stringify(name)} is not present in the message`)
}

/**
 * Builds the signature base for components the AAuth profile uses, synchronously. Returns
 * `undefined` when a component needs the reference path (any component parameter, or a derived
 * component other than `@method @authority @path @query @target-uri @scheme @request-target`).
 *
 * @throws {SignatureError} `invalid_signature` when a covered header is absent or holds a newline,
 *   or a component name is not lowercase.
 */
export function profileSignatureBase(m: MessageView, comps: readonly ComponentIdentifier[], rawParams: Parameters, serializedParams?: string): string | undefined {
  assertDistinct(comps)
  let base = ''
  for (const c of comps) {
    if (c.params.size > 0) return undefined
    const name = c.name
    let value: string | undefined
    if (name.charCodeAt(0) === 0x40 /* @ */) {
      value = derived(name, m)
      if (value === undefined) return undefined
    } else {
      if (name !== name.toLowerCase()) {
        throw new SignatureError('invalid_signature', `component ${JSON.stringify(name)} must be lowercase`)
      }
      value = m.header(name)
      if (value === undefined || NEWLINE.test(value)) throw missing(name)
    }
    base += `"${name}": ${value}\n`
  }
  return base + `"@signature-params": ${serializedParams ?? serializeSignatureParams(comps, rawParams)}`
}

type Httpbis = typeof import('http-message-signatures').httpbis
let reference: Promise<Httpbis> | undefined

/**
 * Builds the signature base with `http-message-signatures` for any component set. Loaded lazily,
 * so runtimes that never need it never load it.
 *
 * @throws {SignatureError} `invalid_signature` when a component cannot be derived.
 */
export async function referenceSignatureBase(m: MessageView, comps: readonly ComponentIdentifier[], rawParams: Parameters): Promise<string> {
  assertDistinct(comps)
  for (const c of comps) {
    if (c.name !== c.name.toLowerCase()) throw new SignatureError('invalid_signature', `component ${JSON.stringify(c.name)} must be lowercase`)
  }
  reference ??= import('http-message-signatures').then((mod) => mod.httpbis)
  const httpbis = await reference
  const headers: Record<string, string> = {}
  for (const c of comps) {
    if (!c.name.startsWith('@')) {
      const v = m.header(c.name.toLowerCase())
      if (v !== undefined) headers[c.name.toLowerCase()] = v
    }
  }
  let lines: [string, string[]][]
  try {
    // Plain components come from the same code as the lean path (the library upper-cases @method
    // and re-trims combined values, which RFC 9421 §2.1 and §2.2.1 do not do).
    const componentParser = (name: string, params: Map<string, unknown>): string[] | null => {
      if (params.size > 0) return null
      if (name.startsWith('@')) return name === '@method' ? [m.method] : null
      const v = m.header(name)
      return v === undefined ? null : [v]
    }
    lines = httpbis.createSignatureBase({ fields: comps.map(fieldFor), componentParser }, { method: m.method, url: m.url, headers })
  } catch (cause) {
    throw new SignatureError('invalid_signature', 'a covered component could not be derived', { cause })
  }
  lines.push(['"@signature-params"', [serializeSignatureParams(comps, rawParams)]])
  return httpbis.formatSignatureBase(lines)
}

/** RFC 9421 §2.5: a component identifier (with its parameters) is covered at most once. */
function assertDistinct(comps: readonly ComponentIdentifier[]): void {
  if (comps.length < 2) return
  const seen = new Set<string>()
  for (const c of comps) {
    const id = c.params.size === 0 ? c.name : fieldFor(c)
    if (seen.has(id)) throw new SignatureError('invalid_signature', `covered component ${JSON.stringify(id)} is listed twice`)
    seen.add(id)
  }
}

/** `name;param=value`: the component form http-message-signatures expects. */
function fieldFor(c: ComponentIdentifier): string {
  const p = serializeSignatureParams([{ name: c.name, params: new Map() }], c.params)
  return c.name + p.slice(p.indexOf(')') + 1)
}

/**
 * Builds the signature base, taking the lean path when it applies and the reference path
 * otherwise.
 */
export async function createSignatureBase(m: MessageView, comps: readonly ComponentIdentifier[], rawParams: Parameters): Promise<string> {
  return profileSignatureBase(m, comps, rawParams) ?? referenceSignatureBase(m, comps, rawParams)
}
