/**
 * A tiny argv parser for the `aauth` command: long flags (`--key FILE`, `--key=FILE`), one-letter
 * aliases (`-X POST`, `-XPOST`, `-vi`), repeatable flags (`-H` may be given many times), `--` to end
 * the options, and `-` as a positional (stdin). Anything it does not know is a {@link UsageError}.
 *
 * @module
 */

/** A mistake on the command line: printed with a hint, exit code 2. */
export class UsageError extends Error {
  /** The command whose usage to point at (`fetch`, `agent serve`). */
  readonly command: string | undefined
  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** One flag a command accepts. */
export interface FlagSpec {
  /** `boolean` takes no value; `string` takes one; `strings` takes one and may repeat. */
  readonly type: 'boolean' | 'string' | 'strings'
  /** One-letter alias: `H` for `-H`. */
  readonly short?: string
}

/** The flags of a command, by long name (without the dashes). */
export type FlagSpecs = Readonly<Record<string, FlagSpec>>

/** Parsed flag values: `boolean`, `string | undefined`, or `string[]` by the flag's type. */
export type FlagValues<S extends FlagSpecs> = {
  -readonly [K in keyof S]: S[K]['type'] extends 'boolean' ? boolean : S[K]['type'] extends 'strings' ? string[] : string | undefined
}

/** What {@link parseArgs} returns. */
export interface ParsedArgs<S extends FlagSpecs> {
  readonly flags: FlagValues<S>
  readonly positionals: string[]
}

/**
 * Parses `argv` against `specs`.
 *
 * @param command - named in error messages (`aauth fetch: unknown option --foo`).
 * @throws {UsageError} for an unknown option, a missing value, a value given to a boolean flag, or
 *   a single-valued flag given twice.
 * @example
 * ```ts
 * const { flags, positionals } = parseArgs(['-H', 'a: b', '-v', 'https://x.example/'], {
 *   header: { type: 'strings', short: 'H' }, verbose: { type: 'boolean', short: 'v' },
 * }, 'fetch')
 * flags.header // ['a: b']
 * ```
 */
export function parseArgs<const S extends FlagSpecs>(argv: readonly string[], specs: S, command: string): ParsedArgs<S> {
  const flags: Record<string, boolean | string | string[] | undefined> = {}
  const byShort = new Map<string, string>()
  for (const [name, spec] of Object.entries(specs)) {
    flags[name] = spec.type === 'boolean' ? false : spec.type === 'strings' ? [] : undefined
    if (spec.short !== undefined) byShort.set(spec.short, name)
  }
  const positionals: string[] = []
  const usage = (message: string) => new UsageError(message, command)

  const set = (name: string, shown: string, value: string | undefined, next: () => string | undefined): void => {
    const spec = specs[name]!
    if (spec.type === 'boolean') {
      if (value !== undefined) throw usage(`${shown} takes no value`)
      flags[name] = true
      return
    }
    const v = value ?? next()
    if (v === undefined) throw usage(`${shown} needs a value`)
    if (spec.type === 'strings') (flags[name] as string[]).push(v)
    else {
      if (flags[name] !== undefined) throw usage(`${shown} was given twice`)
      flags[name] = v
    }
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const next = () => (i + 1 < argv.length ? argv[++i] : undefined)
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      if (!Object.hasOwn(specs, name)) throw usage(`unknown option --${name}`)
      set(name, `--${name}`, eq < 0 ? undefined : arg.slice(eq + 1), next)
      continue
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // -vi (booleans grouped), -XPOST (value attached), -X POST
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!
        const name = byShort.get(letter)
        if (name === undefined) throw usage(`unknown option -${letter}`)
        if (specs[name]!.type === 'boolean') {
          set(name, `-${letter}`, undefined, next)
          continue
        }
        set(name, `-${letter}`, j + 1 < arg.length ? arg.slice(j + 1) : undefined, next)
        break
      }
      continue
    }
    positionals.push(arg)
  }
  return { flags: flags as FlagValues<S>, positionals }
}

/**
 * Checks the number of positional arguments.
 *
 * @throws {UsageError} naming what is missing or extra.
 */
export function expectPositionals(positionals: readonly string[], names: readonly string[], command: string): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names.slice(positionals.length).join(' ')}`, command)
  if (positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`, command)
  return [...positionals]
}

/**
 * Reads a whole number of seconds from a flag (`--port`, `--timeout`).
 *
 * @throws {UsageError} when the value is not an integer in `[min, max]`.
 */
export function integerFlag(value: string | undefined, flag: string, command: string, range: { min: number; max: number }): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < range.min || n > range.max) {
    throw new UsageError(`${flag} must be a whole number from ${range.min} to ${range.max}, not ${JSON.stringify(value)}`, command)
  }
  return n
}
