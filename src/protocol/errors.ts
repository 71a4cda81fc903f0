/**
 * Every failure the library reports is an {@link AAuthError} with a stable `code`. Where the
 * drafts define a code, `code` is that exact token, so callers `switch (err.code)` and never
 * match on `message`.
 *
 * - {@link SignatureError}: the fourteen `Signature-Error` codes of draft-hardt-httpbis-signature-key
 *   §5.4. AAuth answers every one of them with `401` (main draft §Verification (Server)).
 * - {@link ProblemError}: endpoint error codes carried in an `application/problem+json` body
 *   (main draft §Error Responses, token endpoint, polling, revocation, mission, interaction).
 * - {@link IdentifierError}, {@link MetadataError}, {@link EgressError}, {@link HeaderError}:
 *   library-level failures with a `violation` or detail that says exactly what was wrong.
 *
 * Exported from subpath `'aauth-kit/errors'` and from `'aauth-kit'`.
 *
 * @module
 */

/** Codes of the `Signature-Error` response header (draft-hardt-httpbis-signature-key §5.4). */
export type SignatureErrorCode =
  | 'unsupported_algorithm'
  | 'unsupported_scheme'
  | 'cache_miss'
  | 'invalid_signature'
  | 'invalid_input'
  | 'invalid_request'
  | 'invalid_key'
  | 'unknown_key'
  | 'issuer_missing'
  | 'issuer_mismatch'
  | 'invalid_jwt'
  | 'expired_jwt'
  | 'revoked_jwt'
  | 'clock_skew'

/** Every `Signature-Error` code, in the order of the draft's registry. */
export const SIGNATURE_ERROR_CODES: readonly SignatureErrorCode[] = [
  'unsupported_algorithm',
  'unsupported_scheme',
  'cache_miss',
  'invalid_signature',
  'invalid_input',
  'invalid_request',
  'invalid_key',
  'unknown_key',
  'issuer_missing',
  'issuer_mismatch',
  'invalid_jwt',
  'expired_jwt',
  'revoked_jwt',
  'clock_skew',
]

/**
 * HTTP status of each endpoint error code (main draft §Token Endpoint Error Codes, §Polling Error
 * Codes, §Authorization Endpoint Error Responses, §Mission Endpoint Errors, §Interaction Endpoint
 * Errors, §Revocation Response).
 */
export const ENDPOINT_ERROR_STATUS = {
  invalid_request: 400,
  invalid_resource_token: 400,
  expired_resource_token: 400,
  revoked_resource_token: 400,
  invalid_presented_token: 400,
  expired_presented_token: 400,
  revoked_presented_token: 400,
  invalid_upstream_token: 400,
  expired_upstream_token: 400,
  revoked_upstream_token: 400,
  invalid_subagent_token: 400,
  expired_subagent_token: 400,
  revoked_subagent_token: 400,
  clock_skew: 400,
  user_unreachable: 403,
  as_unreachable: 502,
  server_error: 500,
  denied: 403,
  abandoned: 403,
  expired: 408,
  revoked: 403,
  invalid_code: 410,
  slow_down: 429,
  invalid_scope: 400,
  invalid_account: 400,
  mission_not_found: 404,
  mission_terminated: 403,
  interaction_unavailable: 424,
  unsupported_iss: 403,
  rate_limited: 429,
} as const satisfies Record<string, number>

/** An error code carried in a problem-details body. */
export type EndpointErrorCode = keyof typeof ENDPOINT_ERROR_STATUS

/** Codes for failures that the drafts do not name but the library must still report precisely. */
export type LibraryErrorCode =
  | 'invalid_agent_identifier'
  | 'invalid_server_identifier'
  | 'invalid_url'
  | 'invalid_metadata'
  | 'malformed_header'
  | 'egress_refused'
  | 'fetch_failed'
  | 'fetch_timeout'
  | 'response_too_large'
  /** A token from a bridged system (an OpenID Provider's ID or access token) failed verification. */
  | 'invalid_token'

/**
 * Codes for what an agent's flow engine refuses or cannot finish (`aauth-kit/agent`): the drafts
 * tell the agent to stop, and these say why.
 */
export type AgentErrorCode =
  | 'unsupported_requirement'
  | 'requirement_unsatisfiable'
  | 'no_person_server'
  | 'challenge_rejected'
  | 'token_rejected'
  | 'deadline_exceeded'
  | 'too_many_rounds'
  | 'redirect_refused'
  | 'interaction_required'
  | 'clarification_required'
  | 'interaction_failed'
  | 'cancelled'
  | 'insecure_url'
  | 'unexpected_response'

/** Any code an {@link AAuthError} can carry. */
export type AAuthErrorCode = SignatureErrorCode | EndpointErrorCode | LibraryErrorCode | AgentErrorCode

/** Options common to every {@link AAuthError}. */
export interface AAuthErrorOptions {
  /** The underlying failure, kept for operators; never shown to the remote party. */
  cause?: unknown
}

/** Base class of every error the library raises for protocol input. */
export class AAuthError extends Error {
  /** Stable machine-readable code. */
  readonly code: AAuthErrorCode

  constructor(code: AAuthErrorCode, message: string, options?: AAuthErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
  }
}

/** Extra members that travel with a {@link SignatureError} on the wire. */
export interface SignatureErrorOptions extends AAuthErrorOptions {
  /** `required_input` for `invalid_input`: the covered components the server requires. */
  requiredInput?: readonly string[]
  /** `Accept-Signature-Scheme` to send with `unsupported_scheme`. */
  acceptSignatureScheme?: readonly string[]
  /** `Accept-Signature-Alg` to send with `unsupported_algorithm`. */
  acceptSignatureAlg?: readonly string[]
}

/**
 * A signature verification failure. Rendered as `401` with `Signature-Error: error=<code>`
 * (main draft §Verification (Server); SK §5).
 *
 * @example
 * ```ts
 * try { await verifier.verify(request) } catch (e) {
 *   if (e instanceof SignatureError && e.code === 'expired_jwt') refreshToken()
 * }
 * ```
 */
export class SignatureError extends AAuthError {
  declare readonly code: SignatureErrorCode
  /** Always 401 in AAuth (main draft §Why 401 for Every Signature Failure). */
  readonly status = 401
  readonly requiredInput: readonly string[] | undefined
  readonly acceptSignatureScheme: readonly string[] | undefined
  readonly acceptSignatureAlg: readonly string[] | undefined

  constructor(code: SignatureErrorCode, message: string, options?: SignatureErrorOptions) {
    super(code, message, options)
    this.requiredInput = options?.requiredInput
    this.acceptSignatureScheme = options?.acceptSignatureScheme
    this.acceptSignatureAlg = options?.acceptSignatureAlg
  }
}

/**
 * An endpoint error carried as `application/problem+json` with an `error` member (main draft
 * §Error Response Format). `status` follows the draft's tables.
 */
export class ProblemError extends AAuthError {
  declare readonly code: EndpointErrorCode
  readonly status: number

  constructor(code: EndpointErrorCode, message: string, options?: AAuthErrorOptions) {
    super(code, message, options)
    this.status = ENDPOINT_ERROR_STATUS[code]
  }
}

/** What exactly made an identifier invalid. */
export type IdentifierViolation =
  | 'not_a_string'
  | 'scheme'
  | 'uppercase'
  | 'non_ascii'
  | 'userinfo'
  | 'port'
  | 'path'
  | 'trailing_slash'
  | 'query'
  | 'fragment'
  | 'host'
  | 'local_empty'
  | 'local_too_long'
  | 'local_character'
  | 'subagent_form'
  | 'missing_at'

/** An agent identifier, server identifier or endpoint URL that breaks the draft's rules. */
export class IdentifierError extends AAuthError {
  declare readonly code: 'invalid_agent_identifier' | 'invalid_server_identifier' | 'invalid_url'
  /** Which rule was broken (main draft §Agent Identifiers, §Server Identifiers). */
  readonly violation: IdentifierViolation

  constructor(
    code: 'invalid_agent_identifier' | 'invalid_server_identifier' | 'invalid_url',
    violation: IdentifierViolation,
    message: string,
  ) {
    super(code, message)
    this.violation = violation
  }
}

/** A metadata document that is missing, mismatched or malformed (main draft §Metadata Documents). */
export class MetadataError extends AAuthError {
  declare readonly code: 'issuer_missing' | 'issuer_mismatch' | 'invalid_metadata'
  constructor(code: 'issuer_missing' | 'issuer_mismatch' | 'invalid_metadata', message: string, options?: AAuthErrorOptions) {
    super(code, message, options)
  }
}

/** An outbound fetch refused by egress admission or failed in transit (SK §7.3). */
export class EgressError extends AAuthError {
  declare readonly code: 'egress_refused' | 'fetch_failed' | 'fetch_timeout' | 'response_too_large'
  /** The URL the fetch was for. */
  readonly url: string
  constructor(
    code: 'egress_refused' | 'fetch_failed' | 'fetch_timeout' | 'response_too_large',
    url: string,
    message: string,
    options?: AAuthErrorOptions,
  ) {
    super(code, message, options)
    this.url = url
  }
}

/** A structured header that does not parse or breaks its field definition. */
export class HeaderError extends AAuthError {
  declare readonly code: 'malformed_header'
  /** The header field name, lowercase. */
  readonly header: string
  constructor(header: string, message: string, options?: AAuthErrorOptions) {
    super('malformed_header', message, options)
    this.header = header
  }
}

/** Union of every concrete error class, for exhaustive `switch (err.code)`. */
export type AnyAAuthError = SignatureError | ProblemError | IdentifierError | MetadataError | EgressError | HeaderError

/** True for any error raised by this library for protocol input. */
export function isAAuthError(e: unknown): e is AnyAAuthError {
  return e instanceof AAuthError
}
