/**
 * Agent tokens, `typ: aa-agent+jwt` (main draft §Agent Token Structure, §Agent Token
 * Verification; CHECKLIST TOK-AG-01..05).
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { SignatureError } from '../errors.js'
import { assertServerIdentifier, isAgentIdentifier, parseAgentIdentifier } from '../identifiers.js'
import { DWK } from '../metadata.js'
import type { PublicJwk } from '../crypto.js'
import {
  assignClaims,
  assertConfirmationJwk,
  commonClaims,
  confirmationKey,
  optionalServerId,
  signToken,
  TOKEN_TYPE,
  verifyTokenCommon,
  type CommonClaims,
  type CreateTokenOptions,
  type TokenVerifyOptions,
} from './common.js'

/** Claims of a verified agent token. */
export interface AgentTokenClaims extends CommonClaims {
  /** The agent identifier. */
  sub: string
  cnf: { jwk: PublicJwk }
  /** The agent's person server. */
  ps?: string
  /** Present on a sub-agent's token: the parent's agent identifier. */
  parent_agent?: string
}

/** Arguments of {@link createAgentToken}. */
export interface CreateAgentTokenOptions extends CreateTokenOptions {
  /** Agent identifier; its domain must be the issuer's host. */
  readonly sub: string
  /** The agent's public key (with `alg`). */
  readonly cnfJwk: PublicJwk
  /** The agent's person server, when it has one (TOK-AG-03). */
  readonly ps?: string
  /** Parent agent identifier, for a sub-agent token. */
  readonly parentAgent?: string
}

function domainOf(issuer: string): string {
  return new URL(issuer).host
}

/**
 * Issues an agent token. Default lifetime 1 h; at most 24 h.
 *
 * @throws {TypeError} / {@link IdentifierError} for invalid identifiers or keys; {@link RangeError}
 *   for a lifetime over 24 h.
 * @example
 * ```ts
 * const token = await createAgentToken({ key, issuer: 'https://agents.example',
 *   sub: 'aauth:travel-bot.7f3c@agents.example', cnfJwk: agentPublicJwk, ps: 'https://ps.example' })
 * ```
 */
export async function createAgentToken(opts: CreateAgentTokenOptions): Promise<string> {
  const id = parseAgentIdentifier(opts.sub, opts)
  if (id.domain !== domainOf(opts.issuer)) throw new TypeError(`agent identifier domain ${id.domain} is not the issuer's host`)
  if (opts.parentAgent !== undefined) {
    const parent = parseAgentIdentifier(opts.parentAgent, opts)
    if (parent.domain !== id.domain) throw new TypeError('a sub-agent is issued by its parent\'s agent provider (TOK-AG-05)')
  }
  if (opts.ps !== undefined) assertServerIdentifier(opts.ps, opts)
  const claims = commonClaims(TOKEN_TYPE.agent, DWK.agent, opts, 3600)
  assignClaims(claims, { sub: opts.sub, cnf: { jwk: assertConfirmationJwk(opts.cnfJwk, 'cnfJwk') }, ps: opts.ps, parent_agent: opts.parentAgent })
  return signToken(TOKEN_TYPE.agent, claims, opts.key)
}

/**
 * Verifies an agent token: the common checks, then `sub` a valid agent identifier whose domain is
 * the issuer's host, `ps` a server identifier when present, `parent_agent` an agent identifier of
 * the same provider when present, and `cnf.jwk` usable. The caller binds `cnf.jwk` to the request
 * signature.
 *
 * @throws {SignatureError} `invalid_jwt`, `expired_jwt`, `unknown_key`, `revoked_jwt`,
 *   `clock_skew`, `issuer_missing`, `issuer_mismatch`, `invalid_key`, `unsupported_algorithm`.
 */
export async function verifyAgentToken(token: string, options: TokenVerifyOptions): Promise<AgentTokenClaims> {
  const { payload } = await verifyTokenCommon(token, TOKEN_TYPE.agent, [DWK.agent], options)
  const sub = payload['sub']
  if (!isAgentIdentifier(sub, options)) throw new SignatureError('invalid_jwt', 'agent token sub is not a valid agent identifier')
  const domain = domainOf(payload['iss'] as string)
  if (parseAgentIdentifier(sub, options).domain !== domain) {
    throw new SignatureError('invalid_jwt', 'agent identifier domain does not match the agent provider')
  }
  optionalServerId(payload, 'ps', options)
  const parent = payload['parent_agent']
  if (parent !== undefined && (!isAgentIdentifier(parent, options) || parseAgentIdentifier(parent, options).domain !== domain)) {
    throw new SignatureError('invalid_jwt', 'parent_agent is not an agent identifier of the same provider')
  }
  confirmationKey(payload, options)
  return payload as AgentTokenClaims
}
