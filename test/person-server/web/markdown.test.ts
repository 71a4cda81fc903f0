/**
 * The untrusted-Markdown renderer (main draft §Untrusted Input; CHECKLIST PS-TOK-08): the safe
 * subset works, and a table of XSS payloads comes out as inert text.
 */
import { describe, expect, it } from 'vitest'
import { html, raw, safeImageUrl, safeLinkUrl } from '../../../src/person-server/web/html.js'
import { MARKDOWN_MAX_LENGTH, plainText, renderMarkdown } from '../../../src/person-server/web/markdown.js'

const md = (s: string): string => renderMarkdown(s).toString()

/** No tag other than the subset's, and no attribute other than class="mono"/"md". */
function onlySafeMarkup(out: string): void {
  const tags = out.match(/<[^>]*>/g) ?? []
  for (const tag of tags) expect(tag).toMatch(/^<\/?(p|br|strong|em|code|ul|li|h[3-6]|div class="md"|div|span class="mono"|span)>$/)
}

describe('renderMarkdown: the safe subset', () => {
  it('paragraphs, line breaks, bold, emphasis, code', () => {
    expect(md('Hello **world** and *you*\nnext `a<b`\n\nsecond')).toBe(
      '<div class="md"><p>Hello <strong>world</strong> and <em>you</em><br>next <code>a&lt;b</code></p><p>second</p></div>',
    )
  })
  it('lists', () => {
    expect(md('Items:\n- one\n- **two**')).toBe('<div class="md"><p>Items:</p><ul><li>one</li><li><strong>two</strong></li></ul></div>')
  })
  it('headings become small headings', () => {
    expect(md('## Action\nSend')).toBe('<div class="md"><h4>Action</h4><p>Send</p></div>')
  })
  it('links become text followed by the URL, never an <a>', () => {
    const out = md('See [the invoice](https://evil.example/pay?x=1&y=2) now')
    expect(out).toBe('<div class="md"><p>See the invoice (<span class="mono">https://evil.example/pay?x=1&amp;y=2</span>) now</p></div>')
    expect(out).not.toContain('<a')
  })
  it('images are not loaded', () => {
    const out = md('![cat](https://img.example/cat.png)')
    expect(out).not.toContain('<img')
    expect(out).toContain('cat (<span class="mono">https://img.example/cat.png</span>)')
  })
  it('emphasis markers inside URLs and words stay literal', () => {
    expect(md('[x](https://a.example/*b*/) snake_case_name')).toContain('https://a.example/*b*/')
    expect(md('snake_case_name')).toContain('snake_case_name')
  })
  it('non-string input renders nothing', () => {
    expect(md(42 as unknown as string)).toBe('')
  })
})

describe('renderMarkdown: XSS payloads are inert', () => {
  const payloads: readonly [string, string][] = [
    ['script tag', '<script>window.__xss=1</script>'],
    ['img onerror', '<img src=x onerror="window.__xss=1">'],
    ['svg onload breaking out of an attribute', '"><svg onload=alert(1)>'],
    ['javascript: link', '[click me](javascript:alert(1))'],
    ['javascript: link with entities', '[x](jav&#x61;script:alert(1))'],
    ['data: link', '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)'],
    ['attribute injection via single quote', "' onmouseover='alert(1)"],
    ['iframe', '<iframe src="https://evil.example"></iframe>'],
    ['style', '<style>body{display:none}</style>'],
    ['bold around a tag', '**<b onclick=alert(1)>x</b>**'],
    ['code span with a tag', '`<script>alert(1)</script>`'],
    ['html comment', '<!-- x --><a href="https://evil.example">y</a>'],
    ['entity-encoded script', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['null byte in tag', '<scr\u0000ipt>alert(1)</script>'],
    ['backtick attribute', '<img src=`x` onerror=`alert(1)`>'],
    ['link title', '[a](https://x.example "t" onmouseover="alert(1)")'],
  ]
  for (const [name, payload] of payloads) {
    it(name, () => {
      const out = md(payload)
      // Every tag is one of the subset's, without attributes a payload could bring…
      onlySafeMarkup(out)
      expect(out).not.toMatch(/<(script|img|svg|iframe|style|a|b)\b/i)
      // …and every character outside those tags that HTML would read as markup is escaped.
      expect(out.replace(/<[^>]*>/g, '')).not.toMatch(/[<>"'`]/)
    })
  }
  it('escapes quotes so a rendering inside an attribute cannot break out', () => {
    expect(md('" \' `')).toBe('<div class="md"><p>&quot; &#39; &#96;</p></div>')
  })
  it('removes bidirectional overrides and controls', () => {
    expect(md('abc\u202Eevil\u0007')).toBe('<div class="md"><p>abcevil</p></div>')
  })
})

describe('renderMarkdown: length limit', () => {
  it('cuts very long input with an ellipsis', () => {
    const out = md('a'.repeat(100_000))
    expect(out.length).toBeLessThan(MARKDOWN_MAX_LENGTH + 100)
    expect(out).toContain('a…')
  })
  it('a custom limit', () => {
    expect(renderMarkdown('abcdef', { maxLength: 3 }).toString()).toBe('<div class="md"><p>abc…</p></div>')
  })
  it('a cut in the middle of markup stays balanced', () => {
    const out = renderMarkdown('**bold text that is cut', { maxLength: 10 }).toString()
    onlySafeMarkup(out)
    expect(out).toBe('<div class="md"><p>**bold tex…</p></div>')
  })
  it('is fast on pathological input', () => {
    const start = Date.now()
    md('*a'.repeat(2000) + '[' .repeat(1000) + '_'.repeat(1000))
    expect(Date.now() - start).toBeLessThan(1000)
  })
})

describe('html builder', () => {
  it('escapes every interpolation unless it is Html', () => {
    const evil = '"><script>alert(1)</script>'
    expect(html`<p title="${evil}">${evil}${raw('<br>')}</p>`.toString()).toBe(
      '<p title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;<br></p>',
    )
  })
  it('arrays, false, null and undefined', () => {
    expect(html`${['<a>', html`<b>`]}${false}${null}${undefined}${0}`.toString()).toBe('&lt;a&gt;<b>0')
  })
  it('safe URLs', () => {
    expect(safeLinkUrl('javascript:alert(1)')).toBeUndefined()
    expect(safeLinkUrl('https://x.example/a')).toBe('https://x.example/a')
    expect(safeLinkUrl('http://x.example/a')).toBeUndefined()
    expect(safeLinkUrl('//evil.example')).toBeUndefined()
    expect(safeLinkUrl('https://u:p@x.example')).toBeUndefined()
    expect(safeImageUrl('data:image/svg+xml;base64,PHN2Zz4=')).toBeUndefined()
    expect(safeImageUrl('data:image/png;base64,iVBORw0KGgo=')).toBe('data:image/png;base64,iVBORw0KGgo=')
    expect(safeImageUrl('https://logo.example/l.png')).toBe('https://logo.example/l.png')
    expect(safeImageUrl('javascript:alert(1)')).toBeUndefined()
  })
  it('plainText folds lines and limits length', () => {
    expect(plainText('a\nb\tc', 3)).toBe('a b…')
    expect(plainText(undefined)).toBe('')
  })
})
