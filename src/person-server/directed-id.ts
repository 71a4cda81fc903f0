/**
 * Directed (pairwise) user identifiers (main draft §Directed Identifiers, §Person Token Structure):
 * each resource sees its own stable, opaque `sub` for a person, and two resources cannot correlate
 * them. The value is an HMAC of (person, resource) under a secret the PS keeps in its store, so it
 * is the same after a restart and on every PS instance, and the store remembers the pair so a
 * `sub` can be resolved back (call chaining, auth token requests).
 *
 * @module
 */

import { createHmac } from 'node:crypto'

/** The PS secret's settings name in the store. */
export const DIRECTED_ID_SECRET = 'directed_id_secret'

/**
 * The directed identifier of `personId` at `resource`: 128 bits of HMAC-SHA256, base64url.
 *
 * @example
 * ```ts
 * directedSubject(secret, 'p-1', 'https://api.example') // 'kq0v…' (22 chars)
 * ```
 */
export function directedSubject(secret: string, personId: string, resource: string): string {
  return createHmac('sha256', secret).update(personId).update('\u0000').update(resource).digest().subarray(0, 16).toString('base64url')
}
