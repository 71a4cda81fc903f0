/**
 * The `aauth` command as a user runs it: real child processes (`node --import tsx src/cli/main.ts`)
 * with AAUTH_DEV_LOOPBACK=1 against real servers on 127.0.0.1 — an agent provider run by
 * `aauth agent serve`, and the test Person Server and resource of test/helpers/aauth-servers.ts.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentToken, generateKeyPair, type PrivateJwk } from '../../src/protocol/index.js'
import { closeAll, startPersonServer, startResource, type TestPersonServer, type TestResource } from '../helpers/aauth-servers.js'
import { expectUsageErrors, runCli, startCli, type CliServer } from './cli-process.js'

interface ServeInfo {
  issuer: string
  metadata: string
  jwks: string
  port: number
  key: { kid: string; file: string }
  enrollments: { agent: string; local: string; code: string; ps: string }[]
}

let dir: string
let ps: TestPersonServer
let res: TestResource
let ap: CliServer
let info: ServeInfo
let agentKey: string
let enrolled: Awaited<ReturnType<typeof runCli>>

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aauth-cli-'))
  ps = await startPersonServer()
  res = await startResource({
    '/hello': { kind: 'agent' },
    '/flights': { kind: 'auth', scope: 'flights.read' },
    '/bookings': { kind: 'auth', scope: 'bookings.write' },
    '/trips': { kind: 'auth', scope: 'trips.read' },
    '/echo': { kind: 'raw', respond: async (req) => Response.json({ method: req.method, contentType: req.headers.get('content-type'), body: await req.text() }) },
    '/gone': { kind: 'raw', respond: () => new Response('no such trip\n', { status: 404, headers: { 'content-type': 'text/plain' } }) },
    '/stuck': { kind: 'raw', respond: () => new Promise<Response>(() => undefined) },
  })
  ap = startCli(['agent', 'serve', '--port', '0', '--json', '--key-file', join(dir, 'ap.key'), '--enroll', 'travel-bot', '--enroll', 'spare', '--ps', ps.issuer, '--name', 'CLI test agents'])
  info = JSON.parse((await ap.waitFor(/^\{.*\}$/m))[0]) as ServeInfo
  agentKey = join(dir, 'agent.key')
  enrolled = await runCli(['agent', 'enroll', '--provider', info.issuer, '--code', info.enrollments[0]!.code, '--key', agentKey])
}, 30_000)

afterAll(async () => {
  await ap?.stop()
  await closeAll()
  rmSync(dir, { recursive: true, force: true })
})

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

const agent = () => ['--provider', info.issuer, '--key', agentKey]

describe('aauth agent serve / enroll', () => {
  it('serves an agent provider on a free port and prints the issuer and the enrollment codes', async () => {
    expect(info.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(info.port).toBeGreaterThan(0)
    expect(info.issuer).toBe(`http://127.0.0.1:${info.port}`)
    expect(info.enrollments.map((e) => e.agent)).toEqual([`aauth:travel-bot@127.0.0.1:${info.port}`, `aauth:spare@127.0.0.1:${info.port}`])
    expect(info.enrollments[0]).toMatchObject({ code: expect.stringMatching(/^[0-9A-Z]{26}$/), ps: ps.issuer })
    const metadata = (await (await fetch(info.metadata)).json()) as Record<string, unknown>
    expect(metadata).toEqual({ issuer: info.issuer, jwks_uri: info.jwks, name: 'CLI test agents' })
    const jwks = (await (await fetch(info.jwks)).json()) as { keys: { kid: string }[] }
    expect(jwks.keys.map((k) => k.kid)).toEqual([info.key.kid])
    expect(statSync(info.key.file).mode & 0o777).toBe(0o600)
  })

  it('prints a readable startup and stops cleanly on SIGTERM', async () => {
    const server = startCli(['agent', 'serve', '--port', '0', '--enroll', 'bot'])
    const [, issuer] = await server.waitFor(/issuer:\s+(\S+)/)
    await server.waitFor(/Ctrl-C to stop/)
    expect(server.stdout()).toMatch(new RegExp(`metadata:\\s+${issuer}/\\.well-known/aauth-agent\\.json`))
    expect(server.stdout()).toMatch(/aauth:bot@127\.0\.0\.1:\d+\s+[0-9A-Z]{26}/)
    expect(server.stderr()).toContain('ephemeral signing key')
    expect((await fetch(`${issuer}/.well-known/aauth-agent.json`)).status).toBe(200)
    expect(await server.stop('SIGTERM')).toBe(0)
    expect(server.stderr()).toContain('agent provider stopped')
  })

  it('enrolls a new key file (mode 0600) with a one-time code and prints the agent id; the code does not work twice', async () => {
    expect(enrolled).toMatchObject({ code: 0, stdout: `aauth:travel-bot@127.0.0.1:${info.port}\n` })
    expect(statSync(agentKey).mode & 0o777).toBe(0o600)
    const again = await runCli(['agent', 'enroll', '--provider', info.issuer, '--code', info.enrollments[0]!.code, '--key', join(dir, 'other.key')])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^aauth: invalid_request: enrollment code unknown, used or expired/)
    expect(again.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })
})

describe('aauth fetch', () => {
  it('signs a request with a provider-issued token and prints the body (exit 0)', async () => {
    const r = await runCli(['fetch', ...agent(), `${res.origin}/hello`])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, presented: 'agent', sub: `aauth:travel-bot@127.0.0.1:${info.port}` })
    expect(r.stderr).toBe('')
  })

  it('-v prints each step: the signature base, the challenges, the person and auth tokens, the retries', async () => {
    const r = await runCli(['fetch', '-v', ...agent(), `${res.origin}/flights`])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ presented: 'auth', scope: 'flights.read' })
    const err = r.stderr
    expect(err).toMatch(/\* obtained agent token from http:\/\/127\.0\.0\.1:\d+/)
    expect(err).toContain(`> GET ${res.origin}/flights\n>   presenting: agent token\n>   covered:    "@method" "@authority" "@path" "signature-key"\n>   signature base:\n>     "@method": GET\n`)
    expect(err).toMatch(/>     "@signature-params": \("@method" "@authority" "@path" "signature-key"\);created=\d+/)
    expect(err).toContain('<   AAuth-Requirement: requirement=person-token')
    expect(err).toContain(`> POST ${ps.issuer}/person`)
    expect(err).toMatch(new RegExp(`\\* obtained person token from ${ps.issuer} for ${res.origin}, expires \\S+ \\(in (59m|1h)\\)`))
    expect(err).toContain('<   AAuth-Requirement: requirement=auth-token; resource-token="')
    expect(err).toMatch(/\* obtained auth token from .*, scope "flights\.read"/)
    expect(err).toContain('>   presenting: auth token')
    expect(err).toMatch(/< 200 \(GET .*\/flights\)\n(<   .*\n)*<   content-type: application\/json\n/)
  })

  it('--json prints {status, headers, body, steps}; -d sets the content type from the data', async () => {
    const r = await runCli(['fetch', '--json', '-d', '{"fare":"ECO"}', '-H', 'X-Trace: 42', ...agent(), `${res.origin}/echo`])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { status: number; headers: Record<string, string>; body: Record<string, unknown>; steps: { type: string; signatureBase?: string }[] }
    expect(out.status).toBe(200)
    expect(out.headers['content-type']).toBe('application/json')
    expect(out.body).toEqual({ method: 'POST', contentType: 'application/json', body: '{"fare":"ECO"}' })
    expect(out.steps.map((s) => s.type)).toEqual(['token', 'request', 'response'])
    expect(out.steps[1]).toMatchObject({ presenting: 'agent', components: expect.arrayContaining(['content-type', 'content-digest']) })
    expect(out.steps[1]!.signatureBase).toBeUndefined()
    const text = await runCli(['fetch', '--json', '-X', 'put', '-d', 'hello', ...agent(), `${res.origin}/echo`])
    expect((JSON.parse(text.stdout) as { body: unknown }).body).toEqual({ method: 'PUT', contentType: 'text/plain', body: 'hello' })
  })

  it('exits 1 on an HTTP error status, with the body on stdout', async () => {
    const r = await runCli(['fetch', ...agent(), `${res.origin}/gone`])
    expect(r).toMatchObject({ code: 1, stdout: 'no such trip\n' })
    expect(r.stderr).toBe(`aauth: http_error: ${res.origin} answered 404 Not Found\n`)
  })

  it('--timeout bounds a request that is never answered', async () => {
    const t0 = Date.now()
    const r = await runCli(['fetch', '--timeout', '1', ...agent(), `${res.origin}/stuck`])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('aauth: deadline_exceeded: no answer within 1 s (--timeout)\n')
    expect(Date.now() - t0).toBeLessThan(8000)
  })

  it('shows the consent URL while the person decides, then completes (no indicator without a TTY)', async () => {
    ps.behaviour = { kind: 'interaction' }
    let approved = false
    try {
      const r = await runCli(['fetch', ...agent(), `${res.origin}/bookings`], {
        onStderr: (err) => {
          if (!approved && err.includes('/consent?code=')) {
            approved = true
            void ps.decide(true)
          }
        },
      })
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ presented: 'auth', scope: 'bookings.write' })
      expect(r.stderr).toMatch(new RegExp(`the person must approve this request — open:\\n  ${ps.issuer}/consent\\?code=[0-9A-Z]{4}-[0-9A-Z]{4}\\n`))
      expect(r.stderr).not.toContain('\r')
    } finally {
      ps.behaviour = { kind: 'grant' }
    }
  })

  it('without a terminal a clarification question ends the call with a readable error (exit 1)', async () => {
    ps.behaviour = { kind: 'clarification', question: 'Window or aisle?' }
    try {
      const r = await runCli(['fetch', '--json', ...agent(), `${res.origin}/trips`])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^aauth: clarification_required: .*Window or aisle\?/)
      const out = JSON.parse(r.stdout) as { error: { code: string }; steps: { type: string }[] }
      expect(out.error.code).toBe('clarification_required')
      expect(out.steps.map((s) => s.type)).toContain('clarification')
    } finally {
      ps.behaviour = { kind: 'grant' }
    }
  })

  it('--token signs with a fixed agent token bound to the key file (from aauth agent token)', async () => {
    const t = await runCli(['agent', 'token', ...agent()])
    expect(t.code).toBe(0)
    const token = t.stdout.trim()
    const r = await runCli(['fetch', '--token', token, '--key', agentKey, `${res.origin}/hello`])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ presented: 'agent' })
    const wrong = await runCli(['fetch', '--token', token, '--key', info.key.file, `${res.origin}/hello`])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/^aauth: key_mismatch: the agent token is bound to another key than /)
  })

  it('reports an unenrolled key readably, with what to do', async () => {
    const stranger = join(dir, 'stranger.key')
    expect((await runCli(['keygen', '--out', stranger])).code).toBe(0)
    const r = await runCli(['fetch', '--provider', info.issuer, '--key', stranger, `${res.origin}/hello`])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^aauth: denied: agent provider http:\/\/127\.0\.0\.1:\d+: this key is not enrolled\n/)
    expect(r.stderr).toContain('aauth agent enroll')
  })
})

describe('aauth token inspect', () => {
  it('verifies an agent token against its issuer and shows type, claims and validity', async () => {
    const token = (await runCli(['agent', 'token', ...agent()])).stdout.trim()
    const [human, json] = await Promise.all([runCli(['token', 'inspect', token]), runCli(['token', 'inspect', '--json', token])])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^agent token \(typ aa-agent\+jwt\)\n/)
    expect(human.stdout).toContain(`  issuer:    ${info.issuer}\n  subject:   aauth:travel-bot@127.0.0.1:${info.port}\n`)
    expect(human.stdout).toMatch(/ {2}expires: {3}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (59m|1h)\)/)
    expect(human.stdout).toContain('verified:    yes')
    expect(human.stdout).toContain('problems:    none')
    const out = JSON.parse(json.stdout) as Record<string, unknown>
    expect(out).toMatchObject({ type: 'agent', typ: 'aa-agent+jwt', issuer: info.issuer, verified: true, problems: [], cnfThumbprint: expect.any(String) })
    expect(out['claims']).toMatchObject({ ps: ps.issuer, dwk: 'aauth-agent.json' })
  })

  it('reports a tampered token as a verification failure (exit 1)', async () => {
    const token = (await runCli(['agent', 'token', ...agent()])).stdout.trim()
    const [h, p, s] = token.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: `aauth:admin@127.0.0.1:${info.port}` })).toString('base64url')}.${s}`
    const r = await runCli(['token', 'inspect', forged])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('verified:    no')
    expect(r.stdout).toContain('  - invalid_jwt: JWT signature does not verify')
  })

  it('reports an expired token (exit 1) and whether it was otherwise valid', async () => {
    const issuerKey = JSON.parse(readFileSync(info.key.file, 'utf8')) as PrivateJwk & { kid: string }
    const twoHoursAgo = Date.now() - 2 * 3600_000
    const token = await createAgentToken({ key: { kid: info.key.kid, privateJwk: issuerKey }, issuer: info.issuer, sub: `aauth:old@127.0.0.1:${info.port}`, cnfJwk: (await generateKeyPair()).publicJwk, now: () => twoHoursAgo, allowInsecureLoopback: true })
    const r = await runCli(['token', 'inspect', '--json', token])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout) as { verified: boolean; expiresIn: number; problems: { code: string; message: string; fatal: boolean }[] }
    expect(out.verified).toBe(false)
    expect(out.expiresIn).toBeLessThan(0)
    expect(out.problems).toEqual([{ code: 'expired_jwt', message: 'expired 1h ago; the signature and claims verify as of its expiry', fatal: true }])
  })

  it('shows a well-formed token whose issuer is unreachable as not verified (exit 0)', async () => {
    const port = await closedPort()
    const key = await generateKeyPair()
    const token = await createAgentToken({ key: { kid: 'k1', privateJwk: key.privateJwk }, issuer: `http://127.0.0.1:${port}`, sub: `aauth:bot@127.0.0.1:${port}`, cnfJwk: key.publicJwk, allowInsecureLoopback: true })
    const r = await runCli(['token', 'inspect', token])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('verified:    no')
    expect(r.stdout).toMatch(/ {2}- fetch_failed: not verified: issuer unreachable \(http:\/\/127\.0\.0\.1:\d+\/\.well-known\/aauth-agent\.json: request failed: connect ECONNREFUSED/)
  })

  it('refuses what is not a JWT (exit 1); token decode still decodes without verifying', async () => {
    const [bad, decoded] = await Promise.all([
      runCli(['token', 'inspect', 'not-a-token']),
      runCli(['token', 'decode', '--json', (await runCli(['agent', 'token', ...agent()])).stdout.trim()]),
    ])
    expect(bad.code).toBe(1)
    expect(bad.stdout).toContain('  - invalid_jwt: not a compact JWS')
    expect(decoded.code).toBe(0)
    expect(JSON.parse(decoded.stdout)).toMatchObject({ header: { typ: 'aa-agent+jwt' }, payload: { iss: info.issuer } })
  })
})

describe('usage', () => {
  it('usage errors exit 2 with a readable message and a pointer to the help', async () => {
    await expectUsageErrors([
      [['fetch', '--provider', 'http://127.0.0.1:1', '--key', 'k'], /^aauth: missing URL\n {2}see: aauth fetch --help\n$/],
      [['fetch', '--bogus', 'https://x.example/'], /^aauth: unknown option --bogus\n/],
      [['fetch', 'https://x.example/'], /^aauth: agent credentials needed: --provider URL --key FILE, or --token TOKEN --key FILE/],
      [['fetch', '-d', 'x', '-X', 'GET', '--token', 't', '--key', 'k', 'https://x.example/'], /^aauth: -d sends a body, which GET cannot carry/],
      [['agent', 'serve'], /^aauth: --port P is required/],
      [['agent'], /^aauth: aauth agent needs a subcommand: serve, enroll, token\n/],
      [['frobnicate'], /^aauth: unknown command "frobnicate"; commands: agent serve, agent enroll, agent token, resource serve, fetch, token inspect, token decode, person-server serve, person-server add-person, person-server audit, keygen\n/],
    ])
  })

  it('without AAUTH_DEV_LOOPBACK the provider needs a domain and http URLs are refused with a hint', async () => {
    const env = { AAUTH_DEV_LOOPBACK: undefined }
    const [serve, fetchHttp, json] = await Promise.all([
      runCli(['agent', 'serve', '--port', '0'], { env }),
      runCli(['fetch', '--token', 't', '--key', 'k', 'http://127.0.0.1:8080/x'], { env }),
      runCli(['agent', 'serve', '--port', '0', '--json'], { env }),
    ])
    expect(serve.code).toBe(2)
    expect(serve.stderr).toMatch(/^aauth: --domain D is required: the issuer is https:\/\/D/)
    expect(fetchHttp.code).toBe(2)
    expect(fetchHttp.stderr).toContain('only with AAUTH_DEV_LOOPBACK=1')
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'usage', message: expect.stringContaining('--domain D is required') } })
  })

  it('help lists every command; --help shows one; --version prints the version', async () => {
    const [main, fetchHelp, version] = await Promise.all([runCli(['help']), runCli(['fetch', '--help']), runCli(['--version'])])
    for (const c of ['agent serve', 'agent enroll', 'agent token', 'resource serve', 'fetch', 'token inspect', 'token decode', 'keygen']) expect(main.stdout).toContain(`aauth ${c}`)
    expect(fetchHelp.stdout).toMatch(/^Usage: aauth fetch \[options\] URL/)
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/)
  })
})
