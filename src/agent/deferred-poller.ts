/**
 * The agent's side of deferred responses: poll a pending URL until a terminal answer (main draft
 * §Deferred Responses, §Polling with GET, §Deferred Response State Machine, §Interaction Required,
 * §Clarification Chat; CHECKLIST AG-DEF-01..03, AG-CLAR-02, AG-INT-02, AG-RES-08, AG-RES-10).
 *
 * - polls with signed `GET`s carrying `Prefer: wait=N`, honouring `Retry-After` (capped at an
 *   hour) and adding 5 s per `429`;
 * - hands `requirement=interaction` to the caller's callback once per code, and stops prompting on
 *   `status: interacting`;
 * - answers `requirement=clarification` through the caller's callback (respond, update, cancel);
 * - gives up at the caller's deadline or after `maxPolls` with a typed error, never hangs;
 * - keeps polling through unknown requirements and unknown `status` values, as the draft allows.
 *
 * @module
 */

import {
  AAuthError,
  parseRetryAfter,
  preferWait,
  readDeferred,
  SLOW_DOWN_STEP,
  type DeferredInfo,
  type IdentifierOptions,
} from '../protocol/index.js'
import { AgentError, readFailure } from './errors.js'
import type { Presentation, SignedTransport } from './signed-transport.js'

/** What the caller is asked to show the person (AG-INT-02). */
export interface InteractionPrompt {
  /** The interaction URL (https, no query). */
  readonly url: string
  readonly code: string
  /** `{url}?code={code}`: the link to open or show (e.g. as a QR code). */
  readonly userUrl: string
  /** Who asked: the resource's or the person server's origin. */
  readonly origin: string
  /** The pending URL the agent keeps polling. */
  readonly pendingUrl: string
}

/** A question from the person, relayed by the server (§Clarification Required). */
export interface ClarificationPrompt {
  /** Markdown question text: untrusted, render it as such. */
  readonly question: string
  readonly options?: readonly string[]
  /** Seconds the server will wait for an answer. */
  readonly timeout?: number
  readonly pendingUrl: string
}

/** The agent's answer to a clarification (§Agent Response to Clarification). */
export type ClarificationAnswer =
  | { readonly action: 'respond'; readonly response: string }
  | { readonly action: 'update'; readonly resourceToken: string; readonly presentedToken: string; readonly justification?: string }
  | { readonly action: 'cancel' }

/** Caller hooks for a deferred exchange. */
export interface DeferredCallbacks {
  readonly onInteraction?: (prompt: InteractionPrompt) => void | Promise<void>
  readonly onClarification?: (prompt: ClarificationPrompt) => ClarificationAnswer | Promise<ClarificationAnswer>
}

/** Everything the poller needs for one pending URL. */
export interface PollContext extends DeferredCallbacks, IdentifierOptions {
  readonly transport: SignedTransport
  /** Who is answering, for messages ("resource", "person server"). */
  readonly party: string
  /** The credential each poll presents; asked again before every poll (it may change). */
  readonly present: () => Promise<Presentation>
  /**
   * Called for `requirement=auth-token` on a `202` (deferred delivery): obtain the auth token so
   * that the next {@link present} returns it. Without it the requirement is an error.
   */
  readonly onAuthToken?: (resourceToken: string) => Promise<void>
  /** Called with every response (to capture `AAuth-Access`). */
  readonly observe?: (res: Response) => void
  readonly now: () => number
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Epoch ms after which the poller gives up with `deadline_exceeded`. */
  readonly deadline: number
  readonly maxPolls: number
  /** Floor between polls after the first, in ms (an endless `Retry-After: 0` must not spin). */
  readonly minPollIntervalMs: number
  readonly preferWaitSec: number
  readonly signal?: AbortSignal | undefined
}

async function answerClarification(info: DeferredInfo, ctx: PollContext, presentation: Presentation): Promise<void> {
  const question = info.body['clarification']
  if (typeof question !== 'string') throw new AgentError('unexpected_response', `${ctx.party} asked for clarification without a question`, { url: info.location.href })
  ctx.transport.step({ type: 'clarification', question })
  if (ctx.onClarification === undefined) {
    throw new AgentError('clarification_required', `${ctx.party} relayed a question and this agent has no clarification handler: ${question}`, { url: info.location.href })
  }
  const options = Array.isArray(info.body['options']) ? info.body['options'].filter((o): o is string => typeof o === 'string') : undefined
  const timeout = typeof info.body['timeout'] === 'number' ? info.body['timeout'] : undefined
  const answer = await ctx.onClarification({ question, pendingUrl: info.location.href, ...(options === undefined ? {} : { options }), ...(timeout === undefined ? {} : { timeout }) })
  const headers = new Headers({ 'content-type': 'application/json' })
  if (answer.action === 'cancel') {
    const res = await ctx.transport.send({ method: 'DELETE', url: info.location, headers: new Headers(), signal: ctx.signal }, presentation)
    ctx.observe?.(res)
    await res.body?.cancel().catch(() => undefined)
    throw new AgentError('cancelled', 'the agent withdrew the request (clarification cancelled)', { status: res.status, url: info.location.href })
  }
  const body =
    answer.action === 'respond'
      ? { action: 'clarification_response', clarification_response: answer.response }
      : { action: 'updated_request', resource_token: answer.resourceToken, presented_token: answer.presentedToken, ...(answer.justification === undefined ? {} : { justification: answer.justification }) }
  const res = await ctx.transport.send({ method: 'POST', url: info.location, headers, body: new TextEncoder().encode(JSON.stringify(body)), signal: ctx.signal }, presentation)
  ctx.observe?.(res)
  if (res.status >= 300) throw await readFailure(res, ctx.party, info.location.href)
  await res.body?.cancel().catch(() => undefined)
}

/** Reads a `202`; a pending URL the server got wrong is the server's fault, not the caller's. */
async function deferredInfo(res: Response, url: URL, ctx: PollContext): Promise<DeferredInfo> {
  try {
    return await readDeferred(res, url, ctx)
  } catch (err) {
    if (err instanceof AAuthError && err.code === 'invalid_request') throw new AgentError('unexpected_response', `${ctx.party} sent a bad 202: ${err.message}`, { status: 202, url: url.href, cause: err })
    throw err
  }
}

/**
 * Polls until a non-`202` answer and returns it (the caller interprets 200/403/408/410).
 *
 * @param first - the `202` that started it.
 * @param requestUrl - the URL that answered `first` (resolves a relative `Location`).
 * @throws {AgentError} `deadline_exceeded`, `too_many_rounds`, `interaction_required`,
 *   `clarification_required`, `unsupported_requirement`, `cancelled`; errors the server sent.
 */
export async function pollDeferred(first: Response, requestUrl: URL, ctx: PollContext): Promise<Response> {
  let info = await deferredInfo(first, requestUrl, ctx)
  let interval = info.retryAfter
  const prompted = new Set<string>()
  let answered: string | undefined
  for (let polls = 0; ; polls++) {
    const req = info.requirement
    if (req !== undefined && req.recognized) {
      switch (req.requirement) {
        case 'interaction': {
          const userUrl = `${req.url}?code=${encodeURIComponent(req.code)}`
          ctx.transport.step({ type: 'interaction', url: req.url, code: req.code, userUrl, status: info.status })
          // AG-DEF-02: once the person is interacting, stop prompting.
          if (info.status === 'pending' && !prompted.has(userUrl)) {
            if (ctx.onInteraction === undefined) throw new AgentError('interaction_required', `${ctx.party} needs the person at ${userUrl} and this agent has no interaction handler`, { url: info.location.href })
            prompted.add(userUrl)
            await ctx.onInteraction({ url: req.url, code: req.code, userUrl, origin: info.location.origin, pendingUrl: info.location.href })
          }
          break
        }
        case 'clarification': {
          const q = info.body['clarification']
          if (q !== answered) {
            await answerClarification(info, ctx, await ctx.present())
            answered = typeof q === 'string' ? q : undefined
            interval = 0
          }
          break
        }
        case 'auth-token':
          if (ctx.onAuthToken === undefined) throw new AgentError('unsupported_requirement', `${ctx.party} asked for an auth token where none can be obtained`, { url: info.location.href })
          await ctx.onAuthToken(req.resourceToken)
          interval = 0
          break
        case 'approval':
          break
        default:
          throw new AgentError('unsupported_requirement', `requirement=${req.requirement} cannot be satisfied on a 202`, { url: info.location.href })
      }
    }
    // Unknown requirement on a 202: the agent MAY keep polling (§Requirement Values).
    if (polls >= ctx.maxPolls) throw new AgentError('too_many_rounds', `${ctx.party} was still pending after ${polls} polls`, { url: info.location.href })
    const waitMs = Math.max(interval * 1000, polls === 0 ? 0 : ctx.minPollIntervalMs)
    if (ctx.now() + waitMs > ctx.deadline) throw new AgentError('deadline_exceeded', `gave up waiting on ${info.location.href}: the deadline passes before the next poll`, { url: info.location.href })
    ctx.transport.step({ type: 'poll', url: info.location.href, attempt: polls + 1, waitMs })
    if (waitMs > 0) await ctx.sleep(waitMs, ctx.signal)
    const headers = new Headers({ prefer: preferWait(Math.max(0, Math.min(ctx.preferWaitSec, Math.floor((ctx.deadline - ctx.now()) / 1000)))) })
    const res = await ctx.transport.send({ method: 'GET', url: info.location, headers, signal: ctx.signal }, await ctx.present())
    ctx.observe?.(res)
    if (res.status === 202) {
      info = await deferredInfo(res, info.location, ctx)
      interval = info.retryAfter
      continue
    }
    if (res.status === 429) {
      // §Polling with GET: linear back-off, 5 s per slow_down.
      interval += SLOW_DOWN_STEP
      await res.body?.cancel()
      continue
    }
    if (res.status === 503) {
      interval = parseRetryAfter(res.headers.get('retry-after'), ctx.now())
      await res.body?.cancel()
      continue
    }
    return res
  }
}
