/**
 * `aauth agent serve`: runs an agent provider ({@link createAgentProvider}) on Node's HTTP server,
 * with one-time enrollment codes created at startup.
 *
 * @module
 */

import { createAdaptorServer } from '@hono/node-server'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KeyRing } from '../../agent/key-ring.js'
import { createAgentProvider, isTopLevelAgentName, type AgentProvider } from '../../agent/provider.js'
import { isServerIdentifier } from '../../protocol/identifiers.js'
import { DWK } from '../../protocol/metadata.js'
import { expectPositionals, integerFlag, parseArgs, UsageError } from '../args.js'
import { isoTime, shortDuration, writeJson, type CommandRun } from '../output.js'
import { loopbackOptions, readAgentKey, serverUrlFlag } from '../shared.js'

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


/** Where to bind and what the issuer is once the port is known. */
interface Plan {
  readonly bindHost: string
  readonly issuer: (port: number) => string
  readonly behindProxy: boolean
}

/**
 * Production: issuer `https://D`, bound to `--host` (default 127.0.0.1) behind a TLS proxy.
 * Development (`AAUTH_DEV_LOOPBACK=1`): bound to 127.0.0.1, issuer `http://127.0.0.1:P` (or
 * `localhost`).
 */
function plan(dev: boolean, domain: string | undefined, host: string | undefined, port: number): Plan {
  if (dev) {
    if (host !== undefined && host !== '127.0.0.1') throw new UsageError('with AAUTH_DEV_LOOPBACK=1 the provider binds 127.0.0.1 only; drop --host', COMMAND)
    let name = '127.0.0.1'
    if (domain !== undefined) {
      const m = /^(127\.0\.0\.1|localhost)(?::(\d+))?$/.exec(domain)
      if (m === null) throw new UsageError(`with AAUTH_DEV_LOOPBACK=1, --domain must be 127.0.0.1[:P] or localhost[:P], not ${JSON.stringify(domain)}`, COMMAND)
      if (m[2] !== undefined && (port === 0 || Number(m[2]) !== port)) {
        throw new UsageError(`--domain ${domain} names port ${m[2]}, but the provider listens on ${port === 0 ? 'a free port (--port 0): leave the port out of --domain' : `port ${port}`}`, COMMAND)
      }
      name = m[1]!
    }
    return { bindHost: '127.0.0.1', issuer: (p) => `http://${name}:${p}`, behindProxy: false }
  }
  if (domain === undefined) throw new UsageError('--domain D is required: the issuer is https://D (for local development set AAUTH_DEV_LOOPBACK=1)', COMMAND)
  const issuer = `https://${domain}`
  if (!isServerIdentifier(issuer)) throw new UsageError(`--domain ${JSON.stringify(domain)}: ${issuer} is not a server identifier (a lowercase host name without port, path or scheme)`, COMMAND)
  return { bindHost: host ?? '127.0.0.1', issuer: () => issuer, behindProxy: true }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** Resolves with the signal's name on the first SIGINT or SIGTERM. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve(signal)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

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
  const where = plan(idOpts.allowInsecureLoopback, flags.domain, flags.host, port)
  const codeTtl = integerFlag(flags['code-ttl'], '--code-ttl', COMMAND, { min: 60, max: 7 * 86400 }) ?? 900
  const lifetime = integerFlag(flags['token-lifetime'], '--token-lifetime', COMMAND, { min: 301, max: 86400 })
  const ps = flags.ps === undefined ? undefined : serverUrlFlag(flags.ps, '--ps', COMMAND, idOpts)
  if (ps !== undefined && flags.enroll.length === 0) throw new UsageError('--ps goes into the tokens of agents enrolled with --enroll LOCAL; give --enroll too', COMMAND)
  for (const local of flags.enroll) {
    if (!isTopLevelAgentName(local, 'agents.example')) throw new UsageError(`--enroll ${JSON.stringify(local)}: an agent name is 1 to 255 of A-Z a-z 0-9 . _ -`, COMMAND)
  }

  const keyFile = flags['key-file']
  const { key, created } = keyFile === undefined ? { key: undefined, created: false } : await readAgentKey(keyFile, { create: true })
  const keys = await KeyRing.create(key === undefined ? {} : { initial: key })
  if (keyFile === undefined) ctx.stderr.write('aauth: warning: ephemeral signing key — the agent tokens it issues stop verifying when this process exits (use --key-file FILE)\n')

  let provider: AgentProvider | undefined
  const server = createAdaptorServer({
    fetch: async (req: Request) => {
      if (provider === undefined) return new Response('starting', { status: 503 })
      const t0 = performance.now()
      const res = await provider.app.fetch(req)
      if (flags.verbose) ctx.stderr.write(`${req.method} ${new URL(req.url).pathname} → ${res.status} (${(performance.now() - t0).toFixed(1)} ms)\n`)
      return res
    },
  }) as Server
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
    key: { kid: keys.current.kid, ...(keyFile === undefined ? { ephemeral: true } : { file: keyFile, created }) },
    enrollments,
  }
  if (flags.json) writeJson(ctx.stdout, info)
  else {
    const lines = [
      'agent provider running',
      `  issuer:    ${issuer}`,
      `  metadata:  ${info.metadata}`,
      `  jwks:      ${info.jwks}`,
      `  listening: http://${where.bindHost}:${actualPort}${where.behindProxy ? ` (serve ${issuer} through a TLS-terminating proxy to this address)` : ''}`,
      `  key:       ${keyFile === undefined ? 'ephemeral' : `${keyFile}${created ? ' (created, mode 0600)' : ''}`}, kid ${keys.current.kid}`,
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

  const signal = await stopSignal()
  await close(server)
  ctx.stderr.write(`aauth: ${signal}: agent provider stopped\n`)
  return 0
}
