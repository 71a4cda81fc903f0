/**
 * Resource tokens, `typ: aa-resource+jwt` (main draft §Resource Token Structure, §Resource Token
 * Verification, §Resource Challenge Verification; CHECKLIST TOK-RT-01..04).
 *
 * A resource token carries no `cnf` and no agent identifier: `agent_jkt` binds it to the agent's
 * key.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { isObject } from '../../lib/assert.js'
import { SignatureError } from '../errors.js'
import { assertEndpointUrl, assertServerIdentifier, isServerIdentifier } from '../identifiers.js'
import { DWK } from '../metadata.js'
import {
  assignClaims,
  commonClaims,
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

/** A resource-initiated interaction carried in the token (main draft §Resource-Initiated Interaction). */
export interface ResourceTokenInteraction {
  url: string
  code: string
}

/** Claims of a verified resource token. */
export interface ResourceTokenClaims extends CommonClaims {
  /** The PS (three-party) or AS (four-party) that will redeem it. */
  aud: string
  ps: string
  sub: string
  presented_jti: string
  agent_jkt: string
  scope?: string
  account?: string
  login_hint?: string
  mission_s256?: string
  tenant?: string
  interaction?: ResourceTokenInteraction
}

/** Arguments of {@link createResourceToken}. */
export interface CreateResourceTokenOptions extends CreateTokenOptions, GrantOptions {
  readonly aud: string
  readonly ps: string
  readonly sub: string
  readonly presentedJti: string
  /** RFC 7638 thumbprint of the agent's signing key. */
  readonly agentJkt: string
  readonly loginHint?: string
  readonly interaction?: ResourceTokenInteraction
}

/**
 * Issues a resource token. Default and maximum lifetime 5 minutes.
 *
 * @throws {TypeError} / {@link RangeError} for invalid arguments.
 */
export async function createResourceToken(opts: CreateResourceTokenOptions): Promise<string> {
  assertServerIdentifier(opts.aud, opts)
  assertServerIdentifier(opts.ps, opts)
  for (const [name, v] of [['sub', opts.sub], ['presentedJti', opts.presentedJti], ['agentJkt', opts.agentJkt]] as const) {
    if (typeof v !== 'string' || v === '') throw new TypeError(`${name} must be a non-empty string`)
  }
  if (opts.interaction !== undefined) assertEndpointUrl(opts.interaction.url, 'endpoint', opts)
  const claims = commonClaims(TOKEN_TYPE.resource, DWK.resource, opts, 300)
  assignClaims(claims, {
    aud: opts.aud, ps: opts.ps, sub: opts.sub, presented_jti: opts.presentedJti, agent_jkt: opts.agentJkt,
    scope: opts.scope, account: opts.account, login_hint: opts.loginHint, mission_s256: opts.missionS256, tenant: opts.tenant, interaction: opts.interaction,
  })
  delete claims['cnf']
  return signToken(TOKEN_TYPE.resource, claims, opts.key)
}

/** Options of {@link verifyResourceToken}. */
export interface ResourceTokenVerifyOptions extends TokenVerifyOptions {
  /** At a PS/AS: the verifier's identifier, which `aud` must equal. */
  readonly audience?: string
  /** At the agent: the resource the request went to, which `iss` must equal. */
  readonly issuer?: string
  /**
   * The thumbprint of the key that signed the request (or, parent-mediated, of the sub-agent's
   * key). Required: a resource token is bound to one agent key (TOK-RT-04 step 2).
   */
  readonly agentJkt: string
}

/**
 * Verifies a resource token: the common checks, then `aud`/`iss` as configured, `ps` a server
 * identifier, `sub`, `presented_jti`, `agent_jkt` equal to `agentJkt`, no
 * `cnf`, and a well-formed `interaction` when present. Mission activity and the presented token
 * are the PS's checks.
 *
 * @throws {TypeError} when neither `audience` nor `issuer`, or no `agentJkt`, is given.
 * @throws {SignatureError} (map with `toParameterError(err, 'resource')` at a token endpoint).
 */
export async function verifyResourceToken(token: string, options: ResourceTokenVerifyOptions): Promise<ResourceTokenClaims> {
  if (options.audience === undefined && options.issuer === undefined) throw new TypeError('verifyResourceToken needs audience or issuer')
  if (typeof options.agentJkt !== 'string' || options.agentJkt === '') throw new TypeError('verifyResourceToken needs agentJkt (TOK-RT-04)')
  const { payload } = await verifyTokenCommon(token, TOKEN_TYPE.resource, [DWK.resource], options)
  if (options.audience !== undefined) requireAudience(payload, options.audience)
  else if (!isServerIdentifier(payload['aud'], options)) throw new SignatureError('invalid_jwt', 'resource token aud is not a server identifier')
  if (options.issuer !== undefined && payload['iss'] !== options.issuer) {
    throw new SignatureError('invalid_jwt', `resource token iss is not ${options.issuer}`)
  }
  if (!isServerIdentifier(payload['ps'], options)) throw new SignatureError('invalid_jwt', 'resource token ps is not a server identifier')
  requiredString(payload, 'sub')
  requiredString(payload, 'presented_jti')
  const jkt = requiredString(payload, 'agent_jkt')
  if (jkt !== options.agentJkt) {
    throw new SignatureError('invalid_jwt', 'resource token agent_jkt does not match the signing key')
  }
  if ('cnf' in payload) throw new SignatureError('invalid_jwt', 'a resource token carries no cnf')
  for (const c of ['scope', 'account', 'login_hint', 'tenant']) optionalString(payload, c)
  optionalMission(payload)
  const interaction = payload['interaction']
  if (interaction !== undefined) {
    if (!isObject(interaction) || typeof interaction['code'] !== 'string') throw new SignatureError('invalid_jwt', 'interaction must carry url and code')
    try {
      assertEndpointUrl(interaction['url'], 'endpoint', options)
    } catch (cause) {
      throw new SignatureError('invalid_jwt', 'interaction url must be https without query or fragment', { cause })
    }
  }
  return payload as ResourceTokenClaims
}
