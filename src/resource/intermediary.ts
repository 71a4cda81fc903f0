/**
 * A resource acting as an agent to call a downstream resource for its caller (main draft §Call
 * Chaining, §Intermediary Agent Identity; CHECKLIST CHAIN-01..04, CHAIN-06).
 *
 * The intermediary is its own agent provider: it publishes `/.well-known/aauth-agent.json` on its
 * own origin with the resource's `issuer`, and signs downstream requests with an agent token it
 * issued to itself (so that token's `iss` is the resource identifier, which is what the PS
 * compares with the upstream token's `aud`). Its agent-token signing keys are the resource's own
 * {@link KeyRing}, so the JWKS the resource already serves covers both documents.
 *
 * For each request it serves, `downstream(access)` is an agent client that:
 * - sends its token requests to the PS the upstream token names (a person token's `iss`, an auth
 *   token's `ps`), never to a PS of its own (CHAIN-02);
 * - passes the token the caller presented (`access.token.raw`) as `upstream_token` (CHAIN-03),
 *   in the body only, signing with its own key (CHAIN-04);
 * - stays under the upstream token's mission, and keeps one client per upstream token until it
 *   expires (its downstream tokens are reused; two callers' people are never mixed).
 *
 * Interaction chaining (§Interaction Chaining, CHAIN-05) goes through `chained(access, work)`:
 * when the downstream PS needs the person, the caller gets the intermediary's own `202` with
 * `requirement=interaction`, its own code (whose interaction URL sends the person on to the
 * downstream PS's page) and its own pending URL, where the result of `work` is answered once the
 * downstream call completes. Plain `downstream(access)` declares no `interaction` capability, so a
 * downstream PS that needs the person answers `user_unreachable` there. The person's remembered
 * grants at the PS are keyed on the intermediary's agent identifier.
 *
 * The interaction URL is served by `handle` (before the AAuth middleware) and the pending URL by
 * `poll` (behind it: only the caller's key is answered); pending requests live in memory (one
 * instance), and a pending URL is a 128-bit secret.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @example
 * ```ts
 * const chain = await createIntermediary({ issuer: 'https://trips.example', keys })
 * app.get('/.well-known/aauth-agent.json', (c) => chain.handle(c.req.raw)!)
 * app.use('*', aauth(resource, …))
 * app.post('/trips', async (c) => {
 *   const pay = await chain.downstream(c.get('aauth')).fetch('https://payments.example/charge', { method: 'POST', … })
 *   return c.json(await pay.json(), pay.status)
 * })
 * ```
 *
 * @module
 */

import { AgentCredentials } from '../agent/agent-credentials.js'
import { createAgentClient, type AgentClient, type AgentClientOptions } from '../agent/client.js'
import { AgentError } from '../agent/errors.js'
import type { KeyRing } from '../agent/key-ring.js'
import { createAgentProvider, type AgentProvider } from '../agent/provider.js'
import { SignedTransport } from '../agent/signed-transport.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { randomBytes } from 'node:crypto'
import {
  createEgressFetcher,
  createSigner,
  DWK,
  generateInteractionCode,
  generateKeyPair,
  JwksCache,
  normalizeInteractionCode,
  pendingResponse,
  ProblemError,
  problemResponse,
  type EgressFetcher,
  type IdentifierOptions,
} from '../protocol/index.js'
import type { InteractionPrompt } from '../agent/deferred-poller.js'
import type { ResourceAccess } from './access.js'

/** Options of {@link createIntermediary}. */
export interface IntermediaryOptions extends IdentifierOptions {
  /** The resource's `issuer`: also the intermediary's agent provider identifier. */
  readonly issuer: string
  /** The resource's signing keys; they sign the intermediary's agent tokens too. */
  readonly keys: KeyRing
  /** The local part of its agent identifier (`aauth:{local}@{host}`). Default `intermediary`. */
  readonly local?: string
  /** Shown in its agent metadata. */
  readonly name?: string
  /** Agent token lifetime (s). Default 3600. */
  readonly tokenLifetimeSec?: number
  readonly now?: () => number
  /** Metadata and JWKS fetches. Default: the SSRF-guarded egress fetcher. */
  readonly egress?: EgressFetcher
  /** Downstream requests. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** How long a chained interaction waits for the person (s). Default 600. */
  readonly pendingTtlSec?: number
  /** More options for every downstream client (callbacks, timeouts). */
  readonly client?: Partial<Omit<AgentClientOptions, 'credentials' | 'personServer' | 'upstreamToken' | 'mission' | 'mediator' | 'transport' | 'fetch' | 'now'>>
}

/** A resource's agent side. */
export interface Intermediary {
  /** Its agent identifier. */
  readonly agentId: string
  /** The agent provider it is to itself. */
  readonly provider: AgentProvider
  /**
   * Answers `GET /.well-known/aauth-agent.json` and the chained interaction URL the person's
   * browser follows (mount it before the AAuth middleware); `undefined` for any other request.
   */
  handle(request: Request): Response | undefined
  /**
   * Answers a poll of a chained pending URL (`GET {issuer}/aauth/chain/pending/{id}`), behind the
   * AAuth middleware (a route requiring `{ access: 'person' }` fits: the caller presents the token
   * it called with). Only the agent that made the request — the same signing key — gets an answer;
   * anyone else gets `404` (main draft §Pending URL Security, DEF-02). `undefined` for other paths.
   */
  poll(request: Request, access: ResourceAccess): Response | undefined
  /** The path prefix of chained pending URLs. */
  readonly pendingPath: string
  /**
   * An agent client acting for the caller of one served request.
   *
   * @throws {AgentError} `requirement_unsatisfiable` when the caller presented only an agent token
   *   (there is no person to act for: the route must require a person or auth token).
   */
  downstream(access: ResourceAccess): AgentClient
  /**
   * Runs `work` with a downstream client for one served request, chaining interaction (main draft
   * §Interaction Chaining, CHAIN-05): if the downstream PS answers `202 requirement=interaction`
   * before `work` is done, the caller is answered at once with this resource's own `202`,
   * `requirement=interaction`, code and `Location`; `work` goes on, and its response (or its error
   * as a problem response) is answered at that pending URL.
   *
   * @throws {AgentError} `requirement_unsatisfiable` as {@link Intermediary.downstream}.
   */
  chained(access: ResourceAccess, work: (client: AgentClient) => Promise<Response>): Promise<Response>
}

/** A chained request waiting for the person. */
interface ChainPending {
  /** Where the person goes next: the downstream interaction page with its code. */
  readonly next: string
  /** The thumbprint of the caller's key: only it may poll (DEF-02). */
  readonly agentJkt: string
  /** The final answer, once `work` settled. */
  done?: { status: number; headers: [string, string][]; body: Uint8Array }
  /** The final answer was delivered: the URL is gone (`410`) from then on (DEF-02). */
  delivered?: boolean
}

const PENDING_PATH = '/aauth/chain/pending/'
const INTERACTION_PATH = '/aauth/chain/interaction'

/**
 * Creates the intermediary of a resource.
 *
 * @throws {TypeError} / {@link IdentifierError} for an invalid issuer or local name.
 */
export async function createIntermediary(options: IntermediaryOptions): Promise<Intermediary> {
  const idOpts: IdentifierOptions = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  const now = options.now ?? Date.now
  const provider = createAgentProvider({
    issuer: options.issuer,
    keys: options.keys,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.tokenLifetimeSec === undefined ? {} : { tokenLifetimeSec: options.tokenLifetimeSec }),
    now,
    ...idOpts,
  })
  const local = options.local ?? 'intermediary'
  const agentId = `aauth:${local}@${new URL(options.issuer).host}`
  // Its own signing key, bound in the agent tokens it issues itself (no `ps`: it acts for everyone's person).
  const key = await generateKeyPair('Ed25519')
  const signer = await createSigner(key.privateJwk)
  const credentials = new AgentCredentials({ refresh: async () => ({ agentToken: await provider.issue({ local, cnfJwk: key.publicJwk }), signer }) })
  const egress = options.egress ?? createEgressFetcher(idOpts)
  const jwks = new JwksCache({ fetcher: egress, now, ...idOpts })
  const metadataPath = `/.well-known/${DWK.agent}`
  // One transport for every downstream client: they share a key, and a resource's replay cache
  // keys on it (two callers' identical requests in one second must still be distinct).
  const transport = new SignedTransport({
    now,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(options.client?.onStep === undefined ? {} : { onStep: options.client.onStep }),
  })
  // One client per upstream token, until it expires (CHAIN-06: reused for any number of calls).
  const clients = new BoundedCache<string, AgentClient>(10_000, now)
  const pendingTtlMs = (options.pendingTtlSec ?? 600) * 1000
  const pending = new BoundedCache<string, ChainPending>(10_000, now)
  const byCode = new BoundedCache<string, string>(10_000, now)

  /** What every downstream client of a served request shares. */
  function clientFor(access: ResourceAccess, extra: Partial<AgentClientOptions> = {}): AgentClient {
    const t = access.token
    if (t.type === 'aa-agent+jwt') {
      throw new AgentError('requirement_unsatisfiable', 'call chaining needs the person or auth token the caller presented; this request carried only an agent token')
    }
    return createAgentClient({
      ...options.client,
      ...extra,
      credentials,
      // CHAIN-02: the PS the upstream token names.
      personServer: t.type === 'aa-person+jwt' ? t.claims.iss : t.claims.ps,
      upstreamToken: t.raw,
      // The upstream token's mission applies downstream (the PS checks it is that one).
      ...(t.claims.mission_s256 === undefined ? {} : { mission: t.claims.mission_s256 }),
      egress,
      jwks,
      now,
      transport,
      ...idOpts,
    })
  }

  async function settle(entry: ChainPending, work: Promise<Response>): Promise<void> {
    let res: Response
    try {
      res = await work
    } catch (err) {
      res = err instanceof ProblemError ? problemResponse(err) : problemResponse(new ProblemError('server_error', 'the downstream call failed'))
    }
    const type = res.headers.get('content-type')
    entry.done = { status: res.status, headers: type === null ? [] : [['content-type', type]], body: new Uint8Array(await res.arrayBuffer()) }
  }

  function poll(request: Request, access: ResourceAccess): Response | undefined {
    const url = new URL(request.url)
    if (request.method !== 'GET' || !url.pathname.startsWith(PENDING_PATH)) return undefined
    const entry = pending.get(url.pathname.slice(PENDING_PATH.length))
    // Unknown, ended and someone else's answer alike.
    if (entry === undefined || entry.agentJkt !== access.agentJkt) return problemResponse(new ProblemError('expired', 'no such pending request (it ended or expired)'))
    if (entry.done === undefined) return pendingResponse({ location: url.href, retryAfter: 1 }, idOpts)
    if (entry.delivered === true) return problemResponse(new ProblemError('invalid_code', 'this request has ended and its answer was delivered'))
    entry.delivered = true
    return new Response(entry.done.body.slice(), { status: entry.done.status, headers: [...entry.done.headers, ['cache-control', 'no-store']] })
  }

  function serve(request: Request): Response | undefined {
    const url = new URL(request.url)
    if (request.method !== 'GET') return undefined
    if (url.pathname === INTERACTION_PATH) {
      const code = normalizeInteractionCode(url.searchParams.get('code') ?? '')
      const id = code === undefined ? undefined : byCode.get(code)
      const entry = id === undefined ? undefined : pending.get(id)
      // Single use (CODE-04): the person is sent on once.
      if (code !== undefined) byCode.delete(code)
      if (entry === undefined) return new Response('This link has expired or is not valid.', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } })
      // The person continues at the downstream person server, which decides.
      return new Response(null, { status: 303, headers: { location: entry.next, 'cache-control': 'no-store' } })
    }
    return undefined
  }

  return {
    agentId,
    provider,
    handle(request) {
      if (request.method === 'GET' && new URL(request.url).pathname === metadataPath) return Response.json(provider.metadata, { headers: { 'cache-control': 'max-age=300' } })
      return serve(request)
    },
    poll,
    pendingPath: PENDING_PATH,
    downstream(access) {
      const held = clients.get(access.token.raw)
      if (held !== undefined) return held
      const client = clientFor(access)
      clients.set(access.token.raw, client, access.token.claims.exp * 1000)
      return client
    },
    async chained(access, work) {
      let asked: (prompt: InteractionPrompt) => void = () => undefined
      const interaction = new Promise<InteractionPrompt>((resolve) => (asked = resolve))
      const client = clientFor(access, { onInteraction: (prompt) => asked(prompt) })
      const running = work(client)
      const first = await Promise.race([running.then((res) => ({ res }), (err: unknown) => ({ err })), interaction.then((prompt) => ({ prompt }))])
      if ('res' in first) return first.res
      if ('err' in first) throw first.err
      const id = randomBytes(16).toString('base64url')
      const code = generateInteractionCode()
      const entry: ChainPending = { next: first.prompt.userUrl, agentJkt: access.agentJkt }
      const until = now() + pendingTtlMs
      pending.set(id, entry, until)
      byCode.set(normalizeInteractionCode(code)!, id, until)
      void settle(entry, running)
      return pendingResponse({ location: `${options.issuer}${PENDING_PATH}${id}`, retryAfter: 1, requirement: { requirement: 'interaction', url: `${options.issuer}${INTERACTION_PATH}`, code } }, idOpts)
    },
  }
}
