/**
 * Errors on the wire, in one place (main draft §Error Responses; SK §4, §5; CHECKLIST SIG-11..13,
 * SK-10..12, SK-19..21, ERR-01):
 *
 * - `Signature-Error` (a Dictionary with an `error` Token, plus `required_input` for
 *   `invalid_input`), `Accept-Signature-Scheme` and `Accept-Signature-Alg` (Lists of Tokens);
 * - {@link signatureErrorResponse}: the `401` for a {@link SignatureError}, with a Problem Details
 *   body whose `type` is `urn:ietf:params:sig-error:<code>`;
 * - {@link problemResponse}: an `application/problem+json` endpoint error with an `error` member.
 *   A `403` never carries `Signature-Error` or `Accept-Signature-*`.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { dictionaryField, isInnerList, isSfToken, listField, sfString, Token } from '../lib/sf.js'
import { HeaderError, ProblemError, SignatureError, SIGNATURE_ERROR_CODES, type SignatureErrorCode } from './errors.js'

/** Header field names. */
export const SIGNATURE_ERROR_HEADER = 'signature-error'
export const ACCEPT_SIGNATURE_SCHEME_HEADER = 'accept-signature-scheme'
export const ACCEPT_SIGNATURE_ALG_HEADER = 'accept-signature-alg'

/** Serializes `Signature-Error`. */
export function serializeSignatureError(code: SignatureErrorCode, requiredInput?: readonly string[]): string {
  let v = `error=${code}`
  if (requiredInput !== undefined && requiredInput.length > 0) v += `, required_input=(${requiredInput.map(sfString).join(' ')})`
  return v
}

/** A parsed `Signature-Error`. `code` is `undefined` for a code this library does not know. */
export interface ParsedSignatureError {
  readonly error: string
  readonly code: SignatureErrorCode | undefined
  readonly requiredInput: readonly string[] | undefined
}

/**
 * Parses `Signature-Error`; unknown members are ignored (SK-10).
 *
 * @throws {HeaderError} when malformed or `error` is missing.
 */
export function parseSignatureError(value: string): ParsedSignatureError {
  const dict = dictionaryField(SIGNATURE_ERROR_HEADER, value)
  const err = dict.get('error')
  if (err === undefined || isInnerList(err) || !(err[0] instanceof Token)) throw new HeaderError(SIGNATURE_ERROR_HEADER, 'Signature-Error needs an "error" Token')
  const error = err[0].toString()
  const ri = dict.get('required_input')
  let requiredInput: string[] | undefined
  if (ri !== undefined && isInnerList(ri)) requiredInput = ri[0].map((i) => i[0]).filter((x): x is string => typeof x === 'string')
  const code = (SIGNATURE_ERROR_CODES as readonly string[]).includes(error) ? (error as SignatureErrorCode) : undefined
  return { error, code, requiredInput }
}

/**
 * Serializes an `Accept-Signature-Scheme` / `Accept-Signature-Alg` List of Tokens. Values are
 * written verbatim (case kept: `ES256`, never `es256`, NEG-ALG-15); `none` and symmetric
 * algorithms are refused (ALG-09).
 *
 * @throws {TypeError}
 */
export function serializeTokenList(values: readonly string[]): string {
  for (const v of values) {
    if (!isSfToken(v)) throw new TypeError(`${JSON.stringify(v)} is not a Token`)
    if (v === 'none' || /^HS\d+$/.test(v)) throw new TypeError(`${v} must never be advertised`)
  }
  return values.join(', ')
}

/** Parses an `Accept-Signature-*` List, keeping Tokens and dropping anything else. */
export function parseTokenList(value: string | null | undefined): string[] {
  if (value === null || value === undefined) return []
  try {
    return listField(ACCEPT_SIGNATURE_SCHEME_HEADER, value)
      .filter((m) => !isInnerList(m) && m[0] instanceof Token)
      .map((m) => (m[0] as Token).toString())
  } catch {
    return []
  }
}

const TITLES: Partial<Record<SignatureErrorCode, string>> = {
  unsupported_algorithm: 'Unsupported signature algorithm',
  unsupported_scheme: 'Unsupported Signature-Key scheme',
  invalid_signature: 'Invalid signature',
  invalid_input: 'Required components not covered',
  invalid_key: 'Invalid key',
  unknown_key: 'Unknown key',
  invalid_jwt: 'Invalid JWT',
  expired_jwt: 'Expired JWT',
  revoked_jwt: 'Revoked JWT',
  clock_skew: 'Clock skew',
}

/** Options of {@link signatureErrorResponse}. */
export interface SignatureErrorResponseOptions {
  /** Extra headers, e.g. `AAuth-Requirement: requirement=person-token` with `revoked_jwt`. */
  readonly headers?: HeadersInit
  /** Include the human-readable detail in the body. Default true. */
  readonly detail?: boolean
}

/** The header set for a {@link SignatureError} (without body). */
export function signatureErrorHeaders(err: SignatureError): Headers {
  const h = new Headers({ 'content-type': 'application/problem+json', 'cache-control': 'no-store' })
  h.set(SIGNATURE_ERROR_HEADER, serializeSignatureError(err.code, err.code === 'invalid_input' ? err.requiredInput : undefined))
  if (err.code === 'unsupported_scheme' && err.acceptSignatureScheme !== undefined) {
    h.set(ACCEPT_SIGNATURE_SCHEME_HEADER, serializeTokenList(err.acceptSignatureScheme))
  }
  if (err.code === 'unsupported_algorithm' && err.acceptSignatureAlg !== undefined) {
    h.set(ACCEPT_SIGNATURE_ALG_HEADER, serializeTokenList(err.acceptSignatureAlg))
  }
  return h
}

/**
 * The `401` Response for a signature failure.
 *
 * @example
 * ```ts
 * catch (e) { if (e instanceof SignatureError) return signatureErrorResponse(e) }
 * ```
 */
export function signatureErrorResponse(err: SignatureError, options?: SignatureErrorResponseOptions): Response {
  const headers = signatureErrorHeaders(err)
  if (options?.headers !== undefined) new Headers(options.headers).forEach((v, k) => headers.set(k, v))
  const body = {
    type: `urn:ietf:params:sig-error:${err.code}`,
    title: TITLES[err.code] ?? err.code,
    status: 401,
    error: err.code,
    ...(options?.detail === false ? {} : { detail: err.message }),
  }
  return new Response(JSON.stringify(body), { status: 401, headers })
}

/** The Problem Details body of an endpoint error (`error` required, `detail` optional). */
export interface ProblemBody {
  error: string
  detail?: string
  [member: string]: unknown
}

/**
 * The Response for an endpoint error. Never carries signature headers (a 403 must not, SIG-13).
 *
 * @param extra - extra body members (e.g. `mission_status`) and headers (e.g. `Retry-After`).
 */
export function problemResponse(err: ProblemError, extra?: { body?: Record<string, unknown>; headers?: HeadersInit }): Response {
  const headers = new Headers(extra?.headers)
  headers.set('content-type', 'application/problem+json')
  headers.set('cache-control', 'no-store')
  const body: ProblemBody = { ...extra?.body, error: err.code, detail: err.message, status: err.status }
  return new Response(JSON.stringify(body), { status: err.status, headers })
}

/**
 * Reads a problem body into a {@link ProblemError}-like record; `undefined` when the body is not
 * a JSON object with a string `error`.
 */
export function parseProblem(text: string): ProblemBody | undefined {
  try {
    const v: unknown = JSON.parse(text)
    if (typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'string') return v as ProblemBody
  } catch {
    /* not JSON */
  }
  return undefined
}
