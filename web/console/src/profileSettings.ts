// The profile settings screen's model: the settings document (api.ts, docs/identity.md) as a draft that forms
// edit, and back. The draft holds what the forms need beyond the document (keys for lists, text for values);
// toSettings writes the document that the server checks, so that comparing two of them says whether anything
// changed.
import type { FieldType, Precedence, ProfileSettings, SourceMapping, TraitRule } from './api'
import type { MessageKey } from './locales/en'

export interface TypeDraft {
  key: number
  type: string
  /** '' while the input is empty. */
  limit: number | ''
  /** null: the type's default junk values, which the server fills in (a new type before it is saved). */
  junk: string[] | null
  fields: string[]
}

/** A raw value and what it becomes; orig is the value as loaded when it is not text, kept while unchanged. */
export interface PairDraft {
  key: number
  raw: string
  value: string
  orig?: unknown
}

export interface FieldDraft {
  key: number
  from: string
  to: string
  type: FieldType
  values: PairDraft[]
}

export interface MappingDraft {
  key: number
  sourceId: string
  only: boolean
  fields: FieldDraft[]
}

export interface TraitDraft {
  key: number
  name: string
  precedence: Precedence
  /** Kept while another precedence is chosen, so that choosing source priority again brings them back. */
  sources: string[]
}

export interface Draft {
  phoneRegion: string
  types: TypeDraft[]
  mappings: MappingDraft[]
  traits: TraitDraft[]
  activation: string[]
  conversion: string[]
}

let nextKey = 1
/** A key for a row of a list that the forms add to, remove from and reorder. */
export const newKey = () => nextKey++

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

export function fromSettings(s: ProfileSettings): Draft {
  return {
    phoneRegion: s.identity.phone_region,
    types: s.identity.types.map((r) => ({
      key: newKey(),
      type: r.type,
      limit: r.limit,
      junk: r.junk ? [...r.junk] : null,
      fields: [...(r.fields ?? [])],
    })),
    mappings: (s.mappings ?? []).map((m) => ({
      key: newKey(),
      sourceId: m.source_id,
      only: !!m.only,
      fields: (m.fields ?? []).map((f) => ({
        key: newKey(),
        from: f.from,
        to: f.to ?? '',
        type: f.type ?? '',
        values: Object.entries(f.values ?? {}).map(([raw, v]) => ({
          key: newKey(),
          raw,
          value: text(v),
          ...(typeof v === 'string' ? {} : { orig: v }),
        })),
      })),
    })),
    traits: (s.traits ?? []).map((r) => ({
      key: newKey(),
      name: r.name,
      precedence: r.precedence,
      sources: [...(r.sources ?? [])],
    })),
    activation: [...(s.lifecycle.activation_events ?? [])],
    conversion: [...(s.lifecycle.conversion_events ?? [])],
  }
}

/**
 * The document to send. It is written as the server writes it back, so that the draft of a saved document gives
 * that document again. Nothing is checked here beyond what the forms check: the server names every problem.
 */
export function toSettings(d: Draft): ProfileSettings {
  return {
    identity: {
      phone_region: d.phoneRegion.trim(),
      types: d.types.map((r) => ({
        type: r.type,
        limit: r.limit === '' ? 0 : r.limit,
        ...(r.junk === null ? {} : { junk: [...r.junk] }),
        ...(r.fields.length ? { fields: [...r.fields] } : {}),
      })),
    },
    mappings: d.mappings.map(
      (m): SourceMapping => ({
        source_id: m.sourceId,
        fields: m.fields.map((f) => {
          const values: Record<string, unknown> = {}
          for (const p of f.values) {
            if (p.raw === '' && p.value === '') continue
            values[p.raw] = p.orig !== undefined && p.value === text(p.orig) ? p.orig : p.value
          }
          return {
            from: f.from.trim(),
            ...(f.to.trim() ? { to: f.to.trim() } : {}),
            ...(f.type ? { type: f.type } : {}),
            ...(Object.keys(values).length ? { values } : {}),
          }
        }),
        ...(m.only ? { only: true } : {}),
      }),
    ),
    traits: d.traits.map(
      (r): TraitRule => ({
        name: r.name.trim(),
        precedence: r.precedence,
        ...(r.precedence === 'source_priority' && r.sources.length ? { sources: [...r.sources] } : {}),
      }),
    ),
    lifecycle: { activation_events: [...d.activation], conversion_events: [...d.conversion] },
  }
}

/** Whether two drafts would save the same document. */
export const sameSettings = (a: Draft, b: Draft) => JSON.stringify(toSettings(a)) === JSON.stringify(toSettings(b))

/** Moves the item at i by delta (-1: up, 1: down) within the list, if it stays inside. */
export function move<T>(list: T[], i: number, delta: number): void {
  const j = i + delta
  if (j < 0 || j >= list.length) return
  const [item] = list.splice(i, 1)
  list.splice(j, 0, item)
}

// ---------- identity ----------

/** The built-in identifier types, with what a marketer calls them. */
const builtInTypes: Record<string, MessageKey> = {
  user_id: 'profileSettings.type.userId',
  wechat_unionid: 'profileSettings.type.wechatUnionId',
  email: 'profileSettings.type.email',
  phone: 'profileSettings.type.phone',
  wechat_openid: 'profileSettings.type.wechatOpenId',
  device_id: 'profileSettings.type.deviceId',
  anonymous_id: 'profileSettings.type.anonymousId',
}
const builtInHints: Record<string, MessageKey> = {
  user_id: 'profileSettings.type.userId.hint',
  wechat_unionid: 'profileSettings.type.wechatUnionId.hint',
  email: 'profileSettings.type.email.hint',
  phone: 'profileSettings.type.phone.hint',
  wechat_openid: 'profileSettings.type.wechatOpenId.hint',
  device_id: 'profileSettings.type.deviceId.hint',
  anonymous_id: 'profileSettings.type.anonymousId.hint',
}

export const isBuiltInType = (type: string) => type in builtInTypes
export const typeLabelKey = (type: string): MessageKey | null => builtInTypes[type] ?? null
export const typeHintKey = (type: string): MessageKey | null => builtInHints[type] ?? null

/** What the rules accept as a type's name: lower_snake, starting with a letter, at most 64 characters. */
export const typeNamePattern = /^[a-z][a-z0-9_]{0,63}$/
export const maxLimit = 10_000

/** A field path as the identity rules take it: 2 to 6 names, the first traits, context or properties. */
export function validFieldPath(p: string): boolean {
  const parts = p.split('.')
  return (
    parts.length >= 2 &&
    parts.length <= 6 &&
    ['traits', 'context', 'properties'].includes(parts[0]) &&
    parts.slice(1).every((x) => x !== '' && x.length <= 64 && !/[*"\\]/.test(x))
  )
}

/** The regions offered for phone numbers, those of most of Hearth's users first; any other may be typed. */
export const commonRegions = [
  'CN', 'HK', 'MO', 'TW', 'SG', 'MY', 'JP', 'KR', 'TH', 'VN', 'ID', 'PH', 'IN', 'AU', 'NZ',
  'US', 'CA', 'GB', 'FR', 'DE', 'IT', 'ES', 'NL', 'AE',
] as const

/** "China (CN)", "中国 (CN)": a region's name in the console's language, with its code. */
export function regionLabel(code: string, locale: string): string {
  try {
    const name = new Intl.DisplayNames([locale], { type: 'region' }).of(code)
    return name && name !== code ? `${name} (${code})` : code
  } catch {
    return code
  }
}

// ---------- mappings ----------

export const fieldTypes: readonly { value: FieldType; label: MessageKey }[] = [
  { value: '', label: 'profileSettings.fieldType.asSent' },
  { value: 'string', label: 'profileSettings.fieldType.string' },
  { value: 'number', label: 'profileSettings.fieldType.number' },
  { value: 'boolean', label: 'profileSettings.fieldType.boolean' },
  { value: 'date', label: 'profileSettings.fieldType.date' },
]

/** A new row of a mapping. */
export const newField = (from = '', to = '', type: FieldType = '', values: [string, string][] = []): FieldDraft => ({
  key: newKey(),
  from,
  to,
  type,
  values: values.map(([raw, value]) => ({ key: newKey(), raw, value })),
})

/**
 * What a WeChat official account's user info says, mapped: the nickname is the name, sex (1, 2, 0) a gender, the
 * head image URL an avatar. Rows for fields the mapping has already are left as they are.
 */
export function addWeChatExample(m: MappingDraft): void {
  const example = [
    newField('nickname', 'name', 'string'),
    newField('sex', 'gender', 'string', [
      ['1', 'male'],
      ['2', 'female'],
      ['0', 'unknown'],
    ]),
    newField('headimgurl', 'avatar', 'string'),
  ]
  // An empty row the admin had not filled in yet gives way to the example.
  m.fields = m.fields.filter((f) => f.from.trim() !== '' || f.to.trim() !== '')
  for (const f of example) if (!m.fields.some((x) => x.from.trim() === f.from)) m.fields.push(f)
}

// ---------- traits ----------

export const precedences: readonly { value: Precedence; label: MessageKey; hint: MessageKey }[] = [
  { value: 'most_recent', label: 'profileSettings.precedence.mostRecent', hint: 'profileSettings.precedence.mostRecent.hint' },
  { value: 'first_seen', label: 'profileSettings.precedence.firstSeen', hint: 'profileSettings.precedence.firstSeen.hint' },
  {
    value: 'source_priority',
    label: 'profileSettings.precedence.sourcePriority',
    hint: 'profileSettings.precedence.sourcePriority.hint',
  },
]

// ---------- the server's answer ----------

/**
 * The server's message of settings it refused, in parts: "The profile settings are not valid: a; b." gives the
 * lead and the problems a and b, each naming its place. A message of another shape is the lead alone.
 */
export function problemsOf(message: string): { lead: string; problems: string[] } {
  const m = /^(The (?:profile settings|identity rules) are not valid): (.*?)\.?$/s.exec(message)
  if (!m) return { lead: message, problems: [] }
  return { lead: m[1] + '.', problems: m[2].split('; ').filter((p) => p !== '') }
}

/** The section of the screen that a problem the server named is in, by its place: mappings[0]… is the mapping. */
export function sectionOf(problem: string): { id: string; label: MessageKey } | null {
  if (problem.startsWith('mappings')) return { id: 'ps-mappings', label: 'profileSettings.mappings.title' }
  if (problem.startsWith('traits')) return { id: 'ps-traits', label: 'profileSettings.traits.title' }
  if (problem.startsWith('lifecycle')) return { id: 'ps-lifecycle', label: 'profileSettings.lifecycle.title' }
  if (/^(types|phone_region|rules)\b/.test(problem)) return { id: 'ps-identity', label: 'profileSettings.identity.title' }
  return null
}
