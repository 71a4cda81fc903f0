/**
 * Shared fast-check settings for the property suites (fuzz, differential). Importing this module
 * applies `FC_SEED`, so a reported failure replays with `FC_SEED=<seed>` (fast-check prints the
 * seed with the counterexample).
 */
import fc from 'fast-check'

/** Runs per property: 10,000 on CI, 1,000 locally. */
export const numRuns = process.env['CI'] !== undefined ? 10_000 : 1_000

if (process.env['FC_SEED'] !== undefined) fc.configureGlobal({ seed: Number(process.env['FC_SEED']) })
