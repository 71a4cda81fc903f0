/**
 * Interop: a resource built on `@hellocoop/httpsig` (the RFC 9421 library of the AAuth reference
 * SDK) verifies the requests our agent client sends, over real HTTP on 127.0.0.1.
 *
 * The resource verifies the HTTP signature with hellocoop's `verify` (which takes the key from the
 * agent token's `cnf.jwk`) and then the agent token itself with aauth-kit, as a real resource
 * built on hellocoop would have to: hellocoop decodes a `jwt`-scheme token but does not check its
 * issuer signature.
 *
 * Known difference (pinned, see also httpsig-libraries.test.ts): hellocoop 2.2.0 takes `query`
 * "without leading '?'" and signs/verifies `@query` that way, where RFC 9421 §2.2.7 includes the
 * `?`. A resource that passes the query the documented way refuses every signed request that has a
 * query; passing `url.search` (with the `?`) makes hellocoop compute the RFC value and the same
 * requests verify. We sign the RFC value.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { verify as hcVerify } from '@hellocoop/httpsig'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient, type AgentClient } from '../../src/agent/index.js'
import { createSigner, generateKeyPair, jwkThumbprint, SignatureError, verifyAgentToken } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, loopbackJwks, startAgentProvider } from '../helpers/aauth-servers.js'

type QueryStyle = 'documented' | 'rfc'

let server: Server
let origin: string
let client: AgentClient
let agentJkt: string
let agentId: string
const jwks = loopbackJwks()

function headersOf(req: IncomingMessage): Headers {
  const h = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) h.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  return h
}

/** The hellocoop resource: `?style=` picks how it hands the query to hellocoop. */
async function handle(req: IncomingMessage, body: Buffer): Promise<{ status: number; json: unknown; headers?: Record<string, string> }> {
  const url = new URL(req.url ?? '/', origin)
  const style: QueryStyle = url.pathname.startsWith('/documented') ? 'documented' : 'rfc'
  const query = url.search === '' ? undefined : style === 'documented' ? url.search.slice(1) : url.search
  const r = await hcVerify(
    {
      method: req.method ?? 'GET',
      authority: url.host,
      path: url.pathname,
      ...(query === undefined ? {} : { query }),
      headers: headersOf(req),
      ...(body.byteLength === 0 ? {} : { body }),
    },
    { requireContentDigest: body.byteLength > 0 },
  )
  if (!r.verified || r.jwt === undefined) {
    return { status: 401, json: { error: r.signatureError?.error ?? 'invalid_signature' }, headers: { 'signature-error': `error=${r.signatureError?.error ?? 'invalid_signature'}` } }
  }
  const claims = await verifyAgentToken(r.jwt.raw, { jwks, ...LOOPBACK })
  return { status: 200, json: { thumbprint: r.thumbprint, agent: claims.sub, keyType: r.keyType, body: body.toString() } }
}

beforeAll(async () => {
  const { ap } = await startAgentProvider()
  const key = await generateKeyPair('Ed25519')
  const token = await ap.issue({ local: 'interop-bot', cnfJwk: key.publicJwk })
  agentJkt = await jwkThumbprint(key.publicJwk)
  client = createAgentClient({ credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)), ...LOOPBACK })
  agentId = (await client.credentials.current()).claims.sub
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      handle(req, Buffer.concat(chunks)).then(
        (out) => res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers }).end(JSON.stringify(out.json)),
        (e: unknown) => res.writeHead(500).end(String(e)),
      )
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()))
  await closeAll()
})

describe('a resource built on @hellocoop/httpsig verifies our agent (AG-SIG-01)', () => {
  it('GET without a query: jwt scheme, our key thumbprint, our agent token', async () => {
    const res = await client.fetch(`${origin}/flights`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ thumbprint: agentJkt, agent: agentId, keyType: 'jwt' })
  })

  it('POST with a JSON body: content-type and content-digest covered and checked', async () => {
    const res = await client.fetch(`${origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"fare":"ECO-SYD","amount":320}' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ thumbprint: agentJkt, body: '{"fare":"ECO-SYD","amount":320}' })
  })

  it('GET with a query verifies when the resource hands hellocoop the query with its "?" (RFC 9421 §2.2.7)', async () => {
    const res = await client.fetch(`${origin}/flights?to=SYD&date=2027-01-15`)
    expect(res.status).toBe(200)
  })

  it('INTEROP pinned: with the query passed the documented way (no "?"), hellocoop refuses every signed query', async () => {
    // The agent surfaces the refusal as a typed error carrying hellocoop's code.
    const err = await client.fetch(`${origin}/documented/flights?to=SYD`).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SignatureError)
    expect(err).toMatchObject({ code: 'invalid_signature', status: 401 })
  })
})
