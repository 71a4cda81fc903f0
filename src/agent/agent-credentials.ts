/**
 * The agent's current agent token and signing key, refreshed before expiry (main draft §Expiry
 * and the Refresh Margin; CHECKLIST AG-05; bootstrap draft §8 for the two refresh patterns).
 *
 * A token is refreshed once fewer than {@link REFRESH_MARGIN_SEC} seconds remain, and never
 * presented inside that margin while a fresh one can be had. Refresh starts in the background a
 * little earlier, so requests do not wait for it; concurrent callers share one refresh; and when a
 * refresh fails while the old token is still valid, requests go on with the old token until it
 * really expires (nothing is dropped), retrying the refresh after a short back-off.
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import { AAuthError, decodeJwt, jwkThumbprint, type AgentTokenClaims, type Signer } from '../protocol/index.js'
import { requestAgentToken, type ProviderClientOptions } from './enrollment-client.js'

/** Refresh when fewer than this many seconds remain (main draft §Expiry and the Refresh Margin). */
export const REFRESH_MARGIN_SEC = 300
/** Background refresh starts this many seconds before the margin. */
export const EARLY_REFRESH_SEC = 60
/** After a failed refresh, wait this long before trying again (while the old token is valid). */
export const REFRESH_RETRY_SEC = 10

/** An agent token with the key it binds. */
export interface AgentCredential {
  readonly agentToken: string
  /** Signs with the key in the token's `cnf.jwk`. */
  readonly signer: Signer
  /** The token's claims as issued (the agent trusts its own provider). */
  readonly claims: AgentTokenClaims
  /** RFC 7638 thumbprint of the signing key: what resource tokens name as `agent_jkt`. */
  readonly jkt: string
}

/** Obtains a fresh agent token (and, for two-key refresh, a fresh key). */
export type AgentTokenRefresher = () => Promise<{ readonly agentToken: string; readonly signer: Signer }>

/** Options of {@link AgentCredentials}. */
export interface AgentCredentialsOptions {
  /** How to get a new token. Without it the credential is fixed and simply expires. */
  readonly refresh?: AgentTokenRefresher
  /** A token already in hand. Without it the first use refreshes. */
  readonly initial?: { readonly agentToken: string; readonly signer: Signer }
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** Refresh margin in seconds. Default {@link REFRESH_MARGIN_SEC}. */
  readonly refreshMarginSec?: number
  /** Called with each new credential (e.g. to log the key change). */
  readonly onRefresh?: (credential: AgentCredential) => void
}

async function credentialOf(agentToken: string, signer: Signer): Promise<AgentCredential> {
  const claims = decodeJwt(agentToken).payload as unknown as AgentTokenClaims
  if (typeof claims.exp !== 'number' || typeof claims.sub !== 'string') throw new AAuthError('invalid_jwt', 'agent token has no exp or sub')
  const jkt = await jwkThumbprint(signer.publicJwk)
  let bound: string | undefined
  try {
    bound = await jwkThumbprint(claims.cnf.jwk)
  } catch {
    bound = undefined
  }
  // A token for another key would only fail later, at every server, as invalid_signature.
  if (bound !== jkt) throw new AAuthError('invalid_key', 'the agent token is bound (cnf.jwk) to another key than the one signing')
  return { agentToken, signer, claims, jkt }
}

/**
 * Holds the agent token the client signs with.
 *
 * @example
 * ```ts
 * const credentials = AgentCredentials.fromProvider({ provider: 'https://agents.example', durableKey })
 * const client = createAgentClient({ credentials })
 * ```
 */
export class AgentCredentials {
  #current: AgentCredential | undefined
  #inflight: Promise<AgentCredential> | undefined
  #retryAt = 0
  #generation = 0
  readonly #options: AgentCredentialsOptions
  readonly #now: () => number
  readonly #marginMs: number
  #pendingInitial: Promise<void> | undefined

  constructor(options: AgentCredentialsOptions) {
    if (options.refresh === undefined && options.initial === undefined) throw new TypeError('AgentCredentials needs an initial token or a refresh function')
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#marginMs = (options.refreshMarginSec ?? REFRESH_MARGIN_SEC) * 1000
    const initial = options.initial
    if (initial !== undefined) {
      const pending = credentialOf(initial.agentToken, initial.signer).then((c) => this.#install(c))
      pending.catch(() => undefined) // reported by current(), never as an unhandled rejection
      this.#pendingInitial = pending
    }
  }

  /** Credentials refreshed from an agent provider (two-key refresh unless `singleKey`). */
  static fromProvider(options: ProviderClientOptions & { singleKey?: boolean; refreshMarginSec?: number; onRefresh?: (c: AgentCredential) => void }): AgentCredentials {
    return new AgentCredentials({
      refresh: () => requestAgentToken(options),
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.refreshMarginSec === undefined ? {} : { refreshMarginSec: options.refreshMarginSec }),
      ...(options.onRefresh === undefined ? {} : { onRefresh: options.onRefresh }),
    })
  }

  /** A fixed token (a self-hosted agent, or a test): never refreshed. */
  static fixed(agentToken: string, signer: Signer): AgentCredentials {
    return new AgentCredentials({ initial: { agentToken, signer } })
  }

  /** Increments each time a new token is installed. */
  get generation(): number {
    return this.#generation
  }

  #install(c: AgentCredential): void {
    this.#current = c
    this.#generation++
    this.#options.onRefresh?.(c)
  }

  #refresh(): Promise<AgentCredential> {
    const refresh = this.#options.refresh
    if (refresh === undefined) return Promise.reject(new AAuthError('expired_jwt', 'the agent token is expiring and no refresh is configured'))
    this.#inflight ??= (async () => {
      try {
        const got = await refresh()
        const c = await credentialOf(got.agentToken, got.signer)
        this.#install(c)
        this.#retryAt = 0
        return c
      } catch (err) {
        this.#retryAt = this.#now() + REFRESH_RETRY_SEC * 1000
        throw err
      } finally {
        this.#inflight = undefined
      }
    })()
    return this.#inflight
  }

  /**
   * The current credential when it can be used right now without any refresh work (outside the
   * early-refresh window); otherwise `undefined`, and {@link current} does the work. The
   * synchronous fast path of the signing hot loop.
   */
  peek(): AgentCredential | undefined {
    const c = this.#current
    if (c === undefined || this.#pendingInitial !== undefined) return undefined
    const remaining = c.claims.exp * 1000 - this.#now()
    if (this.#options.refresh === undefined) return remaining > 0 ? c : undefined
    return remaining > this.#marginMs + EARLY_REFRESH_SEC * 1000 ? c : undefined
  }

  /**
   * The credential to sign with now. Refreshes inside the margin; starts a background refresh a
   * little before it.
   *
   * @throws the refresh's error when there is no valid token to fall back on.
   */
  async current(): Promise<AgentCredential> {
    const initial = this.#pendingInitial
    if (initial !== undefined) {
      this.#pendingInitial = undefined
      try {
        await initial
      } catch (err) {
        // An unusable initial token: a configured refresh replaces it, otherwise it is the answer.
        if (this.#options.refresh === undefined) {
          this.#pendingInitial = initial
          throw err
        }
      }
    }
    const c = this.#current
    const now = this.#now()
    if (c === undefined) return this.#refresh()
    const remaining = c.claims.exp * 1000 - now
    const canRefresh = this.#options.refresh !== undefined
    if (!canRefresh) {
      if (remaining <= 0) throw new AAuthError('expired_jwt', 'the agent token has expired and no refresh is configured')
      return c
    }
    if (remaining > this.#marginMs + EARLY_REFRESH_SEC * 1000) return c
    if (remaining > this.#marginMs) {
      // Early window: refresh in the background, keep signing with the current token.
      if (now >= this.#retryAt) this.#refresh().catch(() => undefined)
      return c
    }
    if (now < this.#retryAt && this.#inflight === undefined) {
      if (remaining > 0) return c
    } else {
      try {
        return await this.#refresh()
      } catch (err) {
        // Keep serving with the old token while it is still valid: a refresh outage must not
        // drop requests that would still verify.
        if (remaining > 0 && this.#current === c) return c
        throw err
      }
    }
    return this.#refresh()
  }

  /**
   * Forgets `agentToken` if it is the current one (the server said `expired_jwt` or `revoked_jwt`),
   * so the next {@link current} fetches a new token.
   */
  invalidate(agentToken: string): void {
    if (this.#current?.agentToken === agentToken) {
      this.#current = undefined
      this.#retryAt = 0
    }
  }
}
