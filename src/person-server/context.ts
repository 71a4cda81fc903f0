/**
 * The Person Server's options and the runtime context its endpoint modules share.
 *
 * @module
 */

import {
  createEgressFetcher,
  DWK,
  fetchMetadata,
  JwksCache,
  wellKnownUrl,
  type AAuthDwk,
  type EgressFetcher,
  type JwksLookup,
  type EgressResponse,
  type IdentifierOptions,
  type PersonServerMetadata,
  type ReplayCache,
} from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import type { KeyRing } from '../agent/key-ring.js'
import type { OrganizationPolicy, PolicyHook } from './policy.js'
import type { SubAgentOptions } from './delegation.js'
import type { PersonServerExtension } from './extensions.js'
import type { LoginMethod } from './web/login.js'
import type { ConsentView, PendingRecord, PersonServerStore } from './store/types.js'

/** Options of {@link createPersonServer}. */
export interface PersonServerOptions {
  /** The PS's HTTPS URL (`iss` of everything it issues). */
  readonly issuer: string
  /** Signing keys, with rotation ({@link KeyRing}). */
  readonly keys: KeyRing
  /** Durable state: `SqliteStore` (embedded default) or `PostgresStore`. */
  readonly store: PersonServerStore
  /** Shown to people and in metadata. */
  readonly name?: string
  readonly description?: string
  readonly logoUri?: string
  /** Outbound fetches of metadata and JWKS (SSRF-guarded by default). */
  readonly egress?: EgressFetcher
  /** Outbound `fetch` for revocations sent to resources. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch
  /** Development only: accept `http://127.0.0.1:PORT` identifiers and send cookies without `Secure`. */
  readonly allowInsecureLoopback?: boolean
  readonly now?: () => number
  /** Signature window (s). Default 60. */
  readonly windowSec?: number
  /** Replay cache of request signatures. Default: in memory, bounded. Share one across instances (Redis). */
  readonly replayCache?: ReplayCache
  /** Person token lifetime (s), at most 3600. Default 3600. */
  readonly personTokenLifetimeSec?: number
  /** Auth token lifetime (s), at most 3600. Default 3600. */
  readonly authTokenLifetimeSec?: number
  /** How long a request waits for the person before it expires (s). Default 600. */
  readonly pendingTtlSec?: number
  /** Longest `Prefer: wait` honoured on a pending URL (s). Default 30. */
  readonly maxWaitSec?: number
  /** Grants remembered with "always" still end after this long (s). Default: never. */
  readonly maxGrantSec?: number
  /** The deployment's policy engine. */
  readonly policy?: PolicyHook
  /** Organisation mode: pre-authorised agents and the permission intersection. */
  readonly organization?: OrganizationPolicy
  /**
   * The PS's own channel to people (push, e-mail…): called when a request waits for its person.
   * With it, agents that cannot drive an interaction get `requirement=approval`; without it they
   * get `user_unreachable` (main draft §Token Endpoint Error Codes).
   */
  readonly notify?: (pending: PendingRecord) => void | Promise<void>
  /**
   * Whether the interaction endpoint relays to people (through their dashboard). Default true;
   * `false` answers `interaction_unavailable`.
   */
  readonly relay?: boolean
  /** Most clarification rounds per request. Default 5 (main draft §Clarification Limits). */
  readonly maxClarifications?: number
  /** Secret for session cookies; default: generated once and kept in the store. */
  readonly sessionSecret?: string
  /** How often expired records are purged from the store (s); 0 turns it off. Default 600. */
  readonly purgeIntervalSec?: number
  /**
   * Most distinct resources one agent may ask person tokens for per hour (main draft §Person Token
   * Endpoint "Retention": each obliges the PS to mint and keep a directed `sub`). Default 100.
   */
  readonly maxResourcesPerAgentHour?: number
  /**
   * Mission updates (main draft §Mission Update): `'accept'` (default) records them at once;
   * `'ask'` puts each before the person first (a `202`).
   */
  readonly missionUpdates?: 'accept' | 'ask'
  /**
   * Requests an agent makes for its sub-agents (main draft §Parent-Mediated Authorization). Default
   * `{ consent: 'within-parent-grant' }`: granted within the parent's grants, refused beyond them.
   */
  readonly subAgents?: SubAgentOptions
  /**
   * More ways for people to log in to the pages, next to the password form — e.g. `keycloakLogin`
   * from `'aauth-kit/bridges/keycloak'` (OIDC authorization code with PKCE).
   */
  readonly loginMethods?: readonly LoginMethod[]
  /**
   * Endpoints mounted beside the AAuth ones, sharing the PS's store, keys and agent
   * authentication — e.g. `tokenExchange` from `'aauth-kit/bridges/keycloak'` (RFC 8693).
   */
  readonly extensions?: readonly PersonServerExtension[]
}

/** What the endpoint modules share. */
export interface PsContext {
  readonly options: PersonServerOptions
  readonly issuer: string
  readonly store: PersonServerStore
  readonly keys: KeyRing
  readonly now: () => number
  readonly idOpts: IdentifierOptions
  readonly metadata: PersonServerMetadata
  /** Issuer keys (agents' providers, resources), with this PS's own keys served locally. */
  readonly jwks: JwksCache
  readonly egress: EgressFetcher
  /** The HMAC secret of directed identifiers. */
  readonly subjectSecret: string
  /** Resource metadata for consent pages, cached. */
  resourceInfo(resource: string): Promise<NonNullable<ConsentView['resource']>>
  /** Agent provider name and logo, cached. */
  providerInfo(iss: string): Promise<{ name?: string; logoUri?: string }>
  /** Wakes long polls waiting on a pending request. */
  readonly changes: PendingChanges
  /** Per-agent distinct-resource counter (CHECKLIST PS-PT-09). */
  readonly resourceLimiter: ResourceLimiter
}

/**
 * Counts the distinct resources each agent asked person tokens for in the current hour, in
 * memory (each instance counts its own share behind a load balancer).
 */
export class ResourceLimiter {
  readonly #windows = new BoundedCache<string, { readonly resources: Set<string>; readonly until: number }>(10_000)
  readonly #max: number
  readonly #now: () => number
  constructor(max: number, now: () => number) {
    this.#max = max
    this.#now = now
  }
  /** Seconds to wait when `agent` may not use another new resource now; `undefined` when it may. */
  admit(agent: string, resource: string): number | undefined {
    const now = this.#now()
    let w = this.#windows.get(agent)
    if (w === undefined || w.until <= now) {
      w = { resources: new Set(), until: now + 3_600_000 }
      this.#windows.set(agent, w, w.until)
    }
    if (w.resources.has(resource)) return undefined
    if (w.resources.size >= this.#max) return Math.ceil((w.until - now) / 1000)
    w.resources.add(resource)
    return undefined
  }
}

/** In-process wake-ups for long polls (several instances fall back to re-reading the store). */
export class PendingChanges {
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #polls = new BoundedCache<string, number>(100_000)
  /**
   * Records a poll of `id` at `now` and returns the time of the previous one (for `slow_down`). In
   * process only: behind a load balancer each instance sees its own share of the polls.
   */
  polled(id: string, now: number, expiresAt: number): number | undefined {
    const previous = this.#polls.get(id)
    this.#polls.set(id, now, expiresAt)
    return previous
  }
  /** Resolves on the next change of `id` or after `ms`. */
  wait(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.#waiters.get(id) ?? new Set()
      this.#waiters.set(id, set)
      const done = (): void => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(id)
        resolve()
      }
      const timer = setTimeout(done, ms)
      set.add(done)
    })
  }
  /** Wakes everyone waiting on `id`. */
  changed(id: string): void {
    for (const w of [...(this.#waiters.get(id) ?? [])]) w()
  }
}

/** The PS metadata document (main draft §Person Server Metadata). */
export function personServerMetadata(o: PersonServerOptions): PersonServerMetadata {
  const i = o.issuer
  return {
    issuer: i,
    jwks_uri: `${i}/.well-known/jwks.json`,
    person_token_endpoint: `${i}/person`,
    auth_token_endpoint: `${i}/token`,
    permission_endpoint: `${i}/permission`,
    audit_endpoint: `${i}/audit`,
    interaction_endpoint: `${i}/relay`,
    revocation_endpoint: `${i}/revoke`,
    mission_endpoint: `${i}/mission`,
    ...(o.name === undefined ? {} : { name: o.name }),
    ...(o.description === undefined ? {} : { description: o.description }),
    ...(o.logoUri === undefined ? {} : { logo_uri: o.logoUri }),
    ...Object.assign({}, ...(o.extensions ?? []).map((e) => e.metadata?.(i) ?? {})),
  }
}

function jsonResponse(url: string, value: unknown): EgressResponse {
  return { url, status: 200, headers: new Headers({ 'content-type': 'application/json', 'cache-control': 'max-age=60' }), body: new TextEncoder().encode(JSON.stringify(value)) }
}

/**
 * An egress fetcher that answers this PS's own metadata and JWKS from memory (it verifies the
 * person and auth tokens it issued without a network round trip) and sends the rest out.
 */
export function selfServingEgress(metadata: PersonServerMetadata, keys: KeyRing, out: EgressFetcher): EgressFetcher {
  const own = wellKnownUrl(metadata.issuer, DWK.person)
  return async (url, init) => {
    if (url === own) return jsonResponse(url, metadata)
    if (url === metadata.jwks_uri) return jsonResponse(url, keys.jwks())
    return out(url, init)
  }
}

/**
 * Issuer keys, where this PS's own keys come straight from its {@link KeyRing}: the tokens it
 * issued verify right after a rotation, without waiting out the once-a-minute JWKS refetch floor.
 */
export class OwnKeysJwksCache extends JwksCache {
  readonly #issuer: string
  readonly #keys: KeyRing
  constructor(issuer: string, keys: KeyRing, options: ConstructorParameters<typeof JwksCache>[0]) {
    super(options)
    this.#issuer = issuer
    this.#keys = keys
  }
  override async getKey(iss: string, dwk: AAuthDwk, kid: string): Promise<JwksLookup | undefined> {
    if (iss !== this.#issuer || dwk !== DWK.person) return super.getKey(iss, dwk, kid)
    const jwk = this.#keys.jwks().keys.find((k) => k.kid === kid)
    return jwk === undefined ? undefined : { jwk, fetched: false }
  }
  override async refreshAfterFailure(iss: string, dwk: AAuthDwk): Promise<boolean> {
    return iss === this.#issuer && dwk === DWK.person ? false : super.refreshAfterFailure(iss, dwk)
  }
}

/** Builds the shared context. */
export async function createContext(options: PersonServerOptions): Promise<PsContext> {
  const idOpts: IdentifierOptions = { allowInsecureLoopback: options.allowInsecureLoopback === true }
  const now = options.now ?? Date.now
  const metadata = personServerMetadata(options)
  const egress = selfServingEgress(metadata, options.keys, options.egress ?? createEgressFetcher(idOpts))
  const jwks = new OwnKeysJwksCache(options.issuer, options.keys, { fetcher: egress, now, ...idOpts })
  const { randomBytes } = await import('node:crypto')
  const subjectSecret = await options.store.setting('directed_id_secret', randomBytes(32).toString('base64url'))
  const resources = new BoundedCache<string, NonNullable<ConsentView['resource']>>(1000, now)
  const providers = new BoundedCache<string, { name?: string; logoUri?: string }>(1000, now)
  return {
    options,
    issuer: options.issuer,
    store: options.store,
    keys: options.keys,
    now,
    idOpts,
    metadata,
    jwks,
    egress,
    subjectSecret,
    changes: new PendingChanges(),
    resourceLimiter: new ResourceLimiter(options.maxResourcesPerAgentHour ?? 100, now),
    async resourceInfo(resource) {
      const hit = resources.get(resource)
      if (hit !== undefined) return hit
      let info: NonNullable<ConsentView['resource']> = { id: resource }
      try {
        const md = await fetchMetadata(resource, DWK.resource, { fetcher: egress, ...idOpts })
        const m = md as unknown as Record<string, unknown>
        const str = (k: string): string | undefined => (typeof m[k] === 'string' ? (m[k] as string) : undefined)
        const descriptions = m['scope_descriptions']
        info = {
          id: resource,
          ...(str('name') === undefined ? {} : { name: str('name')! }),
          ...(str('description') === undefined ? {} : { description: str('description')! }),
          ...(str('logo_uri') === undefined ? {} : { logoUri: str('logo_uri')! }),
          ...(str('access_mode') === undefined ? {} : { accessMode: str('access_mode')! }),
          ...(typeof descriptions === 'object' && descriptions !== null ? { scopeDescriptions: Object.fromEntries(Object.entries(descriptions).filter(([, v]) => typeof v === 'string')) as Record<string, string> } : {}),
        }
      } catch {
        // Shown without the resource's own description; the decision does not depend on it.
      }
      resources.set(resource, info, now() + 10 * 60_000)
      return info
    },
    async providerInfo(iss) {
      const hit = providers.get(iss)
      if (hit !== undefined) return hit
      let info: { name?: string; logoUri?: string } = {}
      try {
        const md = (await fetchMetadata(iss, DWK.agent, { fetcher: egress, ...idOpts })) as unknown as Record<string, unknown>
        info = {
          ...(typeof md['name'] === 'string' ? { name: md['name'] } : {}),
          ...(typeof md['logo_uri'] === 'string' ? { logoUri: md['logo_uri'] } : {}),
        }
      } catch {
        // The agent's identifier is shown either way.
      }
      providers.set(iss, info, now() + 10 * 60_000)
      return info
    },
  }
}
