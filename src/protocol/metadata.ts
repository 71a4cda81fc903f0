/**
 * The four well-known metadata documents: types, fetch and validation, including the
 * issuer-equals-origin check (main draft §Metadata Documents; SK §3.6; CHECKLIST META-01..META-08).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { isObject } from '../lib/assert.js'
import { IdentifierError, MetadataError } from './errors.js'
import { jsonObject, type EgressFetcher } from './egress.js'
import { assertEndpointUrl, assertServerIdentifier, type EndpointUrlKind, type IdentifierOptions } from './identifiers.js'

/** Well-known document names (`dwk` values). */
export const DWK = {
  agent: 'aauth-agent.json',
  person: 'aauth-person.json',
  access: 'aauth-access.json',
  resource: 'aauth-resource.json',
} as const
/** A `dwk` value AAuth defines. */
export type AAuthDwk = (typeof DWK)[keyof typeof DWK]

/** Fields shared by all four documents. */
export interface CommonMetadata {
  issuer: string
  jwks_uri?: string
  accept_signature_algs?: string[]
  name?: string
  /** Markdown; sanitize before rendering (GEN-01). */
  description?: string
  logo_uri?: string
  logo_dark_uri?: string
  documentation_uri?: string
  tos_uri?: string
  policy_uri?: string
  /** Unknown members are kept and ignored (META-04). */
  [member: string]: unknown
}

/** `/.well-known/aauth-agent.json` (main draft §Agent Provider Metadata). */
export interface AgentProviderMetadata extends CommonMetadata {
  jwks_uri: string
  callback_endpoint?: string
  event_endpoint?: string
  localhost_callback_allowed?: boolean
}

/** `/.well-known/aauth-person.json` (main draft §Person Server Metadata). */
export interface PersonServerMetadata extends CommonMetadata {
  jwks_uri: string
  auth_token_endpoint: string
  person_token_endpoint: string
  mission_endpoint?: string
  permission_endpoint?: string
  audit_endpoint?: string
  interaction_endpoint?: string
  mission_control_endpoint?: string
  revocation_endpoint?: string
  scopes_supported?: string[]
  claims_supported?: string[]
}

/** `/.well-known/aauth-access.json` (main draft §Access Server Metadata). */
export interface AccessServerMetadata extends CommonMetadata {
  jwks_uri: string
  auth_token_endpoint: string
  revocation_endpoint?: string
}

/** `/.well-known/aauth-resource.json` (main draft §Resource Metadata). */
export interface ResourceMetadata extends CommonMetadata {
  access_mode?: string
  authorization_endpoint?: string
  scope_descriptions?: Record<string, string>
  /** Seconds; default 60. */
  signature_window?: number
  additional_signature_components?: string[]
  revocation_endpoint?: string
  /** R3 §Resource Metadata Extensions: vocabulary URI → its discovery endpoint. */
  r3_vocabularies?: Record<string, string>
}

/** Maps a `dwk` to its document type. */
export interface MetadataByDwk {
  'aauth-agent.json': AgentProviderMetadata
  'aauth-person.json': PersonServerMetadata
  'aauth-access.json': AccessServerMetadata
  'aauth-resource.json': ResourceMetadata
}

/** `{issuer}/.well-known/{dwk}`. */
export function wellKnownUrl(issuer: string, dwk: string): string {
  return `${issuer}/.well-known/${dwk}`
}

type FieldRule = { kind: EndpointUrlKind; required?: boolean } | 'string' | 'boolean' | 'strings' | 'int' | 'stringMap'

const COMMON_RULES: Record<string, FieldRule> = {
  jwks_uri: { kind: 'url' },
  accept_signature_algs: 'strings',
  name: 'string',
  description: 'string',
  logo_uri: { kind: 'url' },
  logo_dark_uri: { kind: 'url' },
  documentation_uri: { kind: 'url' },
  tos_uri: { kind: 'url' },
  policy_uri: { kind: 'url' },
}

const ROLE_RULES: Record<AAuthDwk, Record<string, FieldRule>> = {
  'aauth-agent.json': {
    jwks_uri: { kind: 'url', required: true },
    callback_endpoint: { kind: 'endpoint' },
    event_endpoint: { kind: 'url' },
    localhost_callback_allowed: 'boolean',
  },
  'aauth-person.json': {
    jwks_uri: { kind: 'url', required: true },
    auth_token_endpoint: { kind: 'endpoint', required: true },
    person_token_endpoint: { kind: 'endpoint', required: true },
    mission_endpoint: { kind: 'endpoint' },
    permission_endpoint: { kind: 'url' },
    audit_endpoint: { kind: 'url' },
    interaction_endpoint: { kind: 'url' },
    mission_control_endpoint: { kind: 'url' },
    revocation_endpoint: { kind: 'url' },
    scopes_supported: 'strings',
    claims_supported: 'strings',
  },
  'aauth-access.json': {
    jwks_uri: { kind: 'url', required: true },
    auth_token_endpoint: { kind: 'endpoint', required: true },
    revocation_endpoint: { kind: 'url' },
  },
  'aauth-resource.json': {
    access_mode: 'string',
    authorization_endpoint: { kind: 'endpoint' },
    scope_descriptions: 'stringMap',
    signature_window: 'int',
    additional_signature_components: 'strings',
    revocation_endpoint: { kind: 'url' },
    r3_vocabularies: 'stringMap',
  },
}

function invalid(field: string, why: string, cause?: unknown): MetadataError {
  return new MetadataError('invalid_metadata', `metadata member "${field}" ${why}`, { cause })
}

function checkField(doc: Record<string, unknown>, field: string, rule: FieldRule, opts: IdentifierOptions): void {
  const v = doc[field]
  if (v === undefined) {
    if (typeof rule === 'object' && rule.required === true) throw invalid(field, 'is required')
    return
  }
  if (typeof rule === 'object') {
    try {
      assertEndpointUrl(v, rule.kind, opts)
    } catch (cause) {
      throw invalid(field, cause instanceof IdentifierError ? `is not a valid URL (${cause.violation})` : 'is not a valid URL', cause)
    }
    return
  }
  const ok =
    rule === 'string' ? typeof v === 'string'
    : rule === 'boolean' ? typeof v === 'boolean'
    : rule === 'int' ? typeof v === 'number' && Number.isInteger(v) && v > 0
    : rule === 'strings' ? Array.isArray(v) && v.every((s) => typeof s === 'string')
    : isObject(v) && Object.values(v).every((s) => typeof s === 'string')
  if (!ok) throw invalid(field, `must be ${rule === 'stringMap' ? 'an object of strings' : rule === 'strings' ? 'an array of strings' : `a ${rule}`}`)
}

/**
 * Validates a metadata document fetched for `expectedIssuer` under `dwk`.
 *
 * @throws {MetadataError} `issuer_missing`, `issuer_mismatch` (byte equality, CHECKLIST NEG-META-03)
 *   or `invalid_metadata` naming the member.
 */
export function validateMetadata<D extends AAuthDwk>(doc: unknown, dwk: D, expectedIssuer: string, opts: IdentifierOptions = {}): MetadataByDwk[D] {
  if (!isObject(doc)) throw new MetadataError('invalid_metadata', 'metadata document is not a JSON object')
  if (!('issuer' in doc) || doc['issuer'] === undefined) throw new MetadataError('issuer_missing', 'metadata document has no "issuer"')
  if (doc['issuer'] !== expectedIssuer) {
    throw new MetadataError('issuer_mismatch', `metadata "issuer" ${JSON.stringify(doc['issuer'])} does not equal ${JSON.stringify(expectedIssuer)}`)
  }
  for (const [field, rule] of Object.entries({ ...COMMON_RULES, ...ROLE_RULES[dwk] })) checkField(doc, field, rule, opts)
  return doc as MetadataByDwk[D]
}

/** Options of {@link fetchMetadata}. */
export interface FetchMetadataOptions extends IdentifierOptions {
  /** The egress fetcher (required: every fetch goes through egress admission). */
  readonly fetcher: EgressFetcher
}

/**
 * Fetches and validates `{issuer}/.well-known/{dwk}`.
 *
 * @throws {IdentifierError} when `issuer` is not a server identifier (nothing is fetched).
 * @throws {EgressError} when egress admission refuses the URL or the fetch fails.
 * @throws {MetadataError} for a non-200 answer, non-JSON body, or a failed check.
 * @example
 * ```ts
 * const ps = await fetchMetadata('https://ps.example', DWK.person, { fetcher })
 * ps.auth_token_endpoint
 * ```
 */
export async function fetchMetadata<D extends AAuthDwk>(issuer: string, dwk: D, options: FetchMetadataOptions): Promise<MetadataByDwk[D]> {
  assertServerIdentifier(issuer, options)
  const url = wellKnownUrl(issuer, dwk)
  const res = await options.fetcher(url)
  if (res.status !== 200) throw new MetadataError('invalid_metadata', `${url} answered ${res.status}`)
  const doc = jsonObject(res)
  if (doc === undefined) throw new MetadataError('invalid_metadata', `${url} is not a JSON object`)
  return validateMetadata(doc, dwk, issuer, options)
}

