/**
 * Writes the vector files into a directory named on the command line:
 * `npx tsx scripts/vectors/write.ts <dir>`. There is deliberately no default: `spec/vectors/` holds
 * the project's published vectors in their own format (`spec/README.md`), and these files must not
 * be mixed into it unannounced.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildVectorFiles, serialize, type VectorFiles } from './index.js'

const dir = process.argv[2]
if (dir === undefined) {
  console.error('usage: npx tsx scripts/vectors/write.ts <output directory>')
  process.exit(2)
}
mkdirSync(dir, { recursive: true })
const previous: VectorFiles = {}
const signPath = join(dir, 'sign.json')
if (existsSync(signPath)) previous['sign.json'] = JSON.parse(readFileSync(signPath, 'utf8'))
for (const [name, content] of Object.entries(buildVectorFiles(previous))) writeFileSync(join(dir, name), serialize(content))
console.log(`wrote ${Object.keys(previous).length === 0 ? 'fresh' : 'updated'} vector files to ${dir}`)
