import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEgressFetcher, EgressError } from '../../src/protocol/index.js'

let server: Server
let base: string

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ok') return res.end(JSON.stringify({ ok: true }))
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/ok' })
      return res.end()
    }
    if (req.url === '/big') return res.end('x'.repeat(2 * 1024 * 1024))
    if (req.url === '/big-chunked') {
      res.writeHead(200, { 'transfer-encoding': 'chunked' })
      for (let i = 0; i < 64; i++) res.write('y'.repeat(32 * 1024))
      return res.end()
    }
    if (req.url === '/hang') return undefined // never answers
    return res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

const code = async (p: Promise<unknown>): Promise<string> => {
  const e = await p.then(() => undefined, (err: unknown) => err)
  expect(e).toBeInstanceOf(EgressError)
  return (e as EgressError).code
}

describe('egress admission (SK §7.3; CHECKLIST SK-26, JWKS-10)', () => {
  it('SK-26 https only: a loopback http URL is refused unless allowInsecureLoopback', async () => {
    expect(await code(createEgressFetcher()(`${base}/ok`))).toBe('egress_refused')
    const res = await createEgressFetcher({ allowInsecureLoopback: true })(`${base}/ok`)
    expect(res.status).toBe(200)
    expect(JSON.parse(new TextDecoder().decode(res.body))).toEqual({ ok: true })
  })

  it.each([
    'https://10.0.0.1/x',
    'https://192.168.1.1/x',
    'https://172.16.0.1/x',
    'https://169.254.169.254/latest/meta-data',
    'https://127.0.0.1/x',
    'https://localhost/x',
    'https://[::1]/x',
    'https://[fe80::1]/x',
    'https://user:pw@agent.example/x',
    'ftp://agent.example/x',
    'http://agent.example/x',
  ])('SK-26 NEG-META-09 refuses %s before connecting', async (url) => {
    expect(await code(createEgressFetcher({ allowInsecureLoopback: true })(url))).toBe('egress_refused')
  })

  it('dev loopback admits only 127.0.0.1/localhost, not other private space', async () => {
    expect(await code(createEgressFetcher({ allowInsecureLoopback: true })('http://10.0.0.1:8080/x'))).toBe('egress_refused')
  })

  it('SK-26 DNS answers are checked and pinned: a name resolving to private space is refused', async () => {
    const port = (server.address() as AddressInfo).port
    for (const address of ['127.0.0.1', '10.1.2.3', '::ffff:192.168.0.1', 'fd00::1']) {
      const fetcher = createEgressFetcher({ resolve: async () => [{ address, family: address.includes(':') ? 6 : 4 }], timeoutMs: 2000 })
      expect(await code(fetcher(`https://rebind.example:${port}/ok`))).toBe('egress_refused')
    }
  })

  it('SK-26 redirects are never followed', async () => {
    expect(await code(createEgressFetcher({ allowInsecureLoopback: true })(`${base}/redirect`))).toBe('fetch_failed')
  })

  it('SK-26 response size is bounded (declared and streamed)', async () => {
    const f = createEgressFetcher({ allowInsecureLoopback: true, maxBytes: 1024 * 1024 })
    expect(await code(f(`${base}/big`))).toBe('response_too_large')
    expect(await code(f(`${base}/big-chunked`))).toBe('response_too_large')
  })

  it('SK-26 a silent server times out', async () => {
    expect(await code(createEgressFetcher({ allowInsecureLoopback: true, timeoutMs: 200 })(`${base}/hang`))).toBe('fetch_timeout')
  })
})

describe('admitDestination (signed POSTs that cannot use the egress fetcher)', () => {
  it('refuses a name that resolves to private, loopback or link-local space; admits a public one', async () => {
    const { admitDestination } = await import('../../src/protocol/egress.js')
    const resolveTo = (address: string) => async () => [{ address, family: address.includes(':') ? 6 : 4 }]
    for (const bad of ['10.1.2.3', '127.0.0.1', '169.254.169.254', '::1', 'fd00::1', '::ffff:192.168.0.1']) {
      await expect(admitDestination('https://resource.example/revoke', { resolve: resolveTo(bad) })).rejects.toMatchObject({ code: 'egress_refused' })
    }
    await expect(admitDestination('https://resource.example/revoke', { resolve: resolveTo('93.184.216.34') })).resolves.toBeInstanceOf(URL)
    await expect(admitDestination('http://127.0.0.1:8080/revoke', { allowInsecureLoopback: true })).resolves.toBeInstanceOf(URL)
    await expect(admitDestination('http://resource.example/revoke')).rejects.toMatchObject({ code: 'egress_refused' })
  })
})
