/**
 * A tiny HTML builder for the Person Server's pages, and the page layout they share.
 *
 * {@link html} is a tagged template that escapes every interpolated value unless it is already
 * {@link Html} built by this module, so text from agents, resources, or the URL can be dropped
 * into a template without thinking about it (main draft §Untrusted Input). Attribute values in
 * the templates are always double-quoted; URLs placed in `href`/`src` go through
 * {@link safeLinkUrl} / {@link safeImageUrl} first, since escaping alone does not stop a
 * `javascript:` URL.
 *
 * Pages carry no scripts and no external assets: one inline stylesheet, plain forms, so they work
 * with JavaScript disabled, under a strict Content-Security-Policy ({@link SECURITY_HEADERS}).
 *
 * @module
 */

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
}

/** Escapes text for an HTML text node or a double- or single-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (ch) => ESCAPES[ch]!)
}

/** HTML that is safe to emit as is: built by {@link html}, {@link raw}, or the Markdown renderer. */
export class Html {
  readonly #markup: string
  /** Use {@link html} or {@link raw}; the constructor does not escape. */
  constructor(markup: string) {
    this.#markup = markup
  }
  /** The markup. */
  toString(): string {
    return this.#markup
  }
}

/**
 * Anything a template accepts: `Html` goes in verbatim, strings and numbers are escaped, arrays
 * are concatenated, and `null`, `undefined` and `false` render as nothing (so
 * `${cond && html`…`}` works).
 */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[]

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return ''
  if (value instanceof Html) return value.toString()
  if (Array.isArray(value)) return value.map((v: HtmlValue) => render(v)).join('')
  return escapeHtml(String(value))
}

/**
 * The tagged template: every interpolation is escaped unless it is {@link Html}.
 *
 * @example
 * ```ts
 * html`<p title="${userText}">${userText}</p>` // both escaped
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '')
  return new Html(out)
}

/** Marks trusted, already-safe markup (constants of this module only; never external text). */
export function raw(markup: string): Html {
  return new Html(markup)
}

/** Joins values with a separator (both rendered like template interpolations). */
export function join(values: readonly HtmlValue[], separator: HtmlValue = ''): Html {
  const sep = render(separator)
  return new Html(values.map((v) => render(v)).join(sep))
}

/**
 * An `https:` URL (or a same-origin path starting with a single `/`) fit for an `href`; anything
 * else (`javascript:`, `data:`, relative tricks, credentials in the URL) gives `undefined`.
 */
export function safeLinkUrl(url: unknown): string | undefined {
  if (typeof url !== 'string' || url.length === 0 || url.length > 2048) return undefined
  if (/[\u0000-\u001f\u007f\s\\]/.test(url)) return undefined
  if (url.startsWith('/')) return url.startsWith('//') ? undefined : url
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'https:' || parsed.username !== '' || parsed.password !== '') return undefined
    return parsed.href
  } catch {
    return undefined
  }
}

/**
 * A logo URL fit for `<img src>`: `https:` or a raster `data:image/(png|jpeg|gif|webp);base64,`
 * URL (no SVG). Anything else gives `undefined` and the logo is not shown.
 */
export function safeImageUrl(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined
  if (/^data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$/.test(url)) return url.length <= 200_000 ? url : undefined
  return safeLinkUrl(url)?.startsWith('https:') === true ? url : undefined
}

/** Shortens long identifiers for display (the full value goes in a `title`). */
export function shorten(value: string, keep = 12): string {
  const chars = Array.from(value)
  return chars.length <= keep ? value : chars.slice(0, keep).join('') + '…'
}

/** A UTC timestamp for display, `YYYY-MM-DD HH:MM UTC`, from epoch milliseconds. */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return ''
  const d = new Date(ms)
  if (Number.isNaN(d.getTime())) return ''
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/**
 * Headers on every response of the pages: no scripts, no plugins, no framing, no external style
 * or form targets, images only from `https:` and `data:`, no referrer, no caching.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Opener-Policy': 'same-origin',
}

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7;overflow-wrap:anywhere;word-break:break-word}
header.top{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;padding:.6rem 1rem;background:#1f2a44;color:#fff}
header.top a{color:#fff}
header.top .who{font-size:.9rem}
header.top form{margin:0}
header.top button{min-height:36px;padding:.2rem .8rem;font-size:.9rem;background:transparent;color:#fff;border:1px solid #fff}
main{max-width:44rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;line-height:1.3;margin:.4rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
h3{font-size:1rem;margin:1rem 0 .4rem}
a{color:#0b57d0}
img{max-width:100%;height:auto}
img.logo{width:40px;height:40px;object-fit:contain;vertical-align:middle;margin-right:.5rem;border-radius:6px;background:#fff}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre,.pre{white-space:pre-wrap;margin:0}
.card{background:#fff;border:1px solid #d8dce3;border-radius:10px;padding:1rem;margin:0 0 1rem}
.box{border-radius:10px;padding:1rem;margin:0 0 1rem}
.box>.label{display:block;font-size:.8rem;font-weight:700;text-transform:uppercase;letter-spacing:.03em;margin-bottom:.5rem}
.verified{background:#fff;border:1px solid #d8dce3}
.verified>.label{color:#2e5e3a}
.resource-box{background:#eef4ff;border:2px solid #2f6fde}
.resource-box>.label{color:#1e4fa8}
.agent-box{background:#fff8e6;border:2px dashed #b7791f}
.agent-box>.label{color:#8a5a10}
.agent-box .said{font-style:italic}
.details{background:#fff;border:1px solid #9db8ea;border-radius:8px;padding:.75rem;margin:.75rem 0}
.details .summary{font-size:1.15rem;font-weight:700;margin:0 0 .5rem}
.big{font-size:1.3rem;font-weight:700}
.warn{color:#8b1a1a;font-weight:600}
.note{background:#fff3cd;border:1px solid #e0c36a;border-radius:8px;padding:.75rem;margin:0 0 1rem}
.status{border-radius:10px;padding:1rem;margin:0 0 1rem;font-size:1.15rem;font-weight:700}
.status.ok{background:#e4f6e8;border:2px solid #2f8a45}
.status.bad{background:#fdeaea;border:2px solid #c53030}
.status.info{background:#eef1f6;border:2px solid #6b7a90}
.error{background:#fdeaea;border:1px solid #c53030;border-radius:8px;padding:.75rem;margin:0 0 1rem}
.tag{display:inline-block;font-size:.75rem;font-weight:700;padding:.05rem .45rem;border-radius:999px;margin-left:.35rem;vertical-align:middle}
.tag.new{background:#2f6fde;color:#fff}
.tag.old{background:#dfe5ee;color:#38455a}
.tag.off{background:#fdeaea;color:#8b1a1a}
.muted{color:#5b6472;font-size:.9rem}
ul.plain,ol.plain{list-style:none;padding:0;margin:0}
ul.plain>li{padding:.6rem 0;border-top:1px solid #e3e6eb}
ul.plain>li:first-child{border-top:0}
ol.plain>li{margin:0 0 .75rem}
table.kv{width:100%;border-collapse:collapse;table-layout:fixed}
table.kv th,table.kv td{text-align:left;vertical-align:top;padding:.35rem .4rem;border-top:1px solid #dde3ec}
table.kv th{width:42%;font-weight:600;word-break:normal;overflow-wrap:break-word}
form{margin:0}
label{display:block;font-weight:600;margin:.6rem 0 .25rem}
input[type=text],input[type=password],input[type=date],textarea{width:100%;font:inherit;padding:.6rem;border:1px solid #9aa3b2;border-radius:8px;background:#fff}
textarea{min-height:5.5rem}
fieldset{border:1px solid #d8dce3;border-radius:8px;margin:.75rem 0;padding:.5rem .75rem}
fieldset label{font-weight:400;display:flex;align-items:center;gap:.5rem;margin:.35rem 0;min-height:44px}
fieldset input[type=radio]{width:1.3rem;height:1.3rem}
button,.button{display:inline-block;font:inherit;font-weight:700;min-height:48px;padding:.7rem 1.2rem;border-radius:10px;border:0;cursor:pointer;text-align:center;text-decoration:none}
.actions{display:flex;flex-direction:column;gap:.6rem;margin-top:.75rem}
.actions button,.actions .button{width:100%}
button.primary,.button.primary{background:#1f7a3a;color:#fff}
button.danger{background:#b42318;color:#fff}
button.secondary,.button.secondary{background:#e3e8f0;color:#1b1f24}
@media (min-width:40rem){.actions{flex-direction:row}.actions button,.actions .button{width:auto;min-width:10rem}}
`

/** What the layout needs to know about the logged-in person, if any. */
export interface LayoutPerson {
  readonly displayName: string
  readonly username: string
  /** The CSRF token of the session (the logout form carries it). */
  readonly csrf: string
}

/** One page. */
export interface PageOptions {
  readonly title: string
  readonly body: HtmlValue
  /** The Person Server's display name (header and `<title>`). */
  readonly psName: string
  readonly person?: LayoutPerson | undefined
}

/** The whole document: header (PS name, who is logged in, log-out button) and `body`. */
export function layout(options: PageOptions): Html {
  const { title, body, psName, person } = options
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${psName}</title>
<style>${raw(CSS)}</style>
</head>
<body>
<header class="top">
<a href="/account"><strong>${psName}</strong></a>
${
  person &&
  html`<span class="who">Logged in as <strong>${person.displayName}</strong> (${person.username})</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${person.csrf}"><button type="submit">Log out</button></form>`
}
</header>
<main>
${body}
</main>
</body>
</html>`
}
