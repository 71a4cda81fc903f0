/**
 * The agent's signed `fetch`: signs every request and walks the protocol for the caller (main
 * draft §Resource Access, §Requirement Responses, §Deferred Responses, §Auth Token Usage,
 * §Resource Challenge Verification, §Auth Token Response Verification, §AAuth-Access Response
 * Header, §AAuth-Capabilities Request Header, §Expiry and the Refresh Margin; CHECKLIST AG-SIG-*,
 * AG-RES-*, AG-PS-*, AG-DEF-*).
 *
 * One call of {@link AgentClient.fetch} is a small state machine:
 *
 * 1. choose what to present to this resource: a held auth token (AG-RES-14), else a held or
 *    needed person token, else the agent token (AG-SIG-02);
 * 2. sign and send; keep any `AAuth-Access` the resource returns (AG-RES-11);
 * 3. on `401`/`402`: `requirement=agent-token` → present the agent token; `person-token` → get one
 *    from the PS; `auth-token` → verify the resource token, redeem it at the PS, verify the auth
 *    token, retry; `Signature-Error` → add `required_input`, refresh an expired or revoked token;
 *    anything else → a typed error (never a bare 401);
 * 4. on `202`: poll the pending URL, through interaction, clarification, and deferred auth-token
 *    delivery (AG-RES-08);
 * 5. redirects are followed only on the same origin, and re-signed.
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import {
  AAuthError,
  aauthAuthorization,
  AAUTH_ACCESS_HEADER,
  AAUTH_CAPABILITIES_HEADER,
  createEgressFetcher,
  DWK,
  fetchMetadata,
  isServerIdentifier,
  JwksCache,
  jwkThumbprint,
  parseAAuthAccess,
  parseRequirement,
  parseSignatureError,
  preferWait,
  ProblemError,
  serializeCapabilities,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  type Capability,
  type EgressFetcher,
  type IdentifierOptions,
  type ResourceTokenClaims,
} from '../protocol/index.js'
import type { AgentCredential, AgentCredentials } from './agent-credentials.js'
import { REFRESH_MARGIN_SEC } from './agent-credentials.js'
import { pollDeferred, type DeferredCallbacks, type InteractionPrompt, type PollContext } from './deferred-poller.js'
import { AgentError, readFailure } from './errors.js'
import { PersonServerClient } from './person-server-client.js'
import { completeMission, proposeMission, updateMission, type ApprovedMission, type MissionCallContext, type MissionCallOptions, type MissionProposal } from './missions.js'
import { SignedTransport, type AgentStep, type Presentation, type SignedTransportOptions } from './signed-transport.js'
import { TokenStore, type HeldToken } from './token-store.js'
import type { TokenMediator } from './sub-agents.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { deadlineSignal } from '../lib/deadline.js'

/** Options of {@link createAgentClient}. */
export interface AgentClientOptions extends DeferredCallbacks, IdentifierOptions {
  /** The agent token and key, refreshed before expiry. */
  readonly credentials: AgentCredentials
  /** The agent's person server. Default: the `ps` claim of the agent token. */
  readonly personServer?: string
  /** Sends the agent's requests (resources and PS). Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** Fetches metadata and JWKS. Default: {@link createEgressFetcher} with the loopback switch. */
  readonly egress?: EgressFetcher
  /** Issuer key cache (resource tokens, person and auth tokens). Default: one over `egress`. */
  readonly jwks?: JwksCache
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Waits between polls. Default: a timer that honours the abort signal. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Every protocol step (for logs and `aauth fetch -v`). */
  readonly onStep?: (step: AgentStep) => void
  /** Report the signature base with each `request` step. */
  readonly exposeSignatureBase?: boolean
  /**
   * Give an identical request sent again within the same second the next second's `created`, so
   * a replay cache does not refuse it (default true; see {@link SignedTransportOptions}).
   */
  readonly distinctCreated?: boolean
  /** Capabilities beyond those implied by the callbacks (e.g. `payment`). */
  readonly capabilities?: readonly Capability[]
  /** Longest a call may take, polling included (ms). Default 10 minutes. */
  readonly timeoutMs?: number
  /** `Prefer: wait=N` sent on token requests and polls. Default 30. */
  readonly preferWaitSec?: number
  /** Floor between polls after the first (ms). Default 1000. */
  readonly minPollIntervalMs?: number
  /** Most polls of one pending URL. Default 600. */
  readonly maxPolls?: number
  /** Most challenge/retry rounds in one call. Default 8. */
  readonly maxRounds?: number
  /** Refresh margin for person and auth tokens (s). Default 300; an auth token living shorter than twice the margin is used for its first half. */
  readonly refreshMarginSec?: number
  /** Default `mission_s256` for person-token requests. */
  readonly mission?: string
  /**
   * Relay a resource's interaction through the PS `interaction_endpoint` before prompting
   * directly (AG-INT-01). Default true; the direct prompt is the fallback.
   */
  readonly relayInteraction?: boolean
  /** Default `justification` sent with auth-token requests (Markdown). */
  readonly justification?: string
  /**
   * A sub-agent's parent (main draft §Parent-Mediated Authorization; SUB-01): person and auth
   * tokens are asked of it instead of the PS, which this client then never calls.
   */
  readonly mediator?: TokenMediator
  /**
   * Call chaining (main draft §Call Chaining): the token the caller presented to this intermediary,
   * sent as `upstream_token` with every token request (to `personServer`, the PS it names).
   */
  readonly upstreamToken?: string
  /**
   * Share one signer-side transport between clients of the same key (an intermediary's client per
   * caller): identical requests in one second then stay distinct for replay caches. Its own
   * `fetch`, `now` and `onStep` apply; this client's are ignored.
   */
  readonly transport?: SignedTransport
}

/** Per-call options, passed as `init.aauth`. */
export interface AgentFetchOptions {
  /** The scope this call needs: picks an auth token whose scope covers it. */
  readonly scope?: string
  /** `mission_s256` for this call. */
  readonly mission?: string
  /** Justification for a consent this call may need (Markdown). */
  readonly justification?: string
  /** Epoch ms after which the call gives up with `deadline_exceeded`. */
  readonly deadline?: number
}

/** `RequestInit` with the per-call AAuth options. */
export type AgentRequestInit = RequestInit & { readonly aauth?: AgentFetchOptions }

/** A signed request ready to send. */
export interface PreparedRequest {
  readonly method: string
  readonly url: URL
  /** The caller's headers plus the signature headers. */
  readonly headers: Headers
  readonly body: Uint8Array | undefined
  /** What `Signature-Key` presents. */
  readonly presenting: Presentation['kind']
}

/** What {@link AgentClient.authorize} asks for. */
export interface AuthorizeRequest {
  /** Space-separated scope values. */
  readonly scope: string
  /** The account at the resource (§Account Binding). */
  readonly account?: string
  readonly mission?: string
  readonly justification?: string
  readonly deadline?: number
  readonly signal?: AbortSignal
}

/** The outcome of {@link AgentClient.authorize}. */
export type AuthorizeResult =
  | { readonly kind: 'auth-token'; readonly authToken: HeldToken }
  | { readonly kind: 'authorized'; readonly body: unknown }

/** A signed fetch client. */
export interface AgentClient {
  /**
   * A drop-in `fetch` that signs every request and satisfies requirements as they come. Resolves
   * with the resource's final response — any status the protocol does not act on (a `404`, a
   * `500`, a `402` still asking for payment) is returned as-is, like `fetch`. The deadline
   * (`aauth.deadline` / `timeoutMs`) and `init.signal` bound everything up to the response
   * headers; reading the body afterwards is the caller's, as with `fetch`.
   *
   * @throws {AgentError} `unsupported_requirement`, `requirement_unsatisfiable`,
   *   `no_person_server`, `challenge_rejected`, `token_rejected`, `deadline_exceeded`,
   *   `too_many_rounds`, `redirect_refused`, `interaction_required`, `clarification_required`,
   *   `cancelled`, `insecure_url`, `unexpected_response`.
   * @throws {SignatureError} the server's `Signature-Error` when the agent cannot cure it.
   * @throws {ProblemError} the PS's or resource's problem `error` (`denied`, `user_unreachable`, …).
   * @throws {EgressError} `fetch_failed` when a request cannot be sent; metadata/JWKS failures.
   * @throws {HeaderError} a malformed `AAuth-Requirement`.
   * @throws {TypeError} a request that cannot be signed (a body without `Content-Type`).
   * @throws the `init.signal` abort reason when the caller aborts.
   */
  fetch(input: string | URL | Request, init?: AgentRequestInit): Promise<Response>
  /**
   * Signs a request the way {@link AgentClient.fetch} would send it first (the token held for its
   * resource, `AAuth-Access`, capabilities), without sending it: for callers with their own HTTP
   * stack. No challenge is walked. `created` is the clock: two identical requests prepared in the
   * same second are the same message to a resource's replay cache (`fetch` moves the second one
   * to the next second; here that is the caller's choice).
   */
  prepare(input: string | URL | Request, init?: AgentRequestInit): Promise<PreparedRequest>
  /**
   * Asks a resource for access ahead of a call, at its `authorization_endpoint` with a person
   * token (§Authorization Endpoint; AG-RES-12). A `resource_token` answer is redeemed at the PS
   * and the auth token held for later calls; a plain `200` (resource-managed, perhaps with
   * `AAuth-Access`) is returned as `authorized`.
   *
   * @throws {AgentError} `requirement_unsatisfiable` when the resource publishes no endpoint.
   */
  authorize(resource: string, request: AuthorizeRequest): Promise<AuthorizeResult>
  /** Obtains (or returns the held) person token for `resource` (AG-RES-13). */
  personToken(resource: string, options?: { mission?: string; deadline?: number; signal?: AbortSignal }): Promise<HeldToken>
  /**
   * Holds an auth token obtained outside the challenge flow — e.g. by RFC 8693 token exchange at
   * the PS (`exchangeToken` in `'aauth-kit/bridges/keycloak'`) — so later calls to its resource
   * present it. The token is verified as any other (signature by its issuer's published key,
   * `aud` = `resource`, time) and must be bound to this agent's current key and issued by
   * `issuer` (the PS that was asked).
   *
   * @throws {AgentError} `token_rejected` when it does not verify, is bound to another key or comes
   *   from another issuer.
   */
  holdAuthToken(token: string, expected: { readonly resource: string; readonly issuer: string }): Promise<HeldToken>
  /** The person server client, for the endpoints the flow engine does not drive itself. */
  personServer(): Promise<PersonServerClient>
  /**
   * Proposes a mission at the PS `mission_endpoint` and waits for the person (main draft §Mission
   * Creation, AG-MIS-01). The answer's `s256` is checked against the blob's bytes (AG-MIS-02), and
   * the person tokens it carries are held, so a `fetch` with `aauth.mission = s256` presents them.
   *
   * @throws {AgentError} `unexpected_response` (a digest that does not match, a malformed answer),
   *   `requirement_unsatisfiable` (the PS publishes no `mission_endpoint`), `token_rejected`.
   * @throws {ProblemError} the PS's refusal (`denied`, `invalid_request`, …).
   */
  proposeMission(proposal: MissionProposal, options?: MissionCallOptions): Promise<ApprovedMission>
  /**
   * Records a change in the work (main draft §Mission Update, AG-MIS-04); resolves with the
   * accepted update's digest.
   *
   * @throws {MissionTerminatedError} (a {@link ProblemError} `mission_terminated`) with `terminationReason` (AG-MIS-05).
   */
  updateMission(s256: string, description: string, options?: MissionCallOptions): Promise<{ s256: string }>
  /**
   * Proposes that the mission is finished and waits for the person's acceptance (main draft
   * §Mission Completion, AG-MIS-04).
   *
   * @throws {MissionTerminatedError} (a {@link ProblemError} `mission_terminated`) with `terminationReason` (AG-MIS-05).
   */
  completeMission(s256: string, summary: string, options?: MissionCallOptions): Promise<void>
  /**
   * POSTs `body` to one of the PS token endpoints signed with this agent's token, polling a `202`
   * to its end like the flow engine does (a parent asking for its sub-agent, {@link TokenMediator}).
   */
  requestToken(endpoint: 'person_token_endpoint' | 'auth_token_endpoint', body: Record<string, unknown>, o?: { deadline?: number; signal?: AbortSignal }): Promise<Record<string, unknown>>
  readonly credentials: AgentCredentials
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const noop = (): void => undefined
/** Methods the Fetch standard upper-cases (every other method is kept as written). */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])
const POLLING_ERRORS = new Set(['denied', 'abandoned', 'expired', 'revoked', 'invalid_code'])

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason)
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** What a call needs from the caller's request. */
interface RequestParts {
  readonly url: URL
  readonly method: string
  readonly headers: Headers
  readonly body: Uint8Array | undefined
}

/**
 * The parts of a bodiless request given as a URL, read without building a Fetch `Request` (which
 * costs about as much as the rest of the client's work); `undefined` when a `Request` is needed to
 * read it the way Fetch would (a body, a `Request` input, another method, userinfo in the URL).
 */
function bodilessParts(input: string | URL | Request, init: RequestInit | undefined): RequestParts | undefined {
  if (input instanceof Request || init?.body != null) return undefined
  const method = init?.method === undefined ? 'GET' : init.method.toUpperCase()
  if (!NORMALIZED_METHODS.has(method)) return undefined
  const url = new URL(input)
  if (url.username !== '' || url.password !== '') return undefined
  return { url, method, headers: new Headers(init?.headers), body: undefined }
}

/** The parts of any request, through a Fetch `Request`. */
async function requestParts(input: string | URL | Request, init: RequestInit | undefined): Promise<RequestParts> {
  const request = new Request(input, init)
  const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer())
  return { url: new URL(request.url), method: request.method, headers: new Headers(request.headers), body }
}

function held(kind: 'person' | 'auth', token: string, claims: Record<string, unknown>): HeldToken {
  return {
    token,
    kind,
    iss: String(claims['iss']),
    aud: String(claims['aud']),
    sub: String(claims['sub']),
    jti: String(claims['jti']),
    exp: Number(claims['exp']),
    ...(typeof claims['iat'] === 'number' ? { iat: claims['iat'] } : {}),
    scope: new Set(typeof claims['scope'] === 'string' ? claims['scope'].split(' ').filter((s) => s !== '') : []),
    mission: typeof claims['mission_s256'] === 'string' ? claims['mission_s256'] : undefined,
  }
}

/** The state of one `fetch` call. */
interface Call {
  readonly resource: string
  readonly scope: string | undefined
  readonly mission: string | undefined
  readonly justification: string | undefined
  readonly deadline: number
  /** Aborts at the deadline (with `deadline_exceeded`) or with the caller's signal. */
  readonly signal: AbortSignal | undefined
  /** Releases the deadline timer. */
  readonly release: () => void
  /** The resource asked for a person token: present one from now on. */
  wantPerson: boolean
  /** The resource asked for the agent token: present it. */
  wantAgent: boolean
  /** Components the resource required (`required_input`). */
  extra: string[]
  /** The caller's headers (what `required_input` can name) and whether there is a body. */
  readonly headers: Headers
  readonly hasBody: boolean
  /** Which `(code, kind)` refusals were already retried once. */
  retried: Set<string>
  /** What the last request presented. */
  presented: { presentation: Presentation; held: HeldToken | undefined; credential: AgentCredential } | undefined
}

/**
 * Creates an agent client.
 *
 * @example
 * ```ts
 * const client = createAgentClient({
 *   credentials: AgentCredentials.fromProvider({ provider: 'https://agents.example', durableKey }),
 *   onInteraction: ({ userUrl, code }) => console.log(`Open ${userUrl} (code ${code})`),
 * })
 * const res = await client.fetch('https://api.example/bookings', {
 *   method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fare: 'ECO-SYD' }),
 * })
 * ```
 */
export function createAgentClient(options: AgentClientOptions): AgentClient {
  const now = options.now ?? Date.now
  const idOpts: IdentifierOptions = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  const egress = options.egress ?? createEgressFetcher(idOpts)
  const jwks = options.jwks ?? new JwksCache({ fetcher: egress, now, ...idOpts })
  const transport = options.transport ?? new SignedTransport({
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    now,
    ...(options.onStep === undefined ? {} : { onStep: options.onStep }),
    ...(options.exposeSignatureBase === undefined ? {} : { exposeSignatureBase: options.exposeSignatureBase }),
    ...(options.distinctCreated === undefined ? {} : { distinctCreated: options.distinctCreated }),
  })
  const marginSec = options.refreshMarginSec ?? REFRESH_MARGIN_SEC
  const store = new TokenStore({ now, refreshMarginSec: marginSec })
  /** Components each resource asked for with `required_input`, covered from then on (SIG-05). */
  const learned = new BoundedCache<string, readonly string[]>(1000)
  const sleep = options.sleep ?? defaultSleep
  const maxRounds = options.maxRounds ?? 8
  const preferWaitSec = options.preferWaitSec ?? 30
  const credentials = options.credentials
  const caps = new Set<Capability>(options.capabilities ?? [])
  if (options.onInteraction !== undefined) caps.add('interaction')
  if (options.onClarification !== undefined) caps.add('clarification')
  const capabilities = [...caps]
  const capabilitiesValue = capabilities.length === 0 ? undefined : serializeCapabilities(capabilities)
  const preferValue = preferWait(preferWaitSec)
  /** The last origin that passed the server identifier check (a pure function of the origin). */
  let checkedResource: string | undefined
  /** Whether a person or auth token was ever stored: until then `choose` skips the store. */
  let holdsTokens = false
  const verifyOpts = { jwks, now, ...idOpts }
  let psClient: PersonServerClient | undefined

  async function personServer(): Promise<PersonServerClient> {
    const issuer = options.personServer ?? (await credentials.current()).claims.ps
    if (issuer === undefined) throw new AgentError('no_person_server', 'this agent has no person server (no ps in its agent token and none configured)')
    if (psClient?.issuer !== issuer) psClient = new PersonServerClient({ issuer, transport, egress, now, ...idOpts })
    return psClient
  }

  function pollContext(deadline: number, signal: AbortSignal | undefined): Omit<PollContext, 'transport' | 'party' | 'present'> {
    return {
      ...idOpts,
      ...(options.onInteraction === undefined ? {} : { onInteraction: options.onInteraction }),
      ...(options.onClarification === undefined ? {} : { onClarification: options.onClarification }),
      now,
      sleep,
      deadline,
      signal,
      maxPolls: options.maxPolls ?? 600,
      minPollIntervalMs: options.minPollIntervalMs ?? 1000,
      preferWaitSec,
    }
  }

  /**
   * A resource's interaction: relayed through the PS when it can (AG-INT-01), else handed to the
   * caller (AG-INT-02). Either way the resource's pending URL decides completion (AG-INT-03).
   */
  async function resourceInteraction(prompt: InteractionPrompt, call: Call): Promise<void> {
    if (options.relayInteraction !== false) {
      const issuer = options.personServer ?? (await credentials.current()).claims.ps
      if (issuer !== undefined) {
        const ps = await personServer()
        const relayed = await ps.relayInteraction({ url: prompt.url, code: prompt.code, ...(call.mission === undefined ? {} : { mission_s256: call.mission }) }, await agentPresentation(), call.signal)
        if (relayed) {
          transport.step({ type: 'retry', reason: 'interaction relayed through the person server' })
          return
        }
      }
    }
    if (options.onInteraction === undefined) throw new AgentError('interaction_required', `the resource needs the person at ${prompt.userUrl} and neither the person server nor a handler can take them there`, { url: prompt.pendingUrl })
    await options.onInteraction(prompt)
  }

  /** Presents this credential's agent token, whatever refresh happens meanwhile. */
  const pinned = (c: AgentCredential) => async (): Promise<Presentation> => ({ kind: 'agent', token: c.agentToken, signer: c.signer })

  const agentPresentation = async (): Promise<Presentation> => {
    const c = await credentials.current()
    return { kind: 'agent', token: c.agentToken, signer: c.signer }
  }

  async function cnfMatches(claims: Record<string, unknown>, jkt: string): Promise<boolean> {
    const jwk = (claims['cnf'] as { jwk?: unknown } | undefined)?.jwk
    if (typeof jwk !== 'object' || jwk === null) return false
    try {
      return (await jwkThumbprint(jwk as never)) === jkt
    } catch {
      return false
    }
  }

  async function personToken(resource: string, o: { mission?: string | undefined; deadline?: number; signal?: AbortSignal | undefined } = {}): Promise<HeldToken> {
    const cred = await credentials.current()
    const mission = o.mission ?? options.mission
    const cached = store.person(resource, mission, cred.jkt)
    if (cached !== undefined) return cached
    const ps = await personServer()
    const body = {
      resource,
      ...(mission === undefined ? {} : { mission_s256: mission }),
      ...(capabilities.length === 0 ? {} : { capabilities }),
      ...(options.upstreamToken === undefined ? {} : { upstream_token: options.upstreamToken }),
    }
    // A sub-agent never calls the PS: its parent asks with subagent_token (SUB-01, SUB-02).
    const json = options.mediator !== undefined
      ? await options.mediator.personToken({ subagentToken: cred.agentToken, resource, ...(mission === undefined ? {} : { mission }), ...(o.signal === undefined ? {} : { signal: o.signal }) })
      : await ps.post('person_token_endpoint', body, pinned(cred), pollContext(o.deadline ?? now() + (options.timeoutMs ?? 600_000), o.signal))
    const token = json['person_token']
    if (typeof token !== 'string') throw new AgentError('unexpected_response', 'person server answered without person_token', { url: ps.issuer })
    return holdPersonToken(token, resource, mission, cred, ps.issuer)
  }

  /** Verifies a person token from `issuer` for `resource` (and `mission`) and holds it for later calls. */
  async function holdPersonToken(token: string, resource: string, mission: string | undefined, cred: AgentCredential, issuer: string): Promise<HeldToken> {
    let claims: Record<string, unknown>
    try {
      claims = (await verifyPersonToken(token, { ...verifyOpts, audience: resource })) as unknown as Record<string, unknown>
    } catch (cause) {
      throw new AgentError('token_rejected', `the person token from ${issuer} does not verify for ${resource}: ${(cause as Error).message}`, { cause })
    }
    if (claims['iss'] !== issuer) throw new AgentError('token_rejected', `the person token was issued by ${String(claims['iss'])}, not ${issuer}`)
    if (!(await cnfMatches(claims, cred.jkt))) throw new AgentError('token_rejected', 'the person token is bound to another key than this agent’s')
    if ((claims['mission_s256'] ?? undefined) !== mission) throw new AgentError('token_rejected', `the person token does not carry the mission asked for (${mission ?? 'none'})`)
    const t = held('person', token, claims)
    store.setPerson(t, cred.jkt)
    holdsTokens = true
    transport.step({ type: 'token', kind: 'person', issuer: t.iss, audience: t.aud, expiresAt: t.exp })
    return t
  }

  /** What the mission calls need from this client (src/agent/missions.ts). */
  async function missionCalls(o: { deadline?: number; signal?: AbortSignal } = {}): Promise<MissionCallContext> {
    const cred = await credentials.current()
    const ps = await personServer()
    return {
      ps,
      present: pinned(cred),
      poll: pollContext(o.deadline ?? now() + (options.timeoutMs ?? 600_000), o.signal),
      capabilities,
      holdPersonToken: (token, resource, mission) => holdPersonToken(token, resource, mission, cred, ps.issuer),
    }
  }

  /** §Resource Challenge Verification, then the auth token request, then §Auth Token Response Verification. */
  /**
   * `keep: false` (an auth token delivered through a resource's `202`, main draft §Deferred
   * Delivery, R3 per-call): it is for that held invocation only, so it is returned to present on
   * the polls but never replaces the auth token held for (resource, scope, mission).
   */
  async function obtainAuthToken(call: Call, resourceToken: string, keep = true): Promise<HeldToken> {
    const presented = call.presented
    if (presented === undefined || presented.held === undefined) {
      throw new AgentError('challenge_rejected', 'the resource asked for an auth token but this request presented no person or auth token to bind it to', { url: call.resource })
    }
    const ps = await personServer()
    const cred = presented.credential
    let rt: ResourceTokenClaims
    try {
      rt = await verifyResourceToken(resourceToken, { ...verifyOpts, issuer: call.resource, agentJkt: cred.jkt })
    } catch (cause) {
      throw new AgentError('challenge_rejected', `the resource token from ${call.resource} does not verify: ${(cause as Error).message}`, { cause, url: call.resource })
    }
    if (rt.ps !== ps.issuer) throw new AgentError('challenge_rejected', `the resource token names person server ${rt.ps}, not this agent's ${ps.issuer}`, { url: call.resource })
    if (rt.sub !== presented.held.sub || rt.presented_jti !== presented.held.jti) {
      throw new AgentError('challenge_rejected', 'the resource token does not name the token this agent presented (sub / presented_jti)', { url: call.resource })
    }
    const justification = call.justification ?? options.justification
    const body = {
      resource_token: resourceToken,
      presented_token: presented.held.token,
      ...(capabilities.length === 0 ? {} : { capabilities }),
      ...(justification === undefined ? {} : { justification }),
      // AG-RES-17: passed through unchanged.
      ...(rt.login_hint === undefined ? {} : { login_hint: rt.login_hint }),
      ...(options.upstreamToken === undefined ? {} : { upstream_token: options.upstreamToken }),
    }
    // Signed with the key the resource token names (agent_jkt), even if a refresh lands meanwhile;
    // a sub-agent hands the resource token to its parent instead (SUB-03, SUB-04).
    const json = options.mediator !== undefined
      ? await options.mediator.authToken({ subagentToken: cred.agentToken, resourceToken, presentedToken: presented.held.token, ...(justification === undefined ? {} : { justification }), ...(call.signal === undefined ? {} : { signal: call.signal }) })
      : await ps.post('auth_token_endpoint', body, pinned(cred), pollContext(call.deadline, call.signal))
    const token = json['auth_token']
    if (typeof token !== 'string') throw new AgentError('unexpected_response', 'person server answered without auth_token', { url: ps.issuer })
    let claims: Record<string, unknown>
    try {
      claims = (await verifyAuthToken(token, { ...verifyOpts, audience: call.resource })) as unknown as Record<string, unknown>
    } catch (cause) {
      throw new AgentError('token_rejected', `the auth token does not verify for ${call.resource}: ${(cause as Error).message}`, { cause })
    }
    if (claims['iss'] !== rt.aud) throw new AgentError('token_rejected', `the auth token was issued by ${String(claims['iss'])}, not ${rt.aud} (the resource token's aud)`)
    if (!(await cnfMatches(claims, cred.jkt))) throw new AgentError('token_rejected', 'the auth token is bound to another key than this agent’s')
    if (claims['sub'] !== presented.held.sub) throw new AgentError('token_rejected', 'the auth token names another person than the token this agent presented')
    // Keyed by the call's mission, which is the presented token's mission.
    const t = { ...held('auth', token, claims), mission: presented.held.mission }
    if (keep) {
      store.addAuth(t, cred.jkt)
      holdsTokens = true
    }
    transport.step({ type: 'token', kind: 'auth', issuer: t.iss, audience: t.aud, expiresAt: t.exp, scope: [...t.scope].join(' ') })
    return t
  }

  let seenGeneration = 0
  async function choose(call: Call): Promise<NonNullable<Call['presented']>> {
    const credential = credentials.peek() ?? (await credentials.current())
    if (credentials.generation !== seenGeneration) {
      seenGeneration = credentials.generation
      transport.step({ type: 'token', kind: 'agent', issuer: credential.claims.iss, expiresAt: credential.claims.exp })
    }
    const agent: Presentation = { kind: 'agent', token: credential.agentToken, signer: credential.signer }
    if (!call.wantAgent && (holdsTokens || call.wantPerson)) {
      // A resource that asked for a person token gets one, even while an auth token is held.
      const auth = call.wantPerson ? undefined : store.auth(call.resource, call.mission, credential.jkt, call.scope)
      if (auth !== undefined) return { presentation: { kind: 'auth', token: auth.token, signer: credential.signer }, held: auth, credential }
      const cachedPerson = store.person(call.resource, call.mission, credential.jkt)
      if (call.wantPerson || cachedPerson !== undefined) {
        const p = cachedPerson ?? (await personToken(call.resource, { mission: call.mission, deadline: call.deadline, signal: call.signal }))
        return { presentation: { kind: 'person', token: p.token, signer: credential.signer }, held: p, credential }
      }
    }
    return { presentation: agent, held: undefined, credential }
  }

  function observe(resource: string) {
    return (res: Response): void => {
      const v = res.headers.get(AAUTH_ACCESS_HEADER)
      if (v === null) return
      try {
        store.setAccess(resource, parseAAuthAccess(v))
      } catch {
        /* a malformed session token is ignored: the resource can challenge again */
      }
    }
  }

  /** Whether the request can carry a component the server names in `required_input`. */
  function canCover(call: Call, c: string): boolean {
    return c.startsWith('@') || call.headers.has(c) || c === 'signature-key' || (call.hasBody && c === 'content-digest') || (c === 'authorization' && store.access(call.resource) !== undefined)
  }

  /** Lets a refusal be retried once per call; the second time `err` is thrown. */
  async function once(call: Call, key: string, err: () => Promise<AAuthError> | AAuthError): Promise<void> {
    if (call.retried.has(key)) throw await err()
    call.retried.add(key)
    transport.step({ type: 'retry', reason: key })
  }

  /** Acts on a 401/402; returns normally to retry, throws when the call cannot go on. */
  async function onChallenge(call: Call, res: Response): Promise<void> {
    const presented = call.presented!
    const sigErrValue = res.headers.get('signature-error')
    const reqValue = res.headers.get('aauth-requirement')
    const requirement = reqValue === null ? undefined : parseRequirement(reqValue, idOpts)
    if (sigErrValue !== null && res.status === 401) {
      const sigErr = parseSignatureError(sigErrValue)
      const kind = presented.presentation.kind
      const fail = () => readFailure(res.clone(), 'resource', res.url)
      switch (sigErr.code) {
        case 'invalid_input': {
          const missing = (sigErr.requiredInput ?? []).filter((c) => !call.extra.includes(c))
          // A component this request does not carry cannot be signed: the server's error stands.
          if (missing.length === 0 || !missing.every((c) => canCover(call, c))) throw await fail()
          call.extra.push(...missing)
          learned.set(call.resource, [...call.extra])
          return
        }
        case 'expired_jwt':
        case 'revoked_jwt':
          await once(call, `${sigErr.code}:${kind}`, fail)
          if (kind === 'agent') credentials.invalidate(presented.presentation.token)
          else store.drop(presented.held!, presented.credential.jkt)
          // AG-RES-15: a revoked auth token restarts the grant from a fresh person token.
          if (kind === 'auth' && sigErr.code === 'revoked_jwt') {
            const p = store.person(call.resource, call.mission, presented.credential.jkt)
            if (p !== undefined) store.drop(p, presented.credential.jkt)
            call.wantPerson = true
          }
          return
        default:
          if (requirement === undefined) throw await fail()
      }
    }
    if (requirement === undefined) throw await readFailure(res, 'resource', res.url)
    if (!requirement.recognized) {
      throw new AgentError('unsupported_requirement', `the resource requires "${requirement.requirement}", which this agent does not support`, { status: res.status, url: res.url })
    }
    switch (requirement.requirement) {
      case 'agent-token':
        if (presented.presentation.kind === 'agent') {
          throw new AgentError('requirement_unsatisfiable', 'the resource asked for an agent token although this request presented one', { status: res.status, url: res.url })
        }
        call.wantAgent = true
        return
      case 'person-token':
        if (presented.presentation.kind === 'person') {
          // A held person token refused: fetch a fresh one once, then give up.
          await once(call, 'person-token:person', () => new AgentError('requirement_unsatisfiable', 'the resource keeps asking for a person token after one was presented', { status: res.status, url: res.url }))
          store.drop(presented.held!, presented.credential.jkt)
        }
        await personServer()
        call.wantPerson = true
        call.wantAgent = false
        return
      case 'auth-token':
        await obtainAuthToken(call, requirement.resourceToken)
        call.wantAgent = false
        call.wantPerson = false
        return
      default:
        throw new AgentError('unexpected_response', `requirement=${requirement.requirement} cannot come with status ${res.status}`, { status: res.status, url: res.url })
    }
  }

  /** AG-PS-08: token-endpoint errors that a fresh start can cure. */
  function recoverable(call: Call, err: unknown): boolean {
    if (!(err instanceof ProblemError)) return false
    const p = call.presented
    switch (err.code) {
      case 'expired_presented_token':
      case 'revoked_presented_token':
        if (p?.held !== undefined) store.drop(p.held, p.credential.jkt)
        if (p?.held?.kind === 'auth') {
          const person = store.person(call.resource, call.mission, p.credential.jkt)
          if (person !== undefined) store.drop(person, p.credential.jkt)
        }
        call.wantPerson = true
        return !call.retried.has(err.code) && (call.retried.add(err.code), true)
      case 'expired_resource_token':
      case 'revoked_resource_token':
        return !call.retried.has(err.code) && (call.retried.add(err.code), true)
      default:
        return false
    }
  }

  /** Reads the caller's request into the state of one call. */
  async function begin(input: string | URL | Request, init: AgentRequestInit | undefined, guard = true) {
    const { url, method, headers: baseHeaders, body } = bodilessParts(input, init) ?? (await requestParts(input, init))
    const resource = url.origin
    if (resource !== checkedResource) {
      if (!isServerIdentifier(resource, idOpts)) {
        throw new AgentError('insecure_url', `${resource} is not an https server identifier (http is admitted only for loopback with allowInsecureLoopback)`, { url: url.href })
      }
      checkedResource = resource
    }
    if (!baseHeaders.has('prefer')) baseHeaders.set('prefer', preferValue)
    if (capabilitiesValue !== undefined && !baseHeaders.has(AAUTH_CAPABILITIES_HEADER)) baseHeaders.set(AAUTH_CAPABILITIES_HEADER, capabilitiesValue)
    const o = init?.aauth ?? {}
    const callDeadline = o.deadline ?? now() + (options.timeoutMs ?? 600_000)
    // The deadline also bounds a request in flight: a server that never answers cannot hang the call.
    const deadline = guard
      ? deadlineSignal(callDeadline - now(), () => new AgentError('deadline_exceeded', `gave up on ${url.href}: the deadline passed`, { url: url.href }), init?.signal)
      : { signal: init?.signal ?? undefined, clear: noop }
    const call: Call = {
      resource,
      scope: o.scope,
      mission: o.mission ?? options.mission,
      justification: o.justification,
      deadline: callDeadline,
      signal: deadline.signal,
      release: deadline.clear,
      wantPerson: false,
      wantAgent: false,
      extra: [],
      headers: baseHeaders,
      hasBody: body !== undefined,
      retried: new Set(),
      presented: undefined,
    }
    const known = learned.get(resource)
    if (known !== undefined) for (const c of known) if (canCover(call, c)) call.extra.push(c)
    return { call, url, method, body, baseHeaders }
  }

  /** Adds the resource's session token to `headers` (one attempt's copy of the caller's). */
  function attemptHeaders(call: Call, headers: Headers): Headers {
    const access = store.access(call.resource)
    if (access !== undefined && !headers.has('authorization')) headers.set('authorization', aauthAuthorization(access))
    return headers
  }

  async function authorize(resource: string, r: AuthorizeRequest): Promise<AuthorizeResult> {
    const md = await fetchMetadata(resource, DWK.resource, { fetcher: egress, ...idOpts })
    if (md.authorization_endpoint === undefined) throw new AgentError('requirement_unsatisfiable', `${resource} publishes no authorization_endpoint`, { url: resource })
    const url = new URL(md.authorization_endpoint)
    // A person token names one resource (aud): it is never sent to an endpoint on another origin.
    if (url.origin !== resource) throw new AgentError('requirement_unsatisfiable', `${resource} publishes an authorization_endpoint on ${url.origin}; a person token for ${resource} is never sent there`, { url: url.href })
    const { call } = await begin(url, {
      aauth: {
        scope: r.scope,
        ...(r.mission === undefined ? {} : { mission: r.mission }),
        ...(r.justification === undefined ? {} : { justification: r.justification }),
        ...(r.deadline === undefined ? {} : { deadline: r.deadline }),
      },
      ...(r.signal === undefined ? {} : { signal: r.signal }),
    })
    try {
      const person = await personToken(resource, { mission: call.mission, deadline: call.deadline, signal: call.signal })
      const credential = await credentials.current()
      call.presented = { presentation: { kind: 'person', token: person.token, signer: credential.signer }, held: person, credential }
      const body = new TextEncoder().encode(JSON.stringify({ scope: r.scope, ...(r.account === undefined ? {} : { account: r.account }) }))
      const capture = observe(resource)
      let res = await transport.send({ method: 'POST', url, headers: new Headers({ 'content-type': 'application/json', prefer: preferWait(preferWaitSec) }), body, signal: call.signal }, call.presented.presentation)
      capture(res)
      if (res.status === 202 && res.headers.has('location')) {
        const presented = call.presented
        res = await pollDeferred(res, url, {
          ...pollContext(call.deadline, call.signal),
          transport,
          party: 'resource',
          present: async () => presented.presentation,
          onInteraction: (prompt) => resourceInteraction(prompt, call),
          observe: capture,
        })
      }
      if (res.status !== 200) throw await readFailure(res, 'resource', url.href)
      const json: unknown = await res.json().catch(() => undefined)
      const rt = typeof json === 'object' && json !== null ? (json as { resource_token?: unknown }).resource_token : undefined
      if (typeof rt !== 'string') return { kind: 'authorized', body: json }
      const authToken = await obtainAuthToken(call, rt)
      return { kind: 'auth-token', authToken }
    } finally {
      call.release()
    }
  }

  async function prepare(input: string | URL | Request, init?: AgentRequestInit): Promise<PreparedRequest> {
    const { call, url, method, body, baseHeaders } = await begin(input, init, false)
    const presented = await choose(call)
    // One attempt only: the call's own copy of the caller's headers is signed in place.
    const headers = await transport.sign({ method, url, headers: attemptHeaders(call, baseHeaders), body, extraComponents: call.extra }, presented.presentation)
    return { method, url, headers, body, presenting: presented.presentation.kind }
  }

  async function agentFetch(input: string | URL | Request, init?: AgentRequestInit): Promise<Response> {
    const started = await begin(input, init)
    try {
      return await run(started)
    } finally {
      started.call.release()
    }
  }

  async function run(started: Awaited<ReturnType<typeof begin>>): Promise<Response> {
    const { call, baseHeaders } = started
    let { url, method, body: sendBody } = started
    const resource = call.resource
    const capture = observe(resource)
    for (let round = 1; ; round++) {
      if (round > maxRounds) throw new AgentError('too_many_rounds', `gave up on ${url.href} after ${maxRounds} challenge rounds`, { url: url.href })
      if (now() > call.deadline) throw new AgentError('deadline_exceeded', `gave up on ${url.href}: the deadline passed`, { url: url.href })
      call.presented = await choose(call)
      const headers = attemptHeaders(call, new Headers(baseHeaders))
      let res = await transport.send({ method, url, headers, body: sendBody, extraComponents: call.extra, signal: call.signal }, call.presented.presentation)
      capture(res)
      if (REDIRECTS.has(res.status) && res.headers.has('location')) {
        const to = new URL(res.headers.get('location')!, url)
        if (to.origin !== url.origin) {
          throw new AgentError('redirect_refused', `${url.href} redirects to another origin (${to.origin}); a signed request is never replayed there`, { status: res.status, url: to.href })
        }
        await res.body?.cancel().catch(() => undefined)
        transport.step({ type: 'redirect', from: url.href, to: to.href })
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET'
          sendBody = undefined
          baseHeaders.delete('content-type')
        }
        url = to
        continue
      }
      if (res.status === 202 && res.headers.has('location')) {
        // The auth token for the held invocation, with the signer of the key it is bound to.
        let forHeld: Presentation | undefined
        res = await pollDeferred(res, url, {
          ...pollContext(call.deadline, call.signal),
          transport,
          party: 'resource',
          present: async () => forHeld ?? (call.presented = await choose(call)).presentation,
          onAuthToken: async (rt) => {
            try {
              const signer = call.presented!.credential.signer
              const t = await obtainAuthToken(call, rt, false)
              forHeld = { kind: 'auth', token: t.token, signer }
              call.wantPerson = false
            } catch (err) {
              // AG-RES-09: a later poll can carry a fresh resource token.
              if (!recoverable(call, err)) throw err
            }
          },
          onInteraction: (prompt) => resourceInteraction(prompt, call),
          observe: capture,
        })
        if (POLLING_ERRORS.has(await problemCode(res))) throw await readFailure(res, 'resource', res.url)
        if (res.status === 401) throw await readFailure(res, 'resource', res.url)
        return res
      }
      if (res.status === 402 && call.retried.has('402')) return res // authorized now; the payment is the caller's
      if (res.status === 401 || (res.status === 402 && res.headers.has('aauth-requirement'))) {
        if (res.status === 402) call.retried.add('402')
        try {
          await onChallenge(call, res)
        } catch (err) {
          if (!recoverable(call, err)) throw err
        }
        await res.body?.cancel().catch(() => undefined)
        continue
      }
      return res
    }
  }

  return {
    fetch: agentFetch,
    prepare,
    authorize,
    personToken: (resource, o) => personToken(resource, o),
    personServer,
    proposeMission: async (proposal, o) => proposeMission(await missionCalls(o), proposal),
    updateMission: async (s256, description, o) => updateMission(await missionCalls(o), s256, description),
    completeMission: async (s256, summary, o) => completeMission(await missionCalls(o), s256, summary),
    async requestToken(endpoint, body, o = {}) {
      const ps = await personServer()
      return ps.post(endpoint, body, agentPresentation, pollContext(o.deadline ?? now() + (options.timeoutMs ?? 600_000), o.signal))
    },
    credentials,
    async holdAuthToken(token, expected) {
      const cred = credentials.peek() ?? (await credentials.current())
      let claims: Record<string, unknown>
      try {
        claims = (await verifyAuthToken(token, { ...verifyOpts, audience: expected.resource })) as unknown as Record<string, unknown>
      } catch (cause) {
        throw new AgentError('token_rejected', `the auth token does not verify for ${expected.resource}: ${(cause as Error).message}`, { cause })
      }
      if (claims['iss'] !== expected.issuer) throw new AgentError('token_rejected', `the auth token was issued by ${String(claims['iss'])}, not ${expected.issuer}`)
      if (!(await cnfMatches(claims, cred.jkt))) throw new AgentError('token_rejected', 'the auth token is bound to another key than this agent’s')
      const t = held('auth', token, claims)
      store.addAuth(t, cred.jkt)
      holdsTokens = true
      transport.step({ type: 'token', kind: 'auth', issuer: t.iss, audience: t.aud, expiresAt: t.exp, scope: [...t.scope].join(' ') })
      return t
    },
  }
}

async function problemCode(res: Response): Promise<string> {
  if (res.status !== 403 && res.status !== 408 && res.status !== 410) return ''
  try {
    const v: unknown = await res.clone().json()
    return typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'string' ? (v as { error: string }).error : ''
  } catch {
    return ''
  }
}
