/**
 * Rich Resource Requests (draft-hardt-aauth-r3): the shapes shared by the resource (which
 * publishes R3 documents and per-call proposals and enforces the grant), the person server (which
 * fetches them for consent and issues the R3 claims) and the agent.
 *
 * - an **R3 document** is content-addressed: its identity is `r3_s256`, the unpadded base64url
 *   SHA-256 of the bytes served, never of a re-serialisation (R3 §Content Addressing, R3-04);
 * - a **per-call proposal** is an R3 document for one pending call, carrying its `parameters`
 *   (R3 §Per-Call Proposals, R3-10);
 * - an auth token issued for one carries `r3_uri`, `r3_s256`, `r3_granted` and optionally
 *   `r3_per_call` (R3 §Auth Token Extensions, R3-08).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { encodeBase64url } from '../lib/base64url.js'
import { sha256 } from './crypto.js'

/** The vocabulary URIs R3 registers (R3 §Standard Vocabularies). */
export const R3_VOCABULARY = {
  mcp: 'urn:aauth:vocabulary:mcp',
  openapi: 'urn:aauth:vocabulary:openapi',
  grpc: 'urn:aauth:vocabulary:grpc',
  graphql: 'urn:aauth:vocabulary:graphql',
  asyncapi: 'urn:aauth:vocabulary:asyncapi',
  wsdl: 'urn:aauth:vocabulary:wsdl',
  odata: 'urn:aauth:vocabulary:odata',
} as const

/**
 * One operation in a vocabulary's own structure (`{operationId}` for OpenAPI, `{tool}` for MCP).
 *
 * In the class documents aauth-kit publishes, an entry may also carry `x-aauth-access-mode:
 * "per-call"` — the OpenAPI annotation of R3 §Vocabulary Encodings, repeated where the person
 * server reads it — so the issuer can list that operation in `r3_per_call` rather than
 * `r3_granted`. Readers ignore members they do not know.
 */
export type R3Operation = Readonly<Record<string, unknown>>

/** `{vocabulary, operations}`: the shape of `r3_operations`, `r3_granted`, `r3_per_call` and a document's operations. */
export interface R3Operations {
  readonly vocabulary: string
  readonly operations: readonly R3Operation[]
}

/** Resource-asserted human context for consent (R3 §Fields "display"). */
export interface R3Display {
  readonly summary: string
  readonly implications?: string
  readonly data_accessed?: string
  readonly irreversible?: string
  /** Per-call proposals: a Markdown account of this one call. */
  readonly detail?: string
  /** Further resource-defined members (e.g. `amount`, `currency`, `refundable`) shown as such. */
  readonly [member: string]: unknown
}

/** A parameter given by digest instead of inline (R3 §Proposal Document, §Large and Sensitive Payloads). */
export interface R3ParameterDigest {
  readonly s256: string
  readonly excerpt?: string
  readonly media_type?: string
}

/** An R3 document (R3 §R3 Document). */
export interface R3Document extends R3Operations {
  readonly account?: string
  readonly display?: R3Display
  readonly [member: string]: unknown
}

/** A per-call proposal (R3 §Proposal Document): one operation, its concrete parameters. */
export interface PerCallProposal extends R3Document {
  readonly parameters: Readonly<Record<string, unknown>>
  /** Present only when the call already ran and the approval is for releasing its result (R3-14). */
  readonly result?: Readonly<Record<string, unknown>>
}

/** The R3 claims of a resource token (R3 §Resource Token Extensions): both or neither. */
export interface R3ResourceTokenClaims {
  readonly r3_uri: string
  readonly r3_s256: string
}

/** The R3 claims of an auth token (R3 §Auth Token Extensions). */
export interface R3AuthTokenClaims extends R3ResourceTokenClaims {
  readonly r3_granted: R3Operations
  readonly r3_per_call?: R3Operations
}

/** The access-mode annotation value that marks an operation as per-call (R3 §Access Mode Annotation). */
export const PER_CALL = 'per-call'
/** The member carrying the access-mode annotation on an OpenAPI operation (R3 §Vocabulary Encodings). */
export const X_AAUTH_ACCESS_MODE = 'x-aauth-access-mode'

/** Unpadded base64url SHA-256 of `bytes`: `r3_s256` of a document, or `s256` of a digest parameter. */
export async function r3Digest(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
  return encodeBase64url(await sha256(data))
}

/**
 * Serialises a document once. The returned `bytes` are what must be stored and served verbatim;
 * `s256` is their digest (R3 §Content Addressing).
 */
export async function serializeR3(doc: R3Document): Promise<{ readonly bytes: Uint8Array; readonly s256: string }> {
  const bytes = new TextEncoder().encode(JSON.stringify(doc))
  return { bytes, s256: await r3Digest(bytes) }
}

/** Reads `{vocabulary, operations}` from an untrusted value; `undefined` when malformed. */
export function readR3Operations(value: unknown): R3Operations | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const { vocabulary, operations } = value as { vocabulary?: unknown; operations?: unknown }
  if (typeof vocabulary !== 'string' || vocabulary === '' || !Array.isArray(operations)) return undefined
  if (operations.some((o) => typeof o !== 'object' || o === null || Array.isArray(o))) return undefined
  return { vocabulary, operations: operations as R3Operation[] }
}

/**
 * Whether two operation entries name the same operation: every member of the vocabulary's
 * identifier (`operationId`, `tool`, …) is equal. Annotation members (`x-…`) are ignored.
 */
export function sameOperation(a: R3Operation, b: R3Operation): boolean {
  const ids = (o: R3Operation) => Object.keys(o).filter((k) => !k.startsWith('x-'))
  const keys = ids(a)
  return keys.length > 0 && keys.length === ids(b).length && keys.every((k) => jsonEqual(a[k], b[k]))
}

/** Whether `ops` (in `vocabulary`) lists `op`. */
export function listsOperation(ops: R3Operations | undefined, vocabulary: string, op: R3Operation): boolean {
  return ops !== undefined && ops.vocabulary === vocabulary && ops.operations.some((o) => sameOperation(o, op))
}

/** JSON value equality: member order does not matter, array order does (R3 §Flow step 3). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]))
  }
  const ak = Object.keys(a)
  const bo = b as Record<string, unknown>
  return ak.length === Object.keys(bo).length && ak.every((k) => Object.hasOwn(bo, k) && jsonEqual((a as Record<string, unknown>)[k], bo[k]))
}

/** Whether `value` is a digest parameter object. */
export function isParameterDigest(value: unknown): value is R3ParameterDigest {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { s256?: unknown }).s256 === 'string' && Object.keys(value).every((k) => k === 's256' || k === 'excerpt' || k === 'media_type')
}

/**
 * Checks an actual call's parameters against an approved proposal's (R3 §Flow step 3, R3-10):
 * inline values by JSON equality; digest parameters by hashing the presented value — a string as
 * its UTF-8 bytes, anything else as its `JSON.stringify` — so the agent must send it
 * byte-identically. The same set of parameter names is required.
 */
export async function parametersMatch(approved: Readonly<Record<string, unknown>>, actual: Readonly<Record<string, unknown>>): Promise<boolean> {
  const names = Object.keys(approved)
  if (names.length !== Object.keys(actual).length) return false
  for (const name of names) {
    if (!Object.hasOwn(actual, name)) return false
    const want = approved[name]
    const got = actual[name]
    if (isParameterDigest(want)) {
      const bytes = typeof got === 'string' ? got : JSON.stringify(got)
      if (bytes === undefined || (await r3Digest(bytes)) !== want.s256) return false
    } else if (!jsonEqual(want, got)) return false
  }
  return true
}

/**
 * The `s256` of a parameter sent by digest, hashed the way {@link parametersMatch} hashes the
 * presented value: a string as its UTF-8 bytes, anything else as its `JSON.stringify`.
 */
export function parameterDigest(value: unknown): Promise<string> {
  const bytes = typeof value === 'string' ? value : JSON.stringify(value)
  if (bytes === undefined) throw new TypeError('a parameter sent by digest must be a JSON value')
  return r3Digest(bytes)
}
