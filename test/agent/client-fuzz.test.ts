/**
 * The flow engine against arbitrary server behaviour: whatever status, AAuth-Requirement,
 * Signature-Error, Location, Retry-After and body a resource sends, `client.fetch` either
 * resolves with a Response or rejects with a typed `AAuthError` — never another exception, never
 * a hang (bounded rounds, polls and deadline). Real HTTP on 127.0.0.1.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient, type AgentClient } from '../../src/agent/index.js'
import { AAuthError, createSigner, generateKeyPair, serializeRequirement } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, startAgentProvider, startPersonServer, startResource } from '../helpers/aauth-servers.js'
import { numRuns } from '../helpers/property.js'

interface Scripted {
  status: number
  headers: Record<string, string>
  body: string
}

let script: Scripted[] = []
let origin = ''
let client: AgentClient

beforeAll(async () => {
  const { ap } = await startAgentProvider()
  const ps = await startPersonServer()
  const res = await startResource({
    '/f': {
      kind: 'raw',
      respond: () => {
        const next = script.shift() ?? { status: 200, headers: {}, body: 'end' }
        return new Response(next.status === 204 || next.status === 304 ? null : next.body, { status: next.status, headers: next.headers })
      },
    },
  })
  origin = res.origin
  const key = await generateKeyPair()
  const token = await ap.issue({ local: 'fuzz-bot', cnfJwk: key.publicJwk, ps: ps.issuer })
  client = createAgentClient({
    credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)),
    ...LOOPBACK,
    minPollIntervalMs: 0,
    maxPolls: 3,
    maxRounds: 4,
    sleep: async () => undefined,
    // The scripted resource keeps no replay cache: poll at full speed.
    distinctCreated: false,
    onInteraction: () => undefined,
    onClarification: () => ({ action: 'respond', response: 'ok' }),
  })
})

afterAll(closeAll)

const requirement = fc.oneof(
  fc.constantFrom('agent-token', 'person-token', 'approval', 'clarification', 'claims', 'frobnicate').map((r) => `requirement=${r}`),
  fc.constant(serializeRequirement({ requirement: 'auth-token', resourceToken: 'eyJhbGciOiJub25lIn0.e30.' })),
  fc.constant('requirement=interaction; url="https://x.example/i"; code="ABCD-EFGH"'),
  fc.string({ maxLength: 40 }),
)
const sigError = fc.oneof(fc.constantFrom('error=expired_jwt', 'error=revoked_jwt', 'error=invalid_input, required_input=("prefer")', 'error=invalid_input, required_input=("x-nope")', 'error=unknown_key', 'error=weird'), fc.string({ maxLength: 30 }))
const location = fc.oneof(fc.constantFrom('/f', '/f?p=1', 'http://127.0.0.2:9/x', 'https://elsewhere.example/f', '::bad::'), fc.string({ maxLength: 20 }))
const response: fc.Arbitrary<Scripted> = fc.record({
  status: fc.constantFrom(200, 202, 301, 302, 303, 307, 400, 401, 402, 403, 408, 410, 429, 500, 503),
  requirement: fc.option(requirement, { nil: undefined }),
  sigError: fc.option(sigError, { nil: undefined }),
  location: fc.option(location, { nil: undefined }),
  retryAfter: fc.option(fc.oneof(fc.constantFrom('0', '1', '99999999999', 'soon'), fc.string({ maxLength: 8 })), { nil: undefined }),
  access: fc.option(fc.oneof(fc.constant('sess-1'), fc.string({ maxLength: 10 })), { nil: undefined }),
  body: fc.oneof(fc.constant('{"status":"pending"}'), fc.constant('{"error":"denied"}'), fc.constant('{"clarification":"why?"}'), fc.json(), fc.string({ maxLength: 30 })),
}).map((r) => {
  const headers: Record<string, string> = {}
  const put = (k: string, v: string | undefined) => {
    // Header values the platform cannot carry (CR, LF, NUL, non-Latin-1) are skipped.
    if (v !== undefined && /^[\x20-\x7e\t]*$/.test(v)) headers[k] = v
  }
  put('aauth-requirement', r.requirement)
  put('signature-error', r.sigError)
  put('location', r.location)
  put('retry-after', r.retryAfter)
  put('aauth-access', r.access)
  return { status: r.status, headers, body: r.body }
})

describe('agent client under arbitrary responses', () => {
  it('resolves or rejects typed, within bounds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(response, { minLength: 1, maxLength: 8 }), async (responses) => {
        script = [...responses]
        try {
          const r = await client.fetch(`${origin}/f`, { aauth: { deadline: Date.now() + 5000 } })
          expect(typeof r.status).toBe('number')
          await r.body?.cancel()
        } catch (e) {
          if (!(e instanceof AAuthError)) throw e
        }
      }),
      { numRuns: Math.min(numRuns, 2000) },
    )
  }, 120_000)
})
