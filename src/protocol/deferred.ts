/**
 * Deferred responses: `202 Accepted` with a pending URL (main draft §Deferred Responses,
 * §Polling with GET; CHECKLIST DEF-01..06).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { AAuthError } from './errors.js'
import { AAUTH_REQUIREMENT_HEADER, parseRequirement, serializeRequirement, type AAuthRequirement, type ParsedRequirement } from './aauth-requirement.js'
import type { IdentifierOptions } from './identifiers.js'

/** Default polling interval when `Retry-After` is absent (seconds). */
export const DEFAULT_POLL_INTERVAL = 5
/** The longest `Retry-After` honoured (seconds). */
export const MAX_RETRY_AFTER = 3600
/** Added to the interval on each `429` (seconds). */
export const SLOW_DOWN_STEP = 5

/** Options of {@link pendingResponse}. */
export interface PendingResponseOptions {
  /** The pending URL (absolute or origin-relative, on the responder's origin). */
  readonly location: string
  /** Seconds before the next poll. Default 0. */
  readonly retryAfter?: number
  /** `pending` (default) or `interacting`. */
  readonly status?: 'pending' | 'interacting'
  /** Requirement the agent must act on (interaction, approval, clarification, …). */
  readonly requirement?: AAuthRequirement
  /** Extra body members (`clarification`, `timeout`, …). */
  readonly body?: Record<string, unknown>
}

/**
 * Builds a `202` deferred response with `Location`, `Retry-After`, `Cache-Control: no-store` and a
 * JSON `status` body.
 */
export function pendingResponse(options: PendingResponseOptions, idOptions?: IdentifierOptions): Response {
  const headers = new Headers({
    location: options.location,
    'retry-after': String(Math.max(0, Math.trunc(options.retryAfter ?? 0))),
    'cache-control': 'no-store',
    'content-type': 'application/json',
  })
  if (options.requirement !== undefined) headers.set(AAUTH_REQUIREMENT_HEADER, serializeRequirement(options.requirement, idOptions))
  return new Response(JSON.stringify({ ...options.body, status: options.status ?? 'pending' }), { status: 202, headers })
}

/**
 * Reads `Retry-After` (delta-seconds or HTTP-date) in seconds; `fallback` when absent or invalid.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now(), fallback = DEFAULT_POLL_INTERVAL): number {
  if (value === null || value === undefined || value.trim() === '') return fallback
  // Capped at one hour: a huge value must not overflow a timer into a tight polling loop.
  if (/^\s*\d+\s*$/.test(value)) return Math.min(Number(value), MAX_RETRY_AFTER)
  const t = Date.parse(value)
  return Number.isNaN(t) ? fallback : Math.min(MAX_RETRY_AFTER, Math.max(0, Math.ceil((t - now) / 1000)))
}

/** Serializes `Prefer: wait=N`. */
export function preferWait(seconds: number): string {
  return `wait=${Math.max(0, Math.trunc(seconds))}`
}

/** Reads `wait=N` from a `Prefer` header; `undefined` when absent. */
export function parsePreferWait(value: string | null | undefined): number | undefined {
  const m = /(?:^|[,;\s])wait\s*=\s*(\d+)/i.exec(value ?? '')
  return m === null ? undefined : Number(m[1])
}

/** What an agent reads from a `202`. */
export interface DeferredInfo {
  /** Absolute pending URL. */
  readonly location: URL
  /** Seconds to wait before polling. */
  readonly retryAfter: number
  /** Body `status`; unknown values are reported as `pending` (DEF-03). */
  readonly status: 'pending' | 'interacting'
  readonly requirement: ParsedRequirement | undefined
  readonly body: Record<string, unknown>
}

/**
 * Reads a `202` response. The pending URL must be on the responder's origin (main draft §Pending
 * Response).
 *
 * @throws {AAuthError} `invalid_request` for a missing or cross-origin `Location`;
 *   {@link HeaderError} for a malformed `AAuth-Requirement`.
 */
export async function readDeferred(response: Response, requestUrl: string | URL, options?: IdentifierOptions): Promise<DeferredInfo> {
  const loc = response.headers.get('location')
  if (loc === null) throw new AAuthError('invalid_request', '202 response has no Location')
  const base = new URL(response.url !== '' ? response.url : requestUrl)
  let location: URL
  try {
    location = new URL(loc, base)
  } catch {
    throw new AAuthError('invalid_request', `202 Location ${JSON.stringify(loc)} is not a URL`)
  }
  if (location.origin !== base.origin) throw new AAuthError('invalid_request', `pending URL ${location.href} is not on ${base.origin}`)
  let body: Record<string, unknown> = {}
  try {
    const v: unknown = await response.json()
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) body = v as Record<string, unknown>
  } catch {
    /* a 202 without a JSON body is still pending */
  }
  const req = response.headers.get(AAUTH_REQUIREMENT_HEADER)
  return {
    location,
    retryAfter: parseRetryAfter(response.headers.get('retry-after')),
    status: body['status'] === 'interacting' ? 'interacting' : 'pending',
    requirement: req === null ? undefined : parseRequirement(req, options),
    body,
  }
}

