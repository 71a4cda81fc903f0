/**
 * `aauth agent serve`: runs an agent provider ({@link createAgentProvider}) on Node's HTTP server,
 * with one-time enrollment codes created at startup.
 *
 * @module
 */

import { createAgentProvider, isTopLevelAgentName, type AgentProvider } from '../../agent/provider.js'
import { DWK } from '../../protocol/metadata.js'
import { expectPositionals, integerFlag, parseArgs, UsageError } from '../args.js'
import { isoTime, shortDuration, writeJson, type CommandRun } from '../output.js'
import { close, fetchServer, listen, listeningLine, plan, serveUntilStopped, signingKeys } from '../server.js'
import { loopbackOptions, serverUrlFlag } from '../shared.js'

const COMMAND = 'agent serve'

const FLAGS = {
  port: { type: 'string' },
  domain: { type: 'string' },
  host: { type: 'string' },
  'key-file': { type: 'string' },
  name: { type: 'string' },
  enroll: { type: 'strings' },
  ps: { type: 'string' },
  'code-ttl': { type: 'string' },
  'token-lifetime': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
} as const

/**
 * `aauth agent serve --port P --domain D [...]`: serves until SIGINT/SIGTERM, then closes the
 * server and exits 0.
 */
export const agentServe: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, COMMAND)
  expectPositionals(positionals, [], COMMAND)
  const idOpts = loopbackOptions(ctx)
  const port = integerFlag(flags.port, '--port', COMMAND, { min: 0, max: 65535 })
  if (port === undefined) throw new UsageError('--port P is required (0 picks a free port)', COMMAND)
  const where = plan(COMMAND, 'provider', idOpts.allowInsecureLoopback, { domain: flags.domain }, flags.host, port)
  const codeTtl = integerFlag(flags['code-ttl'], '--code-ttl', COMMAND, { min: 60, max: 7 * 86400 }) ?? 900
  const lifetime = integerFlag(flags['token-lifetime'], '--token-lifetime', COMMAND, { min: 301, max: 86400 })
  const ps = flags.ps === undefined ? undefined : serverUrlFlag(flags.ps, '--ps', COMMAND, idOpts)
  if (ps !== undefined && flags.enroll.length === 0) throw new UsageError('--ps goes into the tokens of agents enrolled with --enroll LOCAL; give --enroll too', COMMAND)
  for (const local of flags.enroll) {
    if (!isTopLevelAgentName(local, 'agents.example')) throw new UsageError(`--enroll ${JSON.stringify(local)}: an agent name is 1 to 255 of A-Z a-z 0-9 . _ -`, COMMAND)
  }

  const { keys, info: keyInfo, line: keyLine } = await signingKeys(flags['key-file'], ctx, 'the agent tokens it issues')

  let provider: AgentProvider | undefined
  const server = fetchServer(() => (provider === undefined ? undefined : (req) => provider!.app.fetch(req)), flags.verbose, ctx)
  const actualPort = await listen(server, port, where.bindHost)
  const issuer = where.issuer(actualPort)
  const enrollments: { agent: string; local: string; code: string; ps?: string; expiresAt: string }[] = []
  try {
    provider = createAgentProvider({
      issuer,
      keys,
      ...(flags.name === undefined ? {} : { name: flags.name }),
      ...(lifetime === undefined ? {} : { tokenLifetimeSec: lifetime }),
      ...idOpts,
    })
    const domain = new URL(issuer).host
    for (const local of flags.enroll) {
      const code = await provider.createEnrollmentCode({ local, ...(ps === undefined ? {} : { ps }) }, codeTtl)
      enrollments.push({ agent: `aauth:${local}@${domain}`, local, code, ...(ps === undefined ? {} : { ps }), expiresAt: isoTime(Math.floor(ctx.now() / 1000) + codeTtl) })
    }
  } catch (e) {
    await close(server)
    throw e instanceof TypeError ? new UsageError(e.message, COMMAND) : e
  }

  const info = {
    issuer,
    metadata: `${issuer}/.well-known/${DWK.agent}`,
    jwks: provider.metadata.jwks_uri,
    host: where.bindHost,
    port: actualPort,
    key: keyInfo,
    enrollments,
  }
  if (flags.json) writeJson(ctx.stdout, info)
  else {
    const lines = [
      'agent provider running',
      `  issuer:    ${issuer}`,
      `  metadata:  ${info.metadata}`,
      `  jwks:      ${info.jwks}`,
      `  listening: ${listeningLine(where, actualPort, issuer)}`,
      `  key:       ${keyLine}`,
    ]
    if (enrollments.length > 0) {
      lines.push(`enrollment codes (single use, valid ${shortDuration(codeTtl)}):`)
      const width = Math.max(...enrollments.map((e) => e.agent.length))
      for (const e of enrollments) lines.push(`  ${e.agent.padEnd(width)}  ${e.code}${e.ps === undefined ? '' : `  (ps ${e.ps})`}`)
      lines.push(`  enroll with: aauth agent enroll --provider ${issuer} --code CODE --key FILE`)
    }
    lines.push('Ctrl-C to stop.')
    ctx.stdout.write(lines.join('\n') + '\n')
  }

  return serveUntilStopped(server, ctx, 'agent provider')
}
