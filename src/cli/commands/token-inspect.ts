/**
 * `aauth token inspect TOKEN` (decode, verify against the issuer when reachable, show validity and
 * problems) and `aauth token decode TOKEN` (decode only).
 *
 * @module
 */

import {
  createEgressFetcher,
  decodeJwt,
  EgressError,
  JwksCache,
  MetadataError,
  TOKEN_TYPE,
  verifyAgentToken,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  type TokenVerifyOptions,
} from '../../protocol/index.js'
import { expectPositionals, parseArgs } from '../args.js'
import { causeMessages, errorInfo, isoTime, relativeTime, terminalSafe, writeJson, type CommandRun, type Context } from '../output.js'
import { cnfThumbprint, DEV_LOOPBACK_HINT, loopbackOptions, readStdin } from '../shared.js'

const FLAGS = { json: { type: 'boolean' } } as const

/** An `iat` further ahead of this machine's clock than this is reported as `clock_skew`. */
const IAT_SKEW_SEC = 60

type Kind = keyof typeof TOKEN_TYPE

const KIND_OF = new Map<unknown, Kind>(Object.entries(TOKEN_TYPE).map(([k, typ]) => [typ, k as Kind]))

/** One thing wrong with a token. `fatal` ones make `inspect` exit 1. */
export interface TokenProblem {
  readonly code: string
  readonly message: string
  readonly fatal: boolean
}

/** What `aauth token inspect` finds out about a token. */
export interface TokenInspection {
  /** `agent`, `person`, `resource`, `auth`, or `unknown`. */
  readonly type: Kind | 'unknown'
  readonly typ: unknown
  readonly issuer: unknown
  readonly subject: unknown
  readonly audience: unknown
  readonly issuedAt: string | undefined
  readonly expiresAt: string | undefined
  /** Seconds until expiry (negative once expired). */
  readonly expiresIn: number | undefined
  /** RFC 7638 thumbprint of `cnf.jwk`. */
  readonly cnfThumbprint: string | undefined
  /** Signature, lifetime and the type's claims checked against the issuer's JWKS. */
  readonly verified: boolean
  readonly problems: readonly TokenProblem[]
  readonly header: Record<string, unknown>
  readonly claims: Record<string, unknown>
}

/** The TOKEN argument: the token itself, or `-` for stdin. */
async function tokenArgument(positionals: string[], ctx: Context, command: string): Promise<string> {
  const [arg] = expectPositionals(positionals, ['TOKEN'], command)
  return arg === '-' ? new TextDecoder().decode(await readStdin(ctx)).trim() : arg!.trim()
}

/** Runs the verifier of the token's type; `aud` and `agent_jkt` are taken from the token itself. */
function verifyAs(kind: Kind, token: string, claims: Record<string, unknown>, opts: TokenVerifyOptions): Promise<unknown> {
  const given = (claim: string) => (typeof claims[claim] === 'string' ? (claims[claim] as string) : '')
  switch (kind) {
    case 'agent':
      return verifyAgentToken(token, opts)
    case 'person':
      return verifyPersonToken(token, { ...opts, audience: given('aud') })
    case 'resource':
      return verifyResourceToken(token, { ...opts, audience: given('aud'), agentJkt: given('agent_jkt') || '-' })
    case 'auth':
      return verifyAuthToken(token, { ...opts, audience: given('aud') })
  }
}

/** A verification failure as a problem: an unreachable issuer is not fatal, anything else is. */
function problemOf(e: unknown): TokenProblem {
  const cause = e instanceof Error ? e.cause : undefined
  if (cause instanceof EgressError) return { code: cause.code, message: `not verified: issuer unreachable (${cause.url}: ${[cause.message, ...causeMessages(cause)].join(': ')})`, fatal: false }
  if (cause instanceof MetadataError && cause.code === 'invalid_metadata') return { code: cause.code, message: `not verified: issuer keys unavailable (${cause.message})`, fatal: false }
  const info = errorInfo(e)
  return { code: info.code, message: info.message, fatal: true }
}

/**
 * Decodes `token` and verifies it against its issuer's JWKS. Never throws for a bad token: what is
 * wrong is in `problems`.
 */
export async function inspectToken(token: string, ctx: Context): Promise<TokenInspection> {
  const idOpts = loopbackOptions(ctx)
  const problems: TokenProblem[] = []
  let header: Record<string, unknown> = {}
  let claims: Record<string, unknown> = {}
  try {
    ;({ header, payload: claims } = decodeJwt(token))
  } catch (e) {
    problems.push(problemOf(e))
  }
  const nowSec = Math.floor(ctx.now() / 1000)
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)
  const iat = num(claims['iat'])
  const exp = num(claims['exp'])
  const kind = KIND_OF.get(header['typ'])
  let verified = false
  if (kind === undefined && problems.length === 0) {
    problems.push({ code: 'invalid_jwt', message: `typ ${JSON.stringify(header['typ'] ?? null)} is not an AAuth token type (${Object.values(TOKEN_TYPE).join(', ')})`, fatal: true })
  } else if (kind !== undefined) {
    const jwks = new JwksCache({ fetcher: createEgressFetcher(idOpts), ...idOpts })
    const opts: TokenVerifyOptions = { jwks, iatSkewSec: IAT_SKEW_SEC, now: ctx.now, ...idOpts }
    try {
      await verifyAs(kind, token, claims, opts)
      verified = true
    } catch (e) {
      const problem = problemOf(e)
      if (problem.code === 'expired_jwt' && exp !== undefined) {
        // Say whether it was otherwise good: verify as of one second before expiry.
        const asOfExpiry = await verifyAs(kind, token, claims, { ...opts, now: () => (exp - 1) * 1000 }).then(
          () => 'the signature and claims verify as of its expiry',
          (e2: unknown) => `as of its expiry: ${problemOf(e2).message}`,
        )
        problems.push({ ...problem, message: `expired ${relativeTime(exp, nowSec)}; ${asOfExpiry}` })
      } else problems.push(problem)
    }
    const iss = claims['iss']
    if (!verified && !idOpts.allowInsecureLoopback && typeof iss === 'string' && /^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(iss)) {
      problems.push({ code: 'hint', message: DEV_LOOPBACK_HINT, fatal: false })
    }
  }
  return {
    type: kind ?? 'unknown',
    typ: header['typ'],
    issuer: claims['iss'],
    subject: claims['sub'],
    audience: claims['aud'],
    issuedAt: iat === undefined ? undefined : isoTime(iat),
    expiresAt: exp === undefined ? undefined : isoTime(exp),
    expiresIn: exp === undefined ? undefined : exp - nowSec,
    cnfThumbprint: await cnfThumbprint(claims),
    verified,
    problems,
    header,
    claims,
  }
}

function show(v: unknown): string {
  return terminalSafe(typeof v === 'string' ? v : JSON.stringify(v))
}

/** The readable report of an inspection. */
function formatInspection(r: TokenInspection, nowSec: number): string {
  const decoded = Object.keys(r.header).length > 0
  const lines: string[] = [!decoded ? 'not a JWT' : `${r.type === 'unknown' ? 'not an AAuth token' : `${r.type} token`} (typ ${show(r.typ ?? 'none')})`]
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(10)} ${value}`)
  const when = (iso: string | undefined, claim: string) => (iso === undefined ? 'none' : `${iso} (${relativeTime(r.claims[claim] as number, nowSec)})`)
  if (r.issuer !== undefined) row('issuer:', show(r.issuer))
  if (r.subject !== undefined) row('subject:', show(r.subject))
  if (r.audience !== undefined) row('audience:', show(r.audience))
  if (decoded) row('issued:', when(r.issuedAt, 'iat'))
  if (decoded) row('expires:', when(r.expiresAt, 'exp'))
  if (r.cnfThumbprint !== undefined) row('key:', `cnf.jwk thumbprint ${r.cnfThumbprint}`)
  for (const claim of ['ps', 'scope', 'parent_agent', 'mission_s256']) if (r.claims[claim] !== undefined) row(`${claim}:`, show(r.claims[claim]))
  lines.push(r.verified ? `verified:    yes — signature, lifetime and ${r.type} token claims checked against ${show(r.issuer)}'s JWKS (aud taken as given)` : 'verified:    no')
  if (r.problems.length === 0) lines.push('problems:    none')
  else {
    lines.push('problems:')
    for (const p of r.problems) lines.push(`  - ${p.code}: ${terminalSafe(p.message)}`)
  }
  if (decoded) lines.push(`header:      ${show(r.header)}`, `claims:      ${terminalSafe(JSON.stringify(r.claims, null, 2), true).replace(/\n/g, '\n             ')}`)
  return lines.join('\n') + '\n'
}

/**
 * `aauth token inspect TOKEN [--json]`: exit 0 when the token verifies or cannot be checked (issuer
 * unreachable), 1 when it is malformed or fails verification.
 */
export const tokenInspect: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, 'token inspect')
  const token = await tokenArgument(positionals, ctx, 'token inspect')
  const r = await inspectToken(token, ctx)
  if (flags.json) writeJson(ctx.stdout, r)
  else ctx.stdout.write(formatInspection(r, Math.floor(ctx.now() / 1000)))
  return r.problems.some((p) => p.fatal) ? 1 : 0
}

/** `aauth token decode TOKEN [--json]`: the header and claims, unverified. */
export const tokenDecode: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, 'token decode')
  const { header, payload } = decodeJwt(await tokenArgument(positionals, ctx, 'token decode'))
  if (flags.json) writeJson(ctx.stdout, { header, payload })
  else {
    const exp = typeof payload['exp'] === 'number' ? isoTime(payload['exp']) : 'none'
    ctx.stdout.write(terminalSafe(`type:    ${String(header['typ'])}\nissuer:  ${String(payload['iss'])}\nexpires: ${exp}\nheader:  ${JSON.stringify(header)}\nclaims:  ${JSON.stringify(payload, null, 2)}\n(not verified)\n`, true))
  }
  return 0
}
