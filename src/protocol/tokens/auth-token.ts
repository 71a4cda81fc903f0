/**
 * Auth tokens, `typ: aa-auth+jwt` (main draft §Auth Token Structure, §Auth Token Verification;
 * CHECKLIST TOK-AT-01..05).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { SignatureError } from '../errors.js'
import { assertServerIdentifier, isServerIdentifier } from '../identifiers.js'
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
  type GrantOptions,
  type TokenVerifyOptions,
} from './common.js'

/** Claims of a verified auth token. */
export interface AuthTokenClaims extends CommonClaims {
  aud: string
  ps: string
  sub: string
  cnf: { jwk: PublicJwk }
  scope?: string
  account?: string
  mission_s256?: string
  tenant?: string
}

/** Arguments of {@link createAuthToken}. */
export interface CreateAuthTokenOptions extends CreateTokenOptions, GrantOptions {
  /** `person` when a PS issues it (three-party), `access` when an AS does. */
  readonly issuerRole: 'person' | 'access'
  readonly aud: string
  /** The person server; must equal `issuer` when `issuerRole` is `person`. */
  readonly ps: string
  readonly sub: string
  readonly cnfJwk: PublicJwk
  /** `exp` of the agent token used to obtain it. */
  readonly agentTokenExp?: number
  /** `exp` of the `presented_token` of the request. */
  readonly presentedTokenExp?: number
  /** `exp` of the `upstream_token`, when there was one. */
  readonly upstreamTokenExp?: number
  /** The mission's `expires_at`, when `missionS256` is set. */
  readonly missionExpiresAt?: number
}

/**
 * Issues an auth token: at most 1 h, and never outliving the agent token, the presented token,
 * the upstream token or the mission.
 *
 * @throws {TypeError} / {@link RangeError} for invalid arguments.
 */
export async function createAuthToken(opts: CreateAuthTokenOptions): Promise<string> {
  assertServerIdentifier(opts.aud, opts)
  assertServerIdentifier(opts.ps, opts)
  if (opts.issuerRole === 'person' && opts.ps !== opts.issuer) throw new TypeError('a PS-issued auth token has ps equal to iss')
  if (opts.sub === '') throw new TypeError('sub must be non-empty')
  const dwk = opts.issuerRole === 'person' ? DWK.person : DWK.access
  const claims = commonClaims(TOKEN_TYPE.auth, dwk, opts, 3600, [opts.agentTokenExp, opts.presentedTokenExp, opts.upstreamTokenExp, opts.missionExpiresAt])
  assignClaims(claims, {
    aud: opts.aud, ps: opts.ps, sub: opts.sub, cnf: { jwk: assertConfirmationJwk(opts.cnfJwk, 'cnfJwk') },
    scope: opts.scope, account: opts.account, mission_s256: opts.missionS256, tenant: opts.tenant,
  })
  return signToken(TOKEN_TYPE.auth, claims, opts.key)
}

/** Options of {@link verifyAuthToken}. */
export interface AuthTokenVerifyOptions extends TokenVerifyOptions {
  /** The resource's own identifier, which `aud` must equal. */
  readonly audience: string
  /** When set, `iss` must be one of these (the resource's PS or access server). */
  readonly trustedIssuers?: readonly string[]
}

/**
 * Verifies an auth token: JWT trust (common checks, `dwk` `aauth-access.json` or
 * `aauth-person.json`) and the token-level part of request-context binding (`aud`, `ps`, `sub`,
 * `cnf.jwk`). The caller binds `cnf.jwk` to the request signature and `(iss, sub)` to its records.
 *
 * @throws {SignatureError}
 */
export async function verifyAuthToken(token: string, options: AuthTokenVerifyOptions): Promise<AuthTokenClaims> {
  const { payload } = await verifyTokenCommon(token, TOKEN_TYPE.auth, [DWK.access, DWK.person], options)
  requireAudience(payload, options.audience)
  if (options.trustedIssuers !== undefined && !options.trustedIssuers.includes(payload['iss'] as string)) {
    throw new SignatureError('invalid_jwt', `auth tokens from ${String(payload['iss'])} are not accepted here`)
  }
  if (!isServerIdentifier(payload['ps'], options)) throw new SignatureError('invalid_jwt', 'auth token ps is not a server identifier')
  if (payload['dwk'] === DWK.person && payload['ps'] !== payload['iss']) {
    throw new SignatureError('invalid_jwt', 'a PS-issued auth token must have ps equal to iss')
  }
  requiredString(payload, 'sub')
  for (const c of ['scope', 'account', 'tenant']) optionalString(payload, c)
  optionalMission(payload)
  confirmationKey(payload, options)
  return payload as AuthTokenClaims
}
