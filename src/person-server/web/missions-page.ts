/**
 * Missions on the person's pages (main draft §Mission, §Mission Log, §Mission Management,
 * §Incremental Consent; CHECKLIST MIS-05, MIS-09, MIS-LOG-01, PS-CON-06, REV-12).
 *
 * - `GET /account/missions` — the person's missions: the description's first line, the state and
 *   why it ended.
 * - `GET /account/missions/{s256}` — one mission: the blob exactly as stored and hashed, decoded
 *   for reading; every accepted update; the ordered mission log. `{s256}.json` answers the same
 *   as JSON (session-authenticated, like `/account/audit.json`).
 * - `POST /account/missions/{s256}/revoke` — a confirmation page first, then (`confirm=yes`) the
 *   revocation and its per-resource report.
 *
 * The consent page uses the renderers here for mission requests: the proposal (agent-asserted,
 * sanitised Markdown) with the person's edits (description, tools, resources, expiry), and — for
 * updates, completions and token requests under a mission — the mission as approved plus its
 * accepted updates.
 *
 * @module
 */

import type { Hono } from 'hono'
import { encodeBase64url } from '../../lib/base64url.js'
import { ConsentError, type MissionChoices, type MissionExpiry } from '../consent.js'
import type { MissionDetail, MissionLogItem, MissionService } from '../missions.js'
import type { ConsentView, MissionRecord } from '../store/types.js'
import { csrfField, messagePage, requirePerson, sendPage, withConsentErrors, type WebContext, type WebEnv } from './context.js'
import { reportBody } from './dashboard.js'
import { formatTime, html, shorten, type HtmlValue } from './html.js'
import { multilineText, plainText, renderMarkdown } from './markdown.js'

const S256 = /^[A-Za-z0-9_-]{43}$/
const EXPIRY_CHOICES: readonly { readonly value: MissionExpiry; readonly label: string }[] = [
  { value: 'none', label: 'Until it is completed or I revoke it' },
  { value: 'day', label: 'For 24 hours' },
  { value: 'month', label: 'For 30 days' },
]
/** Longest description the person may write when editing a proposal (characters). */
const MAX_EDITED_DESCRIPTION = 16_000

/** The first line of a Markdown description, without heading marks, for lists. */
function firstLine(description: unknown): string {
  const text = typeof description === 'string' ? description : ''
  const line = text.split('\n').map((l) => l.replace(/^\s*#+\s*/, '').trim()).find((l) => l !== '') ?? ''
  return plainText(line, 120)
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || url
  } catch {
    return url
  }
}

function statusTag(m: MissionRecord, now: number): HtmlValue {
  if (m.status === 'active' && (m.expiresAt === undefined || m.expiresAt > now)) return html`<span class="tag new" data-status="active">active</span>`
  const reason = m.terminationReason ?? 'expired'
  return html`<span class="tag off" data-status="terminated">terminated</span> <span class="muted" data-reason="${reason}">(${plainText(reason, 50)})</span>`
}

/** The mission's structured limits (e.g. an amount ceiling), when it has any. */
function limitsList(limits: unknown): HtmlValue {
  if (typeof limits !== 'object' || limits === null || Object.keys(limits).length === 0) return null
  return html`<h3>Limits</h3><ul>${Object.entries(limits as Record<string, { max?: unknown; currency?: unknown }>).map(([name, l]) => html`<li><code>${plainText(name, 64)}</code> at most ${plainText(String(l?.max), 32)}${typeof l?.currency === 'string' ? html` ${plainText(l.currency, 3)}` : null}</li>`)}</ul>`
}

function toolsList(tools: unknown): HtmlValue {
  if (!Array.isArray(tools) || tools.length === 0) return html`<p class="muted">None.</p>`
  return html`<ul>${tools.map((t: { name?: unknown; description?: unknown }) => html`<li><code>${plainText(t?.name, 128)}</code> — ${plainText(t?.description, 1000)}</li>`)}</ul>`
}

function resourcesList(resources: unknown): HtmlValue {
  if (!Array.isArray(resources) || resources.length === 0) return html`<p class="muted">None.</p>`
  return html`<ul>${resources.map((r: unknown) => html`<li><strong>${hostOf(plainText(r, 300))}</strong> <span class="muted mono">${plainText(r, 300)}</span></li>`)}</ul>`
}

/** The mission as approved plus its accepted updates (PS-CON-06): shown for any request under a mission. */
export function renderMissionContext(view: ConsentView): HtmlValue {
  if (view.mission === undefined) return null
  const { description, updates } = view.mission
  return html`<section class="box verified" data-source="mission" aria-label="The mission">
<span class="label">The mission this is part of — as you approved it</span>
${view.missionS256 !== undefined && html`<p class="muted">Mission <span class="mono" title="${view.missionS256}">${shorten(plainText(view.missionS256, 100), 12)}</span></p>`}
<div class="mission-description">${renderMarkdown(description, { maxLength: MAX_EDITED_DESCRIPTION })}</div>
${
  updates.length > 0 &&
  html`<h3>Updates accepted since</h3><ol class="mission-updates">${updates.map((u) => html`<li><div class="said">${renderMarkdown(u, { maxLength: MAX_EDITED_DESCRIPTION })}</div></li>`)}</ol>`
}
</section>`
}

/** The agent-asserted part of a mission request: the proposal, the update, or the completion summary. */
export function renderMissionRequest(view: ConsentView): HtmlValue {
  const r = view.missionRequest
  if (r === undefined) return null
  const said = (title: string, text: string | undefined): HtmlValue => html`<h3>${title}</h3><div class="said">${renderMarkdown(text, { maxLength: MAX_EDITED_DESCRIPTION })}</div>`
  const body =
    r.action === 'propose'
      ? html`${said('What the agent proposes to do', r.description)}<h3>Tools it wants to use</h3>${toolsList(r.tools)}<h3>Resources it expects to use</h3>${resourcesList(r.resources)}${limitsList(r.limits)}`
      : r.action === 'update'
        ? said('What changed, in the agent’s words', r.description)
        : said('What the agent says it accomplished', r.summary)
  return html`<section class="box agent-box" data-source="agent" data-mission-action="${r.action}" aria-label="Said by the agent">
<span class="label">Said by the agent — not verified</span>
${body}
</section>`
}

/** The headline of a mission request. */
export function missionHeadline(view: ConsentView): string {
  switch (view.missionRequest?.action) {
    case 'update':
      return 'An agent reports a change to its mission'
    case 'completion':
      return 'An agent says its mission is complete'
    default:
      return 'An agent proposes a mission'
  }
}

/**
 * The approval form's fields for a proposal: the description to edit, the tools and resources to
 * keep (all checked), and the expiry. Nothing for updates and completions.
 */
export function missionDecisionFields(view: ConsentView): HtmlValue {
  const r = view.missionRequest
  if (r?.action !== 'propose') return null
  return html`<input type="hidden" name="mission_form" value="1">
<label for="mission_description">The mission as you approve it (you may edit it)</label>
<textarea id="mission_description" name="mission_description" maxlength="${MAX_EDITED_DESCRIPTION}" rows="8" required>${multilineText(r.description, MAX_EDITED_DESCRIPTION)}</textarea>
${
  (r.tools?.length ?? 0) > 0 &&
  html`<fieldset><legend>Tools it may use without asking each time</legend>
${(r.tools ?? []).map((t, i) => html`<label><input type="checkbox" name="mission_tool_${i}" value="${t.name}" checked> <code>${plainText(t.name, 128)}</code></label>`)}
</fieldset>`
}
${
  (r.resources?.length ?? 0) > 0 &&
  html`<fieldset><legend>Resources it may act as you at</legend>
${(r.resources ?? []).map((res, i) => html`<label><input type="checkbox" name="mission_resource_${i}" value="${res}" checked> ${hostOf(plainText(res, 300))}</label>`)}
</fieldset>`
}
<fieldset><legend>How long the mission runs</legend>
${EXPIRY_CHOICES.map((c) => html`<label><input type="radio" name="mission_expiry" value="${c.value}"${c.value === 'none' ? html` checked` : ''}> ${c.label}</label>`)}
</fieldset>`
}

/**
 * The person's choices from a submitted approval form; `undefined` when the form had no mission
 * fields (every other kind of request).
 *
 * @throws {ConsentError} `bad_input` for an unknown expiry or a description too long.
 */
export function missionChoicesFromForm(form: Readonly<Record<string, string>>): MissionChoices | undefined {
  if (form['mission_form'] !== '1') return undefined
  const expiry = form['mission_expiry'] ?? 'none'
  if (!EXPIRY_CHOICES.some((c) => c.value === expiry)) throw new ConsentError('bad_input', 'Choose how long the mission runs.')
  // Browsers send a textarea with CRLF line ends.
  const description = (form['mission_description'] ?? '').replace(/\r\n?/g, '\n')
  if (description.trim() === '' || description.length > MAX_EDITED_DESCRIPTION) throw new ConsentError('bad_input', `The description must have 1 to ${MAX_EDITED_DESCRIPTION} characters.`)
  const values = (prefix: string): string[] =>
    Object.keys(form)
      .filter((k) => new RegExp(`^${prefix}\\d{1,3}$`).test(k))
      .map((k) => form[k]!)
  return { description, tools: values('mission_tool_'), resources: values('mission_resource_'), expiry: expiry as MissionExpiry }
}

function logLine(e: MissionLogItem): HtmlValue {
  const d = e.detail ?? {}
  const text = (k: string): string | undefined => (typeof d[k] === 'string' ? (d[k] as string) : undefined)
  const bits: HtmlValue[] = []
  if (e.resource !== undefined) bits.push(html`at <span class="mono">${plainText(e.resource, 300)}</span>`)
  if (e.scope !== undefined) bits.push(html`scope <code>${plainText(e.scope, 200)}</code>`)
  if (e.decision !== undefined) bits.push(html`decision <strong>${plainText(e.decision, 50)}</strong>`)
  if (text('action') !== undefined) bits.push(html`action <code>${plainText(text('action'), 200)}</code>`)
  if (text('reason') !== undefined) bits.push(html`reason ${plainText(text('reason'), 200)}`)
  const said = text('description') ?? text('summary')
  // Everything in the mission's own log came from the agent, except the PS's created/terminated entries.
  const byAgent = e.source === 'mission' && e.type !== 'created' && e.type !== 'terminated'
  return html`<p><strong>${plainText(e.type, 100)}</strong> <span class="muted">${formatTime(e.at)}${byAgent && ' · from the agent'}</span></p>
${bits.length > 0 && html`<p class="muted">${bits.map((b, i) => html`${i > 0 ? ' · ' : ''}${b}`)}</p>`}
${e.reason !== undefined && html`<p class="muted">Reason: ${plainText(e.reason, 500)}</p>`}
${said !== undefined && html`<div class="said">${renderMarkdown(said, { maxLength: 2000 })}</div>`}`
}

function missionJson(d: MissionDetail): Record<string, unknown> {
  const r = d.record
  return {
    s256: r.s256,
    status: r.status,
    ...(r.terminationReason === undefined ? {} : { termination_reason: r.terminationReason }),
    agent: r.agentSub,
    created_at: r.createdAt,
    ...(r.expiresAt === undefined ? {} : { expires_at: r.expiresAt }),
    // The exact bytes that were hashed, as the approval response returned them (MIS-05).
    mission: encodeBase64url(new TextEncoder().encode(r.blob)),
    blob: d.blob,
    updates: d.updates,
    log: d.log,
  }
}

function missionPage(d: MissionDetail, now: number, revokeForm: HtmlValue): HtmlValue {
  const r = d.record
  const b = d.blob
  return html`<h1>${firstLine(b['description']) || 'Mission'}</h1>
<div class="card">
<p>${statusTag(r, now)}</p>
<p class="muted">Mission <span class="mono">${r.s256}</span></p>
<p class="muted">Agent <span class="mono">${plainText(r.agentSub, 300)}</span> · approved ${formatTime(r.createdAt)} · ${r.expiresAt !== undefined ? html`runs until ${formatTime(r.expiresAt)}` : 'no expiry'}</p>
</div>
<section aria-labelledby="blob-h">
<h2 id="blob-h">As you approved it</h2>
<div class="card mission-blob">${renderMarkdown(b['description'], { maxLength: MAX_EDITED_DESCRIPTION })}
<h3>Tools</h3>${toolsList(b['approved_tools'])}
<h3>Resources</h3>${resourcesList(b['approved_resources'])}
${limitsList(b['limits'])}
<details><summary>The exact record (its SHA-256 is the mission's identifier)</summary><pre class="mono">${multilineText(r.blob, 40_000)}</pre></details>
</div>
</section>
<section aria-labelledby="updates-h">
<h2 id="updates-h">Updates accepted since</h2>
${
  d.updates.length === 0
    ? html`<p class="muted">None.</p>`
    : html`<ol class="card mission-updates">${d.updates.map((u) => html`<li><span class="muted">${formatTime(u.at)} · <span class="mono" title="${u.s256}">${shorten(u.s256, 12)}</span></span><div class="said">${renderMarkdown(u.description, { maxLength: MAX_EDITED_DESCRIPTION })}</div></li>`)}</ol>`
}
</section>
<section aria-labelledby="log-h">
<h2 id="log-h">Mission log</h2>
${d.log.length === 0 ? html`<p class="muted">Nothing yet.</p>` : html`<ol class="plain card mission-log">${d.log.map((e) => html`<li>${logLine(e)}</li>`)}</ol>`}
<p class="muted"><a href="/account/missions/${r.s256}.json">Download as JSON</a></p>
</section>
${revokeForm}
<p><a href="/account/missions">All your missions</a></p>`
}

/** Mounts the mission pages on `app`. */
export function mountMissionPages(app: Hono<WebEnv>, ctx: WebContext, missions: MissionService): void {
  const guard = requirePerson(ctx)

  app.get('/account/missions', guard, async (c) => {
    const person = c.get('person')
    const list = await missions.list(person.id)
    const now = ctx.now()
    return sendPage(c, ctx, {
      title: 'Your missions',
      body: html`<h1>Your missions</h1>
${
  list.length === 0
    ? html`<p class="muted">No agent has a mission yet.</p>`
    : html`<ul class="plain card missions">${list.map((m) => {
        const description = (() => {
          try {
            return (JSON.parse(m.blob) as { description?: unknown }).description
          } catch {
            return undefined
          }
        })()
        return html`<li data-mission="${m.s256}"><p><a href="/account/missions/${m.s256}"><strong>${firstLine(description) || m.s256}</strong></a> ${statusTag(m, now)}</p>
<p class="muted">Agent <span class="mono">${plainText(m.agentSub, 300)}</span> · approved ${formatTime(m.createdAt)}${m.expiresAt !== undefined && html` · until ${formatTime(m.expiresAt)}`}</p></li>`
      })}</ul>`
}
<p><a href="/account">Back to your account</a></p>`,
    })
  })

  app.get('/account/missions/:name', guard, async (c) => {
    const person = c.get('person')
    const name = c.req.param('name')
    const json = name.endsWith('.json')
    const s256 = json ? name.slice(0, -5) : name
    if (!S256.test(s256)) {
      return json ? c.json({ error: 'invalid_request', error_description: 'not a mission identifier' }, 400) : messagePage(c, ctx, 404, 'Mission not found', 'There is no such mission on your account.')
    }
    if (json) {
      try {
        return c.json(missionJson(await missions.detail(person.id, s256)))
      } catch (e) {
        if (e instanceof ConsentError) return c.json({ error: 'not_found', error_description: 'no such mission on this account' }, 404)
        throw e
      }
    }
    return withConsentErrors(c, ctx, async () => {
      const d = await missions.detail(person.id, s256)
      const active = d.record.status === 'active'
      const revokeForm =
        active &&
        html`<form method="post" action="/account/missions/${s256}/revoke" class="card">${csrfField(c)}<div class="actions"><button class="danger" type="submit">Revoke this mission…</button></div></form>`
      return sendPage(c, ctx, { title: 'Mission', body: missionPage(d, ctx.now(), revokeForm) })
    })
  })

  app.post('/account/missions/:s256/revoke', guard, async (c) => {
    const person = c.get('person')
    const s256 = c.req.param('s256')
    const form = c.get('form')
    if (!S256.test(s256)) return messagePage(c, ctx, 404, 'Mission not found', 'There is no such mission on your account.')
    return withConsentErrors(c, ctx, async () => {
      if (form['confirm'] === 'yes') {
        const report = await missions.revoke(person.id, s256)
        return sendPage(c, ctx, { title: 'Mission revoked', body: reportBody('Mission revoked', report) })
      }
      const d = await missions.detail(person.id, s256)
      if (d.record.status !== 'active') return messagePage(c, ctx, 409, 'Already ended', 'This mission has already ended.')
      return sendPage(c, ctx, {
        title: 'Revoke this mission?',
        body: html`<h1>Revoke this mission?</h1>
<div class="card"><p><strong>${firstLine(d.blob['description']) || s256}</strong></p><p class="muted">Agent <span class="mono">${plainText(d.record.agentSub, 300)}</span></p></div>
<div class="note"><p>The mission ends for good. The agent can no longer act on it: what you allowed under it is withdrawn, requests waiting under it end, and the tokens issued under it are revoked at their resources.</p></div>
<form method="post" action="/account/missions/${s256}/revoke" class="card">
${csrfField(c)}
<input type="hidden" name="confirm" value="yes">
<div class="actions"><button class="danger" type="submit">Yes, revoke it</button><a class="button secondary" href="/account/missions/${s256}">Cancel</a></div>
</form>`,
      })
    })
  })
}
