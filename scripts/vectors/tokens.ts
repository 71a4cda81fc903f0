/**
 * Token vectors: a token verified on its own, as a PS, AS or agent does with tokens carried as
 * request parameters (`resource_token`, `presented_token`, `upstream_token`, `subagent_token`).
 * Each failure gives the `Signature-Key` code and, for a parameter, the 400 body code it maps to
 * (CHECKLIST TOK-11, ERR-02, TOK-RT-*).
 */
import type { TokenParameter, TokensFile, TokenVector } from './types.js'
import { thumbprint } from './crypto.js'
import { AGENT_ID, agentToken, AP, authToken, baseNetwork, KEYS, personToken, PS, RESOURCE, resourceToken, T } from './world.js'

type Verify = TokenVector['verify']

/** ERR-02: how a failing parameter token is reported. */
function problem(error: string, parameter: TokenParameter): { status: number; error: string } {
  const code =
    error === 'expired_jwt' ? `expired_${parameter}_token`
    : error === 'revoked_jwt' ? `revoked_${parameter}_token`
    : error === 'clock_skew' ? 'clock_skew'
    : `invalid_${parameter}_token`
  return { status: 400, error: code }
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

interface Row {
  readonly id: string
  readonly title: string
  readonly refs: readonly string[]
  readonly token: string
  readonly verify: Omit<Verify, 'now'> & { now?: number }
  readonly carriedAs?: TokenParameter
  /** `undefined`: the token verifies and yields its payload. */
  readonly error?: string
  readonly level?: 'SHOULD'
}

const AGENT_JKT = thumbprint(KEYS.agent.publicJwk)
const AT_PS: Omit<Verify, 'now'> = { type: 'aa-resource+jwt', audience: PS.issuer, agentJkt: AGENT_JKT }

function resourceRows(): Row[] {
  const rt = (id: string, title: string, refs: string[], patch: Parameters<typeof resourceToken>[0], error?: string, verify = AT_PS): Row => ({
    id, title, refs, token: resourceToken(patch), verify, carriedAs: 'resource', ...(error === undefined ? {} : { error }),
  })
  return [
    rt('rt-ok-at-ps', 'resource token redeemed at the PS it names, bound to the signing key', ['TOK-RT-01', 'TOK-RT-04'], {}),
    rt('rt-ok-at-agent', 'the agent checks a resource token came from the resource it called', ['TOK-RT-01'], {}, undefined, { type: 'aa-resource+jwt', issuer: RESOURCE.issuer }),
    rt('rt-issuer-mismatch', 'the agent receives a resource token issued by another resource', ['TOK-RT-01'], {}, 'invalid_jwt', { type: 'aa-resource+jwt', issuer: 'https://other-api.example' }),
    rt('rt-wrong-aud', 'resource token for another PS', ['TOK-RT-04'], { payload: { aud: 'https://other-ps.example' } }, 'invalid_jwt'),
    rt('rt-agent-jkt', 'resource token bound to another agent key', ['TOK-RT-04', 'TOK-07'], { payload: { agent_jkt: thumbprint(KEYS['other-agent'].publicJwk) } }, 'invalid_jwt'),
    rt('rt-expired', 'expired resource token', ['TOK-RT-03', 'TOK-11'], { payload: { exp: T - 1 } }, 'expired_jwt'),
    rt('rt-cnf', 'resource token carrying cnf', ['TOK-RT-01'], { payload: { cnf: { jwk: KEYS.agent.publicJwk } } }, 'invalid_jwt'),
    rt('rt-no-presented-jti', 'resource token without presented_jti', ['TOK-RT-01'], { payload: { presented_jti: undefined } }, 'invalid_jwt'),
    rt('rt-ps-http', 'resource token whose ps uses http', ['TOK-RT-01', 'ID-06'], { payload: { ps: 'http://ps.example' } }, 'invalid_jwt'),
    rt('rt-dwk', 'resource token with dwk aauth-agent.json', ['TOK-03'], { payload: { dwk: 'aauth-agent.json' } }, 'invalid_jwt'),
    { ...rt('rt-lifetime', 'resource token lifetime over 5 minutes', ['TOK-RT-03', 'TOK-04'], { payload: { exp: T - 10 + 301 } }, 'invalid_jwt'), level: 'SHOULD' },
    rt('rt-interaction', 'resource token carrying a resource-initiated interaction', ['TOK-RT-01'], { payload: { interaction: { url: 'https://api.example/interact', code: '7KQ2-M9XD' } } }),
    rt('rt-interaction-http', 'interaction url using http', ['TOK-RT-01', 'ID-08'], { payload: { interaction: { url: 'http://api.example/interact', code: '7KQ2-M9XD' } } }, 'invalid_jwt'),
    rt('rt-mission', 'mission_s256 that is not a base64url SHA-256', ['TOK-10'], { payload: { mission_s256: 'not-a-digest' } }, 'invalid_jwt'),
    rt('rt-typ', 'an agent token passed as resource_token', ['TOK-01', 'TOK-11'], { header: { typ: 'aa-agent+jwt' } }, 'invalid_jwt'),
    { ...rt('rt-revoked', 'revoked resource token', ['TOK-09', 'TOK-11'], {}, 'revoked_jwt'), verify: { ...AT_PS, revoked: [{ iss: RESOURCE.issuer, jti: 'resource-token-1' }] } },
    { ...rt('rt-iat-ahead', 'resource token iat 120 s ahead at a verifier bounding iat to 60 s', ['TOK-04', 'ERR-02'], { payload: { iat: T + 120, exp: T + 400 } }, 'clock_skew'), verify: { ...AT_PS, iatSkewSec: 60 } },
  ]
}

function otherRows(): Row[] {
  const sub = 'aauth:travel-bot+flights@agents.example'
  return [
    { id: 'pt-presented-ok', title: 'person token presented for the resource that called the PS', refs: ['TOK-PT-04'], token: personToken(), verify: { type: 'aa-person+jwt', audience: RESOURCE.issuer }, carriedAs: 'presented' },
    { id: 'pt-presented-expired', title: 'expired person token as presented_token', refs: ['TOK-11', 'ERR-02'], token: personToken({ payload: { exp: T - 1 } }), verify: { type: 'aa-person+jwt', audience: RESOURCE.issuer }, carriedAs: 'presented', error: 'expired_jwt' },
    { id: 'at-upstream-revoked', title: 'revoked auth token as upstream_token', refs: ['TOK-11', 'ERR-02'], token: authToken(), verify: { type: 'aa-auth+jwt', audience: RESOURCE.issuer, revoked: [{ iss: 'https://as.example', jti: 'auth-token-1' }] }, carriedAs: 'upstream', error: 'revoked_jwt' },
    { id: 'at-upstream-skew', title: 'auth token iat ahead as upstream_token', refs: ['NEG-TOK-03', 'ERR-02'], token: authToken({ payload: { iat: T + 120, exp: T + 3000 } }), verify: { type: 'aa-auth+jwt', audience: RESOURCE.issuer, iatSkewSec: 60 }, carriedAs: 'upstream', error: 'clock_skew' },
    { id: 'ag-subagent-ok', title: 'sub-agent token naming its parent', refs: ['TOK-AG-05'], token: agentToken({ payload: { sub, parent_agent: AGENT_ID, jti: 'agent-token-sub-1' } }), verify: { type: 'aa-agent+jwt' }, carriedAs: 'subagent' },
    { id: 'NEG-TOK-08-param', title: 'sub-agent token with a parent_agent that is not an agent identifier', refs: ['NEG-TOK-08', 'ERR-02'], token: agentToken({ payload: { sub, parent_agent: 'not an id' } }), verify: { type: 'aa-agent+jwt' }, carriedAs: 'subagent', error: 'invalid_jwt' },
    { id: 'ag-subagent-other-ap', title: 'sub-agent whose parent belongs to another agent provider', refs: ['TOK-AG-05'], token: agentToken({ payload: { sub, parent_agent: 'aauth:planner@elsewhere.example' } }), verify: { type: 'aa-agent+jwt' }, carriedAs: 'subagent', error: 'invalid_jwt' },
  ]
}

export function tokenVectors(): TokensFile {
  return {
    title: 'Verifying AAuth tokens carried as request parameters',
    description: `Each token is verified on its own with the listed options (JWKS from network). A failure gives the Signature-Error code the token would produce in Signature-Key and, with carriedAs, the 400 body code of that parameter. Issuers: ${AP.issuer}, ${PS.issuer}, https://as.example, ${RESOURCE.issuer}.`,
    network: baseNetwork(),
    vectors: [...resourceRows(), ...otherRows()].map((r): TokenVector => ({
      id: r.id,
      title: r.title,
      refs: r.refs,
      ...(r.level === undefined ? {} : { level: r.level }),
      token: r.token,
      verify: { now: T, ...r.verify },
      ...(r.carriedAs === undefined ? {} : { carriedAs: r.carriedAs }),
      expected:
        r.error === undefined ? { claims: payloadOf(r.token) }
        : { error: r.error, ...(r.carriedAs === undefined ? {} : { problem: problem(r.error, r.carriedAs) }) },
    })),
  }
}
