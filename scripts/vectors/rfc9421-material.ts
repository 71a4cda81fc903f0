/**
 * RFC 9421 Appendix B test material, exactly as the RFC publishes it: the `test-key-ed25519` key
 * (B.1.4), the test request (B.2) and the B.2.6 Ed25519 example. Plain data with no imports, so
 * both vector generators can use it: `scripts/gen-vectors.ts` (the `spec/vectors/*.json` set,
 * which checks the library reproduces it) and `scripts/vectors/rfc.ts` (the extended set, which
 * checks it with `node:crypto` alone).
 */

/** RFC 9421 B.1.4 `test-key-ed25519`: the published Ed25519 key pair, as JWK members. */
export const RFC9421_TEST_KEY_ED25519 = {
  kid: 'test-key-ed25519',
  x: 'JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs',
  d: 'n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU',
} as const

/** RFC 9421 B.2 test request: lowercase header names, body as UTF-8 text. */
export const RFC9421_REQUEST: { method: string; url: string; headers: Record<string, string>; body: string } = {
  method: 'POST',
  url: 'https://example.com/foo?param=Value&Pet=dog',
  headers: {
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'content-length': '18',
  },
  body: '{"hello": "world"}',
}

const B26_INPUT = '("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"'
const B26_LINES = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
] as const

/** RFC 9421 B.2.6: an Ed25519 signature over {@link RFC9421_REQUEST} with {@link RFC9421_TEST_KEY_ED25519}. */
export const RFC9421_B26 = {
  label: 'sig-b26',
  components: ['date', '@method', '@path', '@authority', 'content-type', 'content-length'],
  params: { created: 1618884473, keyid: RFC9421_TEST_KEY_ED25519.kid },
  /** The `Signature-Input` member value (the serialized inner list with its parameters). */
  signatureInput: B26_INPUT,
  /** The signature base lines before `"@signature-params"`. */
  componentLines: B26_LINES,
  /** The full signature base: LF-joined, no trailing newline. */
  signatureBase: [...B26_LINES, `"@signature-params": ${B26_INPUT}`].join('\n'),
  /** The published signature, base64. Ed25519 is deterministic, so signing reproduces it. */
  signature: 'wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==',
}
