export * from '../../src/protocol/index.js'
export { encodeBase64 as encodeSig } from '../../src/lib/base64url.js'
