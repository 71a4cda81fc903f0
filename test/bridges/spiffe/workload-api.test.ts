import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createWorkloadApiSource,
  loadWorkloadApi,
  staticTrustBundles,
  verifyJwtSvid,
  verifyX509Svid,
  workloadApiTarget,
  type WorkloadApiSource,
  type X509Svid,
} from '../../../src/bridges/spiffe/index.js'
import { TD, ID, AUD, createTestCa, prepareJwks, startWorkloadApi, type TestCa, type TestWorkloadApi } from '../../helpers/spiffe.js'

let ca: TestCa
let api: TestWorkloadApi
const sources: WorkloadApiSource[] = []

beforeAll(async () => {
  ca = await prepareJwks(await createTestCa(TD))
  api = await startWorkloadApi({ ca, spiffeId: ID })
})
afterAll(async () => {
  for (const s of sources) s.close()
  await api.close()
})

function source(opts: Parameters<typeof createWorkloadApiSource>[0] = {}): WorkloadApiSource {
  const s = createWorkloadApiSource({ socketPath: api.endpoint, backoffMs: { initial: 50, max: 500 }, ...opts })
  sources.push(s)
  return s
}

/** Resolves with the next rotated SVID the source reports. */
const nextRotation = (s: WorkloadApiSource) => new Promise<X509Svid>((resolve) => {
  const off = s.onRotate((svid) => {
    off()
    resolve(svid)
  })
})

describe('Workload API endpoint (Workload API §4)', () => {
  it('accepts unix: URIs and absolute paths; refuses others', () => {
    expect(workloadApiTarget('unix:///run/spire/agent.sock')).toBe('unix:/run/spire/agent.sock')
    expect(workloadApiTarget('unix:/run/spire/agent.sock')).toBe('unix:/run/spire/agent.sock')
    expect(workloadApiTarget('/run/spire/agent.sock')).toBe('unix:/run/spire/agent.sock')
    expect(() => workloadApiTarget('tcp://127.0.0.1:8081')).toThrow(/only unix: endpoints/)
    expect(() => workloadApiTarget('unix:relative.sock')).toThrow(/must be absolute/)
    expect(() => workloadApiTarget(undefined)).toThrow(/SPIFFE_ENDPOINT_SOCKET/)
  })

  it('reads SPIFFE_ENDPOINT_SOCKET when no socketPath is given', async () => {
    const saved = process.env['SPIFFE_ENDPOINT_SOCKET']
    process.env['SPIFFE_ENDPOINT_SOCKET'] = api.endpoint
    try {
      const s = createWorkloadApiSource()
      sources.push(s)
      expect((await s.x509Svid()).spiffeId).toBe(ID)
    } finally {
      if (saved === undefined) delete process.env['SPIFFE_ENDPOINT_SOCKET']
      else process.env['SPIFFE_ENDPOINT_SOCKET'] = saved
    }
  })
})

describe('Workload API client (Workload API §5, §6)', () => {
  it('the server refuses a call without the workload.spiffe.io metadata (InvalidArgument)', async () => {
    const { grpc, Client } = await loadWorkloadApi()
    const client = new Client(`unix:${api.socketPath}`, grpc.credentials.createInsecure())
    try {
      const err = await new Promise<Error & { code?: number }>((resolve) =>
        client.FetchJWTSVID({ audience: [AUD] }, new grpc.Metadata(), { deadline: new Date(Date.now() + 5000) }, (e) => resolve(e!)),
      )
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(err.message).toMatch(/security header missing/)
      expect(api.refused).toBeGreaterThan(0)
    } finally {
      client.close()
    }
  })

  it('fetches the X.509-SVID that validates against the trust bundle', async () => {
    const s = source()
    await s.ready
    const svid = await s.x509Svid()
    expect(svid.spiffeId).toBe(ID)
    expect(Buffer.from(svid.certChain[0]!)).toEqual(Buffer.from(api.current.der))
    expect(svid.bundle).toHaveLength(1)
    expect(svid.expiresAt).toBe(api.current.cert.notAfter.getTime())
    await expect(verifyX509Svid(svid.certChain, { bundles: staticTrustBundles({ [TD]: ca.bundle() }) })).resolves.toMatchObject({ spiffeId: ID })
  })

  it('observes a rotation mid-run on the open stream', async () => {
    const s = source()
    const first = await s.x509Svid()
    const opened = api.streamsOpened
    const rotated = nextRotation(s)
    const minted = await api.rotate()
    const next = await rotated
    expect(Buffer.from(next.certChain[0]!)).toEqual(Buffer.from(minted.der))
    expect(Buffer.from(next.certChain[0]!)).not.toEqual(Buffer.from(first.certChain[0]!))
    expect(Buffer.from((await s.x509Svid()).certChain[0]!)).toEqual(Buffer.from(minted.der))
    expect(api.streamsOpened).toBe(opened) // pushed on the same stream, not re-fetched
  })

  it('fetches a JWT-SVID per audience and reuses it until close to exp', async () => {
    const s = source()
    const a = await s.jwtSvid(AUD)
    expect(a.spiffeId).toBe(ID)
    await expect(verifyJwtSvid(a.token, { audience: AUD, bundles: staticTrustBundles({ [TD]: ca.bundle() }) })).resolves.toMatchObject({ spiffeId: ID })
    expect((await s.jwtSvid(AUD)).token).toBe(a.token)
    const b = await s.jwtSvid('https://other.example')
    expect(b.token).not.toBe(a.token)
    // With a margin longer than the SVID's life, every call fetches a new one.
    const eager = source({ jwtRefreshMarginSec: 3600 })
    const t1 = await eager.jwtSvid(AUD)
    const t2 = await eager.jwtSvid(AUD)
    expect(t2).not.toBe(t1)
  })

  it('reconnects after the server restarts and receives SVIDs again', async () => {
    const s = source()
    await s.x509Svid()
    const opened = api.streamsOpened
    await api.restart()
    await expect.poll(() => api.streamsOpened, { timeout: 10_000 }).toBeGreaterThan(opened)
    const rotated = nextRotation(s)
    const minted = await api.rotate()
    expect(Buffer.from((await rotated).certChain[0]!)).toEqual(Buffer.from(minted.der))
  })

  it('after close, calls fail and ready rejects', async () => {
    const s = source()
    await s.ready
    s.close()
    await expect(s.x509Svid()).rejects.toThrow(/closed/)
    await expect(s.jwtSvid(AUD)).rejects.toThrow(/closed/)
    const never = source({ socketPath: `unix:${api.socketPath}.missing`, timeoutMs: 300 })
    await expect(never.x509Svid()).rejects.toThrow(/no X\.509-SVID from the Workload API/)
    never.close()
    await expect(never.ready).rejects.toThrow(/closed/)
  })
})
