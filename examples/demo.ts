/**
 * `npm run demo`: one signed request, end to end, on loopback.
 *
 * 1. An agent provider (AP) starts on 127.0.0.1 and publishes `/.well-known/aauth-agent.json`
 *    and its JWKS.
 * 2. An agent generates its own Ed25519 key; the AP issues it an agent token.
 * 3. A resource starts on 127.0.0.1 and verifies every request with aauth-kit.
 * 4. The agent signs `GET /flights?to=SYD` (RFC 9421, `Signature-Key: sig=jwt`) and calls it: 200.
 * 5. A replay of the same request to another path and an unsigned request are refused with 401
 *    and a `Signature-Error`.
 *
 * Everything runs in this process on 127.0.0.1 with `AAUTH_DEV_LOOPBACK=1` → `allowInsecureLoopback`
 * (the development switch that admits `http://127.0.0.1:PORT` issuers); production uses https.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createAgentToken,
  createEgressFetcher,
  createRequestVerifier,
  createSigner,
  decodeJwt,
  devLoopbackFromEnv,
  generateKeyPair,
  JwksCache,
  SignatureError,
  signatureErrorResponse,
  signRequest,
} from '../src/protocol/index.js'

const color = process.stdout.isTTY ? (c: number, s: string) => `\x1b[${c}m${s}\x1b[0m` : (_: number, s: string) => s
const step = (n: number, title: string) => console.log(`\n${color(1, `${n}. ${title}`)}`)
const show = (label: string, value: unknown) => console.log(`   ${color(2, label.padEnd(18))} ${typeof value === 'string' ? value : JSON.stringify(value, null, 2).replace(/\n/g, '\n' + ' '.repeat(22))}`)

type Handler = (req: IncomingMessage, url: URL) => Promise<Response> | Response

async function listen(handler: Handler): Promise<{ server: Server; origin: string }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`)
    Promise.resolve(handler(req, url)).then(async (r) => {
      const headers: Record<string, string> = {}
      r.headers.forEach((v, k) => (headers[k] = v))
      res.writeHead(r.status, headers)
      res.end(Buffer.from(await r.arrayBuffer()))
    }, (e: unknown) => {
      res.writeHead(500).end(String(e))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

function headersOf(req: IncomingMessage): Headers {
  const h = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) h.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  return h
}

async function main(): Promise<void> {
  console.log(color(1, 'aauth-kit demo: an agent signs a request, a resource verifies it'))
  // Everything below runs on http://127.0.0.1: the development switch must be on (npm run demo sets it).
  if (!devLoopbackFromEnv()) {
    console.error('The demo runs on http://127.0.0.1: set AAUTH_DEV_LOOPBACK=1 (npm run demo does).')
    process.exitCode = 2
    return
  }

  step(1, 'Agent provider publishes its metadata and keys')
  const apKey = await generateKeyPair('Ed25519')
  let apOrigin = ''
  const ap = await listen((_req, url) => {
    if (url.pathname === '/.well-known/aauth-agent.json') return Response.json({ issuer: apOrigin, jwks_uri: `${apOrigin}/.well-known/jwks.json`, name: 'Demo Agents' })
    if (url.pathname === '/.well-known/jwks.json') return Response.json({ keys: [{ ...apKey.publicJwk, kid: 'ap-key-1' }] })
    return new Response('not found', { status: 404 })
  })
  apOrigin = ap.origin
  show('issuer', apOrigin)
  show('metadata', `${apOrigin}/.well-known/aauth-agent.json`)

  step(2, 'Agent generates its own key; the provider issues an agent token')
  const agentKey = await generateKeyPair('Ed25519')
  const signer = await createSigner(agentKey.privateJwk)
  const agentId = `aauth:travel-bot.7f3c@${new URL(apOrigin).host}`
  const agentToken = await createAgentToken({
    key: { kid: 'ap-key-1', privateJwk: apKey.privateJwk },
    issuer: apOrigin,
    sub: agentId,
    cnfJwk: agentKey.publicJwk,
    lifetimeSec: 3600,
    allowInsecureLoopback: devLoopbackFromEnv(),
  })
  show('agent', agentId)
  show('token header', decodeJwt(agentToken).header)
  show('token claims', decodeJwt(agentToken).payload)

  step(3, 'Resource starts and verifies every request')
  const jwks = new JwksCache({ fetcher: createEgressFetcher({ allowInsecureLoopback: devLoopbackFromEnv() }), allowInsecureLoopback: devLoopbackFromEnv() })
  let resourceOrigin = ''
  const resource = await listen(async (req, url) => {
    const verifier = verifierFor(resourceOrigin)
    try {
      const v = await verifier.verify({ method: req.method ?? 'GET', url, headers: headersOf(req) })
      const who = v.key.context.scheme === 'jwt' ? v.key.context.claims.sub : v.key.context.issuer
      return Response.json({ flights: [{ to: url.searchParams.get('to'), fare: 'ECO-SYD', amount: 320 }], agent: who })
    } catch (e) {
      if (e instanceof SignatureError) return signatureErrorResponse(e)
      throw e
    }
  })
  resourceOrigin = resource.origin
  let verifier: ReturnType<typeof createRequestVerifier> | undefined
  function verifierFor(audience: string) {
    verifier ??= createRequestVerifier({ audience, jwks, allowInsecureLoopback: devLoopbackFromEnv() })
    return verifier
  }
  show('resource', resourceOrigin)

  step(4, 'Agent signs GET /flights?to=SYD and calls the resource')
  const url = `${resourceOrigin}/flights?to=SYD`
  const signed = await signRequest(
    { method: 'GET', url, headers: new Headers({ accept: 'application/json' }) },
    { signer, signatureKey: { scheme: 'jwt', jwt: agentToken, cache: false }, exposeBase: true },
  )
  show('covered', signed.components.join(' '))
  console.log(`   ${color(2, 'signature base')}\n${signed.signatureBase!.split('\n').map((l) => '     ' + (l.length > 110 ? l.slice(0, 107) + '...' : l)).join('\n')}`)
  show('Signature-Input', signed.headers.get('signature-input')!)
  show('Signature', signed.headers.get('signature')!)
  const ok = await fetch(url, { headers: signed.headers })
  show('response', `${ok.status} ${JSON.stringify(await ok.json())}`)

  step(5, 'The same signature replayed on another path, and an unsigned call, are refused')
  const replay = await fetch(`${resourceOrigin}/bookings`, { headers: signed.headers })
  show('replayed', `${replay.status} Signature-Error: ${replay.headers.get('signature-error')}`)
  const unsigned = await fetch(url)
  show('unsigned', `${unsigned.status} Signature-Error: ${unsigned.headers.get('signature-error')}`)

  ap.server.close()
  resource.server.close()
  const good = ok.status === 200 && replay.status === 401 && unsigned.status === 401
  console.log(`\n${good ? color(32, 'Done: signed request accepted, forgeries refused.') : color(31, 'Unexpected result.')}`)
  if (!good) process.exitCode = 1
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
