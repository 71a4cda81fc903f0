/**
 * The agent's calls to its person server's token endpoints (main draft §Person Token Endpoint,
 * §Auth Token Endpoint; CHECKLIST AG-PS-01, AG-PS-02, AG-DEF-01). Each is a signed JSON `POST`
 * presenting the agent token, with `Prefer: wait=N`; a `202` is polled to its end.
 *
 * @module
 */

import {
  DWK,
  fetchMetadata,
  preferWait,
  type EgressFetcher,
  type IdentifierOptions,
  type PersonServerMetadata,
} from '../protocol/index.js'
import { AgentError, readFailure } from './errors.js'
import { pollDeferred, type PollContext } from './deferred-poller.js'
import type { Presentation, SignedTransport } from './signed-transport.js'

/** How long a fetched PS metadata document is reused (ms). */
const METADATA_TTL_MS = 10 * 60 * 1000

/** Options of {@link PersonServerClient}. */
export interface PersonServerClientOptions extends IdentifierOptions {
  /** The PS's server identifier. */
  readonly issuer: string
  readonly transport: SignedTransport
  /** Fetches the PS metadata (egress-guarded). */
  readonly egress: EgressFetcher
  readonly now: () => number
}

/** Calls one person server on the agent's behalf. */
export class PersonServerClient {
  readonly issuer: string
  readonly #options: PersonServerClientOptions
  #metadata: { doc: Promise<PersonServerMetadata>; at: number } | undefined

  constructor(options: PersonServerClientOptions) {
    this.issuer = options.issuer
    this.#options = options
  }

  /** The PS metadata, fetched once and reused for ten minutes (refetched after a failure). */
  metadata(): Promise<PersonServerMetadata> {
    const now = this.#options.now()
    if (this.#metadata === undefined || now - this.#metadata.at > METADATA_TTL_MS) {
      const doc = fetchMetadata(this.issuer, DWK.person, { fetcher: this.#options.egress, ...this.#options })
      this.#metadata = { doc, at: now }
      doc.catch(() => {
        if (this.#metadata?.doc === doc) this.#metadata = undefined
      })
    }
    return this.#metadata.doc
  }

  /**
   * Relays an interaction to the person through the PS (§Relaying Through the Person Server,
   * AG-INT-01): `true` when the PS took it (`202`), `false` when it cannot relay
   * (`interaction_unavailable`, or no `interaction_endpoint`) and the agent must direct the
   * person itself. The resource's pending URL stays authoritative (AG-INT-03): the caller keeps
   * polling it and does not wait on the relay.
   *
   * @throws the server's error for anything else.
   */
  async relayInteraction(body: { url: string; code: string; description?: string; mission_s256?: string }, agent: Presentation, signal?: AbortSignal): Promise<boolean> {
    const endpoint = (await this.metadata()).interaction_endpoint
    if (endpoint === undefined) return false
    const url = new URL(endpoint)
    const bytes = new TextEncoder().encode(JSON.stringify({ type: 'interaction', ...body }))
    const res = await this.#options.transport.send({ method: 'POST', url, headers: new Headers({ 'content-type': 'application/json' }), body: bytes, signal }, agent)
    if (res.status === 202 || res.status === 200) {
      await res.body?.cancel()
      return true
    }
    const err = await readFailure(res, 'person server', url.href)
    if (err.code === 'interaction_unavailable') return false
    throw err
  }

  /**
   * POSTs JSON `body` to `url` at this PS (signed with `agent`, `Prefer: wait`) and polls a `202`
   * to its end; resolves with the final response, whatever its status (the caller reads it).
   *
   * @throws the poller's errors ({@link pollDeferred}).
   */
  async postDeferred(url: URL, body: Record<string, unknown>, agent: () => Promise<Presentation>, poll: Omit<PollContext, 'transport' | 'party' | 'present'>): Promise<Response> {
    const headers = new Headers({ 'content-type': 'application/json', prefer: preferWait(poll.preferWaitSec) })
    const bytes = new TextEncoder().encode(JSON.stringify(body))
    const res = await this.#options.transport.send({ method: 'POST', url, headers, body: bytes, signal: poll.signal }, await agent())
    return res.status === 202 ? pollDeferred(res, url, { ...poll, transport: this.#options.transport, party: 'person server', present: agent }) : res
  }

  /**
   * POSTs `body` to `endpoint` (signed with `agent`), polls a `202` to its end, and returns the
   * JSON of the final `200`.
   *
   * @throws the server's error ({@link readFailure}), or the poller's.
   */
  async post(
    endpoint: 'person_token_endpoint' | 'auth_token_endpoint',
    body: Record<string, unknown>,
    agent: () => Promise<Presentation>,
    poll: Omit<PollContext, 'transport' | 'party' | 'present'>,
  ): Promise<Record<string, unknown>> {
    const md = await this.metadata()
    const url = new URL(md[endpoint])
    const res = await this.postDeferred(url, body, agent, poll)
    if (res.status !== 200) throw await readFailure(res, 'person server', url.href)
    let json: unknown
    try {
      json = await res.json()
    } catch (cause) {
      throw new AgentError('unexpected_response', `person server ${endpoint} answered 200 without JSON`, { status: 200, url: url.href, cause })
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AgentError('unexpected_response', `person server ${endpoint} answered 200 without a JSON object`, { status: 200, url: url.href })
    return json as Record<string, unknown>
  }
}
