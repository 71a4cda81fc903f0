/**
 * `aauth fetch`: a curl-like signed request through the agent client ({@link createAgentClient}),
 * which walks the AAuth flow — challenges, person and auth tokens, consent polling, retries.
 *
 * @module
 */

import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline/promises'
import { AgentCredentials } from '../../agent/agent-credentials.js'
import { createAgentClient } from '../../agent/client.js'
import type { ClarificationAnswer, ClarificationPrompt, InteractionPrompt } from '../../agent/deferred-poller.js'
import type { AgentStep } from '../../agent/signed-transport.js'
import { createSigner, decodeJwt, jwkThumbprint, TOKEN_TYPE } from '../../protocol/index.js'
import { isServerIdentifier } from '../../protocol/identifiers.js'
import { expectPositionals, integerFlag, parseArgs, UsageError, type FlagValues } from '../args.js'
import { CliError, reportError, StatusLine, terminalSafe, writeJson, type CommandRun, type Context } from '../output.js'
import { cnfThumbprint, DEV_LOOPBACK_HINT, explainProviderError, flagOrEnv, loopbackOptions, readAgentKey, readStdin, serverUrlFlag } from '../shared.js'
import { formatStep } from '../steps.js'

const COMMAND = 'fetch'

const FLAGS = {
  request: { type: 'string', short: 'X' },
  header: { type: 'strings', short: 'H' },
  data: { type: 'string', short: 'd' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
  scope: { type: 'string' },
  justification: { type: 'string' },
  timeout: { type: 'string' },
  provider: { type: 'string' },
  key: { type: 'string' },
  token: { type: 'string' },
} as const

type Flags = FlagValues<typeof FLAGS>

const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const WAITING = 'waiting for the person'

const interrupted = () => new CliError('interrupted', 'the request was abandoned (Ctrl-C)')

/** `-H 'Name: value'` flags into Headers. */
function parseHeaders(values: readonly string[]): Headers {
  const headers = new Headers()
  for (const h of values) {
    const i = h.indexOf(':')
    const name = i < 0 ? '' : h.slice(0, i).trim()
    if (!TOKEN_CHARS.test(name)) throw new UsageError(`-H ${JSON.stringify(h)}: expected 'Name: value'`, COMMAND)
    try {
      headers.append(name, h.slice(i + 1).trim())
    } catch {
      throw new UsageError(`-H ${JSON.stringify(h)}: the value is not a valid header value`, COMMAND)
    }
  }
  return headers
}

/** `-d DATA`, `-d @FILE` or `-d @-` (stdin). */
async function readData(data: string, ctx: Context): Promise<Uint8Array> {
  if (data === '@-') return readStdin(ctx)
  if (data.startsWith('@')) return new Uint8Array(await readFile(data.slice(1)))
  return new TextEncoder().encode(data)
}

function isJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    return true
  } catch {
    return false
  }
}

/**
 * The agent's credentials from `--provider`/`--token` and `--key` (or the environment): provider
 * credentials are refreshed with a fresh ephemeral key each time (two-key); a fixed token must be
 * bound to the key file's key.
 */
async function agentCredentials(flags: Flags, ctx: Context, signal: AbortSignal): Promise<{ credentials: AgentCredentials; provider: string | undefined }> {
  if (flags.provider !== undefined && flags.token !== undefined) throw new UsageError('give either --provider or --token, not both', COMMAND)
  const fromFlags = flags.provider !== undefined || flags.token !== undefined
  const provider = fromFlags ? flags.provider : flagOrEnv(undefined, ctx, 'AAUTH_PROVIDER')
  const token = fromFlags ? flags.token : flagOrEnv(undefined, ctx, 'AAUTH_AGENT_TOKEN')
  if (provider !== undefined && token !== undefined) throw new UsageError('both AAUTH_PROVIDER and AAUTH_AGENT_TOKEN are set: pass --provider or --token to choose', COMMAND)
  if (provider === undefined && token === undefined) {
    throw new UsageError('agent credentials needed: --provider URL --key FILE, or --token TOKEN --key FILE (or AAUTH_PROVIDER / AAUTH_AGENT_TOKEN with AAUTH_AGENT_KEY)', COMMAND)
  }
  const keyPath = flagOrEnv(flags.key, ctx, 'AAUTH_AGENT_KEY')
  if (keyPath === undefined) throw new UsageError('--key FILE is required: the agent key that signs (or set AAUTH_AGENT_KEY)', COMMAND)
  const { key } = await readAgentKey(keyPath, { create: false })
  if (provider !== undefined) {
    const url = serverUrlFlag(provider, '--provider', COMMAND, loopbackOptions(ctx))
    // The provider's answers are bounded by --timeout and Ctrl-C like every other request.
    const boundedFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal })
    return { credentials: AgentCredentials.fromProvider({ provider: url, durableKey: key, fetch: boundedFetch }), provider: url }
  }
  const { header, payload } = decodeJwt(token!)
  if (header['typ'] !== TOKEN_TYPE.agent) throw new CliError('invalid_jwt', `--token is not an agent token (typ ${JSON.stringify(header['typ'] ?? null)})`)
  const signer = await createSigner(key)
  if ((await cnfThumbprint(payload)) !== (await jwkThumbprint(signer.publicJwk))) {
    throw new CliError('key_mismatch', `the agent token is bound to another key than ${keyPath}`, { hint: 'get a token for this key with: aauth agent token --provider URL --key FILE' })
  }
  return { credentials: AgentCredentials.fixed(token!, signer), provider: undefined }
}

function interactionNotice(p: InteractionPrompt): string {
  return `aauth: the person must approve this request — open:\n  ${terminalSafe(p.userUrl)}\n  (code ${terminalSafe(p.code)}, asked by ${terminalSafe(p.origin)})\n`
}

/** Asks a relayed question on the terminal; an empty answer withdraws the request. */
async function askClarification(p: ClarificationPrompt, ctx: Context, status: StatusLine, interrupt: AbortController, signal: AbortSignal): Promise<ClarificationAnswer> {
  status.stop()
  const options = p.options ?? []
  const text = [`\naauth: the person asks (${terminalSafe(new URL(p.pendingUrl).origin)}):`, `  ${terminalSafe(p.question, true).replace(/\n/g, '\n  ')}`]
  options.forEach((o, i) => text.push(`  ${i + 1}) ${terminalSafe(o)}`))
  ctx.stderr.write(text.join('\n') + '\n')
  const rl = createInterface({ input: ctx.stdin, output: ctx.stderr, terminal: true })
  rl.on('SIGINT', () => interrupt.abort(interrupted()))
  let answer: string
  try {
    answer = (await rl.question(`answer${options.length > 0 ? ' (text or number)' : ''}, empty to withdraw the request: `, { signal })).trim()
  } finally {
    rl.close()
  }
  if (answer === '') return { action: 'cancel' }
  const n = Number(answer)
  const response = Number.isInteger(n) && n >= 1 && n <= options.length ? options[n - 1]! : answer
  status.start(WAITING)
  return { action: 'respond', response }
}

/** The response body for `--json`: parsed JSON for a JSON content type, text, or base64 bytes. */
function jsonBody(bytes: Uint8Array, contentType: string | null): { body: unknown; bodyEncoding?: 'base64' } {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return { body: Buffer.from(bytes).toString('base64'), bodyEncoding: 'base64' }
  }
  if (contentType !== null && /[/+]json\b/i.test(contentType)) {
    try {
      return { body: JSON.parse(text) as unknown }
    } catch {
      /* declared JSON, is not: keep the text */
    }
  }
  return { body: text }
}

/** The final response: its headers on stderr with -v; the body on stdout, or one JSON object. */
function printResponse(res: Response, bytes: Uint8Array, flags: Flags, steps: readonly AgentStep[], ctx: Context): void {
  const headers: Record<string, string> = {}
  res.headers.forEach((v, k) => (headers[k] = v))
  if (flags.verbose) {
    const lines = Object.entries(headers).map(([k, v]) => `<   ${k}: ${terminalSafe(v)}\n`)
    ctx.stderr.write(lines.join(''))
  }
  if (flags.json) {
    writeJson(ctx.stdout, { status: res.status, headers, ...jsonBody(bytes, res.headers.get('content-type')), steps })
    return
  }
  ctx.stdout.write(bytes)
  if (ctx.stdout.isTTY === true && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) ctx.stdout.write('\n')
}

/**
 * `aauth fetch [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE] [-v] [--json] URL`: exit 0 for a
 * 2xx response, 1 for any other status or a protocol error, 2 for usage errors, 130 when
 * interrupted.
 */
export const fetchCommand: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, COMMAND)
  const [rawUrl] = expectPositionals(positionals, ['URL'], COMMAND)
  const idOpts = loopbackOptions(ctx)
  let url: URL
  try {
    url = new URL(rawUrl!)
  } catch {
    throw new UsageError(`${JSON.stringify(rawUrl)} is not an absolute URL`, COMMAND)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`${url.protocol} URLs are not fetched (https only)`, COMMAND)
  if (!isServerIdentifier(url.origin, idOpts)) {
    throw new UsageError(`${url.origin} is not an AAuth server (https://host, no port)${url.protocol === 'http:' && !idOpts.allowInsecureLoopback ? `; ${DEV_LOOPBACK_HINT}` : ''}`, COMMAND)
  }
  const headers = parseHeaders(flags.header)
  const body = flags.data === undefined ? undefined : await readData(flags.data, ctx)
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', isJson(body) ? 'application/json' : 'text/plain')
  const method = (flags.request ?? (body === undefined ? 'GET' : 'POST')).toUpperCase()
  if (!TOKEN_CHARS.test(method)) throw new UsageError(`-X ${JSON.stringify(flags.request)} is not an HTTP method`, COMMAND)
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) throw new UsageError(`-d sends a body, which ${method} cannot carry: use -X POST (or leave -X out)`, COMMAND)
  const timeoutSec = integerFlag(flags.timeout, '--timeout', COMMAND, { min: 1, max: 86400 }) ?? 600
  const status = new StatusLine(ctx.stderr, ctx.now)
  const steps: AgentStep[] = []
  const onStep = (step: AgentStep): void => {
    if (flags.json) steps.push(step)
    if (flags.verbose) status.print(formatStep(step, Math.floor(ctx.now() / 1000)))
    // The person has answered once a token arrives or a poll stops being pending.
    if (step.type === 'token' || (step.type === 'response' && step.status !== 202)) status.stop()
  }
  // Ctrl-C, and --timeout over the whole call: the client checks its deadline between rounds,
  // the signal also ends a request that is in flight.
  const interrupt = new AbortController()
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(new CliError('deadline_exceeded', `no answer within ${timeoutSec} s (--timeout)`)), timeoutSec * 1000)
  timer.unref()
  const signal = AbortSignal.any([interrupt.signal, deadline.signal])
  const { credentials, provider } = await agentCredentials(flags, ctx, signal)
  const onSigint = () => interrupt.abort(interrupted())
  process.once('SIGINT', onSigint)
  const interactive = ctx.stdin.isTTY === true && ctx.stderr.isTTY === true
  const client = createAgentClient({
    credentials,
    ...idOpts,
    timeoutMs: timeoutSec * 1000,
    exposeSignatureBase: flags.verbose,
    onStep,
    onInteraction: (p) => {
      status.print(interactionNotice(p))
      status.start(WAITING)
    },
    ...(interactive ? { onClarification: (p: ClarificationPrompt) => askClarification(p, ctx, status, interrupt, signal) } : {}),
  })
  try {
    if (provider !== undefined) await credentials.current().catch((e: unknown) => Promise.reject(explainProviderError(e, provider)))
    const res = await client.fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: body as BufferSource }),
      signal,
      aauth: { ...(flags.scope === undefined ? {} : { scope: flags.scope }), ...(flags.justification === undefined ? {} : { justification: flags.justification }) },
    })
    const bytes = new Uint8Array(await res.arrayBuffer())
    status.stop()
    printResponse(res, bytes, flags, steps, ctx)
    if (res.ok) return 0
    ctx.stderr.write(`aauth: http_error: ${url.origin} answered ${res.status}${res.statusText === '' ? '' : ` ${terminalSafe(res.statusText)}`}\n`)
    return 1
  } catch (e) {
    status.stop()
    const reason: unknown = signal.aborted ? signal.reason : e
    const code = reportError(ctx, reason, flags.json, flags.json ? { steps } : {})
    return interrupt.signal.aborted ? 130 : code
  } finally {
    clearTimeout(timer)
    process.off('SIGINT', onSigint)
  }
}
