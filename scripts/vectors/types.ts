/**
 * The shapes of the vector files this generator builds (see `write.ts`), shared by the generator
 * and its runner (`test/vectors/independent.test.ts`).
 *
 * Conventions: times are Unix seconds; header names are lowercase; bodies are UTF-8 text;
 * base64 is padded (RFC 4648 §4) and base64url unpadded (§5), as the wire formats use them.
 */

/** Every vector has an id, a title in our own words, and the CHECKLIST ids / sections it exercises. */
export interface VectorBase {
  readonly id: string
  readonly title: string
  readonly refs: readonly string[]
  /**
   * `SHOULD` marks an expectation that rests on a SHOULD of the drafts (a recommended lifetime,
   * for instance): aauth-kit enforces it, another conforming implementation may not.
   */
  readonly level?: 'SHOULD'
}

/** One vector file. */
export interface VectorFile<V> {
  readonly title: string
  readonly description: string
  readonly vectors: readonly V[]
}

/** A request: method, absolute URL, lowercase headers, body text or `null`. */
export interface VectorRequest {
  method: string
  url: string
  headers: Record<string, string>
  body: string | null
}

/** One document served at a URL. */
export interface NetworkEntry {
  readonly status: number
  readonly body: unknown
}
/** URL → document. Unlisted URLs answer 404; in a per-vector override, `null` removes a URL. */
export type Network = Record<string, NetworkEntry | null>

// keys.json ---------------------------------------------------------------------------------

export interface KeyEntry {
  readonly use: string
  readonly kid?: string
  readonly alg: 'Ed25519' | 'ES256'
  readonly publicJwk: Record<string, string>
  readonly privateJwk: Record<string, string>
  /** RFC 7638 SHA-256 thumbprint of `publicJwk`. */
  readonly thumbprint: string
}
export interface KeysFile {
  readonly title: string
  readonly description: string
  readonly keys: Record<string, KeyEntry>
}

// rfc.json ----------------------------------------------------------------------------------

export type RfcVector = VectorBase &
  (
    | { readonly kind: 'signature-base'; readonly request: VectorRequest; readonly signatureInput: string; readonly signatureBase: string }
    | {
        readonly kind: 'signature'
        readonly publicJwk: Record<string, string>
        readonly privateJwk?: Record<string, string>
        readonly signatureBase: string
        /** base64 */
        readonly signature: string
        /** True when signing `signatureBase` with `privateJwk` must give exactly `signature` (Ed25519). */
        readonly exact: boolean
      }
    | { readonly kind: 'content-digest'; readonly body: string; readonly contentDigest: string; readonly produced: boolean }
    | { readonly kind: 'jwk-thumbprint'; readonly jwk: Record<string, string>; readonly thumbprint: string }
  )

// headers.json ------------------------------------------------------------------------------

/** A structured-field bare item in JSON (the httpwg structured-field-tests convention). */
export type SfValue = string | number | boolean | { readonly __type: 'binary'; readonly value: string } | { readonly __type: 'token'; readonly value: string }

/** A typed `Signature-Key` member, or the error interpreting it gives. Byte values are base64. */
export type InterpretedMember = Readonly<Record<string, string | boolean | Record<string, string>>> | { readonly error: string }

export type HeaderVector = VectorBase &
  (
    | {
        readonly kind: 'signature-key'
        readonly header: string
        readonly expected:
          | {
              readonly members: Record<string, { readonly scheme: string | null; readonly params: Record<string, SfValue> }>
              readonly interpreted: Record<string, InterpretedMember>
              /** Re-serializing every interpretable member gives exactly this. */
              readonly serialized?: string
            }
          | { readonly error: 'malformed_header' }
      }
    | {
        readonly kind: 'signature-key-cache'
        readonly header: string
        readonly expected: { readonly entries: Record<string, { cid: string; jti?: string; expires?: number }>; readonly serialized: string } | { readonly error: 'malformed_header' }
      }
    | {
        readonly kind: 'signature-error'
        readonly header: string
        readonly expected: { readonly error: string; readonly known: boolean; readonly requiredInput: readonly string[] | null } | { readonly error: 'malformed_header' }
      }
    | { readonly kind: 'accept-signature'; readonly header: string; readonly expected: { readonly tokens: readonly string[] } }
  )

// sign.json ---------------------------------------------------------------------------------

export interface SignVector extends VectorBase {
  readonly input: {
    readonly now: number
    /** A key name from keys.json. */
    readonly signer: string
    readonly label: string
    readonly signatureKey: { readonly scheme: 'jwt'; readonly jwt: string }
    readonly request: VectorRequest
    readonly additionalComponents?: readonly string[]
    readonly expires?: number
  }
  readonly output: {
    readonly components: readonly string[]
    readonly signatureBase: string
    /** The headers the signer adds: `signature-key`, `signature-input`, `signature`, and `content-digest` for a body. */
    readonly headers: Record<string, string>
  }
  /** False for ECDSA: the signature is randomized, so check it verifies rather than compare bytes. */
  readonly deterministic: boolean
}

// verify.json -------------------------------------------------------------------------------

export interface VerifierConfig {
  /** The verifier's own identifier (the `aud` of person and auth tokens). */
  readonly audience: string
  readonly now: number
  readonly windowSec: number
  readonly acceptedTokenTypes: readonly string[]
  /** Accept `jwks_uri` signatures from servers (SIG-19). */
  readonly acceptServerSignatures: boolean
  readonly acceptedAlgorithms: readonly string[]
  /** Refuse tokens whose `iat` is more than `windowSec` ahead (`clock_skew`). */
  readonly boundIat: boolean
  /** `(iss, jti)` pairs the verifier has been told are revoked. */
  readonly revoked: readonly { readonly iss: string; readonly jti: string }[]
  readonly requiredComponents: readonly string[]
  readonly requireBodyComponents: boolean
  readonly replayCache: boolean
}

/** What a verified request yields. */
export type VerifiedIdentity = {
  readonly label: string
  readonly created: number
  readonly components: readonly string[]
  /** RFC 7638 thumbprint of the key that verified the request signature. */
  readonly jkt: string
} & (
  | { readonly scheme: 'jwt'; readonly tokenType: string; readonly iss: string; readonly sub: string }
  | { readonly scheme: 'jwks_uri'; readonly iss: string; readonly dwk: string; readonly kid: string }
)

/** The 401's signature headers: `signature-error`, and `accept-signature-scheme` / `accept-signature-alg` when sent. */
export type ExpectedVerification = { readonly verified: VerifiedIdentity } | { readonly error: string; readonly headers: Record<string, string> }

export interface VerifyVector extends VectorBase {
  /** Merged over the file's `defaults.verifier`. */
  readonly verifier: Partial<VerifierConfig>
  /** Merged over the file's `network`. */
  readonly network?: Network
  readonly request: VectorRequest
  /** Verify the same request this many times with one verifier; all but the last must verify. Default 1. */
  readonly presentations?: number
  readonly expected: ExpectedVerification
}

export interface VerifyFile extends VectorFile<VerifyVector> {
  readonly defaults: { readonly verifier: VerifierConfig }
  readonly network: Network
}

// tokens.json -------------------------------------------------------------------------------

export type TokenParameter = 'resource' | 'presented' | 'upstream' | 'subagent'

export interface TokenVector extends VectorBase {
  readonly token: string
  readonly verify: {
    readonly type: 'aa-agent+jwt' | 'aa-person+jwt' | 'aa-resource+jwt' | 'aa-auth+jwt'
    readonly now: number
    readonly audience?: string
    readonly issuer?: string
    readonly agentJkt?: string
    readonly iatSkewSec?: number
    readonly revoked?: readonly { readonly iss: string; readonly jti: string }[]
  }
  /** When the token arrives as a request parameter, the body error it maps to (TOK-11). */
  readonly carriedAs?: TokenParameter
  readonly network?: Network
  readonly expected: { readonly claims: Record<string, unknown> } | { readonly error: string; readonly problem?: { readonly status: number; readonly error: string } }
}

export interface TokensFile extends VectorFile<TokenVector> {
  readonly network: Network
}
