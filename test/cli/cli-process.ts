/**
 * Runs the `aauth` CLI as a real child process (`node --import tsx src/cli/main.ts …`) with
 * `AAUTH_DEV_LOOPBACK=1`, for the CLI tests.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MAIN = `${ROOT}src/cli/main.ts`

/** The environment of a CLI child: the parent's, without AAuth settings, plus `extra`. */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AAUTH_DEV_LOOPBACK: '1' }
  for (const k of ['AAUTH_PROVIDER', 'AAUTH_AGENT_KEY', 'AAUTH_AGENT_TOKEN', 'AAUTH_DEBUG']) delete env[k]
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

/** Starts `aauth …args`; `--import tsx` resolves from the repository root. */
export function spawnCli(args: readonly string[], env: Record<string, string | undefined> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] })
}

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>
  readonly input?: string
  /** Called with the stderr seen so far, on every chunk (e.g. to approve a consent). */
  readonly onStderr?: (stderrSoFar: string) => void
  readonly timeoutMs?: number
}

/** Runs `aauth …args` to completion. Killed (and the test fails on its output) after `timeoutMs`. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options.env)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c
    options.onStderr?.(stderr)
  })
  child.stdin!.end(options.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** A command line that must be refused as a usage error, with what stderr must match. */
export type UsageCase = readonly [args: readonly string[], stderr: RegExp, env?: Record<string, string | undefined>]

/** Runs the cases at once; each must exit 2 with its message on stderr and nothing on stdout. */
export async function expectUsageErrors(cases: readonly UsageCase[]): Promise<void> {
  const results = await Promise.all(cases.map(([args, , env]) => runCli(args, env === undefined ? {} : { env })))
  results.forEach((r, i) => {
    const [args, stderr] = cases[i]!
    expect(r.code, args.join(' ')).toBe(2)
    expect(r.stderr).toMatch(stderr)
    expect(r.stdout).toBe('')
  })
}

/** A long-running CLI process (`agent serve`) whose output is watched. */
export interface CliServer {
  readonly child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves once stdout matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export function startCli(args: readonly string[], env: Record<string, string | undefined> = {}): CliServer {
  const child = spawnCli(args, env)
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c
    for (const w of waiters) w()
  })
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out)
          if (m === null) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(m)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no ${pattern} in stdout within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
