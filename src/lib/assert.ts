/**
 * Argument checks for programmer mistakes (wrong option types), which are not protocol errors:
 * they throw `TypeError` with a Node-style `code` so misconfiguration fails at start-up.
 * Private to the library.
 *
 * @module
 */

/** A `TypeError` carrying `ERR_INVALID_ARG_TYPE` or `ERR_INVALID_ARG_VALUE`. */
export class CodedTypeError extends TypeError {
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE'
  constructor(message: string, code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE') {
    super(message)
    this.name = 'TypeError'
    this.code = code
  }
}

export function assertString(input: unknown, it: string): asserts input is string {
  if (typeof input !== 'string' || input.length === 0) {
    throw new CodedTypeError(`${it} must be a non-empty string`, 'ERR_INVALID_ARG_TYPE')
  }
}

export function assertPositiveInteger(input: unknown, it: string): asserts input is number {
  if (typeof input !== 'number' || !Number.isSafeInteger(input) || input <= 0) {
    throw new CodedTypeError(`${it} must be a positive integer`, 'ERR_INVALID_ARG_VALUE')
  }
}

export function invalidValue(it: string, why: string): CodedTypeError {
  return new CodedTypeError(`${it} ${why}`, 'ERR_INVALID_ARG_VALUE')
}

/** Plain JSON object check (not null, not an array). */
export function isObject(input: unknown): input is Record<string, unknown> {
  return typeof input === 'object' && input !== null && !Array.isArray(input)
}
