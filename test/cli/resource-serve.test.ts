/**
 * `aauth resource serve` as a user runs it: real child processes with AAUTH_DEV_LOOPBACK=1, driven
 * by the agent client (`createAgentClient`) and by `aauth fetch` itself, with the test agent
 * provider and Person Server of test/helpers/aauth-servers.ts on 127.0.0.1.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient, saveKeyFile, type AgentClient } from '../../src/agent/index.js'
import type { AgentStep } from '../../src/agent/signed-transport.js'
import { createSigner, generateKeyPair } from '../../src/protocol/index.js'
import { closeAll, startAgentProvider, startPersonServer, type TestPersonServer } from '../helpers/aauth-servers.js'
import { expectUsageErrors, runCli, startCli, type CliServer } from './cli-process.js'

interface ServeInfo {
  issuer: string
  metadata: string
  jwks: string
  host: string
  port: number
  key: { kid: string; ephemeral?: true; file?: string; created?: boolean }
  ps: string | null
  routes: { method: string; path: string; url: string; access: string; scope?: string; answers: string }[]
}

let dir: string
let ps: TestPersonServer
let withPs: CliServer
let bare: CliServer
let served: ServeInfo
let bareInfo: ServeInfo
let agentId: string
let token: string
let cliToken: string
let keyFile: string
let steps: AgentStep[]
let client: AgentClient

const startJson = async (args: string[]): Promise<[CliServer, ServeInfo]> => {
  const server = startCli(['resource', 'serve', '--port', '0', '--json', ...args])
  return [server, JSON.parse((await server.waitFor(/^\{.*\}$/m))[0]) as ServeInfo]
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aauth-resource-serve-'))
  const [{ ap, issuer }, person] = await Promise.all([startAgentProvider(), startPersonServer()])
  ps = person
  ;[[withPs, served], [bare, bareInfo]] = await Promise.all([startJson(['--ps', ps.issuer]), startJson([])])
  // One key for the in-process client, another for the CLI: two identical GETs signed with one
  // key in the same second are byte-identical, and the second is refused as a replay.
  const [key, cliKey] = await Promise.all([generateKeyPair(), generateKeyPair()])
  keyFile = join(dir, 'agent.key')
  await saveKeyFile(keyFile, cliKey.privateJwk)
  ;[token, cliToken] = await Promise.all([ap.issue({ local: 'sample-bot', cnfJwk: key.publicJwk, ps: ps.issuer }), ap.issue({ local: 'sample-bot', cnfJwk: cliKey.publicJwk, ps: ps.issuer })])
  agentId = `aauth:sample-bot@${new URL(issuer).host}`
  steps = []
  client = createAgentClient({ credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)), allowInsecureLoopback: true, onStep: (s) => steps.push(s) })
}, 30_000)

afterAll(async () => {
  await Promise.all([withPs?.stop(), bare?.stop()])
  await closeAll()
  rmSync(dir, { recursive: true, force: true })
})

const postItem = (issuer: string, body: unknown) => client.fetch(`${issuer}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('aauth resource serve', () => {
  it('serves on a free port and prints the issuer, the metadata and the routes as a JSON line', async () => {
    expect(served.issuer).toBe(`http://127.0.0.1:${served.port}`)
    expect(served).toMatchObject({ host: '127.0.0.1', ps: ps.issuer, key: { ephemeral: true }, metadata: `${served.issuer}/.well-known/aauth-resource.json`, jwks: `${served.issuer}/.well-known/jwks.json` })
    expect(served.routes.map((r) => [r.method, r.url, r.access, r.scope])).toEqual([
      ['GET', `${served.issuer}/whoami`, 'agent', undefined],
      ['POST', `${served.issuer}/items`, 'auth', 'items:write'],
    ])
    const metadata = (await (await fetch(served.metadata)).json()) as Record<string, unknown>
    expect(metadata).toMatchObject({ issuer: served.issuer, jwks_uri: served.jwks, authorization_endpoint: `${served.issuer}/aauth/authorize`, scope_descriptions: { 'items:write': 'Create items' } })
    const jwks = (await (await fetch(served.jwks)).json()) as { keys: { kid: string }[] }
    expect(jwks.keys.map((k) => k.kid)).toEqual([served.key.kid])
    expect(bareInfo.ps).toBeNull()
    expect(bareInfo.routes[1]!.answers).toMatch(/^501 not_configured/)
  })

  it('GET /whoami answers the verified agent id to the agent client; an unsigned request is challenged', async () => {
    const res = await client.fetch(`${served.issuer}/whoami`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ agent: agentId })
    const unsigned = await fetch(`${served.issuer}/whoami`)
    expect(unsigned.status).toBe(401)
    expect(unsigned.headers.get('aauth-requirement')).toBe('requirement=agent-token')
  })

  it('POST /items goes agent → person → auth token and answers 201 with the item and the person (ps, sub)', async () => {
    steps.length = 0
    const res = await postItem(served.issuer, { name: 'pen' })
    expect(res.status).toBe(201)
    const body = (await res.json()) as { item: Record<string, unknown>; person: { ps: string; sub: string } }
    expect(body.item).toEqual({ name: 'pen', id: expect.stringMatching(/^item-\d+$/) })
    expect(res.headers.get('location')).toBe(`/items/${body.item['id']}`)
    expect(body.person).toEqual({ ps: ps.issuer, sub: expect.stringMatching(/^user-at-/) })
    const sent = steps.filter((s): s is Extract<AgentStep, { type: 'request' }> => s.type === 'request' && s.url.startsWith(served.issuer))
    expect(sent.map((s) => s.presenting)).toEqual(['agent', 'person', 'auth'])
    const answers = steps.filter((s): s is Extract<AgentStep, { type: 'response' }> => s.type === 'response' && s.url.startsWith(served.issuer))
    expect(answers.map((s) => s.status)).toEqual([401, 401, 201])
    expect(answers[0]!.requirement).toBe('requirement=person-token')
    expect(answers[1]!.requirement).toMatch(/^requirement=auth-token; resource-token="/)
    expect(ps.received.map((r) => r.path)).toEqual(expect.arrayContaining(['/person', '/token']))
    // The auth token is held: the next item needs no new consent.
    steps.length = 0
    expect((await postItem(served.issuer, { name: 'ink' })).status).toBe(201)
    expect(steps.filter((s) => s.type === 'request').map((s) => (s as { presenting: string }).presenting)).toEqual(['auth'])
  })

  it('without --ps, POST /items answers 501 with an explanatory problem body; /whoami still works', async () => {
    const res = await postItem(bareInfo.issuer, { name: 'pen' })
    expect(res.status).toBe(501)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect(await res.json()).toEqual({ error: 'not_configured', status: 501, detail: expect.stringContaining('restart with --ps URL') })
    expect(await (await client.fetch(`${bareInfo.issuer}/whoami`)).json()).toEqual({ agent: agentId })
  })

  it('aauth fetch (a second child process) gets /whoami and posts an item end to end', async () => {
    const who = await runCli(['fetch', '--token', cliToken, '--key', keyFile, `${served.issuer}/whoami`])
    expect(who).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(who.stdout)).toEqual({ agent: agentId })
    const post = await runCli(['fetch', '--json', '-d', '{"name":"cup"}', '--token', cliToken, '--key', keyFile, `${served.issuer}/items`])
    expect(post.code).toBe(0)
    const out = JSON.parse(post.stdout) as { status: number; body: { item: Record<string, unknown>; person: { ps: string } }; steps: { type: string; url?: string; presenting?: string }[] }
    expect(out.status).toBe(201)
    expect(out.body).toMatchObject({ item: { name: 'cup' }, person: { ps: ps.issuer } })
    // To the resource (the person server's token requests present the agent token in between).
    const atResource = out.steps.filter((s) => s.type === 'request' && s.url === `${served.issuer}/items`)
    expect(atResource.map((s) => s.presenting)).toEqual(['agent', 'person', 'auth'])
  })

  it('prints a readable startup with a key file (created, mode 0600) and stops cleanly on SIGINT', async () => {
    const file = join(dir, 'resource.key')
    const server = startCli(['resource', 'serve', '--port', '0', '--key-file', file, '--ps', ps.issuer])
    const [, issuer] = await server.waitFor(/issuer:\s+(\S+)/)
    await server.waitFor(/Ctrl-C to stop/)
    expect(server.stdout()).toContain(`  ps:        ${ps.issuer}\n`)
    expect(server.stdout()).toMatch(new RegExp(`GET {2}${issuer}/whoami  → 200`))
    expect(server.stdout()).toMatch(new RegExp(`POST ${issuer}/items  → 201`))
    expect(server.stdout()).toContain(`key:       ${file} (created, mode 0600), kid `)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const kid = (JSON.parse(readFileSync(file, 'utf8')) as { kid: string }).kid
    expect(((await (await fetch(`${issuer}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys[0]!.kid).toBe(kid)
    expect(await server.stop('SIGINT')).toBe(0)
    expect(server.stderr()).toBe('aauth: SIGINT: resource stopped\n')
  })

  it('usage errors exit 2 with a readable message', async () => {
    const noDev = { AAUTH_DEV_LOOPBACK: undefined }
    await expectUsageErrors([
      [['resource', 'serve'], /^aauth: --port P is required/],
      [['resource', 'serve', '--port', '0', '--domain', 'api.example', '--issuer', 'https://api.example'], /^aauth: --issuer and --domain both name the issuer/],
      [['resource', 'serve', '--port', '0', '--issuer', 'http://127.0.0.1:8081'], /^aauth: --issuer http:\/\/127\.0\.0\.1:8081 names port 8081, but the resource listens on a free port/],
      [['resource', 'serve', '--port', '0', '--ps', 'http://127.0.0.1:9'], /^aauth: --domain D is required/, noDev],
      [['resource', 'serve', '--port', '0', '--domain', 'api.example', '--ps', 'http://127.0.0.1:9'], /^aauth: --ps "http:\/\/127\.0\.0\.1:9" is not a server identifier.*AAUTH_DEV_LOOPBACK=1/, noDev],
      [['resource'], /^aauth: aauth resource needs a subcommand: serve\n/],
    ])
    const helpText = await runCli(['resource', 'serve', '--help'])
    expect(helpText.stdout).toMatch(/^Usage: aauth resource serve --port P/)
    expect(helpText.stdout).toContain('501')
  })
})
