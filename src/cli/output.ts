/**
 * Output of the `aauth` command: the streams a command writes to, JSON lines for scripts, readable
 * errors (`aauth: <code>: <message>`, never a stack trace), times, terminal-safe text and the live
 * status line shown while waiting on a TTY.
 *
 * @module
 */

import { AAuthError, SignatureError } from '../protocol/errors.js'
import { UsageError } from './args.js'

/** What a command runs against: the process streams and environment (a seam for tests). */
export interface Context {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: NodeJS.WriteStream
  readonly stderr: NodeJS.WriteStream
  readonly stdin: NodeJS.ReadStream
  /** Clock in epoch milliseconds. */
  readonly now: () => number
}

/** A command's entry point: parses its own arguments, returns the exit code. */
export type CommandRun = (argv: string[], ctx: Context) => Promise<number>

/** The context of the running process. */
export function processContext(): Context {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, now: Date.now }
}

/** Writes `value` as one JSON line. */
export function writeJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(JSON.stringify(value) + '\n')
}

/**
 * A failure the CLI explains itself: a stable `code`, a message, and an optional hint on what to
 * do (e.g. the command that enrolls a key).
 */
export class CliError extends Error {
  readonly code: string
  readonly hint: string | undefined
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CliError'
    this.code = code
    this.hint = options.hint
  }
}

/** The parts of an error worth showing, as printed and as put in `--json` output. */
export interface ErrorInfo {
  readonly code: string
  readonly message: string
  readonly status?: number
  readonly serverError?: string
  readonly detail?: string
  readonly url?: string
  readonly requiredInput?: readonly string[]
  /** What lies under the error (`connect ECONNREFUSED 127.0.0.1:8080`), when it adds anything. */
  readonly cause?: string
  readonly hint?: string
}

/** Messages down `e`'s `cause` chain (at most four) that are not already part of `e.message`. */
export function causeMessages(e: Error): string[] {
  const out: string[] = []
  let seen = e.message
  for (let c = e.cause; c instanceof Error && out.length < 4; c = c.cause) {
    if (c.message !== '' && !seen.includes(c.message)) out.push(c.message)
    seen += ` ${c.message}`
  }
  return out
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Reads any thrown value into an {@link ErrorInfo}: {@link AAuthError} codes (with an
 * `AgentError`'s status, server error, detail and URL), key-file and system error codes
 * (`ENOENT`), network failures of `fetch` (`network_error` with the underlying cause), aborts.
 */
export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof UsageError) return { code: 'usage', message: e.message, hint: `see: aauth ${e.command === undefined ? 'help' : `${e.command} --help`}` }
  if (e instanceof CliError) return { code: e.code, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) }
  if (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError')) return { code: 'interrupted', message: 'interrupted' }
  if (e instanceof Error) {
    const o = e as Error & Record<string, unknown>
    const code = str(o['code'])
    const status = typeof o['status'] === 'number' ? o['status'] : undefined
    const extra = {
      ...(status === undefined || e instanceof SignatureError ? {} : { status }),
      ...(str(o['serverError']) === undefined ? {} : { serverError: o['serverError'] as string }),
      ...(str(o['detail']) === undefined || o['detail'] === e.message ? {} : { detail: o['detail'] as string }),
      ...(str(o['url']) === undefined ? {} : { url: o['url'] as string }),
      ...(e instanceof SignatureError && e.requiredInput !== undefined ? { requiredInput: e.requiredInput } : {}),
      ...(causeMessages(e).length === 0 ? {} : { cause: causeMessages(e).join(': ') }),
    }
    // Node's system errors repeat their code: "ENOENT: no such file or directory, open 'x'".
    const message = code !== undefined && e.message.startsWith(`${code}: `) ? e.message.slice(code.length + 2) : e.message
    if (e instanceof AAuthError || code !== undefined) return { code: code ?? 'error', message, ...extra }
    // fetch() rejects with TypeError('fetch failed') and the reason in `cause`.
    if (e instanceof TypeError && e.message === 'fetch failed') {
      return { code: 'network_error', message: causeMessages(e).join(': ') || e.message }
    }
    return { code: 'error', message: e.message }
  }
  return { code: 'error', message: String(e) }
}

/** The readable form of an error: `aauth: <code>: <message>` and indented particulars. */
export function formatError(info: ErrorInfo): string {
  const lines = [info.code === 'usage' ? `aauth: ${info.message}` : `aauth: ${info.code}: ${info.message}`]
  if (info.status !== undefined) lines.push(`  status:        ${info.status}`)
  if (info.serverError !== undefined) lines.push(`  server error:  ${info.serverError}`)
  if (info.detail !== undefined) lines.push(`  detail:        ${info.detail}`)
  if (info.url !== undefined) lines.push(`  url:           ${info.url}`)
  if (info.requiredInput !== undefined) lines.push(`  required:      ${info.requiredInput.join(' ')}`)
  if (info.cause !== undefined) lines.push(`  cause:         ${info.cause}`)
  if (info.hint !== undefined) lines.push(`  ${info.hint}`)
  return terminalSafe(lines.join('\n'), true) + '\n'
}

/** Exit code of a failure: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UsageError ? 2 : 1
}

/**
 * Reports a failure: the readable form on stderr, and with `json` a `{"error": …}` object (plus
 * `extra`, e.g. the protocol steps so far) on stdout. Returns the exit code.
 */
export function reportError(ctx: Context, e: unknown, json: boolean, extra: Record<string, unknown> = {}): number {
  const info = errorInfo(e)
  ctx.stderr.write(formatError(info))
  if (ctx.env['AAUTH_DEBUG'] === '1' && e instanceof Error && e.stack !== undefined) ctx.stderr.write(`${e.stack}\n`)
  if (json) writeJson(ctx.stdout, { error: info, ...extra })
  return exitCodeOf(e)
}

/** ISO 8601 form of an epoch-seconds time. */
export function isoTime(epochSec: number): string {
  return new Date(epochSec * 1000).toISOString().replace('.000Z', 'Z')
}

/** A short duration: `45s`, `54m`, `2h 5m`, `3d 4h`. */
export function shortDuration(seconds: number): string {
  const s = Math.round(Math.abs(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`
  return `${Math.floor(s / 86400)}d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)}h` : ''}`
}

/** `in 54m` or `3m ago`, relative to `nowSec`. */
export function relativeTime(epochSec: number, nowSec: number): string {
  if (epochSec === nowSec) return 'now'
  return epochSec >= nowSec ? `in ${shortDuration(epochSec - nowSec)}` : `${shortDuration(nowSec - epochSec)} ago`
}

// C0 and C1 controls (ESC starts terminal escape sequences), DEL, and bidi overrides.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g
const CONTROL_OR_NEWLINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/**
 * Makes text from a server safe to print on a terminal: control characters (escape sequences
 * included) are shown as `\u001b`-style escapes. Newlines and tabs are kept when `multiline`.
 */
export function terminalSafe(text: string, multiline = false): string {
  return text.replace(multiline ? CONTROL : CONTROL_OR_NEWLINE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/**
 * A one-line live indicator on a TTY (`⠹ waiting for the person… 12s`), redrawn in place with `\r`.
 * Other output goes through {@link StatusLine.print}, which clears the line, prints, and redraws.
 * On a stream that is not a TTY the indicator never draws and `print` is a plain write.
 */
export class StatusLine {
  readonly #stream: NodeJS.WriteStream
  readonly #now: () => number
  #text: string | undefined
  #since = 0
  #frame = 0
  #timer: NodeJS.Timeout | undefined

  constructor(stream: NodeJS.WriteStream, now: () => number = Date.now) {
    this.#stream = stream
    this.#now = now
  }

  /** Whether the indicator can draw (the stream is a TTY). */
  get live(): boolean {
    return this.#stream.isTTY === true
  }

  /** Shows `text` with a spinner and the seconds elapsed since this call (TTY only). */
  start(text: string): void {
    if (!this.live) return
    if (this.#text === text && this.#timer !== undefined) return
    this.#text = text
    this.#since = this.#now()
    this.#timer ??= setInterval(() => this.#draw(), 120)
    this.#timer.unref()
    this.#draw()
  }

  /** Removes the indicator. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#text !== undefined) this.#clear()
    this.#text = undefined
  }

  /** Writes `text` (ending in a newline) above the indicator. */
  print(text: string): void {
    if (this.#text !== undefined) this.#clear()
    this.#stream.write(text)
    if (this.#text !== undefined) this.#draw()
  }

  #clear(): void {
    this.#stream.write('\r\x1b[2K')
  }

  #draw(): void {
    if (this.#text === undefined) return
    this.#frame = (this.#frame + 1) % FRAMES.length
    const secs = Math.floor((this.#now() - this.#since) / 1000)
    const line = `${FRAMES[this.#frame]} ${this.#text} ${secs}s (Ctrl-C to give up)`
    // Never wrap: a wrapped line cannot be cleared with \r.
    const columns = this.#stream.columns
    const width = columns !== undefined && columns >= 20 ? columns - 1 : 79
    this.#stream.write(`\r\x1b[2K${line.length > width ? line.slice(0, width) : line}`)
  }
}
