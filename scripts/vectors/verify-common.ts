/** Row format and expectation helpers shared by the verification vector tables. */
import type { Network, VerifierConfig, VectorRequest } from './types.js'
import { AGENT_ID, AP, AS, PERSON_SUB, PS, type RequestOptions } from './world.js'

/** Who a verified request turns out to be. */
export type Identity =
  | { readonly scheme: 'jwt'; readonly tokenType: string; readonly iss: string; readonly sub: string }
  | { readonly scheme: 'jwks_uri'; readonly iss: string; readonly dwk: string; readonly kid: string }

export const AS_AGENT: Identity = { scheme: 'jwt', tokenType: 'aa-agent+jwt', iss: AP.issuer, sub: AGENT_ID }
export const AS_PERSON: Identity = { scheme: 'jwt', tokenType: 'aa-person+jwt', iss: PS.issuer, sub: PERSON_SUB }
export const AS_AUTH: Identity = { scheme: 'jwt', tokenType: 'aa-auth+jwt', iss: AS.issuer, sub: PERSON_SUB }
export const AS_PS_AUTH: Identity = { scheme: 'jwt', tokenType: 'aa-auth+jwt', iss: PS.issuer, sub: PERSON_SUB }

/** What a row expects: an identity, or a failure with the response headers it implies. */
export type Expect =
  | { readonly as: Identity }
  | { readonly error: string; readonly requiredInput?: readonly string[]; readonly acceptScheme?: string; readonly acceptAlg?: string }

export const BASE = ['@method', '@authority', '@path', 'signature-key'] as const
export const BODY = ['content-type', 'content-digest'] as const
export const ALL_ALGS = 'Ed25519, ES256'

export const ok = (as: Identity = AS_AGENT): Expect => ({ as })
export const fail = (error: string, extra: Omit<Extract<Expect, { error: string }>, 'error'> = {}): Expect => ({ error, ...extra })

/** One verification vector before signing. */
export interface Row {
  readonly id: string
  readonly title: string
  readonly refs: readonly string[]
  readonly req?: RequestOptions
  /** Changes made after signing (tampering, dropped headers). */
  readonly mutate?: (r: VectorRequest) => void
  readonly verifier?: Partial<VerifierConfig>
  readonly network?: Network
  readonly presentations?: number
  readonly level?: 'SHOULD'
  readonly expect: Expect
}
