// Pretty-printed JSON split into tokens, so that a template can colour keys, strings and numbers without
// v-html: the text of each token is rendered as text, never as markup.

export type TokenKind = 'key' | 'string' | 'number' | 'literal' | 'punct' | 'space'

export interface Token {
  kind: TokenKind
  text: string
}

const pattern = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],:])|(\s+)/g

/** The value as JSON indented by two spaces, in tokens. */
export function jsonTokens(value: unknown): Token[] {
  return tokenize(JSON.stringify(value, null, 2) ?? 'undefined')
}

export function tokenize(text: string): Token[] {
  const out: Token[] = []
  let last = 0
  for (const m of text.matchAll(pattern)) {
    const at = m.index ?? 0
    if (at > last) out.push({ kind: 'punct', text: text.slice(last, at) })
    if (m[1] !== undefined) {
      out.push({ kind: m[2] ? 'key' : 'string', text: m[1] })
      if (m[2]) out.push({ kind: 'punct', text: m[2] })
    } else if (m[3] !== undefined) out.push({ kind: 'number', text: m[3] })
    else if (m[4] !== undefined) out.push({ kind: 'literal', text: m[4] })
    else if (m[5] !== undefined) out.push({ kind: 'punct', text: m[5] })
    else out.push({ kind: 'space', text: m[6] })
    last = at + m[0].length
  }
  if (last < text.length) out.push({ kind: 'punct', text: text.slice(last) })
  return out
}
