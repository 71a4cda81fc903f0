/**
 * Person tokens, `typ: aa-person+jwt` (main draft §Person Token Structure, §Person Token
 * Verification; CHECKLIST TOK-PT-01..05).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { SignatureError } from '../errors.js'
import { assertServerIdentifier } from '../identifiers.js'
import { DWK } from '../metadata.js'
import type { PublicJwk } from '../crypto.js'
import {
  assignClaims,
  assertConfirmationJwk,
  commonClaims,
  confirmationKey,
  optionalMission,
  optionalString,
  requireAudience,
  requiredString,
  signToken,
  TOKEN_TYPE,
  verifyTokenCommon,
  type CommonClaims,
  type CreateTokenOptions,
  type PersonContextOptions,
  type TokenVerifyOptions,
} from './common.js'

/** Claims of a verified person token. */
export interface PersonTokenClaims extends CommonClaims {
  /** The one resource this token identifies the person to. */
  aud: string
  /** Directed user identifier, unique within `iss`. */
  sub: string
  cnf: { jwk: PublicJwk }
  mission_s256?: string
  tenant?: string
}

/** Arguments of {@link createPersonToken}. */
export interface CreatePersonTokenOptions extends CreateTokenOptions, PersonContextOptions {
  readonly aud: string
  readonly sub: string
  readonly cnfJwk: PublicJwk
  /** `exp` of the agent token presented when this token was requested (the token must not outlive it). */
  readonly agentTokenExp?: number
  /** `exp` of the `upstream_token`, when the request carried one. */
  readonly upstreamTokenExp?: number
  /** The mission's `expires_at` (seconds), when `missionS256` is set. */
  readonly missionExpiresAt?: number
}

/**
 * Issues a person token: at most 1 h, and never outliving the agent token, the upstream token or
 * the mission it names.
 *
 * @throws {TypeError} / {@link RangeError} for invalid arguments.
 */
export async function createPersonToken(opts: CreatePersonTokenOptions): Promise<string> {
  assertServerIdentifier(opts.aud, opts)
  if (opts.sub === '') throw new TypeError('sub must be non-empty')
  const claims = commonClaims(TOKEN_TYPE.person, DWK.person, opts, 3600, [opts.agentTokenExp, opts.upstreamTokenExp, opts.missionExpiresAt])
  assignClaims(claims, { aud: opts.aud, sub: opts.sub, cnf: { jwk: assertConfirmationJwk(opts.cnfJwk, 'cnfJwk') }, mission_s256: opts.missionS256, tenant: opts.tenant })
  delete claims['scope']
  delete claims['account']
  return signToken(TOKEN_TYPE.person, claims, opts.key)
}

/** Options of {@link verifyPersonToken}. */
export interface PersonTokenVerifyOptions extends TokenVerifyOptions {
  /** The verifier's own identifier, which `aud` must equal. */
  readonly audience: string
}

/**
 * Verifies a person token: common checks, `aud` is the verifier, `sub` present, no `scope` or
 * `account` (a person token is not authorization), `cnf.jwk` usable.
 *
 * @throws {SignatureError}
 */
export async function verifyPersonToken(token: string, options: PersonTokenVerifyOptions): Promise<PersonTokenClaims> {
  const { payload } = await verifyTokenCommon(token, TOKEN_TYPE.person, [DWK.person], options)
  requireAudience(payload, options.audience)
  requiredString(payload, 'sub')
  if ('scope' in payload || 'account' in payload) throw new SignatureError('invalid_jwt', 'a person token must not carry scope or account')
  optionalMission(payload)
  optionalString(payload, 'tenant')
  confirmationKey(payload, options)
  return payload as PersonTokenClaims
}
