// Campaigns and touchpoints as the console shows them: what a campaign does today, its period, the icon of
// each channel, the date fields of the forms (a day in the browser's time zone, sent as RFC 3339), and touches by day.
import type { Campaign, Channel, Revocation, TouchHour } from './api'
import type { IconName } from './icons'
import { formatDate, formatDateRange, formatNumber, t } from './i18n'

export const channelIcons: Record<Channel, IconName> = {
  web_link: 'link',
  qr_poster: 'qr',
  business_card: 'card',
  product_pack: 'package',
  store: 'offline',
  ad: 'megaphone',
  wechat_qr: 'wechat',
  email: 'mail',
  sms: 'message',
  other: 'tag',
}

/** What a campaign's codes do today: lead on (active), not yet (scheduled), not now (paused), no more (ended). */
export type CampaignState = 'active' | 'scheduled' | 'paused' | 'ended'

export function campaignState(c: Campaign, now = Date.now()): CampaignState {
  if (c.status === 'paused') return 'paused'
  if (c.status === 'ended' || (c.ends_at && Date.parse(c.ends_at) <= now)) return 'ended'
  if (c.starts_at && Date.parse(c.starts_at) > now) return 'scheduled'
  return 'active'
}

/** The badge class of a campaign's or touchpoint's state. */
export const stateBadge: Record<CampaignState | 'revoked', string> = {
  active: 'badge-success',
  scheduled: '',
  paused: 'badge-warning',
  ended: '',
  revoked: 'badge-danger',
}

/** The last day a campaign runs: its end is the midnight after that day. */
const lastDay = (endsAt: string) => new Date(Date.parse(endsAt) - 1)

/** "Apr 1 – Jun 30, 2026", "From Apr 1, 2026", "Until …" or "No end date". */
export function campaignPeriod(c: Campaign): string {
  const from = c.starts_at ? new Date(c.starts_at) : null
  const to = c.ends_at ? lastDay(c.ends_at) : null
  if (from && to) return to < from ? formatDate(c.starts_at) : formatDateRange(from, to)
  if (from) return t('campaigns.period.from', { date: formatDate(c.starts_at) })
  if (to) return t('campaigns.period.until', { date: formatDate(to.toISOString()) })
  return t('campaigns.period.always')
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** The value of a date input for iso: its day here; with end, the day before that midnight (the last day). */
export function toDateInput(iso: string | null | undefined, end = false): string {
  if (!iso) return ''
  const d = end ? lastDay(iso) : new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/** The start of a day of a date input ("2026-04-01") here, or with end the midnight after it; null if none. */
export function fromDateInput(day: string, end = false): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day)
  if (!m) return null
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (end ? 1 : 0)).toISOString()
}

/** Today as a date input's value, for its min. */
export const today = () => toDateInput(new Date().toISOString())

/** Whether s looks like an address a browser can open (the server checks it too). */
export const isWebAddress = (s: string) => /^https?:\/\/[^\s/?#]+/i.test(s)

/** What a revocation covers, in words. */
export function revocationLabel(r: Revocation): string {
  switch (r.kind) {
    case 'touchpoint':
      return t('revoke.kind.touchpoint')
    case 'serials':
      return r.serial_from === r.serial_to
        ? t('revoke.label.serial', { n: formatNumber(r.serial_from ?? 0) })
        : t('revoke.label.serials', { from: formatNumber(r.serial_from ?? 0), to: formatNumber(r.serial_to ?? 0) })
    default:
      return t('revoke.label.token')
  }
}

/** A touchpoint's touches by the hour (as the server counts them, UTC) summed into the viewer's last days, today
 * last: each day's start and its touches by people, and the bots' touches over those days. */
export function touchesByDay(hours: readonly TouchHour[], days: number, now = Date.now()) {
  const today = new Date(now)
  today.setHours(0, 0, 0, 0)
  const starts: number[] = []
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(today)
    d.setDate(d.getDate() - i) // by the calendar: a day with a clock change is not 24 hours long
    starts.push(d.getTime())
  }
  const index = new Map(starts.map((s, i) => [s, i]))
  const people = starts.map(() => 0)
  let bots = 0
  for (const h of hours) {
    const day = new Date(h.hour)
    day.setHours(0, 0, 0, 0)
    const i = index.get(day.getTime())
    if (i === undefined) continue
    people[i]! += h.touches
    bots += h.bot_touches
  }
  return { starts, people, bots }
}
