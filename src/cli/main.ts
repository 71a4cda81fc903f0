#!/usr/bin/env node
/**
 * The `aauth` command: dispatch, help and the exit code. Each command lives in
 * `src/cli/commands/` and is loaded only when it runs, so a command pays only for what it uses
 * (`aauth fetch` never loads the agent provider's web framework).
 *
 * @module
 */

import { readFileSync } from 'node:fs'
import { UsageError } from './args.js'
import * as help from './help.js'
import { processContext, reportError, type CommandRun, type Context } from './output.js'

interface CommandEntry {
  /** `['agent', 'serve']` */
  readonly words: readonly string[]
  readonly help: string
  readonly load: () => Promise<CommandRun>
}

const COMMANDS: readonly CommandEntry[] = [
  { words: ['agent', 'serve'], help: help.AGENT_SERVE_HELP, load: async () => (await import('./commands/agent-serve.js')).agentServe },
  { words: ['agent', 'enroll'], help: help.AGENT_ENROLL_HELP, load: async () => (await import('./commands/agent-enroll.js')).agentEnroll },
  { words: ['agent', 'token'], help: help.AGENT_TOKEN_HELP, load: async () => (await import('./commands/agent-enroll.js')).agentToken },
  { words: ['resource', 'serve'], help: help.RESOURCE_SERVE_HELP, load: async () => (await import('./commands/resource-serve.js')).resourceServe },
  { words: ['fetch'], help: help.FETCH_HELP, load: async () => (await import('./commands/fetch.js')).fetchCommand },
  { words: ['token', 'inspect'], help: help.TOKEN_INSPECT_HELP, load: async () => (await import('./commands/token-inspect.js')).tokenInspect },
  { words: ['token', 'decode'], help: help.TOKEN_DECODE_HELP, load: async () => (await import('./commands/token-inspect.js')).tokenDecode },
  { words: ['person-server', 'serve'], help: help.PERSON_SERVER_SERVE_HELP, load: async () => (await import('./commands/person-server-serve.js')).personServerServe },
  { words: ['person-server', 'add-person'], help: help.PERSON_SERVER_ADD_PERSON_HELP, load: async () => (await import('./commands/person-server-admin.js')).addPerson },
  { words: ['person-server', 'audit'], help: help.PERSON_SERVER_AUDIT_HELP, load: async () => (await import('./commands/person-server-admin.js')).personServerAudit },
  { words: ['keygen'], help: help.KEYGEN_HELP, load: async () => (await import('./commands/keygen.js')).keygen },
]

/** Short names of command groups: `aauth ps audit` is `aauth person-server audit`. */
const GROUP_ALIASES: Readonly<Record<string, string>> = { ps: 'person-server' }

/** `argv` with a group alias in first place replaced by the group's name. */
function unalias(argv: readonly string[]): readonly string[] {
  const group = argv[0] === undefined || !Object.hasOwn(GROUP_ALIASES, argv[0]) ? undefined : GROUP_ALIASES[argv[0]]
  return group === undefined ? argv : [group, ...argv.slice(1)]
}

/** The entry `argv` names, and the arguments after its words. */
function lookup(given: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  const argv = unalias(given)
  for (const entry of COMMANDS) {
    if (entry.words.every((w, i) => argv[i] === w)) return { entry, rest: argv.slice(entry.words.length) }
  }
  return undefined
}

/** The package version, from the source tree (tsx) or the build (`dist/src/cli`). */
function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'aauth-kit' && typeof pkg.version === 'string') return pkg.version
    } catch {
      /* not this one */
    }
  }
  return 'unknown'
}

/** Explains a command group (`aauth agent`) or an unknown command. */
function unknownCommand(argv: readonly string[]): UsageError {
  const group = COMMANDS.filter((c) => c.words.length > 1 && c.words[0] === unalias(argv)[0])
  if (group.length > 0) {
    const subs = group.map((c) => c.words[1]).join(', ')
    return new UsageError(argv[1] === undefined ? `aauth ${argv[0]} needs a subcommand: ${subs}` : `unknown command "aauth ${argv[0]} ${argv[1]}"; ${argv[0]} has: ${subs}`)
  }
  return new UsageError(`unknown command ${JSON.stringify(argv[0])}; commands: ${COMMANDS.map((c) => c.words.join(' ')).join(', ')}`)
}

/**
 * Runs the `aauth` command with `argv` (without `node` and the script).
 *
 * @returns the exit code: 0 success, 1 HTTP error status or protocol error, 2 usage error.
 */
async function main(argv: string[], ctx: Context = processContext()): Promise<number> {
  const json = argv.includes('--json')
  try {
    const first = argv[0]
    if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
      const topic = first === 'help' && argv.length > 1 ? lookup(argv.slice(1)) : undefined
      if (first === 'help' && argv.length > 1 && topic === undefined) throw unknownCommand(argv.slice(1))
      ctx.stdout.write(topic?.entry.help ?? help.MAIN_HELP)
      return 0
    }
    if (first === '--version' || first === 'version') {
      ctx.stdout.write(json ? JSON.stringify({ version: version() }) + '\n' : `${version()}\n`)
      return 0
    }
    const found = lookup(argv)
    if (found === undefined) throw unknownCommand(argv)
    const end = found.rest.indexOf('--')
    const options = end < 0 ? found.rest : found.rest.slice(0, end)
    if (options.includes('--help') || options.includes('-h')) {
      ctx.stdout.write(found.entry.help)
      return 0
    }
    const run = await found.entry.load()
    return await run(found.rest, ctx)
  } catch (e) {
    return reportError(ctx, e, json)
  }
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  // `aauth fetch … | head`: the reader went away; that is not an error of ours.
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  process.stderr.write(`aauth: ${e.code ?? 'error'}: cannot write the output: ${e.message}\n`)
  process.exit(1)
})

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
