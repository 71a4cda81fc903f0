/**
 * The person's account page (main draft §Agent-Person Binding, §Token Revocation): connected
 * agents, remembered grants, requests waiting for a decision, and the audit trail.
 *
 * - `GET /account` — everything, with an audit filter form (`agent`, `mission`, `from`, `to` as
 *   `YYYY-MM-DD` in UTC, `to` inclusive; at most 50 events unless `limit` says otherwise, ≤ 1000).
 * - `GET /account/audit.json` — the same audit query as JSON, always limited to the person.
 * - `POST /account/agents/revoke` (`iss`, `sub`) and `POST /account/grants/{id}/revoke` — first a
 *   confirmation page with a second form (`confirm=yes`); only the confirmed POST revokes, then
 *   the per-recipient report of the revocation is shown.
 *
 * @module
 */

import type { Context, Hono } from 'hono'
import type { RevocationReport } from '../consent.js'
import type { AgentBinding, AuditEvent, AuditQuery, Grant, PendingRecord, RevocationOutcomeKind } from '../store/types.js'
import { csrfField, messagePage, requirePerson, sendPage, withConsentErrors, type WebContext, type WebEnv } from './context.js'
import { formatTime, html, safeImageUrl, shorten, type HtmlValue } from './html.js'
import { plainText } from './markdown.js'

/** Audit events shown by default. */
export const DEFAULT_AUDIT_LIMIT = 50
const MAX_AUDIT_LIMIT = 1000
const DAY_MS = 24 * 60 * 60 * 1000

/** The audit filter taken from the query string, and what was wrong with it. */
export interface AuditFilter {
  readonly agent?: string
  readonly mission?: string
  /** `YYYY-MM-DD`, as given. */
  readonly from?: string
  readonly to?: string
  readonly limit: number
  /** Problems with the query parameters (those parameters are ignored). */
  readonly problems: readonly string[]
}

function parseDay(value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
  if (m === null) return undefined
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
  return new Date(ms).toISOString().slice(0, 10) === value ? ms : undefined
}

/** Reads the audit filter from the query string. */
export function parseAuditFilter(c: Context): AuditFilter {
  const problems: string[] = []
  const text = (name: string, max: number): string | undefined => {
    const v = c.req.query(name)?.trim()
    if (v === undefined || v === '') return undefined
    if (v.length > max) {
      problems.push(`${name} is too long`)
      return undefined
    }
    return v
  }
  const day = (name: string): string | undefined => {
    const v = text(name, 10)
    if (v !== undefined && parseDay(v) === undefined) {
      problems.push(`${name} must be a date like 2026-01-31`)
      return undefined
    }
    return v
  }
  let limit = DEFAULT_AUDIT_LIMIT
  const limitText = text('limit', 5)
  if (limitText !== undefined) {
    const n = Number(limitText)
    if (Number.isInteger(n) && n >= 1 && n <= MAX_AUDIT_LIMIT) limit = n
    else problems.push(`limit must be between 1 and ${MAX_AUDIT_LIMIT}`)
  }
  const agent = text('agent', 300)
  const mission = text('mission', 100)
  const from = day('from')
  const to = day('to')
  return {
    ...(agent !== undefined ? { agent } : {}),
    ...(mission !== undefined ? { mission } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    limit,
    problems,
  }
}

/** The store query of a filter, always for `personId`. */
export function auditQuery(personId: string, filter: AuditFilter): AuditQuery {
  const from = filter.from !== undefined ? parseDay(filter.from) : undefined
  const to = filter.to !== undefined ? parseDay(filter.to) : undefined
  return {
    personId,
    limit: filter.limit,
    // The latest events first: what a person checks is what just happened.
    order: 'desc',
    ...(filter.agent !== undefined ? { agentSub: filter.agent } : {}),
    ...(filter.mission !== undefined ? { missionS256: filter.mission } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to: to + DAY_MS } : {}),
  }
}

function scopeLabel(scope: string): HtmlValue {
  return scope === '' ? html`<em>act as you at this resource</em>` : html`<code>${plainText(scope, 200)}</code>`
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || url
  } catch {
    return url
  }
}

function agentLine(b: AgentBinding): HtmlValue {
  const logoSrc = safeImageUrl(b.providerLogoUri)
  const platform = plainText(b.platform, 64)
  const device = plainText(b.device, 64)
  return html`<p>${logoSrc !== undefined && html`<img class="logo" src="${logoSrc}" alt="" width="40" height="40">`}<strong class="mono">${plainText(b.agentSub, 300)}</strong>${b.revokedAt !== undefined && html`<span class="tag off">revoked</span>`}</p>
<p class="muted">from ${b.providerName !== undefined ? html`<strong>${plainText(b.providerName, 120)}</strong> ` : ''}<span class="mono">${plainText(b.agentIss, 300)}</span></p>
${(platform !== '' || device !== '') && html`<p class="muted">${[platform, device].filter((s) => s !== '').join(' · ')} (reported by the agent)</p>`}
<p class="muted">Connected since ${formatTime(b.createdAt)}${b.revokedAt !== undefined && html` · revoked ${formatTime(b.revokedAt)}`}</p>`
}

function grantStatus(g: Grant, now: number): HtmlValue {
  if (g.revokedAt !== undefined) return html`<span class="tag off">revoked</span>`
  if (g.expiresAt !== undefined && g.expiresAt <= now) return html`<span class="tag old">expired</span>`
  return null
}

function grantLine(g: Grant, now: number): HtmlValue {
  return html`<p><strong>${hostOf(plainText(g.resource, 300))}</strong>${grantStatus(g, now)}<br>${scopeLabel(g.scope)}</p>
<p class="muted">Agent <span class="mono">${plainText(g.agentSub, 300)}</span>${g.missionS256 !== undefined && html` · mission <span class="mono" title="${g.missionS256}">${shorten(g.missionS256, 12)}</span>`}</p>
<p class="muted">Granted ${formatTime(g.createdAt)} · ${g.expiresAt !== undefined ? html`until ${formatTime(g.expiresAt)}` : 'no expiry'}${g.revokedAt !== undefined && html` · revoked ${formatTime(g.revokedAt)}`}</p>`
}

function waitingLine(rec: PendingRecord): HtmlValue {
  const resource = rec.view.resource
  const what =
    rec.kind === 'permission'
      ? 'asks permission for an action'
      : rec.kind === 'question'
        ? 'has a question'
        : rec.kind === 'relay'
          ? 'asks you to complete a step elsewhere'
          : `asks for ${rec.kind === 'person_token' ? 'your identity' : 'access'}${resource !== undefined ? ` at ${resource.name !== undefined ? plainText(resource.name, 80) : hostOf(resource.id)}` : ''}`
  return html`<p><a href="/interaction/${encodeURIComponent(rec.id)}"><strong class="mono">${plainText(rec.view.agent.sub, 300)}</strong> ${what}</a></p>
<p class="muted">Since ${formatTime(rec.createdAt)} · open until ${formatTime(rec.expiresAt)}</p>`
}

function auditLine(e: AuditEvent): HtmlValue {
  const bits: HtmlValue[] = []
  if (e.agentSub !== undefined) bits.push(html`agent <span class="mono">${plainText(e.agentSub, 300)}</span>`)
  if (e.parentAgent !== undefined) bits.push(html`via <span class="mono">${plainText(e.parentAgent, 300)}</span>`)
  if (e.resource !== undefined) bits.push(html`at <span class="mono">${plainText(e.resource, 300)}</span>`)
  if (e.scope !== undefined) bits.push(html`scope ${scopeLabel(e.scope)}`)
  if (e.missionS256 !== undefined) bits.push(html`mission <span class="mono" title="${e.missionS256}">${shorten(e.missionS256, 12)}</span>`)
  if (e.decision !== undefined) bits.push(html`decision <strong>${plainText(e.decision, 50)}</strong>`)
  // `audit.recorded` events are what an agent reported doing (main draft §Audit Endpoint).
  const byAgent = e.type === 'audit.recorded'
  return html`<p><strong>${plainText(e.type, 100)}</strong> <span class="muted">${formatTime(e.at)}${byAgent && ' · reported by the agent'}</span></p>
${bits.length > 0 && html`<p class="muted">${bits.map((b, i) => html`${i > 0 ? ' · ' : ''}${b}`)}</p>`}
${e.reason !== undefined && html`<p class="muted">Reason: ${plainText(e.reason, 500)}</p>`}`
}

const OUTCOME_TEXT: Readonly<Record<RevocationOutcomeKind, string>> = {
  revoked: 'Revoked at the resource.',
  revocation_unsupported: 'The resource does not support revocation: the token stays usable there until it expires.',
  revocation_unavailable: 'The resource could not be reached: the token may stay usable there until it expires.',
}

/** The page body reporting a revocation the person started, per resource. */
export function reportBody(title: string, report: RevocationReport): HtmlValue {
  return html`<h1>${title}</h1>
<div class="status ok" role="status"><p>${title}. ${report.tokens === 1 ? '1 token was' : `${report.tokens} tokens were`} revoked.</p></div>
${
  report.outcomes.length > 0
    ? html`<h2>At each resource</h2><ul class="plain card outcomes">${report.outcomes.map(
        (o) => html`<li data-outcome="${o.outcome}"><strong>${hostOf(plainText(o.recipient, 300))}</strong> <span class="muted mono">${shorten(plainText(o.jti, 100), 10)}</span><br>${OUTCOME_TEXT[o.outcome] ?? plainText(o.outcome, 50)}</li>`,
      )}</ul>`
    : html`<p class="muted">No resource had to be told.</p>`
}
<p><a class="button secondary" href="/account">Back to your account</a></p>`
}

/** Mounts `/account`, `/account/audit.json` and the revocation routes on `app`. */
export function mountDashboard(app: Hono<WebEnv>, ctx: WebContext): void {
  const guard = requirePerson(ctx)

  app.get('/', (c) => c.redirect('/account', 303))

  app.get('/account', guard, async (c) => {
    const person = c.get('person')
    const filter = parseAuditFilter(c)
    const [agents, grants, waiting, events] = await Promise.all([
      ctx.consent.agents(person.id),
      ctx.consent.grants(person.id),
      ctx.consent.waiting(person.id),
      ctx.store.queryAudit(auditQuery(person.id, filter)),
    ])
    const now = ctx.now()
    const csrf = csrfField(c)
    const search = new URL(c.req.url).search
    const filtered = filter.agent !== undefined || filter.mission !== undefined || filter.from !== undefined || filter.to !== undefined
    return sendPage(c, ctx, {
      title: 'Your account',
      body: html`<h1>Hello, ${person.displayName}</h1>
<section aria-labelledby="waiting-h">
<h2 id="waiting-h">Waiting for you</h2>
${waiting.length === 0 ? html`<p class="muted">Nothing is waiting for your decision.</p>` : html`<ul class="plain card waiting">${waiting.map((r) => html`<li>${waitingLine(r)}</li>`)}</ul>`}
<p><a href="/interaction">Enter a code from an agent</a></p>
</section>
<section aria-labelledby="agents-h">
<h2 id="agents-h">Your agents</h2>
${
  agents.length === 0
    ? html`<p class="muted">No agent is connected to your account.</p>`
    : html`<ul class="plain card agents">${agents.map(
        (b) => html`<li>${agentLine(b)}${
          b.revokedAt === undefined &&
          html`<form method="post" action="/account/agents/revoke">${csrf}<input type="hidden" name="iss" value="${b.agentIss}"><input type="hidden" name="sub" value="${b.agentSub}"><button class="danger" type="submit">Revoke this agent…</button></form>`
        }</li>`,
      )}</ul>`
}
</section>
<p><a href="/account/missions">Your agents’ missions</a></p>
<section aria-labelledby="grants-h">
<h2 id="grants-h">What you have allowed</h2>
${
  grants.length === 0
    ? html`<p class="muted">You have not allowed anything yet.</p>`
    : html`<ul class="plain card grants">${grants.map(
        (g) => html`<li data-grant="${g.id}">${grantLine(g, now)}${
          g.revokedAt === undefined &&
          (g.expiresAt === undefined || g.expiresAt > now) &&
          html`<form method="post" action="/account/grants/${encodeURIComponent(g.id)}/revoke">${csrf}<button class="danger" type="submit">Revoke…</button></form>`
        }</li>`,
      )}</ul>`
}
</section>
<section aria-labelledby="audit-h">
<h2 id="audit-h">History</h2>
<form method="get" action="/account" class="card audit-filter">
<label for="f-agent">Agent</label><input type="text" id="f-agent" name="agent" value="${filter.agent ?? ''}" maxlength="300">
<label for="f-mission">Mission</label><input type="text" id="f-mission" name="mission" value="${filter.mission ?? ''}" maxlength="100">
<label for="f-from">From (UTC)</label><input type="date" id="f-from" name="from" value="${filter.from ?? ''}">
<label for="f-to">To (UTC, inclusive)</label><input type="date" id="f-to" name="to" value="${filter.to ?? ''}">
<div class="actions"><button class="secondary" type="submit">Filter</button>${filtered && html`<a class="button secondary" href="/account">Clear</a>`}</div>
</form>
${filter.problems.length > 0 && html`<div class="error"><p>Ignored: ${filter.problems.join('; ')}.</p></div>`}
${events.length === 0 ? html`<p class="muted">No events${filtered ? ' match this filter' : ''}.</p>` : html`<ul class="plain card audit">${events.map((e) => html`<li>${auditLine(e)}</li>`)}</ul>`}
<p class="muted">Showing up to ${filter.limit} events. <a href="/account/audit.json${search}">Download as JSON</a></p>
</section>`,
    })
  })

  app.get('/account/audit.json', guard, async (c) => {
    const person = c.get('person')
    const filter = parseAuditFilter(c)
    if (filter.problems.length > 0) return c.json({ error: 'invalid_request', error_description: filter.problems.join('; ') }, 400)
    const events = await ctx.store.queryAudit(auditQuery(person.id, filter))
    return c.json({ events })
  })

  app.post('/account/agents/revoke', guard, async (c) => {
    const person = c.get('person')
    const form = c.get('form')
    const iss = form['iss'] ?? ''
    const sub = form['sub'] ?? ''
    if (iss === '' || sub === '') return messagePage(c, ctx, 400, 'Which agent?', 'The form did not say which agent to revoke.')
    return withConsentErrors(c, ctx, async () => {
      if (form['confirm'] === 'yes') {
        const report = await ctx.consent.revokeAgent(person.id, iss, sub)
        return sendPage(c, ctx, { title: 'Agent revoked', body: reportBody('Agent revoked', report) })
      }
      const binding = (await ctx.consent.agents(person.id)).find((b) => b.agentIss === iss && b.agentSub === sub)
      if (binding === undefined) return messagePage(c, ctx, 404, 'Agent not found', 'This agent is not connected to your account.')
      if (binding.revokedAt !== undefined) return messagePage(c, ctx, 409, 'Already revoked', 'This agent was already revoked.')
      return sendPage(c, ctx, {
        title: 'Revoke this agent?',
        body: html`<h1>Revoke this agent?</h1>
<div class="card">${agentLine(binding)}</div>
<div class="note"><p>It will no longer be able to act for you. Everything you allowed it is withdrawn, and every token it (or an agent working for it) holds is revoked at its resources.</p></div>
<form method="post" action="/account/agents/revoke" class="card">
${csrfField(c)}
<input type="hidden" name="iss" value="${iss}"><input type="hidden" name="sub" value="${sub}"><input type="hidden" name="confirm" value="yes">
<div class="actions"><button class="danger" type="submit">Yes, revoke it</button><a class="button secondary" href="/account">Cancel</a></div>
</form>`,
      })
    })
  })

  app.post('/account/grants/:id/revoke', guard, async (c) => {
    const person = c.get('person')
    const form = c.get('form')
    const id = c.req.param('id')
    return withConsentErrors(c, ctx, async () => {
      if (form['confirm'] === 'yes') {
        const report = await ctx.consent.revokeGrant(person.id, id)
        return sendPage(c, ctx, { title: 'Access revoked', body: reportBody('Access revoked', report) })
      }
      const grant = (await ctx.consent.grants(person.id)).find((g) => g.id === id)
      if (grant === undefined) return messagePage(c, ctx, 404, 'Not found', 'There is no such grant on your account.')
      if (grant.revokedAt !== undefined) return messagePage(c, ctx, 409, 'Already revoked', 'This was already revoked.')
      return sendPage(c, ctx, {
        title: 'Revoke this access?',
        body: html`<h1>Revoke this access?</h1>
<div class="card">${grantLine(grant, ctx.now())}</div>
<div class="note"><p>The agent loses this permission, and the tokens issued under it are revoked at the resource.</p></div>
<form method="post" action="/account/grants/${encodeURIComponent(id)}/revoke" class="card">
${csrfField(c)}
<input type="hidden" name="confirm" value="yes">
<div class="actions"><button class="danger" type="submit">Yes, revoke it</button><a class="button secondary" href="/account">Cancel</a></div>
</form>`,
      })
    })
  })
}
