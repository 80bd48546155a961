// Prints (or, with --write FILE, writes) the hash of the console's sources, so that a Go test can tell
// whether internal/console/dist was built from the sources in the tree.
//
// The hash, which internal/console/console_test.go recomputes the same way: take every file under
// web/console except the top-level node_modules/ and dist/ folders, sorted by its slash-separated path
// relative to web/console (byte order); for each append path + "\0" + hex(sha256(file bytes)) + "\n";
// the hash is the hex sha256 of that whole string.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const skip = new Set(['node_modules', 'dist'])

function walk(dir, rel, out) {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const path = rel ? `${rel}/${ent.name}` : ent.name
    if (!rel && skip.has(ent.name)) continue
    if (ent.isDirectory()) walk(join(dir, ent.name), path, out)
    else if (ent.isFile()) out.push(path)
    else throw new Error(`source-hash: ${path} is neither a file nor a folder`)
  }
  return out
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex')

const paths = walk(root, '', []).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
let list = ''
for (const p of paths) list += `${p}\0${sha256(readFileSync(join(root, p)))}\n`
const hash = sha256(list)

const i = process.argv.indexOf('--write')
if (i >= 0) {
  const file = process.argv[i + 1]
  if (!file) throw new Error('source-hash: --write needs a file')
  writeFileSync(file, hash + '\n')
} else {
  console.log(hash)
}
