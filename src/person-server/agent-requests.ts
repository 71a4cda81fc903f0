/**
 * Authenticating agents at the Person Server's endpoints (main draft §Person Server: every
 * endpoint takes a signed request with the agent token; CHECKLIST PS-02, PS-03): the RFC 9421
 * profile with the body covered, an agent token in `Signature-Key`, `revoked_jwt` for agent
 * tokens their provider revoked here, and a record of each agent token accepted (§Revocation
 * Cascade "Records", REV-15) so a later revocation by `jti` finds the agent.
 *
 * @module
 */

import {
  createRequestVerifier,
  MemoryReplayCache,
  ProblemError,
  SignatureError,
  type AgentTokenClaims,
  type RequestVerifier,
} from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { readBoundedBody } from '../lib/bounded-body.js'
import type { PsContext } from './context.js'

/** Largest request body the PS reads. */
export const MAX_BODY_BYTES = 64 * 1024

/** A verified agent request. */
export interface AgentRequest {
  /** The verified agent token claims. */
  readonly agent: AgentTokenClaims
  /** The agent token itself. */
  readonly agentToken: string
  /** RFC 7638 thumbprint of the key that signed the request. */
  readonly thumbprint: string
  /** The JSON body (`{}` when there is none). */
  readonly body: Record<string, unknown>
}

/**
 * Reads a request body of at most {@link MAX_BODY_BYTES}, stopping as soon as it is larger (a
 * chunked upload without `Content-Length` is never buffered whole, before or after authentication).
 *
 * @throws {ProblemError} `invalid_request` when too large.
 */
export async function readBody(request: Request): Promise<Uint8Array> {
  const tooLarge = (): ProblemError => new ProblemError('invalid_request', `the body is larger than ${MAX_BODY_BYTES} bytes`)
  if (Number(request.headers.get('content-length') ?? '0') > MAX_BODY_BYTES) throw tooLarge()
  const read = await readBoundedBody(request.body, MAX_BODY_BYTES)
  if (read.ok) return read.bytes
  if (read.reason === 'too_large') throw tooLarge()
  throw new ProblemError('invalid_request', 'the body could not be read')
}

/** Parses a JSON object body. @throws {ProblemError} `invalid_request`. */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength === 0) return {}
  let v: unknown
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new ProblemError('invalid_request', 'the body is not valid JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProblemError('invalid_request', 'the body must be a JSON object')
  return v as Record<string, unknown>
}

/** A verified agent request whose body is left as bytes (form-encoded and other non-JSON bodies). */
export type RawAgentRequest = Omit<AgentRequest, 'body'> & { readonly bytes: Uint8Array }

/** Verifies agent requests for one PS. */
export interface AgentAuthenticator {
  /** @throws {SignatureError} (401) or {ProblemError} (400). */
  authenticate(request: Request): Promise<AgentRequest>
  /** As {@link authenticate}, without parsing the (covered) body. */
  authenticateRaw(request: Request): Promise<RawAgentRequest>
  readonly verifier: RequestVerifier
}

/** Creates the authenticator of a PS. */
export function createAgentAuthenticator(ctx: PsContext): AgentAuthenticator {
  const verifier = createRequestVerifier({
    audience: ctx.issuer,
    jwks: ctx.jwks,
    acceptedTokenTypes: ['aa-agent+jwt'],
    requireBodyComponents: true,
    boundIat: true,
    isRevoked: (iss, jti) => ctx.store.isRevoked(iss, jti),
    replayCache: ctx.options.replayCache ?? new MemoryReplayCache(),
    now: ctx.now,
    ...(ctx.options.windowSec === undefined ? {} : { windowSec: ctx.options.windowSec }),
    ...ctx.idOpts,
  })
  // Agent tokens already recorded: one durable write per token, not per request.
  const noted = new BoundedCache<string, true>(50_000, ctx.now)

  async function authenticateRaw(request: Request): Promise<RawAgentRequest> {
    const body = await readBody(request)
    const { key } = await verifier.verify(request, body)
    const c = key.context
    if (c.scheme !== 'jwt' || c.type !== 'aa-agent+jwt') throw new SignatureError('invalid_jwt', 'the person server takes an agent token')
    const agent = c.claims
    const id = `${agent.iss}\u0000${agent.jti}`
    if (noted.get(id) === undefined) {
      await ctx.store.noteAgentToken({ iss: agent.iss, jti: agent.jti, sub: agent.sub, expiresAt: agent.exp * 1000 })
      noted.set(id, true, agent.exp * 1000)
    }
    return { agent, agentToken: c.token, thumbprint: key.thumbprint, bytes: body }
  }

  return {
    verifier,
    authenticateRaw,
    async authenticate(request) {
      const { bytes, ...rest } = await authenticateRaw(request)
      return { ...rest, body: parseJsonObject(bytes) }
    },
  }
}

/** Optional string member of a request body. @throws {ProblemError} `invalid_request` when present but not a string. */
export function optionalText(body: Record<string, unknown>, name: string, maxLength = 4000): string | undefined {
  const v = body[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length > maxLength) throw new ProblemError('invalid_request', `${name} must be a string of at most ${maxLength} characters`)
  return v
}

/** Required string member. @throws {ProblemError} `invalid_request`. */
export function requiredText(body: Record<string, unknown>, name: string, maxLength = 16_384): string {
  const v = optionalText(body, name, maxLength)
  if (v === undefined || v === '') throw new ProblemError('invalid_request', `${name} is required`)
  return v
}
