/**
 * Markdown from agents and resources, rendered safely (main draft §Untrusted Input: Markdown
 * fields are sanitised before display; CHECKLIST PS-TOK-08).
 *
 * The input is escaped **first**; only then is a small subset turned into markup, by patterns
 * that can only ever produce the tags listed here, so no HTML from the input survives:
 *
 * - paragraphs (blank line) and line breaks,
 * - `#`…`######` headings (rendered as small headings),
 * - `- ` and `* ` bullet lists,
 * - `**bold**`, `*emphasis*`, `` `code` ``,
 * - links `[text](url)`, rendered as the text followed by the URL in parentheses, never as an
 *   `<a href>`: an agent must not be able to put a clickable link on the consent page;
 * - images `![alt](url)` are rendered the same way (as text), never loaded.
 *
 * Control characters and Unicode bidirectional overrides (which can make text read differently
 * from what it is) are removed, and the input is cut at a length limit (default 4,000
 * characters) with "…".
 *
 * @module
 */

import { Html, escapeHtml } from './html.js'

/** Options of {@link renderMarkdown}. */
export interface MarkdownOptions {
  /** Characters (code points) kept before cutting with "…". Default 4,000. */
  readonly maxLength?: number
}

/** The default length limit of untrusted Markdown. */
export const MARKDOWN_MAX_LENGTH = 4000

/**
 * Removes what never belongs in displayed untrusted text: C0/C1 controls other than newline and
 * tab, and the bidirectional embedding/override/isolate characters; normalises line ends.
 */
export function cleanText(input: string): string {
  return input
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
}

/** Cuts `text` to at most `max` code points, appending "…" when something was cut. */
export function truncate(text: string, max: number): string {
  const chars = Array.from(text)
  return chars.length <= max ? text : chars.slice(0, max).join('') + '…'
}

/**
 * Plain untrusted text for one line (platform, device, names): cleaned, newlines folded to
 * spaces, length-limited, and returned as an ordinary string for {@link html} to escape.
 */
export function plainText(input: unknown, max = 200): string {
  if (typeof input !== 'string') return ''
  return truncate(cleanText(input).replace(/[\n\t]+/g, ' ').trim(), max)
}

/**
 * Untrusted text that may span lines (values of a key/value table, JSON): cleaned and
 * length-limited, newlines kept (shown with `white-space: pre-wrap`).
 */
export function multilineText(input: unknown, max = 1000): string {
  if (typeof input !== 'string') return ''
  return truncate(cleanText(input), max)
}

// Placeholder delimiters: U+0000 is removed by cleanText, so input can never forge one.
const PH = '\u0000'

function inline(escaped: string): string {
  const held: string[] = []
  const hold = (markup: string): string => {
    held.push(markup)
    return `${PH}${held.length - 1}${PH}`
  }
  let s = escaped
  // Code spans first: their content is literal.
  // (The backtick was escaped to `&#96;` with everything else.)
  s = s.replace(/&#96;((?:(?!&#96;)[^\n])+)&#96;/g, (_m, code: string) => hold(`<code>${code}</code>`))
  // Images and links become "text (url)"; the URL is held so emphasis patterns cannot touch it.
  s = s.replace(/!?\[([^\]\n]*)\]\(\s*([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:&quot;|&#39;)[^\n]*?(?:&quot;|&#39;))?\s*\)/g, (_m, text: string, url: string) => {
    const label = text.trim()
    const target = hold(`<span class="mono">${url}</span>`)
    return label === '' ? `(${target})` : `${label} (${target})`
  })
  s = s.replace(/\*\*(?=\S)([^\n]*?\S)\*\*/g, '<strong>$1</strong>')
  s = s.replace(/(^|[^\w])__(?=\S)([^\n]*?\S)__(?!\w)/g, '$1<strong>$2</strong>')
  s = s.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![*\w])/g, '$1<em>$2</em>')
  s = s.replace(/(^|[^_\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![_\w])/g, '$1<em>$2</em>')
  // Held markup may itself contain placeholders only from earlier holds; resolve until stable.
  const restore = new RegExp(`${PH}(\\d+)${PH}`, 'g')
  for (let i = 0; i < 3 && s.includes(PH); i++) s = s.replace(restore, (_m, n: string) => held[Number(n)] ?? '')
  return s
}

/**
 * Renders untrusted Markdown as safe {@link Html}. Non-string input renders as nothing.
 *
 * @example
 * ```ts
 * renderMarkdown('**Pay** the [invoice](https://x.example)<script>')
 * // <p><strong>Pay</strong> the invoice (<span class="mono">https://x.example</span>)&lt;script&gt;</p>
 * ```
 */
export function renderMarkdown(input: unknown, options: MarkdownOptions = {}): Html {
  if (typeof input !== 'string') return new Html('')
  const max = options.maxLength ?? MARKDOWN_MAX_LENGTH
  const text = truncate(cleanText(input), max)
  const lines = escapeHtml(text).split('\n')
  const out: string[] = []
  let para: string[] = []
  let list: string[] = []
  const flushPara = (): void => {
    if (para.length > 0) out.push(`<p>${para.map(inline).join('<br>')}</p>`)
    para = []
  }
  const flushList = (): void => {
    if (list.length > 0) out.push(`<ul>${list.map((item) => `<li>${inline(item)}</li>`).join('')}</ul>`)
    list = []
  }
  for (const rawLine of lines) {
    const line = rawLine.replace(/\s+$/, '')
    if (line.trim() === '') {
      flushPara()
      flushList()
      continue
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading !== null) {
      flushPara()
      flushList()
      const level = Math.min(6, heading[1]!.length + 2)
      out.push(`<h${level}>${inline(heading[2]!)}</h${level}>`)
      continue
    }
    const item = /^\s{0,3}[-*+]\s+(.*)$/.exec(line)
    if (item !== null) {
      flushPara()
      list.push(item[1]!)
      continue
    }
    flushList()
    para.push(line.trim())
  }
  flushPara()
  flushList()
  return new Html(`<div class="md">${out.join('')}</div>`)
}
