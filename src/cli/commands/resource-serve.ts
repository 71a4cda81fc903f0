/**
 * `aauth resource serve`: a sample resource — a Hono app behind the `aauth()` middleware of
 * `aauth-kit/hono` — for trying agents against: `GET /whoami` (agent identity) and `POST /items`
 * (three-party authorization by the person server given with `--ps`).
 *
 * @module
 */

import { Hono } from 'hono'
import { DWK } from '../../protocol/metadata.js'
import { problemResponse, ProblemError } from '../../protocol/index.js'
import type { RouteRequirement } from '../../resource/access.js'
import { createResource, type Resource } from '../../resource/core.js'
import { aauth, type AAuthEnv } from '../../resource/hono.js'
import { expectPositionals, integerFlag, parseArgs, UsageError } from '../args.js'
import { writeJson, type CommandRun } from '../output.js'
import { close, fetchServer, listen, listeningLine, plan, serveUntilStopped, signingKeys } from '../server.js'
import { loopbackOptions, serverUrlFlag } from '../shared.js'

const COMMAND = 'resource serve'

const FLAGS = {
  port: { type: 'string' },
  domain: { type: 'string' },
  issuer: { type: 'string' },
  host: { type: 'string' },
  'key-file': { type: 'string' },
  ps: { type: 'string' },
  name: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
} as const

/** The scope `POST /items` requires. */
const ITEMS_SCOPE = 'items:write'
const WHOAMI: RouteRequirement = { access: 'agent' }
const ITEMS: RouteRequirement = { access: 'auth', scope: ITEMS_SCOPE }

/** One route, as the startup output lists it. */
interface RouteInfo {
  readonly method: string
  readonly path: string
  readonly url: string
  readonly access: RouteRequirement['access']
  readonly scope?: string
  /** What it answers; for `POST /items` without `--ps`, that it is not configured. */
  readonly answers: string
}

function notConfigured(): Response {
  const detail = `POST /items needs a person server to authorize it: restart with --ps URL (the person server whose auth tokens with scope ${ITEMS_SCOPE} are accepted)`
  return Response.json({ error: 'not_configured', detail, status: 501 }, { status: 501, headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' } })
}

/** The sample app: the resource's own endpoints, `/whoami`, `/items`. */
function sampleApp(resource: Resource, ps: string | undefined): Hono<AAuthEnv> {
  const app = new Hono<AAuthEnv>()
  let count = 0
  // Metadata, JWKS, revocation and authorization endpoints, on every path the core owns.
  app.use('*', async (c, next) => (await resource.serve(c.req.raw)) ?? next())
  app.get('/whoami', aauth(resource, WHOAMI), (c) => c.json({ agent: c.get('aauth').agent!.id }))
  if (ps === undefined) app.post('/items', () => notConfigured())
  else {
    app.post('/items', aauth(resource, ITEMS), async (c) => {
      const text = await c.req.text()
      let body: unknown = {}
      try {
        if (text !== '') body = JSON.parse(text)
      } catch {
        body = undefined
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return problemResponse(new ProblemError('invalid_request', 'POST /items takes a JSON object (or no body)'))
      const person = c.get('aauth').person!
      const item = { ...body, id: `item-${++count}` }
      return c.json({ item, person: { ps: person.ps, sub: person.sub } }, 201, { location: `/items/${item.id}` })
    })
  }
  return app
}

/**
 * `aauth resource serve --port P [--ps URL] [...]`: serves until SIGINT/SIGTERM, then closes the
 * server and exits 0.
 */
export const resourceServe: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, COMMAND)
  expectPositionals(positionals, [], COMMAND)
  const idOpts = loopbackOptions(ctx)
  const port = integerFlag(flags.port, '--port', COMMAND, { min: 0, max: 65535 })
  if (port === undefined) throw new UsageError('--port P is required (0 picks a free port)', COMMAND)
  const issuerFlag = flags.issuer === undefined ? undefined : serverUrlFlag(flags.issuer, '--issuer', COMMAND, idOpts)
  const where = plan(COMMAND, 'resource', idOpts.allowInsecureLoopback, { domain: flags.domain, issuer: issuerFlag }, flags.host, port)
  const ps = flags.ps === undefined ? undefined : serverUrlFlag(flags.ps, '--ps', COMMAND, idOpts)
  const { keys, info: keyInfo, line: keyLine } = await signingKeys(flags['key-file'], ctx, 'the resource tokens it issues')

  let app: Hono<AAuthEnv> | undefined
  let resource: Resource | undefined
  const server = fetchServer(() => (app === undefined ? undefined : (req) => app!.fetch(req)), flags.verbose, ctx)
  const actualPort = await listen(server, port, where.bindHost)
  const issuer = where.issuer(actualPort)
  try {
    resource = createResource({
      issuer,
      keys,
      metadata: { name: flags.name ?? 'aauth sample resource', scope_descriptions: { [ITEMS_SCOPE]: 'Create items' } },
      ...(ps === undefined ? {} : { personServers: [ps] }),
      ...idOpts,
    })
    app = sampleApp(resource, ps)
  } catch (e) {
    await close(server)
    throw e
  }

  const routes: RouteInfo[] = [
    { method: 'GET', path: '/whoami', url: `${issuer}/whoami`, access: 'agent', answers: '200 {"agent": AGENT-ID} (an agent token)' },
    {
      method: 'POST',
      path: '/items',
      url: `${issuer}/items`,
      access: 'auth',
      scope: ITEMS_SCOPE,
      answers: ps === undefined ? '501 not_configured (no --ps)' : `201 {"item", "person": {"ps", "sub"}} (an auth token from ${ps} with scope ${ITEMS_SCOPE})`,
    },
  ]
  const info = {
    issuer,
    metadata: `${issuer}/.well-known/${DWK.resource}`,
    jwks: resource.metadata.jwks_uri,
    host: where.bindHost,
    port: actualPort,
    key: keyInfo,
    ps: ps ?? null,
    routes,
  }
  if (flags.json) writeJson(ctx.stdout, info)
  else {
    const lines = [
      'resource running',
      `  issuer:    ${issuer}`,
      `  metadata:  ${info.metadata}`,
      `  listening: ${listeningLine(where, actualPort, issuer)}`,
      `  key:       ${keyLine}`,
      `  ps:        ${ps ?? 'none: POST /items answers 501 (give --ps URL to authorize it)'}`,
      'routes:',
      ...routes.map((r) => `  ${r.method.padEnd(4)} ${r.url}  → ${r.answers}`),
      'Ctrl-C to stop.',
    ]
    ctx.stdout.write(lines.join('\n') + '\n')
  }
  const code = await serveUntilStopped(server, ctx, 'resource')
  await resource.store.close?.()
  return code
}
