/**
 * Runs the vectors of `scripts/vectors/` against aauth-kit. Those vectors are built without the
 * library (tokens, signature bases and signatures come from `node:crypto` directly, expected
 * outcomes from the CHECKLIST), so a pass here is agreement between two independent
 * implementations, not the library agreeing with itself.
 *
 * They are published in `spec/vectors/extended/`. The generator is run over that copy (which keeps
 * its ES256 signatures), so the cases below run on exactly the published vectors, and the last
 * block checks the copy is byte for byte what the generator writes.
 *
 * The wall clock is pinned far from the vectors' time: every clock must be the injected one.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  createContentDigest,
  createRequestVerifier,
  createSignatureBase,
  createSigner,
  HeaderError,
  importPublicJwk,
  interpretSignatureKeyMember,
  JwksCache,
  jwkThumbprint,
  MemoryReplayCache,
  messageView,
  parseSignatureError,
  parseSignatureInput,
  parseSignatureKey,
  parseSignatureKeyCache,
  parseTokenList,
  serializeSignatureKey,
  serializeSignatureKeyCache,
  SignatureError,
  signatureErrorHeaders,
  signRequest,
  toParameterError,
  verifyAgentToken,
  verifyAuthToken,
  verifyContentDigest,
  verifyPersonToken,
  verifyResourceToken,
  decodeJwt,
  verifySignatureBytes,
  Token,
  type EgressFetcher,
  type PrivateJwk,
  type PublicJwk,
  type SignatureKeyMember,
  type SupportedAlgorithm,
  type TokenType,
  type VerifiedSignature,
  type AAuthContext,
} from '../../src/protocol/index.js'
import { base32 } from '../../scripts/vectors/crypto.js'
import { EXTENDED_VECTORS_DIR, readVectorFiles } from '../../scripts/vectors/files.js'
import { buildVectorFiles, serialize, VECTOR_FILE_NAMES, type VectorFiles } from '../../scripts/vectors/index.js'
import type { HeaderVector, KeysFile, Network, RfcVector, SignVector, TokensFile, VectorFile, VerifiedIdentity, VerifyFile } from '../../scripts/vectors/types.js'

/** The published copy, and the generator's output over it (identical while the copy is current). */
const published = readVectorFiles(EXTENDED_VECTORS_DIR)
const files = buildVectorFiles(published)
const keys = (files['keys.json'] as KeysFile).keys
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const ms = (sec: number) => (): number => sec * 1000

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2001-01-01T00:00:00Z'))
})
afterAll(() => vi.useRealTimers())

/** Serves a vector network: listed URLs answer their document, everything else 404. */
function fetcherFor(...layers: (Network | undefined)[]): EgressFetcher {
  const net: Network = Object.assign({}, ...layers)
  return async (url) => {
    const e = net[url]
    if (e === undefined || e === null) return { url, status: 404, headers: new Headers(), body: new Uint8Array() }
    return { url, status: e.status, headers: new Headers({ 'content-type': 'application/json' }), body: utf8(JSON.stringify(e.body)) }
  }
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e)
}

describe('RFC test material', () => {
  const vectors = (files['rfc.json'] as VectorFile<RfcVector>).vectors
  it.each(vectors.map((v) => [v.id, v] as const))('%s', async (_id, v) => {
    switch (v.kind) {
      case 'signature-base': {
        const input = parseSignatureInput(`sig=${v.signatureInput}`).get('sig')!
        expect(await createSignatureBase(messageView(v.request), input.components, input.rawParams)).toBe(v.signatureBase)
        break
      }
      case 'signature': {
        const key = await importPublicJwk(v.publicJwk)
        expect(await verifySignatureBytes(key, utf8(v.signatureBase), fromB64(v.signature))).toBe(true)
        if (v.exact) expect(Buffer.from(await (await createSigner(v.privateJwk as PrivateJwk)).sign(utf8(v.signatureBase))).toString('base64')).toBe(v.signature)
        break
      }
      case 'content-digest':
        await verifyContentDigest(v.contentDigest, utf8(v.body))
        if (v.produced) expect(await createContentDigest(utf8(v.body))).toBe(v.contentDigest)
        break
      case 'jwk-thumbprint':
        expect(await jwkThumbprint(v.jwk as PublicJwk)).toBe(v.thumbprint)
    }
  })
})

/** A parsed parameter value in the JSON convention of the vectors. */
function sfJson(v: unknown): unknown {
  if (v instanceof ArrayBuffer) return { __type: 'binary', value: base32(new Uint8Array(v)) }
  if (v instanceof Token) return { __type: 'token', value: v.toString() }
  return v
}

function memberJson(m: SignatureKeyMember): Record<string, unknown> {
  return m.scheme === 'x509' ? { ...m, x5t: Buffer.from(m.x5t).toString('base64') } : { ...m }
}

function headerCase(v: HeaderVector): void | Promise<void> {
  const malformed = 'error' in v.expected && v.expected.error === 'malformed_header'
  switch (v.kind) {
    case 'signature-key': {
      if (malformed) return void expect(() => parseSignatureKey(v.header)).toThrow(HeaderError)
      const e = v.expected as Exclude<typeof v.expected, { error: string }>
      const raw = parseSignatureKey(v.header)
      const members: Record<string, unknown> = {}
      const interpreted: Record<string, unknown> = {}
      const typed: Record<string, SignatureKeyMember> = {}
      for (const [label, m] of raw) {
        members[label] = { scheme: m.scheme ?? null, params: Object.fromEntries([...m.parameters].map(([k, p]) => [k, sfJson(p)])) }
        try {
          typed[label] = interpretSignatureKeyMember(m)
          interpreted[label] = memberJson(typed[label])
        } catch (err) {
          expect(err).toBeInstanceOf(SignatureError)
          interpreted[label] = { error: (err as SignatureError).code }
        }
      }
      expect(members).toEqual(e.members)
      expect(interpreted).toEqual(e.interpreted)
      if (e.serialized !== undefined) expect(serializeSignatureKey(typed)).toBe(e.serialized)
      return
    }
    case 'signature-key-cache': {
      if (malformed) return void expect(() => parseSignatureKeyCache(v.header)).toThrow(HeaderError)
      const e = v.expected as Exclude<typeof v.expected, { error: string }>
      const entries = Object.fromEntries(parseSignatureKeyCache(v.header))
      expect(entries).toEqual(e.entries)
      return void expect(serializeSignatureKeyCache(entries)).toBe(e.serialized)
    }
    case 'signature-error': {
      if (malformed) return void expect(() => parseSignatureError(v.header)).toThrow(HeaderError)
      const p = parseSignatureError(v.header)
      return void expect({ error: p.error, known: p.code !== undefined, requiredInput: p.requiredInput ?? null }).toEqual(v.expected)
    }
    case 'accept-signature':
      return void expect(parseTokenList(v.header)).toEqual(v.expected.tokens)
  }
}

describe('headers', () => {
  const vectors = (files['headers.json'] as VectorFile<HeaderVector>).vectors
  it.each(vectors.map((v) => [v.id, v] as const))('%s', (_id, v) => headerCase(v))
})

describe('signing', () => {
  const vectors = (files['sign.json'] as VectorFile<SignVector>).vectors
  it.each(vectors.map((v) => [v.id, v] as const))('%s', async (_id, v) => {
    const { input, output } = v
    const key = keys[input.signer]!
    const r = await signRequest(
      { method: input.request.method, url: input.request.url, headers: new Headers(input.request.headers) },
      {
        signer: await createSigner(key.privateJwk as PrivateJwk),
        signatureKey: { ...input.signatureKey, cache: false },
        label: input.label,
        now: ms(input.now),
        exposeBase: true,
        ...(input.request.body === null ? {} : { body: utf8(input.request.body) }),
        ...(input.additionalComponents === undefined ? {} : { additionalComponents: input.additionalComponents }),
        ...(input.expires === undefined ? {} : { expires: input.expires }),
      },
    )
    expect(r.components).toEqual(output.components)
    expect(r.signatureBase).toBe(output.signatureBase)
    for (const [name, value] of Object.entries(output.headers)) {
      if (name !== 'signature' || v.deterministic) expect(r.headers.get(name), name).toBe(value)
    }
    const produced = parseSignatureInput(r.headers.get('signature-input')!).keys().next().value
    const signature = fromB64(/=:(.*):$/.exec(r.headers.get('signature')!)![1]!)
    expect(produced).toBe(input.label)
    expect(await verifySignatureBytes(await importPublicJwk(key.publicJwk), utf8(r.signatureBase!), signature)).toBe(true)
  })
})

function identityOf(v: VerifiedSignature<AAuthContext>): VerifiedIdentity {
  const common = { label: v.label, created: v.created, components: v.components, jkt: v.key.thumbprint }
  const c = v.key.context
  return c.scheme === 'jwt'
    ? { ...common, scheme: 'jwt', tokenType: c.type, iss: c.claims.iss, sub: c.claims.sub }
    : { ...common, scheme: 'jwks_uri', iss: c.issuer, dwk: c.dwk, kid: c.kid }
}

const SIGNATURE_HEADERS = ['signature-error', 'accept-signature-scheme', 'accept-signature-alg']

describe('verification', () => {
  const file = files['verify.json'] as VerifyFile
  it.each(file.vectors.map((v) => [v.id, v] as const))('%s', async (_id, v) => {
    const cfg = { ...file.defaults.verifier, ...v.verifier }
    const now = ms(cfg.now)
    const verifier = createRequestVerifier({
      audience: cfg.audience,
      jwks: new JwksCache({ fetcher: fetcherFor(file.network, v.network), now }),
      now,
      windowSec: cfg.windowSec,
      acceptedTokenTypes: cfg.acceptedTokenTypes as TokenType[],
      acceptServerSignatures: cfg.acceptServerSignatures,
      acceptedAlgorithms: cfg.acceptedAlgorithms as SupportedAlgorithm[],
      boundIat: cfg.boundIat,
      requiredComponents: cfg.requiredComponents,
      requireBodyComponents: cfg.requireBodyComponents,
      syncCrypto: true,
      ...(cfg.revoked.length === 0 ? {} : { isRevoked: (iss: string, jti: string) => cfg.revoked.some((r) => r.iss === iss && r.jti === jti) }),
      ...(cfg.replayCache ? { replayCache: new MemoryReplayCache(100, now) } : {}),
    })
    const message = { method: v.request.method, url: v.request.url, headers: v.request.headers }
    // The raw body as a server has it: empty bytes for a request without one.
    const body = utf8(v.request.body ?? '')
    for (let i = 1; i < (v.presentations ?? 1); i++) await verifier.verify(message, body)
    const outcome = await verifier.verify(message, body).then(identityOf, (e: unknown) => e)
    if ('verified' in v.expected) return void expect(outcome).toEqual(v.expected.verified)
    expect(outcome, String(outcome)).toBeInstanceOf(SignatureError)
    const err = outcome as SignatureError
    expect(err.code, err.message).toBe(v.expected.error)
    const h = signatureErrorHeaders(err)
    expect(Object.fromEntries(SIGNATURE_HEADERS.filter((n) => h.has(n)).map((n) => [n, h.get(n)]))).toEqual(v.expected.headers)
  })
})

describe('tokens carried as parameters', () => {
  const file = files['tokens.json'] as TokensFile
  it.each(file.vectors.map((v) => [v.id, v] as const))('%s', async (_id, v) => {
    const o = v.verify
    const opts = {
      jwks: new JwksCache({ fetcher: fetcherFor(file.network, v.network), now: ms(o.now) }),
      now: ms(o.now),
      ...(o.iatSkewSec === undefined ? {} : { iatSkewSec: o.iatSkewSec }),
      ...(o.revoked === undefined ? {} : { isRevoked: (iss: string, jti: string) => o.revoked!.some((r) => r.iss === iss && r.jti === jti) }),
    }
    const run = (): Promise<unknown> => {
      switch (o.type) {
        case 'aa-agent+jwt':
          return verifyAgentToken(v.token, opts)
        case 'aa-person+jwt':
          return verifyPersonToken(v.token, { ...opts, audience: o.audience! })
        case 'aa-auth+jwt':
          return verifyAuthToken(v.token, { ...opts, audience: o.audience! })
        case 'aa-resource+jwt':
          return verifyResourceToken(v.token, { ...opts, ...(o.audience === undefined ? {} : { audience: o.audience }), ...(o.issuer === undefined ? {} : { issuer: o.issuer }), agentJkt: o.agentJkt ?? String(decodeJwt(v.token).payload['agent_jkt']) })
      }
    }
    if ('claims' in v.expected) return void expect(await run()).toEqual(v.expected.claims)
    const err = await failure(run())
    expect(err).toBeInstanceOf(SignatureError)
    expect((err as SignatureError).code, (err as Error).message).toBe(v.expected.error)
    if (v.expected.problem !== undefined) {
      const p = toParameterError(err, v.carriedAs!)
      expect({ status: p.status, error: p.code }).toEqual(v.expected.problem)
    }
  })
})

describe('the generator', () => {
  it('rebuilding, given the previous ES256 signatures, gives identical files', () => {
    expect(buildVectorFiles(files)).toEqual(files)
  })
  it('every vector id is unique within its file', () => {
    for (const [name, f] of Object.entries(files)) {
      const ids = ((f as { vectors?: { id: string }[] }).vectors ?? []).map((v) => v.id)
      expect(new Set(ids).size, name).toBe(ids.length)
    }
  })
})

/** ES256 signatures (base64) in a set of files; they are randomized, so a fresh build has others. */
function es256Signatures(f: VectorFiles): string[] {
  const sign = f['sign.json'] as VectorFile<SignVector>
  return sign.vectors.filter((v) => !v.deterministic).map((v) => /=:([^:]*):$/.exec(v.output.headers['signature']!)![1]!)
}

describe('spec/vectors/extended', () => {
  it('holds one file per group', () => {
    expect(Object.keys(published).sort()).toEqual([...VECTOR_FILE_NAMES].sort())
    expect(Object.keys(files)).toEqual([...VECTOR_FILE_NAMES])
  })
  it.each(VECTOR_FILE_NAMES.map((name) => [name] as const))('%s is byte for byte what the generator writes', (name) => {
    expect(serialize(files[name])).toBe(readFileSync(join(EXTENDED_VECTORS_DIR, name), 'utf8'))
  })
  it('a fresh build, without the published ES256 signatures, differs from it in those signatures only', () => {
    const masked = (f: VectorFiles): string => es256Signatures(f).reduce((text, sig) => text.replaceAll(sig, '<ES256>'), JSON.stringify(f))
    const fresh = buildVectorFiles()
    expect(es256Signatures(fresh).length).toBeGreaterThan(0)
    expect(masked(fresh)).toBe(masked(published))
  })
  it('every file is described in spec/README.md', () => {
    const readme = readFileSync(join(EXTENDED_VECTORS_DIR, '..', '..', 'README.md'), 'utf8')
    for (const name of VECTOR_FILE_NAMES) expect(readme, name).toContain(`\`extended/${name}\``)
  })
})
