/**
 * Sends one signed request: every request the agent makes goes through here, so every request is
 * signed (main draft §HTTP Message Signatures Profile; CHECKLIST AG-SIG-01). Redirects are never
 * followed by the platform fetch; the flow engine decides (a signature is never replayed to
 * another origin).
 *
 * @module
 */

import { EgressError, signRequest, type Signer } from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'

/** The token a request presents in `Signature-Key` and the key that signs it (AG-SIG-02). */
export interface Presentation {
  readonly kind: 'agent' | 'person' | 'auth'
  readonly token: string
  readonly signer: Signer
}

/** One protocol step, reported to `onStep` (what `aauth fetch -v` prints). */
export type AgentStep =
  | { readonly type: 'request'; readonly method: string; readonly url: string; readonly presenting: Presentation['kind']; readonly components: readonly string[]; readonly signatureBase?: string }
  | { readonly type: 'response'; readonly method: string; readonly url: string; readonly status: number; readonly requirement?: string; readonly signatureError?: string }
  | { readonly type: 'token'; readonly kind: 'agent' | 'person' | 'auth'; readonly issuer: string; readonly audience?: string; readonly expiresAt: number; readonly scope?: string }
  | { readonly type: 'poll'; readonly url: string; readonly attempt: number; readonly waitMs: number }
  | { readonly type: 'interaction'; readonly url: string; readonly code: string; readonly userUrl: string; readonly status: 'pending' | 'interacting' }
  | { readonly type: 'clarification'; readonly question: string }
  | { readonly type: 'redirect'; readonly from: string; readonly to: string }
  | { readonly type: 'retry'; readonly reason: string }

/** An outgoing request before signing. */
export interface OutgoingRequest {
  readonly method: string
  readonly url: URL
  readonly headers: Headers
  readonly body?: Uint8Array | undefined
  /** Components the server asked for (`required_input`, `additional_signature_components`). */
  readonly extraComponents?: readonly string[]
  readonly signal?: AbortSignal | undefined
  /** `created` (Unix seconds) to sign with; default the clock. */
  readonly created?: number
}

/** How far ahead of the clock `created` may be moved to keep two identical requests distinct (s). */
const MAX_CREATED_AHEAD = 30

/** Options of {@link SignedTransport}. */
export interface SignedTransportOptions {
  readonly fetch?: typeof fetch
  readonly now?: () => number
  readonly onStep?: (step: AgentStep) => void
  /** Report the signature base with each `request` step. */
  readonly exposeSignatureBase?: boolean
  /**
   * Keep identical requests distinct for replay caches (see `#distinctCreated`). Default true;
   * turn off only against servers known to keep no replay cache (tests that poll at full speed).
   */
  readonly distinctCreated?: boolean
}

/** Signs and sends requests, reporting each to `onStep`. */
export class SignedTransport {
  readonly #fetch: typeof fetch
  readonly #options: SignedTransportOptions
  /** The last `created` sent per (key, method, authority, path). */
  readonly #lastCreated: BoundedCache<string, number>

  constructor(options: SignedTransportOptions = {}) {
    this.#fetch = options.fetch ?? globalThis.fetch
    this.#options = options
    this.#lastCreated = new BoundedCache(1000, options.now ?? Date.now)
  }

  /** Reports a step (no-op without `onStep`). */
  step(s: AgentStep): void {
    this.#options.onStep?.(s)
  }

  /**
   * Signs `req` with `presentation`: adds `Signature-Key`, `Signature-Input`, `Signature` (and
   * `Content-Digest` for a body) to `req.headers` itself, which the caller hands over.
   *
   * @throws {TypeError} when the request cannot be signed.
   */
  async sign(req: OutgoingRequest, presentation: Presentation): Promise<Headers> {
    // One options shape on every call (absent options as `undefined`, which signRequest reads as
    // absent): conditional spreads give each combination its own hidden class.
    const signed = await signRequest(
      { method: req.method, url: req.url, headers: req.headers },
      {
        signer: presentation.signer,
        signatureKey: { scheme: 'jwt', jwt: presentation.token, cache: false },
        body: req.body,
        additionalComponents: req.extraComponents,
        now: req.created === undefined ? this.#options.now : () => req.created! * 1000,
        exposeBase: this.#options.exposeSignatureBase === true,
        inPlace: true,
      },
    )
    if (this.#options.onStep !== undefined) {
      this.step({
        type: 'request',
        method: req.method,
        url: req.url.href,
        presenting: presentation.kind,
        components: signed.components,
        ...(signed.signatureBase === undefined ? {} : { signatureBase: signed.signatureBase }),
      })
    }
    return signed.headers
  }

  /**
   * Signs `req` with `presentation` and sends it with `redirect: 'manual'`.
   *
   * @throws {TypeError} when the request cannot be signed (a body without `Content-Type`, a
   *   required component the request lacks); {@link EgressError} `fetch_failed` when the request
   *   cannot be sent (connection refused, reset, DNS).
   */
  /**
   * `created` for a request to send. Two requests with the same key, method, authority and path
   * signed in the same second are the same message to a verifier's replay cache (main draft
   * §Verification (Server) step 5), so the second would be refused: it gets the next second
   * instead, at most {@link MAX_CREATED_AHEAD} s ahead of the clock (verifiers accept up to their
   * window ahead); beyond that it waits a second for the clock. Sustained identical requests are
   * thereby paced to about one per second — the most a replay cache can tell apart.
   */
  async #distinctCreated(req: OutgoingRequest, presentation: Presentation): Promise<number> {
    const key = `${presentation.signer.publicJwk.x ?? ''}\u0000${req.method}\u0000${req.url.host}\u0000${req.url.pathname}`
    const clock = this.#options.now ?? Date.now
    for (let waited = 0; ; waited++) {
      const nowSec = Math.floor(clock() / 1000)
      const last = this.#lastCreated.get(key)
      const created = last === undefined || last < nowSec ? nowSec : last + 1
      if (created - nowSec <= MAX_CREATED_AHEAD || waited >= 1) {
        this.#lastCreated.set(key, created, (nowSec + 2 * MAX_CREATED_AHEAD) * 1000)
        return created
      }
      await new Promise((r) => setTimeout(r, 1000))
    }
  }

  async send(req: OutgoingRequest, presentation: Presentation): Promise<Response> {
    const created = req.created ?? (this.#options.distinctCreated === false ? undefined : await this.#distinctCreated(req, presentation))
    const headers = await this.sign({ ...req, created }, presentation)
    let res: Response
    try {
      res = await this.#fetch(req.url, {
        method: req.method,
        headers,
        redirect: 'manual',
        ...(req.body === undefined || req.body.byteLength === 0 ? {} : { body: req.body as BufferSource }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      })
    } catch (cause) {
      // The caller's own abort stays an AbortError; anything else is a typed transport failure.
      if (req.signal?.aborted === true) throw cause
      throw new EgressError('fetch_failed', req.url.href, `${req.method} ${req.url.href} failed: ${(cause as Error).message}`, { cause })
    }
    const requirement = res.headers.get('aauth-requirement')
    const sigErr = res.headers.get('signature-error')
    this.step({
      type: 'response',
      method: req.method,
      url: req.url.href,
      status: res.status,
      ...(requirement === null ? {} : { requirement }),
      ...(sigErr === null ? {} : { signatureError: sigErr }),
    })
    return res
  }
}
