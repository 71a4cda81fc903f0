/**
 * Published test material from RFC 9421 (Appendix B), RFC 9530 and RFC 7638 / RFC 8037. The
 * generator restates it as data and checks each value with its own code before writing it.
 */
import { createHash, createPublicKey } from 'node:crypto'
import type { RfcVector, VectorFile, VectorRequest } from './types.js'
import { b64, signBytes, sha256, thumbprint } from './crypto.js'
import { RFC9421_B26, RFC9421_REQUEST, RFC9421_TEST_KEY_ED25519 } from './rfc9421-material.js'

const RFC9421 = 'https://www.rfc-editor.org/rfc/rfc9421'

/** RFC 9421 B.1.4 `test-key-ed25519` (published private key), with the `alg` AAuth requires. */
const { x: RFC_X, d: RFC_D } = RFC9421_TEST_KEY_ED25519
export const RFC9421_ED25519 = {
  alg: 'Ed25519' as const,
  publicJwk: { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', x: RFC_X },
  privateJwk: { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', x: RFC_X, d: RFC_D },
}

/** RFC 9421 B.1.3 `test-key-ecc-p256`, public half. */
const P256_PEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`

/** RFC 9421 B.2 request (body not needed for the bases). */
const REQUEST: VectorRequest = RFC9421_REQUEST

const DIGEST_LINE = '"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:'

/** [appendix, what it shows, Signature-Input member value, base lines before @signature-params]. */
const BASES: readonly (readonly [string, string, string, readonly string[]])[] = [
  ['B.2.1', 'no covered components, only signature parameters', '();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"', []],
  [
    'B.2.2',
    'a parameterised @query-param component next to plain ones',
    '("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"',
    ['"@authority": example.com', DIGEST_LINE, '"@query-param";name="Pet": dog'],
  ],
  [
    'B.2.3',
    'every derived request component plus header fields',
    '("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
    ['"date": Tue, 20 Apr 2021 02:07:55 GMT', '"@method": POST', '"@path": /foo', '"@query": ?param=Value&Pet=dog', '"@authority": example.com', '"content-type": application/json', DIGEST_LINE, '"content-length": 18'],
  ],
  ['B.2.5', 'header fields and @authority only', '("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"', ['"date": Tue, 20 Apr 2021 02:07:55 GMT', '"@authority": example.com', '"content-type": application/json']],
  ['B.2.6', 'the Ed25519 example', RFC9421_B26.signatureInput, RFC9421_B26.componentLines],
]

const baseOf = (input: string, lines: readonly string[]): string => [...lines, `"@signature-params": ${input}`].join('\n')
const B26_BASE = baseOf(BASES[4]![2], BASES[4]![3])
const B26_SIGNATURE = RFC9421_B26.signature
const B24_BASE = [
  '"@status": 200',
  '"content-type": application/json',
  '"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
  '"content-length": 23',
  '"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
].join('\n')
const B24_SIGNATURE = 'wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw=='

const RFC7638_N =
  '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw'

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`published test material does not check out: ${what}`)
}

export function rfcVectors(): VectorFile<RfcVector> {
  const p256 = createPublicKey(P256_PEM).export({ format: 'jwk' })
  const p256Jwk = { kty: 'EC', crv: 'P-256', alg: 'ES256', x: p256.x!, y: p256.y! }
  check(b64(signBytes(RFC9421_ED25519, B26_BASE)) === B26_SIGNATURE, 'RFC 9421 B.2.6 signature')
  const digest = (alg: 'sha256' | 'sha512', body: string) => `${alg === 'sha256' ? 'sha-256' : 'sha-512'}=:${createHash(alg).update(body).digest('base64')}:`
  const digests = [
    ['RFC 9530 §2 example body', '{"hello": "world"}', 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:', true, 'sha256'],
    ['the same body with a trailing newline', '{"hello": "world"}\n', 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:', true, 'sha256'],
    ['RFC 9421 B.2 request body, sha-512 (checked, never produced)', '{"hello": "world"}', REQUEST.headers['content-digest']!, false, 'sha512'],
  ] as const
  for (const [what, body, value, , alg] of digests) check(digest(alg, body) === value, what)
  const thumbprints = [
    ['rfc7638-rsa', 'RFC 7638 §3.1 RSA example', { kty: 'RSA', n: RFC7638_N, e: 'AQAB' }, 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'],
    ['rfc8037-okp', 'RFC 8037 A.3 Ed25519 example', { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }, 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k'],
  ] as const
  for (const [, what, jwk, tp] of thumbprints) check(thumbprint(jwk) === tp, what)
  check(sha256('').length === 32, 'sha-256 available')

  return {
    title: 'Published RFC test material',
    description:
      'RFC 9421 Appendix B signature bases and signatures, RFC 9530 Content-Digest values and RFC 7638/8037 thumbprints, restated as data. Every value is re-checked by the generator before it is written.',
    vectors: [
      ...BASES.map(([appendix, what, input, lines]): RfcVector => ({
        id: `rfc9421-${appendix.toLowerCase().replace(/\./g, '-')}-base`,
        title: `RFC 9421 ${appendix} signature base: ${what}`,
        refs: [`${RFC9421}#appendix-${appendix}`],
        kind: 'signature-base',
        request: REQUEST,
        signatureInput: input,
        signatureBase: baseOf(input, lines),
      })),
      {
        id: 'rfc9421-b-2-6-signature',
        title: 'RFC 9421 B.2.6: Ed25519 is deterministic, so the published signature is reproduced exactly',
        refs: [`${RFC9421}#appendix-B.2.6`, 'ALG-01'],
        kind: 'signature',
        publicJwk: RFC9421_ED25519.publicJwk,
        privateJwk: RFC9421_ED25519.privateJwk,
        signatureBase: B26_BASE,
        signature: B26_SIGNATURE,
        exact: true,
      },
      {
        id: 'rfc9421-b-2-4-signature',
        title: 'RFC 9421 B.2.4: the published ES256 (P-256) signature over a response base verifies',
        refs: [`${RFC9421}#appendix-B.2.4`, 'ALG-01'],
        kind: 'signature',
        publicJwk: p256Jwk,
        signatureBase: B24_BASE,
        signature: B24_SIGNATURE,
        exact: false,
      },
      ...digests.map(([what, body, value, produced], i): RfcVector => ({
        id: `rfc9530-content-digest-${i + 1}`,
        title: `Content-Digest of ${what}`,
        refs: ['https://www.rfc-editor.org/rfc/rfc9530', 'SIG-03'],
        kind: 'content-digest',
        body,
        contentDigest: value,
        produced,
      })),
      ...thumbprints.map(([id, what, jwk, tp]): RfcVector => ({
        id,
        title: `JWK SHA-256 thumbprint: ${what}`,
        refs: ['https://www.rfc-editor.org/rfc/rfc7638', 'TOK-07'],
        kind: 'jwk-thumbprint',
        jwk,
        thumbprint: tp,
      })),
    ],
  }
}
