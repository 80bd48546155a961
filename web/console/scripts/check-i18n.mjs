// tsc checks the .ts modules but not .vue templates, so this checks that every message key the .vue files
// name exists in src/locales/en.ts (zh-CN.ts is held to en.ts's keys by TypeScript). Run by `npm run build`.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const en = readFileSync(join(root, 'src/locales/en.ts'), 'utf8')
const keys = new Set([...en.matchAll(/^\s*'([^']+)':/gm)].map((m) => m[1]))
const namespaces = new Set([...keys].map((k) => k.split('.')[0]))

function* files(dir) {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name)
    if (ent.isDirectory()) yield* files(p)
    else if (ent.name.endsWith('.vue')) yield p
  }
}

const problems = []
for (const file of files(join(root, 'src'))) {
  const text = readFileSync(file, 'utf8')
  // Any single-quoted dotted word in a known namespace is taken to be a message key: t('x.y'), label: 'x.y', …
  // (Template attributes are double-quoted expressions such as "sources.length", so they are not matched.)
  for (const m of text.matchAll(/'([a-zA-Z]+(?:\.[a-zA-Z]+)+)'/g)) {
    const k = m[1]
    if (namespaces.has(k.split('.')[0]) && !keys.has(k)) {
      const line = text.slice(0, m.index).split('\n').length
      problems.push(`${relative(root, file)}:${line}: unknown message key '${k}'`)
    }
  }
}
if (problems.length) {
  console.error(problems.join('\n'))
  process.exit(1)
}
