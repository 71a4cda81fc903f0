/**
 * Rich Resource Requests at the resource: what it declares and publishes (draft-hardt-aauth-r3
 * §Vocabularies, §Operation Access Annotations, §R3 Document, §Content Addressing, §R3 Document
 * Access Restriction; CHECKLIST R3-01, R3-03..05, R3-12).
 *
 * - the resource declares its operations once ({@link R3Options}); the metadata advertises
 *   `r3_vocabularies` and the core serves a minimal OpenAPI 3.1 description at the discovery
 *   endpoint, with `x-aauth-access-mode` where an operation declares one;
 * - a route names its operation (`operation` in its requirement) or is matched by method and
 *   path template against the declarations;
 * - a class R3 document lists the operations of a scope; it is serialised once, kept by its hash,
 *   and served verbatim only to a server entitled to it (the PS in `ps` or the AS in `aud` of a
 *   resource token that referenced it).
 *
 * Per-call proposals live in `per-call.ts`. Only the OpenAPI vocabulary is implemented.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import {
  parseSignatureKey,
  problemResponse,
  ProblemError,
  PER_CALL,
  R3_VOCABULARY,
  serializeR3,
  SignatureError,
  signatureErrorResponse,
  X_AAUTH_ACCESS_MODE,
  type R3Display,
  type R3Document,
  type RequestVerifier,
} from '../protocol/index.js'
import type { ResourceAccess } from './access.js'
import type { PerCallStore } from './per-call-store.js'

/** The access modes an operation may declare (R3 §Access Mode Annotation); never `session-token` (R3-12). */
export type OperationAccessMode = 'agent-token' | 'person-token' | 'auth-token' | 'per-call'

/** What a per-call decider sees: the verified call. */
export interface PerCallInput {
  readonly method: string
  readonly path: string
  /** The JSON body, parsed, when the call had one; `undefined` otherwise. */
  readonly body: unknown
  readonly access: ResourceAccess
}

/** The proposal a per-call decider asks the person to approve (R3 §Proposal Document). */
export interface PerCallSpec {
  /** The call's concrete parameters, as the person server and the person will see them. */
  readonly parameters: Readonly<Record<string, unknown>>
  /** What the person is asked to approve (summary, `detail`, and members such as `amount`). */
  readonly display: R3Display
  /**
   * Names of parameters sent by digest (`{s256}`) rather than inline: a string value is hashed
   * as its UTF-8 bytes, anything else as its `JSON.stringify` (R3 §Large and Sensitive Payloads).
   */
  readonly digests?: readonly string[]
}

/**
 * Decides, per call, whether the person must approve this one invocation: `undefined` serves it,
 * a {@link PerCallSpec} holds or challenges it with a per-call proposal, `{deny}` refuses it
 * (`403 denied`). It runs on every call of the operation that the route's requirement admits, and
 * again on a `401`-path retry to recover the call's parameters for comparison.
 */
export type PerCallDecider = (call: PerCallInput) => PerCallSpec | { readonly deny: string } | undefined | Promise<PerCallSpec | { readonly deny: string } | undefined>

/** One operation the resource exposes (R3 §OpenAPI Vocabulary). */
export interface OperationDeclaration {
  /** The OpenAPI `operationId`: the operation's identifier in R3 documents and grants. */
  readonly operationId: string
  /** HTTP method (any case). */
  readonly method: string
  /** OpenAPI path template, e.g. `/bookings/{id}`. */
  readonly path: string
  /** The scope whose class R3 document lists this operation. */
  readonly scope: string
  /**
   * Published as `x-aauth-access-mode` (advisory for agents, R3-12). `per-call` is also enforced
   * here: every call is challenged with a per-call proposal.
   */
  readonly accessMode?: OperationAccessMode
  /**
   * Published as `x-aauth-budget: true`: calling it draws down a budget (R3 §Budget Annotation).
   * Never with `agent-token` or `person-token` (R3-12).
   */
  readonly budget?: boolean
  /** Resource-asserted consent text for this operation (composed into class documents). */
  readonly display: R3Display
  /** The per-call decider (see {@link PerCallDecider}). */
  readonly perCall?: PerCallDecider
}

/** The `r3` option of `createResource`. */
export interface R3Options {
  /** Default and only supported value: `urn:aauth:vocabulary:openapi`. */
  readonly vocabulary?: string
  readonly operations: readonly OperationDeclaration[]
  /** Path of the OpenAPI document on the resource. Default `/openapi.json`. */
  readonly openApiPath?: string
  /** `info.title` of the OpenAPI document. Default: the metadata `name`, else the issuer. */
  readonly title?: string
  /**
   * How a per-call challenge is delivered when the adapter can hold the call: `202` (default,
   * R3 §Flow SHOULD) or `401`. An adapter that cannot hold (Express, the bare core) always uses `401`.
   */
  readonly perCallDelivery?: '202' | '401'
  /** R3 documents, proposals, held calls and retained results. Default: a bounded {@link MemoryPerCallStore}. */
  readonly store?: PerCallStore
  /** How long a per-call proposal (and its pending URL) stays open for approval (s). Default 900, at most 3600. */
  readonly pendingLifetimeSec?: number
  /** `Retry-After` of `202` answers (s). Default 5. */
  readonly retryAfterSec?: number
  /** Largest body held for a `202` (bytes); a larger call is challenged with `401`. Default 1 MiB. */
  readonly maxHeldBodyBytes?: number
  /** Largest response body retained for repeated presentations (bytes). Default 1 MiB. */
  readonly maxRetainedBodyBytes?: number
  /** How long a concurrent presentation waits for the first one's result (ms). Default 10,000. */
  readonly concurrentWaitMs?: number
}

/** Where the core serves R3 documents: class documents and per-call proposals. */
export const R3_PATHS = { document: '/aauth/r3/', proposal: '/aauth/r3/call/', pending: '/aauth/pending/' } as const

/** `/aauth/r3/{s256}` or `/aauth/r3/call/{s256}`. */
const DOCUMENT_PATH = new RegExp(`^(?:${R3_PATHS.document}|${R3_PATHS.proposal})([A-Za-z0-9_-]{43})$`)

/** How long a class document stays fetchable, and its entitlements held, after a challenge (ms). */
const DOCUMENT_RETENTION_MS = 3_600_000

/** Store keys. */
export const r3Keys = {
  document: (s256: string) => `r3doc\u0000${s256}`,
  entitled: (s256: string, issuer: string) => `r3ent\u0000${s256}\u0000${issuer}`,
}

/** Checks the declarations; throws `TypeError` on a misconfiguration. */
export function checkR3Options(o: R3Options): void {
  const vocabulary = o.vocabulary ?? R3_VOCABULARY.openapi
  if (vocabulary !== R3_VOCABULARY.openapi) throw new TypeError(`only the OpenAPI vocabulary (${R3_VOCABULARY.openapi}) is implemented, not ${vocabulary}`)
  const ids = new Set<string>()
  const routes = new Set<string>()
  for (const op of o.operations) {
    if (typeof op.operationId !== 'string' || op.operationId === '') throw new TypeError('every operation needs an operationId')
    if (ids.has(op.operationId)) throw new TypeError(`operationId ${op.operationId} is declared twice`)
    ids.add(op.operationId)
    const route = `${op.method.toUpperCase()} ${op.path}`
    if (routes.has(route)) throw new TypeError(`${route} is declared twice`)
    routes.add(route)
    if (!op.path.startsWith('/')) throw new TypeError(`the path of ${op.operationId} must start with /`)
    if (typeof op.scope !== 'string' || op.scope.trim() === '' || /\s/.test(op.scope)) throw new TypeError(`the scope of ${op.operationId} must be one scope value`)
    // R3-12: session-token is never an operation annotation.
    if (op.accessMode !== undefined && !['agent-token', 'person-token', 'auth-token', PER_CALL].includes(op.accessMode)) {
      throw new TypeError(`access mode ${String(op.accessMode)} of ${op.operationId} cannot be an operation annotation`)
    }
    if (op.budget === true && (op.accessMode === 'agent-token' || op.accessMode === 'person-token')) {
      throw new TypeError(`${op.operationId}: a budget operation needs at least an auth token, not ${op.accessMode}`)
    }
    if (typeof op.display?.summary !== 'string' || op.display.summary === '') throw new TypeError(`${op.operationId} needs display.summary`)
  }
  const life = o.pendingLifetimeSec ?? 900
  if (!Number.isInteger(life) || life <= 0 || life > 3600) throw new RangeError('pendingLifetimeSec must be an integer in (0, 3600]')
}

/** The declared operation a request is for: named by the requirement, else matched by method and path template. */
export function resolveOperation(ops: readonly OperationDeclaration[], method: string, path: string, named?: string): OperationDeclaration | undefined {
  if (named !== undefined) {
    const op = ops.find((o) => o.operationId === named)
    if (op === undefined) throw new TypeError(`the route names operation ${named}, which is not declared in r3.operations`)
    return op
  }
  const m = method.toUpperCase()
  return ops.find((o) => o.method.toUpperCase() === m && templateMatches(o.path, path))
}

/** A path template split once: literal segments and `{name}` captures. */
type TemplateSegment = { readonly literal: string } | { readonly name: string }

/** Parsed templates (the declared operations' paths: a handful per resource). */
const parsedTemplates = new Map<string, readonly TemplateSegment[]>()

function segmentsOf(template: string): readonly TemplateSegment[] {
  let segments = parsedTemplates.get(template)
  if (segments === undefined) {
    segments = template.split('/').map((seg) => {
      const name = /^\{([^/{}]+)\}$/.exec(seg)?.[1]
      return name === undefined ? { literal: seg } : { name }
    })
    if (parsedTemplates.size < 1000) parsedTemplates.set(template, segments)
  }
  return segments
}

function templateMatches(template: string, path: string): boolean {
  const t = segmentsOf(template)
  const p = path.split('/')
  return t.length === p.length && t.every((seg, i) => ('literal' in seg ? seg.literal === p[i] : p[i] !== ''))
}

/**
 * The values `path` gives the `{name}` segments of `template` (percent-decoded where that is
 * well-formed), e.g. `{id: 'b-1'}` for `/bookings/{id}` and `/bookings/b-1`; `undefined` when
 * the path does not match the template.
 */
export function templateCaptures(template: string, path: string): Record<string, string> | undefined {
  if (!templateMatches(template, path)) return undefined
  const p = path.split('/')
  const captures: Record<string, string> = {}
  segmentsOf(template).forEach((seg, i) => {
    if ('name' in seg) captures[seg.name] = decodeSegment(p[i]!)
  })
  return captures
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * The OpenAPI 3.1 description served at the discovery endpoint: paths, `operationId`, the
 * summary, path parameters, and `x-aauth-access-mode` / `x-aauth-budget` where declared (R3
 * §Vocabulary Encodings).
 */
export function openApiDocument(ops: readonly OperationDeclaration[], title: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const op of ops) {
    const params = [...op.path.matchAll(/\{([^/{}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    ;(paths[op.path] ??= {})[op.method.toLowerCase()] = {
      operationId: op.operationId,
      summary: op.display.summary,
      ...(params.length === 0 ? {} : { parameters: params }),
      ...(op.accessMode === undefined ? {} : { [X_AAUTH_ACCESS_MODE]: op.accessMode }),
      ...(op.budget === true ? { 'x-aauth-budget': true } : {}),
      responses: { default: { description: 'See the resource documentation.' } },
    }
  }
  return { openapi: '3.1.0', info: { title, version: '1' }, paths }
}

/** The operation entry of `op` in documents and grants: `{operationId}`. */
export function operationEntry(op: OperationDeclaration): { operationId: string } {
  return { operationId: op.operationId }
}

/**
 * The class R3 document of `scope` (and `account`): the declared operations whose scope is one of
 * its values, per-call ones marked `x-aauth-access-mode: per-call` for the issuer to list in
 * `r3_per_call`, and a display composed from theirs. `undefined` when no operation falls under it.
 */
export function classDocument(ops: readonly OperationDeclaration[], vocabulary: string, scope: string, account?: string): R3Document | undefined {
  const wanted = new Set(scope.split(' ').filter((s) => s !== ''))
  return composeDocument(
    ops.filter((o) => wanted.has(o.scope) && o.accessMode !== 'agent-token' && o.accessMode !== 'person-token'),
    vocabulary,
    account,
  )
}

/**
 * One R3 document covering `covered` (R3 §Operations Spanning Multiple Definitions): their
 * entries, per-call ones annotated, and their displays merged member by member.
 */
export function composeDocument(covered: readonly OperationDeclaration[], vocabulary: string, account?: string): R3Document | undefined {
  if (covered.length === 0) return undefined
  const join = (k: 'summary' | 'implications' | 'data_accessed' | 'irreversible') => {
    const parts = covered.map((o) => o.display[k]).filter((v): v is string => typeof v === 'string' && v !== '')
    return parts.length === 0 ? undefined : parts.join(k === 'summary' ? '; ' : ' ')
  }
  const display: Record<string, string> = {}
  for (const k of ['summary', 'implications', 'data_accessed', 'irreversible'] as const) {
    const v = join(k)
    if (v !== undefined) display[k] = v
  }
  return {
    vocabulary,
    operations: covered.map((o) => ({ ...operationEntry(o), ...(o.accessMode === PER_CALL ? { [X_AAUTH_ACCESS_MODE]: PER_CALL } : {}) })),
    ...(account === undefined ? {} : { account }),
    display: display as unknown as R3Display,
  }
}

/**
 * Keeps a document's bytes by hash and records who may fetch it (R3 §Content Addressing,
 * §R3 Document Access Restriction): the document until `expiresAt`, each entitlement as its own key.
 */
export async function publishDocument(store: PerCallStore, bytes: Uint8Array, s256: string, entitled: readonly string[], expiresAt: number): Promise<void> {
  await store.set(r3Keys.document(s256), new TextDecoder().decode(bytes), expiresAt)
  for (const iss of new Set(entitled)) await store.set(r3Keys.entitled(s256, iss), '1', expiresAt)
}

/**
 * Serialises (once per process, by `key`) and publishes the document `build` gives (a class
 * document, or one composed for `r3_operations`); its `r3_uri`/`r3_s256`, or `undefined` when
 * there is none.
 */
export async function documentClaims(
  ctx: { issuer: string; store: PerCallStore; now: () => number; cache: Map<string, { bytes: Uint8Array; s256: string } | null> },
  key: string,
  build: () => R3Document | undefined,
  entitled: readonly string[],
): Promise<{ r3_uri: string; r3_s256: string } | undefined> {
  let doc = ctx.cache.get(key)
  if (doc === undefined) {
    const d = build()
    doc = d === undefined ? null : await serializeR3(d)
    // Bounded: the first 1,000 documents are remembered, later ones serialised per challenge.
    if (ctx.cache.size < 1000) ctx.cache.set(key, doc)
  }
  if (doc === null) return undefined
  await publishDocument(ctx.store, doc.bytes, doc.s256, entitled, ctx.now() + DOCUMENT_RETENTION_MS)
  return { r3_uri: `${ctx.issuer}${R3_PATHS.document}${doc.s256}`, r3_s256: doc.s256 }
}

/**
 * `GET {issuer}/aauth/r3/{s256}` and `/aauth/r3/call/{s256}`: the stored bytes, verbatim, to a
 * server signing as itself (`jwks_uri`) that is entitled to that document (R3-05, NEG-R3-01).
 *
 * - not a `jwks_uri` signature (an agent's `jwt`): `401` `Signature-Error: unsupported_scheme`;
 * - a signature that does not verify: `401` with its `Signature-Error`;
 * - an unknown or expired document: `404`;
 * - a verified server not entitled to it: `403` problem `denied`.
 */
export async function serveDocument(
  request: { method: string; url: URL; headers: Headers },
  body: Uint8Array,
  ctx: { verifier: RequestVerifier; store: PerCallStore },
): Promise<Response> {
  if (request.method !== 'GET') return new Response(null, { status: 405, headers: { allow: 'GET' } })
  const m = DOCUMENT_PATH.exec(request.url.pathname)
  const s256 = m?.[1]
  let issuer: string
  try {
    let schemes: (string | undefined)[] = []
    try {
      schemes = [...parseSignatureKey(request.headers.get('signature-key') ?? '').values()].map((m) => m.scheme)
    } catch {
      /* a malformed header is the verifier's to report */
    }
    if (schemes.length > 0 && !schemes.includes('jwks_uri')) {
      throw new SignatureError('unsupported_scheme', 'R3 documents are fetched only by the servers entitled to them, signing as themselves (jwks_uri)', { acceptSignatureScheme: ['jwks_uri'] })
    }
    const v = await ctx.verifier.verify(request, body)
    if (v.key.context.scheme !== 'jwks_uri') throw new SignatureError('unsupported_scheme', 'R3 documents are fetched by servers (jwks_uri)', { acceptSignatureScheme: ['jwks_uri'] })
    issuer = v.key.context.issuer
  } catch (err) {
    if (err instanceof SignatureError) return signatureErrorResponse(err)
    throw err
  }
  const text = s256 === undefined ? undefined : await ctx.store.get(r3Keys.document(s256))
  if (s256 === undefined || text === undefined) return new Response(null, { status: 404, headers: { 'cache-control': 'no-store' } })
  if ((await ctx.store.get(r3Keys.entitled(s256, issuer))) === undefined) {
    return problemResponse(new ProblemError('denied', `${issuer} is not entitled to this R3 document`))
  }
  // The exact bytes hashed at serialisation (R3-04): the stored text is that UTF-8, unchanged.
  return new Response(new TextEncoder().encode(text), { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } })
}
