/**
 * The vector files on disk. The published copy is `spec/vectors/extended/` (format:
 * `spec/README.md`, "Extended vectors"); `write.ts` and `npm run vectors` write it, and
 * `test/vectors/independent.test.ts` checks it is what the generator builds.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildVectorFiles, serialize, VECTOR_FILE_NAMES, type VectorFiles } from './index.js'

/** Where the published copy lives. */
export const EXTENDED_VECTORS_DIR = fileURLToPath(new URL('../../spec/vectors/extended/', import.meta.url))

/** The vector files present in `dir`, parsed (missing ones are left out). */
export function readVectorFiles(dir: string): VectorFiles {
  const files: VectorFiles = {}
  for (const name of VECTOR_FILE_NAMES) {
    const path = join(dir, name)
    if (existsSync(path)) files[name] = JSON.parse(readFileSync(path, 'utf8')) as unknown
  }
  return files
}

/**
 * Builds every file and writes it into `dir`. ES256 signatures already in `dir` are kept while
 * they still verify, so rewriting an unchanged set changes no byte.
 */
export function writeVectorFiles(dir: string): { files: VectorFiles; fresh: boolean } {
  mkdirSync(dir, { recursive: true })
  const previous = readVectorFiles(dir)
  const files = buildVectorFiles(previous)
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), serialize(content))
  return { files, fresh: Object.keys(previous).length === 0 }
}
