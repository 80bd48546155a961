// Segments as the console edits and shows them: a rule (docs/segments.md) as a draft the visual builder changes
// (groups of conditions, each condition with every field it may need, so that switching its type loses nothing),
// the rule built back from a draft without the conditions not filled in yet, and a rule said in sentences.
import type { InjectionKey } from 'vue'
import type {
  Campaign,
  Channel,
  Comparison,
  CompareOp,
  CountOp,
  EventCondition,
  PropertyFilter,
  ReachChannel,
  Rule,
  Segment,
  StageCondition,
  StageOp,
  Touchpoint,
  TouchedCondition,
} from './api'
import { channelLabel, formatDate, formatNumber, locale, t } from './i18n'
import type { MessageKey } from './locales/en'
import { stageLabel } from './people'

export type ConditionType = 'trait' | 'event' | 'touched' | 'stage' | 'reachable' | 'segment'
export const conditionTypes: readonly ConditionType[] = ['trait', 'event', 'touched', 'stage', 'reachable', 'segment']

/** How an equals or in compares: as text, as a number, or (equals only) as yes or no. */
export type ValueKind = 'text' | 'number' | 'bool'

/** A comparison being edited: field is a trait's name or an event property's. Inputs are kept as typed. */
export interface CompareDraft {
  key: number
  field: string
  op: CompareOp
  kind: ValueKind
  value: string
  values: string[]
  days: string
}

/** never is exactly 0, said as the word marketers use. */
export type CountChoice = CountOp | 'never'
export type WindowChoice = 'all' | 'last' | 'between'
export type TouchBy = 'touchpoint' | 'campaign' | 'channel'

export interface EventDraft {
  name: string
  where: CompareDraft[]
  count: CountChoice
  times: string
  window: WindowChoice
  days: string
  from: string
  to: string
}

export interface TouchedDraft {
  by: TouchBy
  touchpoint: string
  campaign: string
  channel: Channel | ''
  window: 'all' | 'last'
  days: string
}

export interface ConditionDraft {
  kind: 'condition'
  key: number
  /** Wrapped in {"not": …}: the people for whom the condition is not true. */
  negate: boolean
  type: ConditionType
  trait: CompareDraft
  event: EventDraft
  touched: TouchedDraft
  stage: StageCondition
  reachable: ReachChannel
  segment: string
}

export interface GroupDraft {
  kind: 'group'
  key: number
  negate: boolean
  match: 'and' | 'or'
  items: NodeDraft[]
}

export type NodeDraft = GroupDraft | ConditionDraft

/** Property filters an event condition may have. */
export const maxFilters = 10
/** How deep the builder lets groups nest under the top one (a rule loaded deeper still shows whole). */
export const maxGroupDepth = 1

let nextKey = 1
const newKey = () => nextKey++

export function newCompare(field = ''): CompareDraft {
  return { key: newKey(), field, op: 'equals', kind: 'text', value: '', values: [], days: '' }
}

export function newCondition(type: ConditionType = 'trait'): ConditionDraft {
  return {
    kind: 'condition',
    key: newKey(),
    negate: false,
    type,
    trait: newCompare(),
    event: { name: '', where: [], count: 'at_least', times: '1', window: 'all', days: '30', from: '', to: '' },
    touched: { by: 'touchpoint', touchpoint: '', campaign: '', channel: '', window: 'all', days: '30' },
    stage: { op: 'is', value: 'converted' },
    reachable: 'any',
    segment: '',
  }
}

export function newGroup(match: 'and' | 'or' = 'and', items: NodeDraft[] = [newCondition()]): GroupDraft {
  return { kind: 'group', key: newKey(), negate: false, match, items }
}

// ---------- from a rule to a draft ----------

function compareFrom(c: Comparison, field: string): CompareDraft {
  const d = newCompare(field)
  d.op = c.op
  if (typeof c.value === 'boolean') {
    d.kind = 'bool'
    d.value = String(c.value)
  } else if (typeof c.value === 'number') {
    d.kind = 'number'
    d.value = String(c.value)
  } else if (typeof c.value === 'string') {
    d.value = c.value
  }
  if (c.values) {
    d.values = c.values.map(String)
    if (c.values.length && c.values.every((v) => typeof v === 'number')) d.kind = 'number'
  }
  if (c.days !== undefined) d.days = String(c.days)
  return d
}

function conditionFrom(rule: Rule): ConditionDraft | null {
  if ('trait' in rule) {
    const c = newCondition('trait')
    c.trait = compareFrom(rule.trait, rule.trait.name)
    return c
  }
  if ('event' in rule) {
    const c = newCondition('event')
    const e = rule.event
    c.event.name = e.name
    c.event.where = (e.where ?? []).map((f) => compareFrom(f, f.property))
    if (e.count) {
      c.event.count = e.count.op === 'exactly' && e.count.value === 0 ? 'never' : e.count.op
      c.event.times = String(e.count.value)
    }
    if (e.within_last_days !== undefined) {
      c.event.window = 'last'
      c.event.days = String(e.within_last_days)
    } else if (e.between) {
      c.event.window = 'between'
      c.event.from = e.between.from
      c.event.to = e.between.to
    }
    return c
  }
  if ('touched' in rule) {
    const c = newCondition('touched')
    const tc = rule.touched
    if (tc.campaign_id) {
      c.touched.by = 'campaign'
      c.touched.campaign = tc.campaign_id
    } else if (tc.channel) {
      c.touched.by = 'channel'
      c.touched.channel = tc.channel
    } else {
      c.touched.touchpoint = tc.touchpoint_id ?? ''
    }
    if (tc.within_last_days !== undefined) {
      c.touched.window = 'last'
      c.touched.days = String(tc.within_last_days)
    }
    return c
  }
  if ('stage' in rule) {
    const c = newCondition('stage')
    c.stage = { ...rule.stage }
    return c
  }
  if ('reachable' in rule) {
    const c = newCondition('reachable')
    c.reachable = rule.reachable.channel
    return c
  }
  if ('segment' in rule) {
    const c = newCondition('segment')
    c.segment = rule.segment.id
    return c
  }
  return null
}

function nodeFrom(rule: Rule, negate: boolean): NodeDraft {
  if ('not' in rule) return nodeFrom(rule.not, !negate)
  if ('and' in rule || 'or' in rule) {
    const match = 'and' in rule ? 'and' : 'or'
    const list = 'and' in rule ? rule.and : rule.or
    const g = newGroup(match, list.map((r) => nodeFrom(r, false)))
    g.negate = negate
    return g
  }
  const c = conditionFrom(rule) ?? newCondition()
  c.negate = negate
  return c
}

/** The draft of a rule: always a group at the top, a condition alone in one of its own. */
export function draftOf(rule: Rule | null): GroupDraft {
  if (!rule) return newGroup()
  const node = nodeFrom(rule, false)
  return node.kind === 'group' ? node : newGroup('and', [node])
}

// ---------- from a draft to a rule ----------

const dayPattern = /^\d{4}-\d{2}-\d{2}$/
// Inputs of type number give numbers (v-model casts what parses), so every check reads its input as text.
const isDay = (s: string) => dayPattern.test(s) && !Number.isNaN(Date.parse(s + 'T00:00:00Z'))
const isNumber = (s: string | number) => String(s).trim() !== '' && Number.isFinite(Number(s))
const isWhole = (s: string | number, min: number, max: number) =>
  /^\d+$/.test(String(s).trim()) && Number(s) >= min && Number(s) <= max

/** What a comparison lacks, as a message key; '' when it is complete. */
function compareProblem(c: CompareDraft): MessageKey | '' {
  switch (c.op) {
    case 'equals':
      if (c.kind === 'number') return isNumber(c.value) ? '' : 'rule.need.number'
      if (c.kind === 'bool') return c.value === 'true' || c.value === 'false' ? '' : 'rule.need.bool'
      return String(c.value) !== '' ? '' : 'rule.need.value'
    case 'contains':
      return String(c.value) !== '' ? '' : 'rule.need.value'
    case 'in':
      if (!c.values.length) return 'rule.need.values'
      if (c.values.length > 1000) return 'rule.need.tooMany'
      return c.kind === 'number' && !c.values.every(isNumber) ? 'rule.need.numbers' : ''
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return isNumber(c.value) ? '' : 'rule.need.number'
    case 'before':
    case 'after':
      return isDay(c.value) ? '' : 'rule.need.date'
    case 'within_last_days':
      return isWhole(c.days, 1, 3650) ? '' : 'rule.need.days'
    case 'exists':
      return ''
  }
}

function comparison(c: CompareDraft): Comparison {
  switch (c.op) {
    case 'equals':
      if (c.kind === 'number') return { op: c.op, value: Number(c.value) }
      if (c.kind === 'bool') return { op: c.op, value: c.value === 'true' }
      return { op: c.op, value: String(c.value) }
    case 'in':
      return { op: c.op, values: c.kind === 'number' ? c.values.map(Number) : c.values.map(String) }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return { op: c.op, value: Number(c.value) }
    case 'within_last_days':
      return { op: c.op, days: Number(c.days) }
    case 'exists':
      return { op: c.op }
    default:
      return { op: c.op, value: String(c.value) }
  }
}

/** What a condition lacks before it can be counted, as a message key; '' when it is complete. */
export function conditionProblem(c: ConditionDraft): MessageKey | '' {
  switch (c.type) {
    case 'trait':
      return c.trait.field.trim() ? compareProblem(c.trait) : 'rule.need.trait'
    case 'event': {
      const e = c.event
      if (!e.name.trim()) return 'rule.need.event'
      for (const f of e.where) {
        if (!f.field.trim()) return 'rule.need.property'
        const p = compareProblem(f)
        if (p) return p
      }
      if (e.count !== 'never' && !isWhole(e.times, 0, 1_000_000)) return 'rule.need.times'
      if (e.window === 'last' && !isWhole(e.days, 1, 3650)) return 'rule.need.days'
      if (e.window === 'between' && !(isDay(e.from) && isDay(e.to) && e.from <= e.to)) return 'rule.need.dates'
      return ''
    }
    case 'touched': {
      const tc = c.touched
      if (tc.by === 'touchpoint' && !tc.touchpoint) return 'rule.need.touchpoint'
      if (tc.by === 'campaign' && !tc.campaign) return 'rule.need.campaign'
      if (tc.by === 'channel' && !tc.channel) return 'rule.need.channel'
      return tc.window === 'last' && !isWhole(tc.days, 1, 3650) ? 'rule.need.days' : ''
    }
    case 'segment':
      return c.segment ? '' : 'rule.need.segment'
    default:
      return ''
  }
}

/** The rule of a complete condition, without its negation. */
function conditionRule(c: ConditionDraft): Rule {
  switch (c.type) {
    case 'trait':
      return { trait: { name: c.trait.field.trim(), ...comparison(c.trait) } }
    case 'event': {
      const d = c.event
      const e: EventCondition = { name: d.name.trim() }
      if (d.where.length) e.where = d.where.map((f): PropertyFilter => ({ property: f.field.trim(), ...comparison(f) }))
      if (d.count === 'never') e.count = { op: 'exactly', value: 0 }
      else if (!(d.count === 'at_least' && Number(d.times) === 1)) e.count = { op: d.count, value: Number(d.times) }
      if (d.window === 'last') e.within_last_days = Number(d.days)
      if (d.window === 'between') e.between = { from: d.from, to: d.to }
      return { event: e }
    }
    case 'touched': {
      const d = c.touched
      const tc: TouchedCondition =
        d.by === 'campaign' ? { campaign_id: d.campaign } : d.by === 'channel' ? { channel: d.channel as Channel } : { touchpoint_id: d.touchpoint }
      if (d.window === 'last') tc.within_last_days = Number(d.days)
      return { touched: tc }
    }
    case 'stage':
      return { stage: { ...c.stage } }
    case 'reachable':
      return { reachable: { channel: c.reachable } }
    case 'segment':
      return { segment: { id: c.segment } }
  }
}

/** The rule of one condition as the builder shows it under the row, negation included; null while incomplete. */
export function ruleOfCondition(c: ConditionDraft): Rule | null {
  if (conditionProblem(c)) return null
  const r = conditionRule(c)
  return c.negate ? { not: r } : r
}

export interface Built {
  /** The rule of the complete conditions; null when there is none. */
  rule: Rule | null
  /** The conditions left out, by key, and what each lacks. */
  incomplete: Map<number, MessageKey>
  /** Where each condition sits in the rule sent, as the API names places in its errors ("rule.and[1]"). */
  paths: Map<string, number>
}

/**
 * The rule of a draft, leaving out the conditions not complete yet (and the groups left empty), so that the live
 * count follows what is filled in. The top group is always sent as a group.
 */
export function buildRule(root: GroupDraft): Built {
  const incomplete = new Map<number, MessageKey>()
  const paths = new Map<string, number>()
  // Pending paths are recorded against the indexes the kept items get.
  function node(n: NodeDraft, path: string): Rule | null {
    const inner = n.negate ? path + '.not' : path
    let r: Rule | null
    if (n.kind === 'condition') {
      const problem = conditionProblem(n)
      if (problem) {
        incomplete.set(n.key, problem)
        return null
      }
      paths.set(path, n.key)
      r = conditionRule(n)
    } else {
      const kept: Rule[] = []
      for (const item of n.items) {
        const child = node(item, `${inner}.${n.match}[${kept.length}]`)
        if (child) kept.push(child)
      }
      if (!kept.length) return null
      r = n.match === 'and' ? { and: kept } : { or: kept }
    }
    return n.negate ? { not: r } : r
  }
  return { rule: node(root, 'rule'), incomplete, paths }
}

/**
 * The condition an API error names ("rule.and[1].event.count.value: must be …"): the one whose place is the
 * longest start of the error's path. null when the message names none.
 */
export function conditionOfError(message: string, paths: Map<string, number>): number | null {
  const path = message.split(/[:\s]/, 1)[0] ?? ''
  let best = ''
  for (const p of paths.keys()) {
    if ((path === p || path.startsWith(p + '.') || path.startsWith(p + '[')) && p.length > best.length) best = p
  }
  return best ? paths.get(best)! : null
}

/** Every group and condition of a draft, for counting and finding. */
export function* walk(n: NodeDraft): Generator<NodeDraft> {
  yield n
  if (n.kind === 'group') for (const item of n.items) yield* walk(item)
}

// ---------- a rule in sentences ----------

/** A piece of a sentence: plain words, or a value the rule names (shown stronger). */
export interface Part {
  text: string
  value?: boolean
  /** A link to another console page (a segment, a touchpoint). */
  to?: string
}

export type Sentence = { kind: 'group'; head: string; items: Sentence[] } | { kind: 'line'; parts: Part[] }

/** The names of what rules refer to by id. */
export interface Names {
  segments: Map<string, string>
  touchpoints: Map<string, string>
  campaigns: Map<string, string>
}

const val = (text: string, to?: string): Part[] => [{ text, value: true, to }]

/** Fills a message's {placeholders} with parts, then tidies the spaces that empty parts leave. */
function fill(key: MessageKey, params: Record<string, Part[]>): Part[] {
  const out: Part[] = []
  const template = t(key)
  let last = 0
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    out.push({ text: template.slice(last, m.index) })
    out.push(...(params[m[1]!] ?? [{ text: m[0] }]))
    last = (m.index ?? 0) + m[0].length
  }
  out.push({ text: template.slice(last) })
  return tidy(out)
}

function tidy(parts: Part[]): Part[] {
  const out: Part[] = []
  let space = true // at the start: drop leading spaces
  for (const p of parts) {
    if (p.value || p.to) {
      out.push(p)
      space = false
      continue
    }
    let text = p.text.replace(/\s+/g, ' ')
    if (space) text = text.replace(/^ /, '')
    // No space before closing punctuation, nor after Chinese punctuation.
    const prev = out[out.length - 1]
    if (prev && /^ [)）,，.]/.test(text)) text = text.slice(1)
    if (prev && !prev.value && !prev.to && /[（），、：]$/.test(prev.text)) text = text.replace(/^ /, '')
    if (!text) continue
    space = text.endsWith(' ')
    if (prev && !prev.value && !prev.to) prev.text += text
    else out.push({ text })
  }
  const end = out[out.length - 1]
  if (end && !end.value && !end.to) {
    end.text = end.text.replace(/ $/, '')
    if (!end.text) out.pop()
  }
  return out
}

/** A day as written in rules (YYYY-MM-DD), in the reader's words; the day itself, not a moment in UTC. */
export function dayText(day: string): string {
  if (!dayPattern.test(day)) return day
  const [y, m, d] = day.split('-').map(Number)
  return formatDate(new Date(y!, m! - 1, d!).toISOString())
}

function valueText(v: string | number | boolean | undefined): Part[] {
  if (typeof v === 'boolean') return val(v ? t('people.yes') : t('people.no'))
  if (typeof v === 'number') return val(formatNumber(v))
  return val(`“${v ?? ''}”`)
}

const listSep = () => (locale.value === 'zh-CN' ? '、' : ', ')

function join(lists: Part[][], sep: string): Part[] {
  return lists.flatMap((l, i) => (i ? [{ text: sep }, ...l] : l))
}

const cmpKeys: Record<CompareOp, [MessageKey, MessageKey]> = {
  equals: ['rule.cmp.equals', 'rule.cmp.equals.not'],
  contains: ['rule.cmp.contains', 'rule.cmp.contains.not'],
  in: ['rule.cmp.in', 'rule.cmp.in.not'],
  gt: ['rule.cmp.gt', 'rule.cmp.gt.not'],
  gte: ['rule.cmp.gte', 'rule.cmp.gte.not'],
  lt: ['rule.cmp.lt', 'rule.cmp.lt.not'],
  lte: ['rule.cmp.lte', 'rule.cmp.lte.not'],
  exists: ['rule.cmp.exists', 'rule.cmp.exists.not'],
  before: ['rule.cmp.before', 'rule.cmp.before.not'],
  after: ['rule.cmp.after', 'rule.cmp.after.not'],
  within_last_days: ['rule.cmp.within_last_days', 'rule.cmp.within_last_days.not'],
}

function comparisonText(field: string, c: Comparison, negate: boolean): Part[] {
  let value: Part[] = []
  if (c.op === 'in') value = join((c.values ?? []).map((v) => valueText(v)), listSep())
  else if (c.op === 'before' || c.op === 'after') value = val(dayText(String(c.value ?? '')))
  else if (c.op === 'within_last_days') value = val(formatNumber(c.days ?? 0))
  else value = valueText(c.value)
  const keys = cmpKeys[c.op] ?? cmpKeys.equals
  return fill(keys[negate ? 1 : 0], { field: val(field), value, values: value })
}

function windowText(days: number | undefined, between?: { from: string; to: string }): Part[] {
  if (days !== undefined) return fill('rule.window.last', { n: val(formatNumber(days)) })
  if (between) return fill('rule.window.between', { from: val(dayText(between.from)), to: val(dayText(between.to)) })
  return []
}

function countText(count: { op: CountOp; value: number } | undefined): Part[] {
  const c = count ?? { op: 'at_least', value: 1 }
  if (c.op === 'at_least' && c.value === 1) return fill('rule.count.atLeastOnce', {})
  if (c.op === 'exactly' && c.value === 1) return fill('rule.count.once', {})
  const key: Record<CountOp, MessageKey> = {
    at_least: 'rule.count.at_least',
    at_most: 'rule.count.at_most',
    exactly: 'rule.count.exactly',
  }
  return fill(key[c.op], { n: val(formatNumber(c.value)) })
}

function eventText(e: EventCondition, negate: boolean): Part[] {
  const filters = (e.where ?? []).map((f) => comparisonText(f.property, f, false))
  const where = filters.length ? fill('rule.where', { filters: join(filters, t('rule.where.and')) }) : []
  const params = { event: val(e.name), where, window: windowText(e.within_last_days, e.between), count: countText(e.count) }
  const never = e.count?.op === 'exactly' && e.count.value === 0
  if (never) return fill(negate ? 'rule.event.ever' : 'rule.event.never', params)
  return fill(negate ? 'rule.event.not' : 'rule.event', params)
}

const stageKeys: Record<StageOp, { plain: MessageKey; negated: MessageKey }> = {
  is: { plain: 'rule.stage.is', negated: 'rule.stage.is.not' },
  at_least: { plain: 'rule.stage.at_least', negated: 'rule.stage.at_least.not' },
  reached: { plain: 'rule.stage.reached', negated: 'rule.stage.reached.not' },
}

const reachKeys: Record<ReachChannel, MessageKey> = {
  email: 'rule.reach.email',
  sms: 'rule.reach.sms',
  wechat: 'rule.reach.wechat',
  any: 'rule.reach.any',
}
export const reachLabel = (c: ReachChannel) => t(reachKeys[c])

function conditionText(r: Rule, negate: boolean, names: Names): Part[] {
  if ('trait' in r) return comparisonText(r.trait.name, r.trait, negate)
  if ('event' in r) return eventText(r.event, negate)
  if ('touched' in r) {
    const tc = r.touched
    const window = windowText(tc.within_last_days)
    if (tc.campaign_id) {
      const name = val(names.campaigns.get(tc.campaign_id) ?? tc.campaign_id)
      return fill(negate ? 'rule.touched.campaign.not' : 'rule.touched.campaign', { name, window })
    }
    if (tc.channel) {
      return fill(negate ? 'rule.touched.channel.not' : 'rule.touched.channel', { name: val(channelLabel(tc.channel)), window })
    }
    const id = tc.touchpoint_id ?? ''
    const name = val(names.touchpoints.get(id) ?? id, `/touchpoints/${encodeURIComponent(id)}`)
    return fill(negate ? 'rule.touched.touchpoint.not' : 'rule.touched.touchpoint', { name, window })
  }
  if ('stage' in r) {
    const keys = stageKeys[r.stage.op] ?? stageKeys.is
    // Reached is said of a step by the step's own name, the one the home screen's lifecycle shows.
    const label = r.stage.op === 'reached' ? t(`lifecycle.${r.stage.value}` as MessageKey) : stageLabel(r.stage.value)
    return fill(negate ? keys.negated : keys.plain, { stage: val(label) })
  }
  if ('reachable' in r) {
    return fill(negate ? 'rule.reachable.not' : 'rule.reachable', { channel: val(reachLabel(r.reachable.channel)) })
  }
  if ('segment' in r) {
    const name = val(names.segments.get(r.segment.id) ?? r.segment.id, `/segments/${encodeURIComponent(r.segment.id)}`)
    return fill(negate ? 'rule.segment.not' : 'rule.segment', { name })
  }
  return [{ text: JSON.stringify(r) }]
}

/** A rule as sentences: groups as "All of these" (or any, none, not all) over their items, conditions as lines. */
export function ruleSentence(r: Rule, names: Names, negate = false): Sentence {
  if ('not' in r) return ruleSentence(r.not, names, !negate)
  if ('and' in r || 'or' in r) {
    const and = 'and' in r
    const list = 'and' in r ? r.and : r.or
    const head = negate ? (and ? t('rule.notAll') : t('rule.none')) : and ? t('rule.all') : t('rule.any')
    return { kind: 'group', head, items: list.map((x) => ruleSentence(x, names)) }
  }
  return { kind: 'line', parts: conditionText(r, negate, names) }
}

/** One condition in a line, for the builder's row. */
export function conditionSentence(r: Rule, names: Names): Part[] {
  const s = ruleSentence(r, names)
  return s.kind === 'line' ? s.parts : []
}

/** The names of segments, touchpoints and campaigns, by id. */
export function namesOf(
  segments: readonly Pick<Segment, 'id' | 'name'>[],
  touchpoints: readonly { id: string; name: string }[],
  campaigns: readonly { id: string; name: string }[],
): Names {
  return {
    segments: new Map(segments.map((s) => [s.id, s.name])),
    touchpoints: new Map(touchpoints.map((x) => [x.id, x.name])),
    campaigns: new Map(campaigns.map((x) => [x.id, x.name])),
  }
}

// ---------- the builder's choices ----------

export const opLabels: Record<CompareOp, MessageKey> = {
  equals: 'rule.op.equals',
  contains: 'rule.op.contains',
  in: 'rule.op.in',
  gt: 'rule.op.gt',
  gte: 'rule.op.gte',
  lt: 'rule.op.lt',
  lte: 'rule.op.lte',
  exists: 'rule.op.exists',
  before: 'rule.op.before',
  after: 'rule.op.after',
  within_last_days: 'rule.op.within_last_days',
}

export const typeLabels: Record<ConditionType, MessageKey> = {
  trait: 'rule.type.trait',
  event: 'rule.type.event',
  touched: 'rule.type.touched',
  stage: 'rule.type.stage',
  reachable: 'rule.type.reachable',
  segment: 'rule.type.segment',
}

export const countLabels: Record<CountChoice, MessageKey> = {
  at_least: 'rule.countOp.at_least',
  at_most: 'rule.countOp.at_most',
  exactly: 'rule.countOp.exactly',
  never: 'rule.countOp.never',
}

/** Traits most shops have, offered as the name of a trait is typed; the profile settings' own join them. */
export const commonTraits: readonly string[] = [
  'email',
  'phone',
  'name',
  'first_name',
  'last_name',
  'city',
  'province',
  'country',
  'gender',
  'birthday',
  'age',
  'company',
  'member_level',
  'email_subscribed',
  'sms_subscribed',
  'wechat_subscribed',
]

export const commonEvents: readonly string[] = [
  'Order Completed',
  'Product Viewed',
  'Product Added',
  'Checkout Started',
  'Signed Up',
  'Newsletter Subscribed',
  'Coupon Redeemed',
]

export const commonProperties: readonly string[] = ['amount', 'revenue', 'price', 'currency', 'sku', 'category', 'quantity', 'coupon']

/** The badge class of a segment's status. */
export const statusBadge: Record<string, string> = {
  evaluating: 'badge-warning',
  ready: 'badge-success',
}

/** What the builder's rows share: the choices of their pickers, the names of what rules refer to, and problems. */
export interface BuilderContext {
  names: Names
  /** The segments a condition may refer to: every other one. */
  segments: readonly Segment[]
  touchpoints: readonly Touchpoint[]
  campaigns: readonly Campaign[]
  /** What each condition still lacks, by key: left out of the count until filled in. */
  incomplete: Map<number, MessageKey>
  /** The API's objection to a condition, by key. */
  refused: Map<number, string>
  /** Show what incomplete conditions lack as errors (once a save was tried). */
  reveal: boolean
}

export const builderKey: InjectionKey<BuilderContext> = Symbol('rule builder')
