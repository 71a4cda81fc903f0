/**
 * R3 at the Person Server (draft-hardt-aauth-r3 §R3 Processing, §Auth Token Extensions,
 * §Per-Call Proposals; CHECKLIST R3-05..R3-08, R3-10, NEG-R3-02). In three-party mode the PS is
 * the issuer, so it does both jobs the draft splits between PS and AS: it fetches the document a
 * resource token references — signing the fetch as itself, the party the resource token names in
 * `ps` — checks `r3_s256` over the bytes received, shows `display` to the person, and issues the
 * auth token with `r3_uri`, `r3_s256`, `r3_granted` and `r3_per_call`.
 *
 * A document with `parameters` is a **per-call proposal**: one operation, one call. It is never
 * satisfied by a remembered grant — only the deployment's policy hook (a machine decision, audited
 * with its reason) or the person decides it — and its auth token grants exactly that operation.
 *
 * @module
 */

import {
  DWK,
  PER_CALL,
  ProblemError,
  r3Digest,
  readR3Operations,
  sendServerSigned,
  X_AAUTH_ACCESS_MODE,
  jsonEqual,
  type R3AuthTokenClaims,
  type R3Display,
  type PerCallProposal,
  type R3Document,
  type R3Operation,
  type R3Operations,
  type ResourceTokenClaims,
} from '../protocol/index.js'
import { BoundedCache } from '../lib/bounded-cache.js'
import { readBoundedBody } from '../lib/bounded-body.js'
import type { PsContext } from './context.js'

/** Largest R3 document accepted (bytes). */
const MAX_R3_BYTES = 64 * 1024

/** What a resource token's R3 reference resolved to. */
export interface R3Reference {
  readonly uri: string
  readonly s256: string
  /** The document, parsed from the verified bytes. */
  readonly document: R3Document
  /** A per-call proposal (the document carries `parameters`). */
  readonly perCall: boolean
  /** The claims the auth token will carry. */
  readonly claims: R3AuthTokenClaims
}

/** Verified documents by hash: a document that matched its hash never needs fetching again (R3 §Content Addressing). */
const documents = new WeakMap<PsContext, BoundedCache<string, R3Document>>()

function cacheOf(ctx: PsContext): BoundedCache<string, R3Document> {
  let c = documents.get(ctx)
  if (c === undefined) documents.set(ctx, (c = new BoundedCache(1_000, ctx.now)))
  return c
}

const invalid = (detail: string, cause?: unknown): ProblemError => new ProblemError('invalid_resource_token', detail, cause === undefined ? undefined : { cause })

/** An operation entry without annotation members, as it appears in a grant. */
function bare(op: R3Operation): R3Operation {
  return Object.fromEntries(Object.entries(op).filter(([k]) => !k.startsWith('x-')))
}

/** The grant an auth token carries for `doc` (R3 §Auth Token Extensions). */
function grantOf(doc: R3Document, perCall: boolean): Pick<R3AuthTokenClaims, 'r3_granted' | 'r3_per_call'> {
  const { vocabulary } = doc
  if (perCall) return { r3_granted: { vocabulary, operations: doc.operations.map(bare) } }
  const later = doc.operations.filter((o) => o[X_AAUTH_ACCESS_MODE] === PER_CALL)
  const now = doc.operations.filter((o) => o[X_AAUTH_ACCESS_MODE] !== PER_CALL)
  const granted: R3Operations = { vocabulary, operations: now.map(bare) }
  return later.length === 0 ? { r3_granted: granted } : { r3_granted: granted, r3_per_call: { vocabulary, operations: later.map(bare) } }
}

/** Fetches and checks the document at `uri` against `s256`. */
async function fetchDocument(ctx: PsContext, uri: string, s256: string): Promise<R3Document> {
  const hit = cacheOf(ctx).get(s256)
  if (hit !== undefined) return hit
  let res: Response
  try {
    res = await sendServerSigned({
      url: uri,
      method: 'GET',
      issuer: ctx.issuer,
      dwk: DWK.person,
      key: ctx.keys.current,
      now: ctx.now,
      ...(ctx.options.fetch === undefined ? {} : { fetch: ctx.options.fetch }),
      ...ctx.idOpts,
    })
  } catch (cause) {
    throw new ProblemError('server_error', `the R3 document at ${uri} could not be fetched`, { cause })
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined)
    throw invalid(`the resource answered ${res.status} for its R3 document`)
  }
  const body = await readBoundedBody(res.body, MAX_R3_BYTES)
  if (!body.ok) throw invalid(`the R3 document is ${body.reason === 'too_large' ? `larger than ${MAX_R3_BYTES} bytes` : 'unreadable'}`)
  // The bytes received are the document: hashed as they are, never re-serialised (R3-06).
  if ((await r3Digest(body.bytes)) !== s256) throw invalid('the R3 document does not match r3_s256')
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.bytes))
  } catch (cause) {
    throw invalid('the R3 document is not JSON', cause)
  }
  const ops = readR3Operations(doc)
  if (ops === undefined || ops.operations.length === 0) throw invalid('the R3 document has no vocabulary and operations')
  const d = doc as R3Document
  if (d.display !== undefined && (typeof d.display !== 'object' || d.display === null || typeof (d.display as R3Display).summary !== 'string')) throw invalid('the R3 document display needs a summary')
  const params = (doc as { parameters?: unknown }).parameters
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) throw invalid('a per-call proposal carries parameters as an object')
  if (params !== undefined && ops.operations.length !== 1) throw invalid('a per-call proposal names exactly one operation')
  cacheOf(ctx).set(s256, d, ctx.now() + 24 * 3600_000)
  return d
}

/**
 * Resolves the R3 reference of a verified resource token, or `undefined` when it has none. The
 * document must live on the resource's own origin: the PS signs the fetch, and sends it nowhere
 * the resource token's issuer does not speak for.
 *
 * @throws {ProblemError} `invalid_resource_token` (one claim without the other, another origin,
 *   a document that does not match its hash or is malformed); `server_error` when the resource
 *   cannot be reached.
 */
export async function resolveR3(ctx: PsContext, rt: ResourceTokenClaims): Promise<R3Reference | undefined> {
  const claims = rt as ResourceTokenClaims & { r3_uri?: unknown; r3_s256?: unknown }
  if (claims.r3_uri === undefined && claims.r3_s256 === undefined) return undefined
  const { r3_uri: uri, r3_s256: s256 } = claims
  if (typeof uri !== 'string' || typeof s256 !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(s256)) throw invalid('r3_uri and r3_s256 come together, r3_s256 as a base64url SHA-256 (R3-03)')
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw invalid('r3_uri is not a URL')
  }
  if (url.origin !== rt.iss) throw invalid('r3_uri must be on the origin of the resource that issued the resource token')
  const document = await fetchDocument(ctx, uri, s256)
  const perCall = (document as { parameters?: unknown }).parameters !== undefined
  return { uri, s256, document, perCall, claims: { r3_uri: uri, r3_s256: s256, ...grantOf(document, perCall) } }
}

/**
 * What the consent page shows of a document: its resource-asserted `display`, and for a per-call
 * proposal its parameters (a digest parameter as its excerpt) and the operation.
 */
export function r3Details(ref: R3Reference): Record<string, unknown> {
  const doc = ref.document
  const details: Record<string, unknown> = { ...(doc.display ?? {}) }
  if (ref.perCall) {
    const params = (doc as PerCallProposal).parameters
    for (const [name, value] of Object.entries(params)) {
      const digest = typeof value === 'object' && value !== null && typeof (value as { s256?: unknown }).s256 === 'string'
      const shown = digest ? ((value as { excerpt?: string }).excerpt ?? '(sent by digest)') : value
      // The parameters bind the call: a display member of the same name never hides a different value.
      if (!Object.hasOwn(details, name)) details[name] = shown
      else if (!jsonEqual(details[name], shown)) details[`${name} (parameter)`] = shown
    }
    const op = doc.operations[0]
    if (op !== undefined) details['operation'] = Object.values(bare(op)).join(' ')
  } else {
    details['operations'] = doc.operations.map((o) => Object.values(bare(o)).join(' ')).join(', ')
  }
  return details
}
