/**
 * The agent's typed errors, and the one reader that turns a failed response into the error the
 * server sent (main draft §Error Responses, §Authentication Errors, §Token Endpoint Error Codes,
 * §Polling Error Codes).
 *
 * Everything an agent call can fail with is an {@link AAuthError} subclass with a stable `code`:
 * the server's `Signature-Error` code ({@link SignatureError}), its problem-details `error`
 * ({@link ProblemError}), or one of the agent's own {@link AgentErrorCode}s ({@link AgentError}).
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import {
  AAuthError,
  ENDPOINT_ERROR_STATUS,
  parseProblem,
  parseSignatureError,
  parseTokenList,
  ProblemError,
  SignatureError,
  type AAuthErrorOptions,
  type AgentErrorCode,
  type EndpointErrorCode,
} from '../protocol/index.js'

/** Where an {@link AgentError} came from, when a server was involved. */
export interface AgentErrorOptions extends AAuthErrorOptions {
  /** HTTP status of the response that caused it. */
  readonly status?: number
  /** The server's own `error` member, when it was not one the drafts define. */
  readonly serverError?: string
  /** The server's `detail`, when it sent one. */
  readonly detail?: string
  /** The URL the failing request went to. */
  readonly url?: string
}

/**
 * A flow the agent refused or could not finish: an unknown requirement, a challenge that fails
 * verification, a deadline, a redirect to another origin.
 *
 * @example
 * ```ts
 * try { await client.fetch(url) } catch (e) {
 *   if (e instanceof AgentError && e.code === 'deadline_exceeded') console.log('the person did not answer in time')
 * }
 * ```
 */
export class AgentError extends AAuthError {
  declare readonly code: AgentErrorCode
  readonly status: number | undefined
  readonly serverError: string | undefined
  readonly detail: string | undefined
  readonly url: string | undefined

  constructor(code: AgentErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(code, message, options)
    this.status = options.status
    this.serverError = options.serverError
    this.detail = options.detail
    this.url = options.url
  }
}

function isEndpointCode(code: string | undefined): code is EndpointErrorCode {
  return code !== undefined && Object.hasOwn(ENDPOINT_ERROR_STATUS, code)
}

/**
 * Reads a failed response into the error the server sent: `Signature-Error` on a `401` →
 * {@link SignatureError} (with `required_input`, `Accept-Signature-*`); a problem-details `error`
 * the drafts define → {@link ProblemError} with the server's `detail`; anything else →
 * {@link AgentError} `unexpected_response` carrying the status and whatever the server said.
 *
 * @param party - who answered, for the message ("person server", "resource").
 */
export async function readFailure(res: Response, party: string, url: string = res.url): Promise<AAuthError> {
  const sigErr = res.headers.get('signature-error')
  if (res.status === 401 && sigErr !== null) {
    let parsed
    try {
      parsed = parseSignatureError(sigErr)
    } catch (cause) {
      return new AgentError('unexpected_response', `${party} sent a malformed Signature-Error`, { status: 401, url, cause })
    }
    const scheme = parseTokenList(res.headers.get('accept-signature-scheme'))
    const alg = parseTokenList(res.headers.get('accept-signature-alg'))
    return new SignatureError(parsed.code ?? 'invalid_signature', `${party} refused the signature: ${parsed.error}`, {
      ...(parsed.requiredInput === undefined ? {} : { requiredInput: parsed.requiredInput }),
      ...(scheme.length === 0 ? {} : { acceptSignatureScheme: scheme }),
      ...(alg.length === 0 ? {} : { acceptSignatureAlg: alg }),
    })
  }
  let text = ''
  try {
    text = await res.text()
  } catch {
    /* no body */
  }
  const problem = parseProblem(text)
  const code = problem?.error
  if (code === 'mission_terminated') {
    const reason = (problem as { termination_reason?: unknown } | undefined)?.termination_reason
    return new MissionTerminatedError(problem?.detail ?? 'the mission has ended', typeof reason === 'string' ? reason : undefined)
  }
  if (isEndpointCode(code)) return new ProblemError(code, problem?.detail ?? `${party} answered ${res.status} ${code}`)
  return new AgentError('unexpected_response', `${party} answered ${res.status}${code === undefined ? '' : ` (${code})`}`, {
    status: res.status,
    url,
    ...(code === undefined ? {} : { serverError: code }),
    ...(problem?.detail === undefined ? {} : { detail: problem.detail }),
  })
}

/**
 * A mission the PS reports as ended (`403 mission_terminated`, main draft §Mission Status
 * Errors): stop acting on it (AG-MIS-05). `terminationReason` says whether proposing a new one
 * makes sense (`expired`: yes; `revoked`: no); an unknown reason is opaque.
 */
export class MissionTerminatedError extends ProblemError {
  readonly missionStatus = 'terminated'
  readonly terminationReason: string | undefined
  constructor(message: string, terminationReason: string | undefined) {
    super('mission_terminated', message)
    this.terminationReason = terminationReason
    this.name = 'MissionTerminatedError'
  }
}
