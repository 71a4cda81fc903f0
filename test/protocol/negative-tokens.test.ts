/**
 * Tokens carried as request *parameters* (`resource_token`, `presented_token`, `upstream_token`,
 * `subagent_token`): each verifier rejects the bad input with the Signature-Key code, and
 * `toParameterError` turns that into the parameter's own 400 body code (CHECKLIST TOK-11, ERR-02,
 * NEG-PS-*, NEG-RES-*, TOK-PT-*, TOK-AT-*, TOK-RT-*, TOK-AG-*).
 */
import { describe, expect, it } from 'vitest'
import {
  createAgentToken,
  createAuthToken,
  createPersonToken,
  createResourceToken,
  decodeJwt,
  ENDPOINT_ERROR_STATUS,
  generateKeyPair,
  jwkThumbprint,
  JwksCache,
  MetadataError,
  ProblemError,
  problemResponse,
  SIGNATURE_ERROR_CODES,
  SignatureError,
  toParameterError,
  verifyAgentToken,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  type EndpointErrorCode,
  type PublicJwk,
  type ResourceTokenVerifyOptions,
  type SignatureErrorCode,
} from '../../src/protocol/index.js'
import { fakeNetwork } from '../helpers/issuers.js'
import { AP, AS, fakeIssuers, mintToken, NOW, NOW_S, PS, RES, type Issuers, type Kind, type Patch } from '../helpers/world.js'

interface World extends Issuers {
  agentJwk: PublicJwk
  jkt: string
  jwks: JwksCache
}

async function world(): Promise<World> {
  const net = fakeNetwork()
  const issuers = await fakeIssuers(net)
  const { publicJwk } = await generateKeyPair()
  return { ...issuers, agentJwk: publicJwk, jkt: await jwkThumbprint(publicJwk), jwks: new JwksCache({ fetcher: net.fetcher, now: () => NOW }) }
}

const MISSION = Buffer.alloc(32, 9).toString('base64url')

/** A token of `kind` with patched claims/header, signed by the kind's issuer (or `signer`). */
function mint(w: World, kind: Kind, patch: Patch = {}, header: Patch = {}, signer?: keyof Issuers): Promise<string> {
  return mintToken(w, kind, { iat: NOW_S, cnfJwk: w.agentJwk, agentJkt: w.jkt }, { patch, header, signWith: signer === undefined ? undefined : w[signer] })
}

// ---------------------------------------------------------------------------------------------

type Verifier = 'resource' | 'person' | 'auth' | 'agent'
type Param = 'resource' | 'presented' | 'upstream' | 'subagent'
type Opts = Partial<ResourceTokenVerifyOptions>

/** Each verifier as a token endpoint calls it, with the parameter it reports under. */
const VERIFY: Record<Verifier, { param: Param; run: (t: string, w: World, o: Opts) => Promise<unknown> }> = {
  resource: { param: 'resource', run: (t, w, o) => verifyResourceToken(t, { jwks: w.jwks, now: () => NOW, audience: PS, agentJkt: w.jkt, ...o }) },
  person: { param: 'presented', run: (t, w, o) => verifyPersonToken(t, { jwks: w.jwks, now: () => NOW, ...o, audience: o.audience ?? RES }) },
  auth: { param: 'upstream', run: (t, w, o) => verifyAuthToken(t, { jwks: w.jwks, now: () => NOW, ...o, audience: o.audience ?? RES }) },
  agent: { param: 'subagent', run: (t, w, o) => verifyAgentToken(t, { jwks: w.jwks, now: () => NOW, ...o }) },
}

interface Row {
  id: string
  /** The verifier used; the token minted is of the same kind unless `kind` says otherwise. */
  verifier: Verifier
  kind?: Kind
  patch?: Patch
  header?: Patch
  signer?: keyof Issuers
  setup?: (w: World) => void
  options?: (w: World) => Opts
  code: SignatureErrorCode
  problem: EndpointErrorCode
}

const revokedJti = (jti: string): Opts => ({ isRevoked: (_iss, j) => j === jti })
const expired = { iat: NOW_S - 600, exp: NOW_S - 1 }

/** The four outcomes every verifier shares, one row each per verifier (ERR-02, TOK-11). */
const shared = (v: Verifier, p: Param): Row[] => [
  { id: `NEG-PS-02 ${v} token with a bad signature`, verifier: v, signer: v === 'agent' ? 'ps' : 'ap', code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `NEG-PS-02 ${v} token with typ JWT`, verifier: v, header: { typ: 'JWT' }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `ALG-03 ${v} token with alg none`, verifier: v, header: { alg: 'none' }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `NEG-PS-03 ${v} token expired`, verifier: v, patch: expired, code: 'expired_jwt', problem: `expired_${p}_token` },
  { id: `NEG-PS-27 ${v} token revoked by its issuer`, verifier: v, options: () => revokedJti(`${v}-jti-1`), code: 'revoked_jwt', problem: `revoked_${p}_token` },
  { id: `ERR-02 ${v} token iat 120 s ahead under a 60 s iat bound`, verifier: v, patch: { iat: NOW_S + 120 }, options: () => ({ iatSkewSec: 60 }), code: 'clock_skew', problem: 'clock_skew' },
  { id: `JWKS-05 ${v} token kid not in the issuer JWKS`, verifier: v, header: { kid: 'key-9' }, code: 'unknown_key', problem: `invalid_${p}_token` },
  {
    id: `META-02 ${v} token issuer metadata issuer mismatch`,
    verifier: v,
    setup: (w) => void (w[({ resource: 'res', person: 'ps', auth: 'as', agent: 'ap' } as const)[v]].metadata['issuer'] = 'https://evil.example'),
    code: 'issuer_mismatch',
    problem: `invalid_${p}_token`,
  },
  { id: `TOK-05 ${v} token iss with a trailing slash`, verifier: v, patch: { iss: `${defaultIss[v]}/` }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `TOK-04 ${v} token with no iat`, verifier: v, patch: { iat: undefined }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `TOK-04 ${v} token with a String exp`, verifier: v, patch: { exp: String(NOW_S + 60) }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
  { id: `TOK-09 ${v} token with no jti`, verifier: v, patch: { jti: undefined }, code: 'invalid_jwt', problem: `invalid_${p}_token` },
]
const defaultIss: Record<Verifier, string> = { resource: RES, person: PS, auth: AS, agent: AP }

const rows: Row[] = [
  ...(Object.keys(VERIFY) as Verifier[]).flatMap((v) => shared(v, VERIFY[v].param)),

  // resource_token at the PS (TOK-RT-04)
  { id: 'NEG-PS-02 resource token where typ is aa-auth+jwt', verifier: 'resource', header: { typ: 'aa-auth+jwt' }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'NEG-PS-04 resource token aud is another PS', verifier: 'resource', patch: { aud: 'https://ps2.example' }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'NEG-PS-05 resource token agent_jkt is not the signing key thumbprint', verifier: 'resource', options: () => ({ agentJkt: 'x'.repeat(43) }), code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'TOK-RT-01 resource token carrying cnf', verifier: 'resource', patch: { cnf: { jwk: { kty: 'OKP' } } }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  ...['ps', 'sub', 'presented_jti', 'agent_jkt', 'aud'].map(
    (c): Row => ({ id: `TOK-RT-01 resource token without ${c}`, verifier: 'resource', patch: { [c]: undefined }, code: 'invalid_jwt', problem: 'invalid_resource_token' }),
  ),
  { id: 'TOK-RT-01 resource token ps not a server identifier', verifier: 'resource', patch: { ps: 'https://ps.example/' }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'TOK-RT-01 resource token scope is not a String', verifier: 'resource', patch: { scope: ['read'] }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'TOK-RT-03 resource token lifetime 301 s', verifier: 'resource', patch: { exp: NOW_S + 301 }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'TOK-03 resource token dwk aauth-person.json', verifier: 'resource', patch: { dwk: 'aauth-person.json' }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'TOK-10 resource token mission_s256 not base64url SHA-256', verifier: 'resource', patch: { mission_s256: 'abc' }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'HDR-05 resource token interaction url with a query', verifier: 'resource', patch: { interaction: { url: `${RES}/i?x=1`, code: 'ABCD2345' } }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'HDR-05 resource token interaction url over http', verifier: 'resource', patch: { interaction: { url: 'http://api.example/i', code: 'ABCD2345' } }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'HDR-05 resource token interaction without code', verifier: 'resource', patch: { interaction: { url: `${RES}/i` } }, code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'NEG-AG-01 resource token iss is not the resource the agent called', verifier: 'resource', options: () => ({ audience: undefined, issuer: 'https://api2.example' }), code: 'invalid_jwt', problem: 'invalid_resource_token' },
  { id: 'NEG-PS-24 resource token presented as a person token', verifier: 'person', kind: 'resource', code: 'invalid_jwt', problem: 'invalid_presented_token' },

  // presented_token: person tokens (TOK-PT-*)
  { id: 'TOK-PT-03 person token carrying scope', verifier: 'person', patch: { scope: 'read' }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-03 person token carrying account', verifier: 'person', patch: { account: 'acct-1' }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-02 person token lifetime 3601 s', verifier: 'person', patch: { exp: NOW_S + 3601 }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'NEG-RES-01 person token aud is another resource', verifier: 'person', patch: { aud: 'https://other.example' }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-01 person token without cnf', verifier: 'person', patch: { cnf: undefined }, code: 'invalid_key', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-01 person token without sub', verifier: 'person', patch: { sub: undefined }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-01 person token cnf.jwk without alg', verifier: 'person', patch: { cnf: { jwk: { kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(32).toString('base64url') } } }, code: 'unsupported_algorithm', problem: 'invalid_presented_token' },
  { id: 'TOK-03 person token dwk aauth-access.json', verifier: 'person', patch: { dwk: 'aauth-access.json' }, code: 'invalid_jwt', problem: 'invalid_presented_token' },
  { id: 'TOK-PT-05 auth token where a person token is expected', verifier: 'person', kind: 'auth', code: 'invalid_jwt', problem: 'invalid_presented_token' },

  // upstream_token: auth tokens (TOK-AT-*)
  { id: 'TOK-AT-02 auth token lifetime 3601 s', verifier: 'auth', patch: { exp: NOW_S + 3601 }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'TOK-AT-01 PS-issued auth token (dwk aauth-person.json) with ps ≠ iss', verifier: 'auth', signer: 'ps', patch: { iss: PS, dwk: 'aauth-person.json', ps: 'https://ps2.example' }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'TOK-AT-01 auth token without ps', verifier: 'auth', patch: { ps: undefined }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-RES-03 auth token aud is another resource', verifier: 'auth', patch: { aud: 'https://other.example' }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-RES-04 auth token with no cnf', verifier: 'auth', patch: { cnf: undefined }, code: 'invalid_key', problem: 'invalid_upstream_token' },
  { id: 'NEG-RES-05 auth token with no sub', verifier: 'auth', patch: { sub: undefined }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-RES-06 auth token dwk aauth-agent.json', verifier: 'auth', patch: { dwk: 'aauth-agent.json' }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-RES-07 auth token exp - iat = 7200 s', verifier: 'auth', patch: { iat: NOW_S - 3600, exp: NOW_S + 3600 }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'TOK-AT-01 auth token account is not a String', verifier: 'auth', patch: { account: 7 }, code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-TOK-05 person token where an auth token is required', verifier: 'auth', kind: 'person', code: 'invalid_jwt', problem: 'invalid_upstream_token' },
  { id: 'NEG-PS-16 agent token as upstream_token', verifier: 'auth', kind: 'agent', code: 'invalid_jwt', problem: 'invalid_upstream_token' },

  // subagent_token: agent tokens (TOK-AG-*)
  { id: 'TOK-AG-04 agent sub domain is not the iss host', verifier: 'agent', patch: { sub: 'aauth:bot@other.example' }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  { id: 'NEG-TOK-08 agent token parent_agent "not an id"', verifier: 'agent', patch: { parent_agent: 'not an id' }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  { id: 'NEG-PS-28 agent token parent_agent from another provider', verifier: 'agent', patch: { parent_agent: 'aauth:bot@other.example' }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  { id: 'NEG-TOK-09 agent token ps http://ps.example', verifier: 'agent', patch: { ps: 'http://ps.example' }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  ...['aauth:My Agent@agents.example', 'aauth:@agents.example', `aauth:${'a'.repeat(256)}@agents.example`, 'aauth:a++b@agents.example'].map(
    (sub): Row => ({ id: `NEG-TOK-10 agent sub ${sub.length > 40 ? `of ${sub.length} chars` : JSON.stringify(sub)}`, verifier: 'agent', patch: { sub }, code: 'invalid_jwt', problem: 'invalid_subagent_token' }),
  ),
  { id: 'TOK-AG-02 agent token lifetime over 24 h', verifier: 'agent', patch: { exp: NOW_S + 86_401 }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  { id: 'TOK-03 agent token dwk aauth-person.json', verifier: 'agent', patch: { dwk: 'aauth-person.json' }, code: 'invalid_jwt', problem: 'invalid_subagent_token' },
  { id: 'TOK-06 agent token cnf.jwk with alg EdDSA', verifier: 'agent', patch: { cnf: { jwk: { kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(32).toString('base64url'), alg: 'EdDSA' } } }, code: 'unsupported_algorithm', problem: 'invalid_subagent_token' },
  { id: 'TOK-06 agent token cnf.jwk missing x', verifier: 'agent', patch: { cnf: { jwk: { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' } } }, code: 'invalid_key', problem: 'invalid_subagent_token' },
]

describe('token parameters: verifier code and body code (TOK-11, ERR-02)', () => {
  it.each(rows.map((r) => [`${r.id} → ${r.code} → 400 ${r.problem}`, r] as const))('%s', async (_name, row) => {
    const w = await world()
    row.setup?.(w)
    const t = await mint(w, row.kind ?? row.verifier, row.patch, row.header, row.signer)
    const v = VERIFY[row.verifier]
    const err = await v.run(t, w, row.options?.(w) ?? {}).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SignatureError)
    expect((err as SignatureError).code).toBe(row.code)

    const p = toParameterError(err, v.param)
    expect(p).toBeInstanceOf(ProblemError)
    expect({ code: p.code, status: p.status }).toEqual({ code: row.problem, status: 400 })
    expect(p.cause).toBe(err)
    const res = problemResponse(p)
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect(res.headers.get('signature-error')).toBeNull()
    expect(await res.json()).toMatchObject({ error: row.problem })
  })
})

interface Ok {
  id: string
  verifier: Verifier
  patch?: Patch
  signer?: keyof Issuers
  options?: (w: World) => Opts
}

const accepted: Ok[] = [
  { id: 'TOK-RT-04 resource token at its PS', verifier: 'resource' },
  { id: 'TOK-RT-04 resource token at the agent (iss = the resource called)', verifier: 'resource', options: () => ({ audience: undefined, issuer: RES }) },
  { id: 'TOK-RT-01 resource token with interaction, mission_s256, tenant, login_hint', verifier: 'resource', patch: { interaction: { url: `${RES}/i`, code: 'ABCD-2345' }, mission_s256: MISSION, tenant: 't', login_hint: 'h' } },
  { id: 'TOK-RT-03 resource token lifetime exactly 300 s', verifier: 'resource', patch: { exp: NOW_S + 300 } },
  { id: 'TOK-PT-04 person token with mission_s256 and tenant', verifier: 'person', patch: { mission_s256: MISSION, tenant: 't' } },
  { id: 'TOK-PT-02 person token lifetime exactly 3600 s', verifier: 'person', patch: { exp: NOW_S + 3600 } },
  { id: 'TOK-AT-04 AS-issued auth token', verifier: 'auth' },
  { id: 'TOK-AT-01 PS-issued auth token with ps = iss', verifier: 'auth', signer: 'ps', patch: { iss: PS, dwk: 'aauth-person.json', ps: PS } },
  { id: 'TOK-AT-02 auth token lifetime exactly 3600 s', verifier: 'auth', patch: { exp: NOW_S + 3600 } },
  { id: 'TOK-AG-04 agent token', verifier: 'agent' },
  { id: 'TOK-AG-03 sub-agent token with parent_agent of the same provider', verifier: 'agent', patch: { sub: 'aauth:bot+s1@agents.example', parent_agent: 'aauth:bot@agents.example' } },
  { id: 'TOK-04 iat ahead is accepted when no iat bound is applied', verifier: 'agent', patch: { iat: NOW_S + 600 } },
  { id: 'TOK-08 unknown claims are ignored', verifier: 'person', patch: { frob: { nested: true } } },
]

describe('token parameters: accepted baselines', () => {
  it.each(accepted.map((r) => [r.id, r] as const))('%s', async (_name, row) => {
    const w = await world()
    const t = await mint(w, row.verifier, row.patch, {}, row.signer)
    await expect(VERIFY[row.verifier].run(t, w, row.options?.(w) ?? {})).resolves.toMatchObject({ jti: `${row.verifier}-jti-1` })
  })
})

describe('toParameterError mapping (ERR-02, TOK-11)', () => {
  const params: Param[] = ['resource', 'presented', 'upstream', 'subagent']
  const special: Partial<Record<SignatureErrorCode, (p: Param) => EndpointErrorCode>> = {
    expired_jwt: (p) => `expired_${p}_token`,
    revoked_jwt: (p) => `revoked_${p}_token`,
    clock_skew: () => 'clock_skew',
  }
  const cases = params.flatMap((p) => SIGNATURE_ERROR_CODES.map((c) => [p, c, (special[c] ?? ((q: Param) => `invalid_${q}_token` as const))(p)] as const))

  it.each(cases)('ERR-02 %s parameter: Signature-Key code %s → 400 %s', (param, code, expected) => {
    const p = toParameterError(new SignatureError(code, 'x'), param)
    expect(p.code).toBe(expected)
    expect(p.status).toBe(400)
    expect(ENDPOINT_ERROR_STATUS[expected]).toBe(400)
  })

  it.each(params.flatMap((p) => [new TypeError('boom'), new MetadataError('issuer_mismatch', 'x'), 'thrown string', undefined].map((e) => [p, e] as const)))(
    'TOK-11 %s parameter: a non-signature failure (%s) → invalid_*_token',
    (param, e) => {
      expect(toParameterError(e, param).code).toBe(`invalid_${param}_token`)
    },
  )
})

describe('issuers refuse to mint what verifiers must reject', () => {
  const base = async () => {
    const w = await world()
    return { w, now: () => NOW, cnfJwk: w.agentJwk }
  }
  it.each([
    ['TOK-PT-02 person token lifetime 3601 s', RangeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createPersonToken({ key: w.ps.key, issuer: PS, aud: RES, sub: 'u', cnfJwk, now, lifetimeSec: 3601 })
    }],
    ['TOK-AT-02 auth token lifetime 3601 s', RangeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createAuthToken({ key: w.as.key, issuer: AS, issuerRole: 'access', aud: RES, ps: PS, sub: 'u', cnfJwk, now, lifetimeSec: 3601 })
    }],
    ['TOK-AT-01 PS-issued auth token with ps ≠ iss', TypeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createAuthToken({ key: w.ps.key, issuer: PS, issuerRole: 'person', aud: RES, ps: 'https://ps2.example', sub: 'u', cnfJwk, now })
    }],
    ['TOK-RT-03 resource token lifetime 301 s', RangeError, async () => {
      const { w, now } = await base()
      return createResourceToken({ key: w.res.key, issuer: RES, aud: PS, ps: PS, sub: 'u', presentedJti: 'p', agentJkt: w.jkt, now, lifetimeSec: 301 })
    }],
    ['TOK-AG-04 agent sub domain ≠ issuer host', TypeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createAgentToken({ key: w.ap.key, issuer: AP, sub: 'aauth:bot@other.example', cnfJwk, now })
    }],
    ['TOK-AG-05 sub-agent parent from another provider', TypeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createAgentToken({ key: w.ap.key, issuer: AP, sub: 'aauth:bot+s@agents.example', parentAgent: 'aauth:bot@other.example', cnfJwk, now })
    }],
    ['TOK-PT-02 person token outliving the agent token', RangeError, async () => {
      const { w, now, cnfJwk } = await base()
      return createPersonToken({ key: w.ps.key, issuer: PS, aud: RES, sub: 'u', cnfJwk, now, agentTokenExp: NOW_S })
    }],
  ] as const)('%s', async (_name, errorClass, make) => {
    await expect(make()).rejects.toBeInstanceOf(errorClass)
  })

  it('TOK-PT-03 TOK-RT-01 extra claims cannot smuggle scope/account into a person token or cnf into a resource token', async () => {
    const { w, now, cnfJwk } = await base()
    const pt = await createPersonToken({ key: w.ps.key, issuer: PS, aud: RES, sub: 'u', cnfJwk, now, extraClaims: { scope: 'admin', account: 'a' } })
    expect(decodeJwt(pt).payload).not.toHaveProperty('scope')
    expect(decodeJwt(pt).payload).not.toHaveProperty('account')
    const rt = await createResourceToken({ key: w.res.key, issuer: RES, aud: PS, ps: PS, sub: 'u', presentedJti: 'p', agentJkt: w.jkt, now, extraClaims: { cnf: { jwk: cnfJwk } } })
    expect(decodeJwt(rt).payload).not.toHaveProperty('cnf')
  })

  it('TOK-PT-02 TOK-AT-02 created tokens are capped by agent token, presented token and mission exp', async () => {
    const { w, now, cnfJwk } = await base()
    const pt = await createPersonToken({ key: w.ps.key, issuer: PS, aud: RES, sub: 'u', cnfJwk, now, agentTokenExp: NOW_S + 100, missionExpiresAt: NOW_S + 50 })
    expect(decodeJwt(pt).payload['exp']).toBe(NOW_S + 50)
    const at = await createAuthToken({ key: w.as.key, issuer: AS, issuerRole: 'access', aud: RES, ps: PS, sub: 'u', cnfJwk, now, presentedTokenExp: NOW_S + 70, upstreamTokenExp: NOW_S + 80 })
    expect(decodeJwt(at).payload['exp']).toBe(NOW_S + 70)
  })
})
