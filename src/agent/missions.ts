/**
 * The agent's side of missions (main draft §Mission Creation, §Mission Approval, §Mission
 * Update, §Mission Completion, §Mission Status Errors; CHECKLIST AG-MIS-01..05): propose a
 * mission and wait for the person, check the answer's `s256` against the blob's bytes, hold the
 * person tokens it carries, record updates, propose completion, and surface a terminated
 * mission with its reason.
 *
 * Used through {@link AgentClient.proposeMission}, {@link AgentClient.updateMission} and
 * {@link AgentClient.completeMission}.
 *
 * @module
 */

import { decodeBase64url } from '../lib/base64url.js'
import { sha256Base64url, type Capability, CAPABILITIES } from '../protocol/index.js'
import type { PollContext } from './deferred-poller.js'
import { AgentError, readFailure } from './errors.js'
import type { PersonServerClient } from './person-server-client.js'
import type { Presentation } from './signed-transport.js'
import type { HeldToken } from './token-store.js'

/** A tool of a proposal or of an approved mission. */
export interface MissionTool {
  readonly name: string
  readonly description: string
}

/** What the agent proposes (main draft §Mission Creation). */
export interface MissionProposal {
  /** What the agent intends to accomplish (Markdown). */
  readonly description: string
  /** Tools it wants to use. */
  readonly tools?: readonly MissionTool[]
  /** Resources it expects to access (server identifiers): the approval carries a person token for each approved. */
  readonly resources?: readonly string[]
  /** Structured ceilings the person server can check per call, e.g. `{ amount: { max: 2000, currency: 'USD' } }`. */
  readonly limits?: Readonly<Record<string, { readonly max: number; readonly currency?: string }>>
}

/** The approved mission blob (main draft §Mission Approval). Unknown members are kept and ignored. */
export interface MissionBlob {
  readonly agent: string
  readonly approved_at: string
  readonly expires_at?: string
  readonly description: string
  readonly approved_tools?: readonly MissionTool[]
  readonly approved_resources?: readonly string[]
  readonly [member: string]: unknown
}

/** An approved mission, as {@link AgentClient.proposeMission} returns it. */
export interface ApprovedMission {
  /** The mission identifier: pass it as `aauth.mission` (`mission_s256`) from now on (AG-MIS-03). */
  readonly s256: string
  /** The blob, decoded. */
  readonly blob: MissionBlob
  /** The exact bytes `s256` is the digest of. */
  readonly bytes: Uint8Array
  /** What the PS can do for the person right now (not part of the mission). */
  readonly capabilities: readonly Capability[]
  /** The person tokens of the approved resources, verified and held for later calls. */
  readonly personTokens: Readonly<Record<string, HeldToken>>
}

/** Per-call options of the mission calls. */
export interface MissionCallOptions {
  /** Epoch ms after which waiting for the person gives up (`deadline_exceeded`). */
  readonly deadline?: number
  readonly signal?: AbortSignal
}

/** What the mission calls need from the agent client. */
export interface MissionCallContext {
  readonly ps: PersonServerClient
  /** Presents the agent token the calls are signed with. */
  readonly present: () => Promise<Presentation>
  readonly poll: Omit<PollContext, 'transport' | 'party' | 'present'>
  /** The agent's capabilities, sent with a request that may wait for the person. */
  readonly capabilities: readonly Capability[]
  /** Verifies a person token for `resource` under `mission` and holds it. */
  readonly holdPersonToken: (token: string, resource: string, mission: string) => Promise<HeldToken>
}

/**
 * Checks `s256` against the bytes `mission` decodes to (AG-MIS-02) and decodes the blob.
 *
 * @throws {AgentError} `unexpected_response` when `mission` is not base64url JSON naming an
 *   agent, an approval time and a description, or its digest is not `s256`.
 */
export async function verifyMission(s256: unknown, mission: unknown): Promise<{ s256: string; blob: MissionBlob; bytes: Uint8Array }> {
  const bytes = typeof mission === 'string' ? decodeBase64url(mission) : undefined
  if (typeof s256 !== 'string' || bytes === undefined) throw new AgentError('unexpected_response', 'the mission approval lacks s256 or a base64url mission')
  if ((await sha256Base64url(bytes)) !== s256) throw new AgentError('unexpected_response', `the mission blob does not hash to the s256 the person server sent (${s256})`)
  let blob: unknown
  try {
    blob = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (cause) {
    throw new AgentError('unexpected_response', 'the mission blob is not JSON', { cause })
  }
  const b = blob as Record<string, unknown> | null
  if (typeof b !== 'object' || b === null || Array.isArray(b) || typeof b['agent'] !== 'string' || typeof b['approved_at'] !== 'string' || typeof b['description'] !== 'string') {
    throw new AgentError('unexpected_response', 'the mission blob lacks agent, approved_at or description')
  }
  return { s256, blob: b as MissionBlob, bytes }
}

/** A failed mission call as its error (`mission_terminated` carries its reason). */
function failure(res: Response, url: URL): Promise<Error> {
  return readFailure(res, 'person server', url.href)
}

async function endpoint(c: MissionCallContext): Promise<URL> {
  const e = (await c.ps.metadata()).mission_endpoint
  if (e === undefined) throw new AgentError('requirement_unsatisfiable', `${c.ps.issuer} publishes no mission_endpoint`)
  return new URL(e)
}

async function call(c: MissionCallContext, url: URL, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await c.ps.postDeferred(url, { ...body, ...(c.capabilities.length === 0 ? {} : { capabilities: c.capabilities }) }, c.present, c.poll)
  if (res.status !== 200) throw await failure(res, url)
  let json: unknown
  try {
    json = await res.json()
  } catch (cause) {
    throw new AgentError('unexpected_response', 'the person server answered 200 without JSON', { status: 200, url: url.href, cause })
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AgentError('unexpected_response', 'the person server answered 200 without a JSON object', { status: 200, url: url.href })
  return json as Record<string, unknown>
}

/** `POST {mission_endpoint}` (AG-MIS-01, AG-MIS-02). */
export async function proposeMission(c: MissionCallContext, proposal: MissionProposal): Promise<ApprovedMission> {
  const url = await endpoint(c)
  const json = await call(c, url, {
    description: proposal.description,
    ...(proposal.tools === undefined ? {} : { tools: proposal.tools }),
    ...(proposal.resources === undefined ? {} : { resources: proposal.resources }),
    ...(proposal.limits === undefined ? {} : { limits: proposal.limits }),
  })
  const { s256, blob, bytes } = await verifyMission(json['s256'], json['mission'])
  const caps = Array.isArray(json['capabilities']) ? (json['capabilities'] as unknown[]).filter((x): x is Capability => (CAPABILITIES as readonly unknown[]).includes(x)) : []
  const tokens = json['person_tokens']
  const personTokens: Record<string, HeldToken> = {}
  if (tokens !== undefined) {
    if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens)) throw new AgentError('unexpected_response', 'person_tokens is not an object', { url: url.href })
    for (const [resource, token] of Object.entries(tokens)) {
      if (typeof token !== 'string') throw new AgentError('unexpected_response', `the person token for ${resource} is not a string`, { url: url.href })
      personTokens[resource] = await c.holdPersonToken(token, resource, s256)
    }
  }
  return { s256, blob, bytes, capabilities: caps, personTokens }
}

/** `POST {mission_endpoint}/{s256}` with `action: update` (AG-MIS-04). */
export async function updateMission(c: MissionCallContext, s256: string, description: string): Promise<{ s256: string }> {
  const url = new URL(`${(await endpoint(c)).href}/${encodeURIComponent(s256)}`)
  const json = await call(c, url, { action: 'update', description })
  if (typeof json['s256'] !== 'string') throw new AgentError('unexpected_response', 'the accepted update has no s256', { url: url.href })
  return { s256: json['s256'] }
}

/** `POST {mission_endpoint}/{s256}` with `action: completion` (AG-MIS-04): resolves once the person accepts. */
export async function completeMission(c: MissionCallContext, s256: string, summary: string): Promise<void> {
  const url = new URL(`${(await endpoint(c)).href}/${encodeURIComponent(s256)}`)
  await call(c, url, { action: 'completion', summary })
}
