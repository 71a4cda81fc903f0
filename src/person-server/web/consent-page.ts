/**
 * The consent page (main draft §User Interaction, §Consent Presentation, §Clarification Chat;
 * CHECKLIST PS-CON-01..05, PS-TOK-08/09).
 *
 * - `GET /interaction?code=XXXX-XXXX` — login required. The code (Crockford base32, compared
 *   normalised) only finds the request; the person's session is what authorises the decision.
 *   The request is opened for the person and the browser sent (303) to `/interaction/{id}`, so
 *   the code leaves the address bar. Without a code: a form to type it. Failed code look-ups are
 *   throttled per person.
 * - `GET /interaction/{id}` — the request: who asks (the agent, its provider, a parent agent), for
 *   whom (the logged-in person), what — and, kept visibly apart, what the **resource** says the
 *   access means (its name, description, logo, scope descriptions, per-call details) and what the
 *   **agent** says (justification, platform, device, clarification answers, permission and
 *   question text). Agent text is sanitised Markdown and labelled as the agent's claim.
 * - `POST /interaction/{id}` with `action=approve|deny|ask|answer` (and the CSRF token) — calls
 *   the {@link ConsentService} and sends the browser back (303) to the page, which then shows the
 *   outcome.
 *
 * A refused action ({@link ConsentError}) becomes a friendly page: 404 `not_found`, 403
 * `not_yours`, 409 `closed`, 429 `clarification_limit`, 400 `bad_input`.
 *
 * @module
 */

import type { Context, Hono } from 'hono'
import { normalizeInteractionCode } from '../../protocol/interaction-code.js'
import { ConsentError, type ConsentDecision, type RememberChoice } from '../consent.js'
import type { AgentBinding, ClarificationTurn, ConsentView, PendingRecord, PendingState } from '../store/types.js'
import { csrfField, messagePage, requirePerson, sendPage, withConsentErrors, type WebContext, type WebEnv } from './context.js'
import { FailureCounter } from './login.js'
import { formatTime, html, safeImageUrl, safeLinkUrl, shorten, type Html, type HtmlValue } from './html.js'
import { multilineText, plainText, renderMarkdown } from './markdown.js'
import { missionChoicesFromForm, missionDecisionFields, missionHeadline, renderMissionContext, renderMissionRequest } from './missions-page.js'

/** The clarification rounds a person may ask (main draft §Clarification Limits recommends five). */
export const CLARIFICATION_LIMIT = 5
/** Longest question to the agent, characters. */
export const MAX_QUESTION_LENGTH = 2000
/** Longest answer to an agent's question, characters. */
export const MAX_ANSWER_LENGTH = 4000

const REMEMBER_CHOICES: readonly { readonly value: RememberChoice; readonly label: string }[] = [
  { value: 'once', label: 'Just this once' },
  { value: 'day', label: 'For 24 hours' },
  { value: 'month', label: 'For 30 days' },
  { value: 'always', label: 'Until I revoke it' },
]

/** Descriptions of the OpenID identity scopes, given by the PS itself (not by the resource). */
const IDENTITY_SCOPES: Readonly<Record<string, string>> = {
  openid: 'Know that it is you (through an identifier made only for this resource)',
  profile: 'Your name and basic profile',
  email: 'Your email address',
  address: 'Your postal address',
  phone: 'Your phone number',
  tenant: 'Your organisation',
  groups: 'The groups you belong to',
  roles: 'Your roles',
}

const OPEN_STATES: readonly PendingState[] = ['pending', 'interacting', 'clarification']
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,200}$/

function own(record: Readonly<Record<string, unknown>> | undefined, key: string): unknown {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined
}

function hostOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  try {
    return new URL(url).host || undefined
  } catch {
    return undefined
  }
}

/** How an interaction code is shown: groups of four. */
function displayCode(code: string): string {
  return (code.match(/.{1,4}/g) ?? [code]).join('-')
}

function logo(url: string | undefined, alt: string): HtmlValue {
  const src = safeImageUrl(url)
  return src !== undefined && html`<img class="logo" src="${src}" alt="${alt}" width="40" height="40">`
}

/** A value from a JSON object, for a key/value table. */
function formatValue(value: unknown): HtmlValue {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (typeof value === 'number') return Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: 20 }) : String(value)
  if (typeof value === 'string') return html`<span class="pre">${multilineText(value, 1000)}</span>`
  let json: string
  try {
    json = JSON.stringify(value, null, 2) ?? ''
  } catch {
    json = String(value)
  }
  return html`<pre>${multilineText(json, 1000)}</pre>`
}

function keyValueTable(object: Readonly<Record<string, unknown>>, skip: readonly string[] = []): HtmlValue {
  const rows = Object.entries(object)
    .filter(([k]) => !skip.includes(k))
    .slice(0, 50)
  if (rows.length === 0) return null
  return html`<table class="kv"><tbody>${rows.map(([k, v]) => html`<tr><th scope="row">${plainText(k.replace(/_/g, ' '), 100)}</th><td>${formatValue(v)}</td></tr>`)}</tbody></table>`
}

function formatAmount(amount: unknown, currency: unknown): string | undefined {
  if (typeof amount !== 'number' || !Number.isFinite(amount)) return undefined
  if (typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency)) {
    try {
      const whole = Number.isInteger(amount)
      return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase(), ...(whole ? { minimumFractionDigits: 0, maximumFractionDigits: 0 } : {}) }).format(amount)
    } catch {
      // An unknown currency code: fall through to the plain number.
    }
  }
  return amount.toLocaleString('en-US', { maximumFractionDigits: 20 })
}

/** The per-call details (R3 `display` and similar), resource-asserted, shown prominently. */
function renderDetails(details: Readonly<Record<string, unknown>>): Html {
  const summary = own(details, 'summary')
  const detail = own(details, 'detail')
  const amount = formatAmount(own(details, 'amount'), own(details, 'currency'))
  const labelled: readonly [string, string, boolean][] = [
    ['implications', 'What happens', false],
    ['data_accessed', 'Data it can see', false],
    ['irreversible', 'Cannot be undone', true],
  ]
  const skip = ['summary', 'detail', 'implications', 'data_accessed', 'irreversible', ...(amount !== undefined ? ['amount', 'currency'] : [])]
  return html`<div class="details" data-source="resource">
<h3>This request in detail</h3>
${typeof summary === 'string' && html`<p class="summary">${plainText(summary, 500)}</p>`}
${amount !== undefined && html`<p>Amount: <span class="big">${amount}</span></p>`}
${labelled.map(([key, label, warn]) => {
  const value = own(details, key)
  return typeof value === 'string' && html`<p${warn ? html` class="warn"` : ''}><strong>${label}:</strong> ${plainText(value, 1000)}</p>`
})}
${keyValueTable(details, skip)}
${typeof detail === 'string' && renderMarkdown(detail)}
</div>`
}

function renderScopes(view: ConsentView, psName: string): HtmlValue {
  const scopes = view.scopes ?? []
  if (scopes.length === 0) return null
  const described = view.resource?.scopeDescriptions
  const fresh = view.newScopes
  const items = scopes.map((scope) => {
    const fromResource = own(described, scope)
    const identity = Object.hasOwn(IDENTITY_SCOPES, scope) ? IDENTITY_SCOPES[scope] : undefined
    const isNew = fresh === undefined || fresh.includes(scope)
    const tag = fresh === undefined ? null : isNew ? html`<span class="tag new">new</span>` : html`<span class="tag old">already granted</span>`
    const text =
      typeof fromResource === 'string'
        ? html`${plainText(fromResource, 500)}`
        : identity !== undefined
          ? html`${identity} <span class="muted">(described by ${psName})</span>`
          : html`<span class="warn">The resource gives no description of this scope.</span>`
    return html`<li data-scope="${scope}"${isNew ? html` data-new="true"` : ''}><code>${plainText(scope, 200)}</code>${tag}<br>${text}</li>`
  })
  const anyOld = fresh !== undefined && scopes.some((s) => !fresh.includes(s))
  return html`<h3>Permissions asked for</h3>
${anyOld && html`<p class="muted">You granted some of these before; only the ones marked <strong>new</strong> are being asked now.</p>`}
<ul class="plain scopes">${items}</ul>`
}

/** The resource-asserted box (its metadata, scopes, account, per-call details). */
function renderResourceBox(view: ConsentView, psName: string): HtmlValue {
  const r = view.resource
  const hasContent = r !== undefined || (view.scopes?.length ?? 0) > 0 || view.details !== undefined || view.account !== undefined
  if (!hasContent) return null
  const name = r?.name !== undefined ? plainText(r.name, 120) : undefined
  const host = hostOf(r?.id)
  return html`<section class="box resource-box" data-source="resource" aria-label="From the resource">
<span class="label">From the resource${host !== undefined && html` ${host}`} — what it says this access is</span>
${r !== undefined && html`<p>${logo(r.logoUri, name ?? 'Resource logo')}<strong>${name ?? host ?? r.id}</strong><br><span class="muted mono">${plainText(r.id, 300)}</span></p>`}
${r?.description !== undefined && renderMarkdown(r.description, { maxLength: 2000 })}
${r?.accessMode !== undefined && html`<p class="muted">Access mode: ${plainText(r.accessMode, 100)}</p>`}
${view.account !== undefined && html`<p><strong>Account:</strong> <span class="mono">${plainText(view.account, 300)}</span></p>`}
${view.details !== undefined && renderDetails(view.details)}
${renderScopes(view, psName)}
</section>`
}

function renderParameters(parameters: unknown): HtmlValue {
  if (parameters === undefined) return null
  if (parameters !== null && typeof parameters === 'object' && !Array.isArray(parameters)) {
    return html`<h3>Parameters</h3>${keyValueTable(parameters as Record<string, unknown>) ?? html`<p class="muted">(none)</p>`}`
  }
  return html`<h3>Parameters</h3>${formatValue(parameters)}`
}

function renderRelay(relay: NonNullable<ConsentView['relay']>): HtmlValue {
  const base = safeLinkUrl(relay.url)
  let target: string | undefined
  if (base !== undefined && base.startsWith('https:')) {
    const url = new URL(base)
    if (relay.code !== undefined) url.searchParams.set('code', relay.code)
    target = url.href
  }
  const what = relay.type === 'payment' ? 'approve a payment' : 'complete a step'
  return html`<p>The agent asks you to ${what} at another site.</p>
${relay.description !== undefined && renderMarkdown(relay.description)}
${relay.code !== undefined && html`<p>Code: <span class="big mono">${plainText(relay.code, 64)}</span></p>`}
${
  target !== undefined
    ? html`<p>This link opens <strong>${hostOf(target)}</strong>:</p><p><a class="button secondary" href="${target}" rel="noopener noreferrer" target="_blank">Open ${hostOf(target)}</a></p><p class="muted mono">${plainText(target, 500)}</p>`
    : relay.url !== undefined && html`<p class="warn">The address given is not a secure https link and is not offered: <span class="mono">${plainText(relay.url, 500)}</span></p>`
}`
}

/** The agent-asserted box: everything the agent says, attributed to it. */
function renderAgentBox(view: ConsentView): HtmlValue {
  const parts: HtmlValue[] = []
  if (view.justification !== undefined) parts.push(html`<h3>Why, in the agent's words</h3><div class="said">${renderMarkdown(view.justification)}</div>`)
  if (view.permission !== undefined) {
    parts.push(html`<h3>Action</h3><p><code>${plainText(view.permission.action, 200)}</code></p>
${view.permission.description !== undefined && html`<div class="said">${renderMarkdown(view.permission.description)}</div>`}
${renderParameters(view.permission.parameters)}`)
  }
  if (view.question !== undefined) parts.push(html`<h3>The agent's question</h3><div class="said">${renderMarkdown(view.question)}</div>`)
  if (view.relay !== undefined) parts.push(renderRelay(view.relay))
  const platform = plainText(view.agent.platform, 64)
  const device = plainText(view.agent.device, 64)
  if (platform !== '' || device !== '') {
    parts.push(html`<p class="muted">${platform !== '' && html`Platform: <strong>${platform}</strong>`}${platform !== '' && device !== '' && html`<br>`}${device !== '' && html`Device: <strong>${device}</strong>`}<br>(reported by the agent, not verified)</p>`)
  }
  if (parts.length === 0) return null
  return html`<section class="box agent-box" data-source="agent" aria-label="Said by the agent">
<span class="label">Said by the agent — not verified</span>
${parts}
</section>`
}

function renderChat(chat: readonly ClarificationTurn[]): HtmlValue {
  if (chat.length === 0) return null
  return html`<h2>Your questions to the agent</h2>
<ol class="plain chat">${chat.map((turn) =>
    turn.from === 'person'
      ? html`<li class="card turn-person"><span class="muted">You asked · ${formatTime(turn.at)}</span>${renderMarkdown(turn.text, { maxLength: MAX_QUESTION_LENGTH })}</li>`
      : html`<li class="box agent-box turn-agent" data-source="agent"><span class="label">The agent answered — not verified · ${formatTime(turn.at)}</span><div class="said">${renderMarkdown(turn.text)}</div></li>`,
  )}</ol>`
}

const TERMINAL: Readonly<Record<string, { readonly text: string; readonly tone: 'ok' | 'bad' | 'info'; readonly more?: string }>> = {
  granted: { text: 'Approved. You can close this page.', tone: 'ok' },
  denied: { text: 'Denied.', tone: 'bad', more: 'The agent has been told. You can close this page.' },
  cancelled: { text: 'Withdrawn by the agent.', tone: 'info', more: 'The agent no longer asks for this. Nothing was granted.' },
  expired: { text: 'Expired', tone: 'info', more: 'This request timed out before a decision. Nothing was granted.' },
  abandoned: { text: 'Abandoned', tone: 'info', more: 'This request was left unfinished. Nothing was granted.' },
  revoked: { text: 'Ended', tone: 'info', more: 'The access this request was for has been revoked.' },
  failed: { text: 'Something went wrong', tone: 'bad', more: 'The request could not be completed. Nothing was granted.' },
}

function headline(view: ConsentView): string {
  const target = (view.resource?.name !== undefined ? plainText(view.resource.name, 80) : undefined) ?? hostOf(view.resource?.id) ?? 'a resource'
  switch (view.kind) {
    case 'person_token':
      return `An agent asks to act as you at ${target}`
    case 'auth_token':
      return `An agent asks for access to ${target}`
    case 'permission':
      return 'An agent asks for permission to take an action'
    case 'question':
      return 'An agent has a question for you'
    case 'relay':
      return view.relay?.type === 'payment' ? 'An agent asks you to approve a payment' : 'An agent asks you to complete a step at another site'
    case 'mission':
      return missionHeadline(view)
    default:
      return 'An agent is asking you'
  }
}

/** What the page shows about one request. */
export interface RenderRequestOptions {
  /** The person has no live binding to this agent yet (first request: enrolment). */
  readonly newAgent: boolean
  /** Forms are shown only when the request is open. */
  readonly csrf: HtmlValue
}

function renderRequest(rec: PendingRecord, person: { readonly displayName: string; readonly username: string }, psName: string, options: RenderRequestOptions): Html {
  const { view } = rec
  const open = OPEN_STATES.includes(rec.state)
  const chat = rec.chat ?? []
  const asked = chat.filter((t) => t.from === 'person').length
  const remaining = Math.max(0, CLARIFICATION_LIMIT - asked)
  const waiting = rec.state === 'clarification' || chat[chat.length - 1]?.from === 'person'
  const terminal = open ? undefined : (TERMINAL[rec.state] ?? { text: rec.state, tone: 'info' as const })
  const grantKinds = (view.kind === 'person_token' || view.kind === 'auth_token' || view.kind === 'permission') && view.perCall !== true
  const agentName = plainText(view.agent.sub, 300)
  const providerName = view.agent.providerName !== undefined ? plainText(view.agent.providerName, 120) : undefined
  const action = `/interaction/${encodeURIComponent(rec.id)}`

  const status =
    terminal !== undefined
      ? html`<div class="status ${terminal.tone}" role="status" data-state="${rec.state}"><p>${view.kind === 'question' && rec.state === 'granted' ? 'Answer sent. You can close this page.' : terminal.text}</p>${terminal.more !== undefined && html`<p class="muted">${terminal.more}</p>`}</div>`
      : waiting
        ? html`<div class="note" role="status" data-state="waiting"><p><strong>Waiting for the agent to answer your question.</strong> Reload this page to see its answer. You can still approve or deny at any time.</p><p><a class="button secondary" href="${action}">Check for an answer</a></p></div>`
        : null

  const who = html`<section class="box verified" data-source="verified" aria-label="Who is asking">
<span class="label">Who is asking — checked by ${psName}</span>
<p>${logo(view.agent.providerLogoUri, providerName ?? 'Agent provider logo')}Agent <strong class="mono">${agentName}</strong>${options.newAgent && open && html` <span class="tag new">new agent</span>`}</p>
<p class="muted">from ${providerName !== undefined ? html`<strong>${providerName}</strong> (<span class="mono">${plainText(view.agent.iss, 300)}</span>)` : html`<span class="mono">${plainText(view.agent.iss, 300)}</span>`}</p>
${view.agent.parentAgent !== undefined && html`<p>Sub-agent working for <strong class="mono">${plainText(view.agent.parentAgent, 300)}</strong></p>`}
<p>On behalf of <strong>${person.displayName}</strong> (you, ${person.username})</p>
${view.missionS256 !== undefined && html`<p>Mission <span class="mono" title="${view.missionS256}">${shorten(plainText(view.missionS256, 100), 12)}</span></p>`}
${rec.code !== undefined && open && html`<p class="muted">Code <span class="mono">${displayCode(rec.code)}</span> — check it matches the one the agent showed you.</p>`}
${open && html`<p class="muted">Open until ${formatTime(rec.expiresAt)}</p>`}
</section>`

  const enrol =
    options.newAgent && open
      ? html`<div class="note" data-new-agent="true"><p><strong>This agent has not acted for you before.</strong> If you approve, it is linked to your account and acts for you alone until you revoke it. Only approve if you started it.</p></div>`
      : null

  const personTokenNote =
    view.kind === 'person_token' && (view.scopes?.length ?? 0) === 0
      ? html`<p class="card">If you approve, this agent can act <strong>as you</strong> at this resource: the resource will recognise you (through an identifier made only for it) and may serve the agent on that alone.</p>`
      : null

  const noResourceNote =
    view.resource === undefined && (view.kind === 'permission' || view.kind === 'question' || view.kind === 'relay')
      ? html`<p class="muted">No resource describes this request: everything below comes from the agent.</p>`
      : null

  let actions: HtmlValue = null
  if (open && view.kind === 'question') {
    actions = html`<h2>Your answer</h2>
<form method="post" action="${action}" class="card">
${options.csrf}
<label for="answer">Answer the agent</label>
<textarea id="answer" name="answer" maxlength="${MAX_ANSWER_LENGTH}" required></textarea>
<div class="actions">
<button class="primary" type="submit" name="action" value="answer">Send answer</button>
<button class="danger" type="submit" name="action" value="deny" formnovalidate>Decline to answer</button>
</div>
</form>`
  } else if (open) {
    actions = html`<h2>Your decision</h2>
<form method="post" action="${action}" class="card decision">
${options.csrf}
<input type="hidden" name="seen" value="${String(rec.updatedAt)}">
${view.perCall === true && html`<p class="muted" data-per-call="true">Approving allows this one call, with exactly the details above. Nothing is remembered for later calls.</p>`}
${
  grantKinds &&
  html`<fieldset><legend>Remember this approval</legend>
${REMEMBER_CHOICES.map((choice) => html`<label><input type="radio" name="remember" value="${choice.value}"${choice.value === 'once' ? html` checked` : ''}> ${choice.label}</label>`)}
</fieldset>`
}
${open && missionDecisionFields(view)}
<div class="actions">
<button class="primary" type="submit" name="action" value="approve">Approve</button>
<button class="danger" type="submit" name="action" value="deny">Deny</button>
</div>
</form>`
  }

  let askForm: HtmlValue = null
  if (open && view.kind !== 'question' && view.kind !== 'relay') {
    askForm = waiting
      ? null
      : remaining === 0
        ? html`<p class="muted">You have asked the agent ${CLARIFICATION_LIMIT} questions, the most allowed.</p>`
        : html`<h2>Ask the agent</h2>
<form method="post" action="${action}" class="card ask">
${options.csrf}
<label for="question">Not sure? Ask the agent a question</label>
<textarea id="question" name="question" maxlength="${MAX_QUESTION_LENGTH}" required></textarea>
<p class="muted">${remaining} of ${CLARIFICATION_LIMIT} questions left. The agent's answer is its own claim.</p>
<div class="actions"><button class="secondary" type="submit" name="action" value="ask">Ask the agent</button></div>
</form>`
  }

  return html`<h1>${headline(view)}</h1>
${status}
${enrol}
${who}
${personTokenNote}
${noResourceNote}
${renderResourceBox(view, psName)}
${renderMissionContext(view)}
${renderMissionRequest(view)}
${renderAgentBox(view)}
${renderChat(chat)}
${actions}
${askForm}`
}

/** Options of {@link mountConsentPages}. */
export interface ConsentPageOptions {
  /** Failed code look-ups allowed per person per window. Default 10. */
  readonly codeAttempts?: number
  /** The code look-up window, milliseconds. Default 10 minutes. */
  readonly codeWindowMs?: number
}

/** Mounts `/interaction` and `/interaction/{id}` (GET, POST) on `app`. */
export function mountConsentPages(app: Hono<WebEnv>, ctx: WebContext, options: ConsentPageOptions = {}): void {
  const codeFailures = new FailureCounter(options.codeAttempts ?? 10, options.codeWindowMs ?? 10 * 60_000, ctx.now)
  const guard = requirePerson(ctx)

  const codeForm = (c: Context<WebEnv>, status: number, error?: string, value = ''): Response =>
    sendPage(c, ctx, {
      status,
      title: 'Enter your code',
      body: html`<h1>Enter the code</h1>
${error !== undefined && html`<div class="error" role="alert"><p>${error}</p></div>`}
<form method="get" action="/interaction" class="card">
<label for="code">The code your agent showed you</label>
<input type="text" id="code" name="code" value="${value}" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="64" placeholder="XXXX-XXXX" required>
<div class="actions"><button class="primary" type="submit">Continue</button></div>
</form>`,
    })

  app.get('/interaction', guard, async (c) => {
    const raw = c.req.query('code')
    if (raw === undefined || raw.trim() === '') return codeForm(c, 200)
    const personId = c.get('person').id
    const shown = plainText(raw, 64)
    if (codeFailures.blocked(personId)) {
      c.header('Retry-After', '600')
      return messagePage(c, ctx, 429, 'Too many attempts', 'Too many codes did not match. Wait a few minutes, then try again.')
    }
    const code = raw.length <= 64 ? normalizeInteractionCode(raw.trim()) : undefined
    if (code === undefined || code.length < 8) {
      codeFailures.fail(personId)
      return codeForm(c, 400, 'That is not a valid code. Codes use letters and digits, like K7QD-2M9X.', shown)
    }
    return withConsentErrors(c, ctx, async () => {
      const found = await ctx.consent.findByCode(code)
      if (found === undefined) {
        codeFailures.fail(personId)
        return codeForm(c, 404, 'No open request has this code. It may have been used already, or it has expired.', shown)
      }
      const opened = await ctx.consent.open(found.id, personId)
      return c.redirect(`/interaction/${encodeURIComponent(opened.id)}`, 303)
    })
  })

  app.get('/interaction/:id', guard, async (c) => {
    const id = c.req.param('id')
    if (!ID_PATTERN.test(id)) return withConsentErrors(c, ctx, () => Promise.reject(new ConsentError('not_found', 'No such request.')))
    const person = c.get('person')
    return withConsentErrors(c, ctx, async () => {
      const rec = await ctx.consent.get(id, person.id)
      let bindings: AgentBinding[] = []
      if (OPEN_STATES.includes(rec.state)) bindings = await ctx.consent.agents(person.id)
      const newAgent = !bindings.some((b) => b.agentIss === rec.view.agent.iss && b.agentSub === rec.view.agent.sub && b.revokedAt === undefined)
      return sendPage(c, ctx, {
        title: headline(rec.view),
        body: renderRequest(rec, person, ctx.psName, { newAgent, csrf: csrfField(c) }),
      })
    })
  })

  app.post('/interaction/:id', guard, async (c) => {
    const id = c.req.param('id')
    const back = `/interaction/${encodeURIComponent(id)}`
    if (!ID_PATTERN.test(id)) return withConsentErrors(c, ctx, () => Promise.reject(new ConsentError('not_found', 'No such request.')))
    const personId = c.get('person').id
    const form = c.get('form')
    const bad = (message: string): Promise<Response> => Promise.reject(new ConsentError('bad_input', message))
    return withConsentErrors(
      c,
      ctx,
      async () => {
        switch (form['action']) {
          case 'approve': {
            const remember = form['remember']
            if (remember !== undefined && !REMEMBER_CHOICES.some((r) => r.value === remember)) return bad('Choose how long to remember the approval.')
            // The version the person saw: an approval of a request the agent changed since is refused.
            const seen = Number(form['seen'])
            const mission = missionChoicesFromForm(form)
            const decision: ConsentDecision = { approve: true, ...(Number.isSafeInteger(seen) ? { seen } : {}), ...(remember !== undefined ? { remember: remember as RememberChoice } : {}), ...(mission === undefined ? {} : { mission }) }
            await ctx.consent.decide(id, personId, decision)
            break
          }
          case 'deny':
            await ctx.consent.decide(id, personId, { approve: false })
            break
          case 'ask': {
            const question = (form['question'] ?? '').trim()
            if (question === '') return bad('Type a question first.')
            if (question.length > MAX_QUESTION_LENGTH) return bad(`A question has at most ${MAX_QUESTION_LENGTH} characters.`)
            await ctx.consent.ask(id, personId, question)
            break
          }
          case 'answer': {
            const answer = (form['answer'] ?? '').trim()
            if (answer === '') return bad('Type an answer first.')
            if (answer.length > MAX_ANSWER_LENGTH) return bad(`An answer has at most ${MAX_ANSWER_LENGTH} characters.`)
            await ctx.consent.answer(id, personId, answer)
            break
          }
          default:
            return bad('Unknown action.')
        }
        return c.redirect(back, 303)
      },
      back,
    )
  })
}
