/**
 * The agent provider (AP) as a Hono app (main draft §Agent Provider, §Agent Provider Metadata;
 * bootstrap draft §8 Refresh Patterns, §10 Enrollment Sketches).
 *
 * - `GET /.well-known/aauth-agent.json` and `GET /.well-known/jwks.json` (the {@link KeyRing});
 * - `POST /enroll`: an agent proves possession of its durable key (`hwk` signature covering the
 *   body) and presents a one-time enrollment code the operator created for an agent name — or an
 *   attestation the `attest` hook accepts (the SPIFFE bridge plugs in here);
 * - `POST /token`: issues an agent token. Signed with the durable key (`hwk`, single-key pattern)
 *   the token binds that key; signed with an ephemeral key named by a `jkt-jwt` from the durable
 *   key (two-key pattern) it binds the ephemeral key.
 *
 * A self-hosted agent is its own provider: {@link AgentProvider.issue} mints its token directly.
 * When the AP stops trusting an agent it revokes the agent's token at the agent's person server
 * ({@link AgentProvider.revokeAgentToken}; main draft §Token Revocation, CHECKLIST AG-07).
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import { Hono } from 'hono'
import {
  AAuthError,
  assertServerIdentifier,
  createAgentToken,
  createEgressFetcher,
  decodeJwt,
  DWK,
  fetchMetadata,
  MetadataError,
  type EgressFetcher,
  generateInteractionCode,
  isAgentIdentifier,
  ProblemError,
  problemResponse,
  resolveHwk,
  resolveJktJwt,
  sendServerSigned,
  SignatureError,
  signatureErrorResponse,
  verifyRequestSignature,
  type AgentProviderMetadata,
  type PublicJwk,
  type SelfProvenContext,
  type SignatureKeyMember,
} from '../protocol/index.js'
import type { KeyRing } from './key-ring.js'
import { readFailure } from './errors.js'
import { loadJose } from '../lib/jose.js'

/** One enrolled agent: its identifier, its durable key and its person server. */
export interface Enrollment {
  readonly sub: string
  /** RFC 7638 thumbprint of the durable key. */
  readonly durableJkt: string
  readonly ps?: string
  /** Extra claims every agent token of this agent carries (e.g. `spiffe_id`), from its attestation. */
  readonly claims?: Readonly<Record<string, unknown>>
  /** Enrolled by an attestation that must be presented again at every token request. */
  readonly reattest?: boolean
  readonly createdAt: number
}

/** What an enrollment code (or an accepted attestation) grants. */
export interface EnrollmentGrant {
  /** The `local` part of the agent identifier to assign. */
  readonly local: string
  /** The agent's person server, carried as `ps` in its tokens. */
  readonly ps?: string
  /**
   * Extra claims for the agent's tokens, e.g. the SPIFFE ID that attested it (for PS/AS policy).
   * Registered and AAuth claim names are refused.
   */
  readonly claims?: Readonly<Record<string, unknown>>
  /**
   * The attestation is short-lived (a SPIFFE SVID): every `/token` request must attest again, and
   * the grant it yields must name the same agent. Enrollment codes never set this.
   */
  readonly reattest?: boolean
}

/** What an {@link AgentProviderOptions.attest} hook is given. */
export interface AttestationInput {
  /** The verified request (its body already read: use `body`). */
  readonly request: Request
  /** The request's JSON body. */
  readonly body: Record<string, unknown>
  /** RFC 7638 thumbprint of the agent's durable key (it signed the request). */
  readonly durableJkt: string
  /** `enroll` at `POST /enroll`; `token` at `POST /token` for an agent enrolled with `reattest`. */
  readonly phase: 'enroll' | 'token'
  /** The TLS client certificate chain (DER, leaf first) when the request came over mutual TLS. */
  readonly peerCertificates?: readonly Uint8Array[]
}

/** Storage of codes and enrollments. Writes must be durable before the response is sent. */
export interface EnrollmentStore {
  putCode(code: string, grant: EnrollmentGrant, expiresAt: number): Promise<void>
  /** Returns and deletes the grant of a live code (single use). */
  takeCode(code: string, now: number): Promise<EnrollmentGrant | undefined>
  getEnrollment(durableJkt: string): Promise<Enrollment | undefined>
  putEnrollment(e: Enrollment): Promise<void>
}

/** In-memory {@link EnrollmentStore} (development and tests). */
export class MemoryEnrollmentStore implements EnrollmentStore {
  readonly #codes = new Map<string, { grant: EnrollmentGrant; expiresAt: number }>()
  readonly #enrollments = new Map<string, Enrollment>()
  async putCode(code: string, grant: EnrollmentGrant, expiresAt: number): Promise<void> {
    this.#codes.set(code, { grant, expiresAt })
  }
  async takeCode(code: string, now: number): Promise<EnrollmentGrant | undefined> {
    const entry = this.#codes.get(code)
    this.#codes.delete(code)
    return entry !== undefined && entry.expiresAt > now ? entry.grant : undefined
  }
  async getEnrollment(jkt: string): Promise<Enrollment | undefined> {
    return this.#enrollments.get(jkt)
  }
  async putEnrollment(e: Enrollment): Promise<void> {
    this.#enrollments.set(e.durableJkt, e)
  }
}

/** Options of {@link createAgentProvider}. */
export interface AgentProviderOptions {
  /** The AP's server identifier; the domain of every agent identifier it assigns. */
  readonly issuer: string
  /** Signing keys; the JWKS publishes them. */
  readonly keys: KeyRing
  readonly name?: string
  /** Agent token lifetime in seconds. Default 3600; at most 86400. */
  readonly tokenLifetimeSec?: number
  readonly store?: EnrollmentStore
  /**
   * Attestation hook: given the verified request (the durable key is `durableJkt`) and its JSON
   * body, return the grant to enroll under, or `undefined` to fall back to enrollment codes.
   */
  readonly attest?: (input: AttestationInput) => Promise<EnrollmentGrant | undefined>
  readonly now?: () => number
  /** Development only: admit an `http://127.0.0.1:PORT` issuer. */
  readonly allowInsecureLoopback?: boolean
  /** Fetches PS metadata for revocation. Default: {@link createEgressFetcher}. */
  readonly egress?: EgressFetcher
  /** Sends the revocation request. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
}

/** A running agent provider. */
export interface AgentProvider {
  /** The Hono app; mount it or serve it. */
  readonly app: Hono
  readonly metadata: AgentProviderMetadata
  /** Creates a one-time enrollment code for an agent name (default lifetime 15 minutes). */
  createEnrollmentCode(grant: EnrollmentGrant, ttlSec?: number): Promise<string>
  /** Issues a token directly (self-hosted agents, sub-agents issued by the operator). */
  issue(input: { local: string; cnfJwk: PublicJwk; ps?: string; parentLocal?: string; claims?: Readonly<Record<string, unknown>> }): Promise<string>
  /**
   * Revokes one of this AP's agent tokens at the person server it names (`ps`), the only
   * recipient: a signed `POST {jti, exp}` to the PS `revocation_endpoint`, signed as this server
   * (`Signature-Key` `jwks_uri` scheme, `dwk=aauth-agent.json`) and covering the body. Resolves
   * once the PS answers `200` (its cascade is done).
   *
   * @returns `false` when the token names no PS (there is no one to tell).
   * @throws {AAuthError} `invalid_request` for a token this AP did not issue; {@link MetadataError}
   *   when the PS publishes no `revocation_endpoint`; the PS's own error otherwise.
   */
  revokeAgentToken(agentToken: string): Promise<boolean>
}

const TOP_LEVEL_LOCAL = /^[A-Za-z0-9._-]{1,255}$/
/** Claim names an attestation may not set: JWT registered claims and the agent token's own. */
const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'cnf', 'ps', 'parent_agent', 'dwk', 'typ', 'scope', 'act', 'agent', 'agent_jkt', 'mission'])

function assertExtraClaims(claims: Readonly<Record<string, unknown>> | undefined): void {
  for (const name of Object.keys(claims ?? {})) if (RESERVED_CLAIMS.has(name)) throw new TypeError(`an attestation may not set the "${name}" claim`)
}

/** The client certificate chain of a mutual-TLS request served by `@hono/node-server` (DER, leaf first). */
function peerCertificatesOf(env: unknown): Uint8Array[] | undefined {
  type Cert = { raw?: Uint8Array; issuerCertificate?: Cert }
  const socket = (env as { incoming?: { socket?: { getPeerCertificate?: (detailed: boolean) => Cert | null } } } | undefined)?.incoming?.socket
  let cert = socket?.getPeerCertificate?.(true) ?? undefined
  const chain: Uint8Array[] = []
  while (cert?.raw !== undefined && chain.length < 10) {
    chain.push(new Uint8Array(cert.raw))
    if (cert.issuerCertificate === undefined || cert.issuerCertificate === cert) break
    cert = cert.issuerCertificate
  }
  return chain.length === 0 ? undefined : chain
}
/** How long a revocation request may take. */
const REVOCATION_TIMEOUT_MS = 10_000

/**
 * Whether `local` can name a top-level agent at `domain` (`aauth:local@domain`): the characters
 * of the draft's local part, no sub-agent `+` form.
 */
export function isTopLevelAgentName(local: string, domain: string, options: { allowInsecureLoopback?: boolean } = {}): boolean {
  return TOP_LEVEL_LOCAL.test(local) && isAgentIdentifier(`aauth:${local}@${domain}`, options)
}

/**
 * Creates an agent provider.
 *
 * @throws {TypeError} / {@link IdentifierError} for an invalid issuer or lifetime.
 * @example
 * ```ts
 * const ap = createAgentProvider({ issuer: 'https://agents.example', keys: await KeyRing.create() })
 * const code = await ap.createEnrollmentCode({ local: 'travel-bot.7f3c', ps: 'https://ps.example' })
 * serve({ fetch: ap.app.fetch, port: 443 })
 * ```
 */
export function createAgentProvider(options: AgentProviderOptions): AgentProvider {
  const idOpts = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  assertServerIdentifier(options.issuer, idOpts)
  const lifetime = options.tokenLifetimeSec ?? 3600
  if (!Number.isInteger(lifetime) || lifetime <= 300 || lifetime > 86400) throw new RangeError('tokenLifetimeSec must be an integer in (300, 86400]: a token of 5 minutes or less is inside the refresh margin')
  const now = options.now ?? Date.now
  const store = options.store ?? new MemoryEnrollmentStore()
  const domain = new URL(options.issuer).host
  const metadata: AgentProviderMetadata = {
    issuer: options.issuer,
    jwks_uri: `${options.issuer}/.well-known/jwks.json`,
    ...(options.name === undefined ? {} : { name: options.name }),
  }

  const issue: AgentProvider['issue'] = async ({ local, cnfJwk, ps, parentLocal, claims }) => {
    assertExtraClaims(claims)
    // Main draft §Single-Level Depth (SUB-05): a sub-agent's parent is a top-level agent.
    if (parentLocal !== undefined && !isTopLevelAgentName(parentLocal, domain, idOpts)) throw new TypeError(`"${parentLocal}" is not a top-level agent: a sub-agent has no sub-agents of its own`)
    if (parentLocal !== undefined && !isTopLevelAgentName(local, domain, idOpts)) throw new TypeError(`"${local}" is not a valid sub-agent discriminator`)
    return createAgentToken({
      key: options.keys.current,
      issuer: options.issuer,
      sub: `aauth:${parentLocal === undefined ? local : `${parentLocal}+${local}`}@${domain}`,
      ...(parentLocal === undefined ? {} : { parentAgent: `aauth:${parentLocal}@${domain}` }),
      cnfJwk,
      ...(ps === undefined ? {} : { ps }),
      lifetimeSec: lifetime,
      now,
      ...(claims === undefined ? {} : { extraClaims: { ...claims } }),
      ...idOpts,
    })
  }

  const resolveKey = (member: SignatureKeyMember) => {
    if (member.scheme === 'hwk') return resolveHwk(member, { now })
    if (member.scheme === 'jkt-jwt') return resolveJktJwt(member.jwt, { now })
    throw new SignatureError('unsupported_scheme', 'the agent provider accepts hwk and jkt-jwt', { acceptSignatureScheme: ['hwk', 'jkt-jwt'] })
  }

  async function verified(request: Request, schemes: string[]): Promise<{ ctx: SelfProvenContext; jwk: PublicJwk; body: Record<string, unknown> }> {
    const bytes = new Uint8Array(await request.arrayBuffer())
    const v = await verifyRequestSignature<SelfProvenContext>(request, { resolveKey, acceptedSchemes: schemes, now, requireBodyComponents: true, body: bytes })
    let body: unknown = {}
    if (bytes.byteLength > 0) {
      try {
        body = JSON.parse(new TextDecoder().decode(bytes))
      } catch {
        throw new ProblemError('invalid_request', 'body must be JSON')
      }
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ProblemError('invalid_request', 'body must be a JSON object')
    return { ctx: v.key.context, jwk: v.key.jwk, body: body as Record<string, unknown> }
  }

  const app = new Hono()
  app.onError((err) => {
    if (err instanceof SignatureError) return signatureErrorResponse(err)
    if (err instanceof ProblemError) {
      const body = (err as ProblemError & { body?: Record<string, unknown> }).body
      return problemResponse(err, body === undefined ? undefined : { body })
    }
    return problemResponse(new ProblemError('server_error', 'internal error'))
  })
  app.get(`/.well-known/${DWK.agent}`, (c) => c.json(metadata))
  app.get('/.well-known/jwks.json', (c) => c.json(options.keys.jwks()))

  app.post('/enroll', async (c) => {
    const { ctx, body } = await verified(c.req.raw, ['hwk'])
    const durableJkt = ctx.scheme === 'hwk' ? ctx.jkt : ctx.durableJkt
    const existing = await store.getEnrollment(durableJkt)
    if (existing !== undefined) return c.json({ agent: existing.sub }, 200)
    const peerCertificates = peerCertificatesOf(c.env)
    let grant = options.attest === undefined ? undefined : await options.attest({ request: c.req.raw, body, durableJkt, phase: 'enroll', ...(peerCertificates === undefined ? {} : { peerCertificates }) })
    if (grant === undefined) {
      const code = body['enrollment_code']
      if (typeof code !== 'string' || code === '') throw new ProblemError('invalid_request', 'enrollment_code is required')
      grant = await store.takeCode(code, now())
      if (grant === undefined) throw new ProblemError('invalid_request', 'enrollment code unknown, used or expired')
    }
    if (!isTopLevelAgentName(grant.local, domain, idOpts)) throw new ProblemError('server_error', 'the attestation mapped to an invalid agent name')
    assertExtraClaims(grant.claims)
    const sub = `aauth:${grant.local}@${domain}`
    await store.putEnrollment({
      sub,
      durableJkt,
      ...(grant.ps === undefined ? {} : { ps: grant.ps }),
      ...(grant.claims === undefined ? {} : { claims: grant.claims }),
      ...(grant.reattest === true ? { reattest: true } : {}),
      createdAt: now(),
    })
    return c.json({ agent: sub }, 201)
  })

  app.post('/token', async (c) => {
    const { ctx, jwk, body } = await verified(c.req.raw, ['hwk', 'jkt-jwt'])
    const durableJkt = ctx.scheme === 'hwk' ? ctx.jkt : ctx.durableJkt
    const e = await store.getEnrollment(durableJkt)
    if (e === undefined) throw new ProblemError('denied', 'this key is not enrolled')
    const local = e.sub.slice('aauth:'.length, e.sub.lastIndexOf('@'))
    let claims = e.claims
    if (e.reattest === true) {
      // A short-lived attestation (an SVID) vouches for the agent only while it is valid: each token needs a fresh one.
      const peerCertificates = peerCertificatesOf(c.env)
      const again = await options.attest?.({ request: c.req.raw, body, durableJkt, phase: 'token', ...(peerCertificates === undefined ? {} : { peerCertificates }) })
      if (again === undefined) throw new ProblemError('denied', 'this agent was enrolled by attestation: present a current attestation with each token request')
      if (again.local !== local) throw new ProblemError('denied', `the attestation now maps to "${again.local}", not to the enrolled agent "${local}"`)
      assertExtraClaims(again.claims)
      claims = again.claims
    }
    const agentToken = await issue({ local, cnfJwk: jwk, ...(e.ps === undefined ? {} : { ps: e.ps }), ...(claims === undefined ? {} : { claims }) })
    return c.json({ agent_token: agentToken, expires_in: lifetime, agent: e.sub })
  })

  async function revokeAgentToken(agentToken: string): Promise<boolean> {
    const { header, payload: claims } = decodeJwt(agentToken)
    if (claims['iss'] !== options.issuer) throw new AAuthError('invalid_request', 'this agent provider did not issue that token')
    // Only a token this AP really signed names the PS it will sign a revocation for.
    const jwk = options.keys.jwks().keys.find((k) => k.kid === header['kid'])
    try {
      if (jwk === undefined) throw new Error('no published key has that kid')
      await (await loadJose()).compactVerify(agentToken, jwk as PublicJwk & { kty: string }, { algorithms: [jwk.alg ?? 'Ed25519'] })
    } catch (cause) {
      throw new AAuthError('invalid_request', 'the token is not signed by a published key of this agent provider', { cause })
    }
    const ps = claims['ps']
    if (typeof ps !== 'string') return false
    const md = await fetchMetadata(ps, DWK.person, { fetcher: options.egress ?? createEgressFetcher(idOpts), ...idOpts })
    const endpoint = md.revocation_endpoint
    if (endpoint === undefined) throw new MetadataError('invalid_metadata', `${ps} publishes no revocation_endpoint`)
    const res = await sendServerSigned({
      url: endpoint,
      method: 'POST',
      json: { jti: claims['jti'], exp: claims['exp'] },
      issuer: options.issuer,
      dwk: DWK.agent,
      key: options.keys.current,
      now,
      timeoutMs: REVOCATION_TIMEOUT_MS,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
      ...idOpts,
    })
    if (res.status !== 200) throw await readFailure(res, 'person server', endpoint)
    await res.body?.cancel()
    return true
  }

  return {
    app,
    metadata,
    issue,
    revokeAgentToken,
    async createEnrollmentCode(grant, ttlSec = 900) {
      if (!isTopLevelAgentName(grant.local, domain, idOpts)) {
        throw new TypeError(`"${grant.local}" is not a valid top-level agent name`)
      }
      if (grant.ps !== undefined) assertServerIdentifier(grant.ps, idOpts)
      const code = generateInteractionCode(26, 0) // 130 bits
      await store.putCode(code, grant, now() + ttlSec * 1000)
      return code
    },
  }
}

