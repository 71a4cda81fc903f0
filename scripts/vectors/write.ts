/**
 * Writes the vector files into a directory named on the command line:
 * `npx tsx scripts/vectors/write.ts <dir>`. The published copy is `spec/vectors/extended/`
 * (`npm run vectors` rewrites it too); there is deliberately no default, so a scratch run never
 * overwrites it by accident.
 */
import { writeVectorFiles } from './files.js'

const dir = process.argv[2]
if (dir === undefined) {
  console.error('usage: npx tsx scripts/vectors/write.ts <output directory>   (published copy: spec/vectors/extended)')
  process.exit(2)
}
const { fresh } = writeVectorFiles(dir)
console.log(`wrote ${fresh ? 'fresh' : 'updated'} vector files to ${dir}`)
