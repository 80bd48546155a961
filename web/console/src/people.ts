// People as the console shows them: a person's best label, their stage, their identifiers by type, trait
// values, and the timeline of events, stage changes and segment changes in one list.
import type { LifecycleStep, Profile, ProfileIdentity, ProfileSummary, SegmentChange, Stage, StageChange, TimelineEvent } from './api'
import type { IconName } from './icons'
import { t } from './i18n'
import type { MessageKey } from './locales/en'

/** The stages a person reaches, in order, after anonymous: the steps of the lifecycle. */
export const lifecycleSteps: readonly LifecycleStep[] = ['identified', 'connected', 'activated', 'converted']

/** How far along a stage is: 0 for anonymous, 4 for converted. */
export const stageRank = (s: Stage): number => Math.max(0, ['anonymous', ...lifecycleSteps].indexOf(s))

export const stageLabel = (s: Stage): string => t(`stage.${s}` as MessageKey)

/** The badge class of a stage: further along, warmer. */
export const stageBadge: Record<Stage, string> = {
  anonymous: 'badge-stage-anonymous',
  identified: 'badge-stage-identified',
  connected: 'badge-stage-connected',
  activated: 'badge-stage-activated',
  converted: 'badge-stage-converted',
}

/** The identifier types the console has words and icons for; custom types show as they are named. */
const typeIcons: Record<string, IconName> = {
  user_id: 'user',
  email: 'mail',
  phone: 'phone',
  wechat_unionid: 'wechat',
  wechat_openid: 'wechat',
  device_id: 'app',
  anonymous_id: 'globe',
}

export const identityIcon = (type: string): IconName => typeIcons[type] ?? 'tag'

export function identityLabel(type: string): string {
  return type in typeIcons ? t(`identity.${type}` as MessageKey) : type
}

/** Identifiers grouped by type, the strongest types first (as the default rules rank them), custom ones after. */
export function identityGroups(ids: readonly ProfileIdentity[]): { type: string; values: ProfileIdentity[] }[] {
  const order = Object.keys(typeIcons)
  const groups = new Map<string, ProfileIdentity[]>()
  for (const id of ids) groups.set(id.type, [...(groups.get(id.type) ?? []), id])
  const rank = (type: string) => (order.includes(type) ? order.indexOf(type) : order.length - 0.5)
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([type, values]) => ({ type, values }))
}

/** What to call a person: their name, else their best identifier, else "Anonymous visitor". */
export function personLabel(p: Pick<Profile, 'name' | 'identities'> | ProfileSummary): string {
  if (p.name) return p.name
  if ('email' in p) {
    if (p.email || p.phone) return (p.email ?? p.phone)!
    return p.identifier ? identifierLabel(p.identifier) : t('people.anonymous')
  }
  for (const type of ['email', 'phone', 'user_id', 'wechat_unionid', 'wechat_openid']) {
    const id = p.identities.find((i) => i.type === type)
    if (id) return identifierLabel(id)
  }
  return t('people.anonymous')
}

/** A WeChat id says nothing to a marketer: such a person is a WeChat user, told apart by the id's last characters. */
function identifierLabel(id: { type: string; value: string }): string {
  return id.type === 'wechat_openid' || id.type === 'wechat_unionid' ? t('people.wechatUser', { tail: id.value.slice(-4) }) : id.value
}

/** A trait's value as text: strings as they are, anything else as JSON. */
export function traitText(v: unknown): string {
  if (typeof v === 'string') return v
  if (typeof v === 'boolean') return v ? t('people.yes') : t('people.no')
  return JSON.stringify(v)
}

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '')
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {})

/** What an event was, in a few words. */
export function eventTitle(e: TimelineEvent): string {
  if (e.touch) return t('person.event.touch', { touchpoint: e.touch.touchpoint || e.touch.touchpoint_id })
  const p = e.payload ?? {}
  const props = obj(p.properties)
  switch (e.type) {
    case 'page':
      return t('person.event.page', { name: e.name || str(props.title) || str(props.path) || str(props.url) || '—' })
    case 'screen':
      return t('person.event.screen', { name: e.name || '—' })
    case 'identify': {
      const traits = Object.keys(obj(p.traits))
      if (!traits.length) return t('person.event.identify')
      return t('person.event.identifyTraits', { traits: traits.slice(0, 4).join(', ') + (traits.length > 4 ? ', …' : '') })
    }
    case 'alias':
      return t('person.event.alias')
    case 'group':
      return t('person.event.group', { id: str(p.groupId) || '—' })
  }
  return e.name || '—'
}

/** A track event's first few properties of plain values, as "sku: SKU-001, price: 399". */
export function propertiesHint(e: TimelineEvent): string {
  const props = Object.entries(obj(e.payload?.properties)).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
  const shown = props.slice(0, 3).map(([k, v]) => `${k}: ${String(v)}`)
  return shown.join(', ') + (props.length > 3 ? ', …' : '')
}

/** The words for how a touch came in (a link, a WeChat scan, staff or a kiosk, the website); "" when unknown. */
export function viaLabel(via: string): string {
  return ['link', 'wechat', 'offline', 'web'].includes(via) ? t(`person.via.${via}` as MessageKey) : via
}

/** One row of the timeline: an event, the stage change an event caused, or a segment entered or left. */
export type TimelineRow =
  | { kind: 'event'; seq: number; event: TimelineEvent }
  | { kind: 'stage'; seq: number; change: StageChange }
  | { kind: 'segment'; seq: number; change: SegmentChange }

/**
 * The timeline's rows, newest first: the events loaded so far, with each stage change just above the event that
 * caused it, and each segment change above the latest event received before it (segments follow events a moment
 * later; one a time window let go of sits above the events before it). Changes older than the oldest event loaded
 * wait until that page is loaded (all shows them all).
 */
export function timelineRows(
  events: readonly TimelineEvent[],
  changes: readonly StageChange[],
  all: boolean,
  segments: readonly SegmentChange[] = [],
): TimelineRow[] {
  const oldest = events.length ? events[events.length - 1]!.seq : Infinity
  const rows: TimelineRow[] = events.map((event) => ({ kind: 'event', seq: event.seq, event }))
  for (const change of changes) if (all || change.seq >= oldest) rows.push({ kind: 'stage', seq: change.seq, change })
  // Events newest first, so the first one received at or before a change is the one it sits above.
  const received = events.map((e) => ({ seq: e.seq, at: Date.parse(e.received_at) }))
  const at = new Map<TimelineRow, number>()
  for (const change of segments) {
    const when = Date.parse(change.at)
    const before = received.find((e) => e.at <= when)
    if (!before && !all) continue // its event is on a page not loaded yet
    const row: TimelineRow = { kind: 'segment', seq: before?.seq ?? 0, change }
    at.set(row, when)
    rows.push(row)
  }
  // Newest first; at one seq, segment changes above the stage change, above its event; segment changes by time.
  const rank = { segment: 2, stage: 1, event: 0 }
  return rows.sort((a, b) => b.seq - a.seq || rank[b.kind] - rank[a.kind] || (at.get(b) ?? 0) - (at.get(a) ?? 0))
}
