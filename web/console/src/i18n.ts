// English and Simplified Chinese. The choice is kept in localStorage; the first visit follows the browser.
// English is built in (every message falls back to it); Chinese is loaded when first chosen.
import { ref, watchEffect } from 'vue'
import type { Channel, Role, SourceKind } from './api'
import en, { type MessageKey, type Messages } from './locales/en'

export type Locale = 'en' | 'zh-CN'
export const locales: readonly { code: Locale; label: string }[] = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
]

const dictionaries: Partial<Record<Locale, Messages>> = { en }
const storageKey = 'hearth.locale'

function initialLocale(): Locale {
  try {
    const saved = localStorage.getItem(storageKey)
    if (saved === 'en' || saved === 'zh-CN') return saved
  } catch {
    // Storage can be blocked; fall back to the browser's language.
  }
  const langs = navigator.languages?.length ? navigator.languages : [navigator.language]
  for (const l of langs) {
    const lower = (l ?? '').toLowerCase()
    if (lower.startsWith('zh')) return 'zh-CN'
    if (lower.startsWith('en')) return 'en'
  }
  return 'en'
}

/** The language shown: English until loadLocale has the chosen one. */
export const locale = ref<Locale>('en')

watchEffect(() => {
  document.documentElement.lang = locale.value
})

async function dictionary(l: Locale): Promise<Messages> {
  dictionaries[l] ??= l === 'zh-CN' ? (await import('./locales/zh-CN')).default : en
  return dictionaries[l]
}

/** Shows the language the visitor chose before, or their browser's; call it before the app mounts. */
export async function loadLocale(): Promise<void> {
  const l = initialLocale()
  try {
    await dictionary(l)
    locale.value = l
  } catch {
    // The dictionary did not load (the server went away): English, which is built in.
  }
}

/** Remembers the choice, and switches the language once its messages are loaded. */
export async function setLocale(l: Locale): Promise<void> {
  try {
    localStorage.setItem(storageKey, l)
  } catch {
    // Not remembered, but still switched.
  }
  await dictionary(l)
  locale.value = l
}

/** The message for key in the current language; {name} placeholders are filled from params. */
export function t(key: MessageKey, params?: Record<string, string | number>): string {
  const msg = dictionaries[locale.value]?.[key] ?? en[key] ?? key
  if (!params) return msg
  return msg.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m))
}

export const kindLabel = (k: SourceKind) => t(`kind.${k}`)
export const kindHint = (k: SourceKind) => t(`kind.${k}.hint`)
export const roleLabel = (r: Role) => t(`role.${r}`)
export const roleHint = (r: Role) => t(`role.${r}.hint`)
export const channelLabel = (c: Channel) => t(`channel.${c}`)
export const channelHint = (c: Channel) => t(`channel.${c}.hint`)

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium' }).format(d)
}

/** "Apr 1 – Jun 30, 2026", "2026年4月1日至6月30日": two dates as one range, the parts they share said once. */
export function formatDateRange(from: Date, to: Date): string {
  return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium' }).formatRange(from, to)
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'short' }).format(d)
}

/** "3 hours ago", "2 天前"; empty when iso is null. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return ''
  const then = new Date(iso).getTime()
  if (Number.isNaN(then)) return ''
  const secs = Math.round((then - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale.value, { numeric: 'auto' })
  const abs = Math.abs(secs)
  if (abs < 45) return rtf.format(0, 'second')
  if (abs < 45 * 60) return rtf.format(Math.round(secs / 60), 'minute')
  if (abs < 22 * 3600) return rtf.format(Math.round(secs / 3600), 'hour')
  if (abs < 26 * 86400) return rtf.format(Math.round(secs / 86400), 'day')
  if (abs < 320 * 86400) return rtf.format(Math.round(secs / (30 * 86400)), 'month')
  return rtf.format(Math.round(secs / (365 * 86400)), 'year')
}

export function formatNumber(n: number): string {
  return new Intl.NumberFormat(locale.value).format(n)
}

/** A share of a whole as a percentage: "42%", "0.4%" below one, "<0.1%" for a sliver that is not none. */
export function formatPercent(part: number, whole: number): string {
  if (whole <= 0) return '—'
  const share = part / whole
  if (share > 0 && share < 0.001) return '<' + new Intl.NumberFormat(locale.value, { style: 'percent', maximumFractionDigits: 1 }).format(0.001)
  return new Intl.NumberFormat(locale.value, { style: 'percent', maximumFractionDigits: share < 0.01 ? 1 : 0 }).format(share)
}

/** "14:05:09" for a time today, "Nov 22, 14:05:09" / "11月22日 14:05:09" for an earlier day; 24-hour in both. */
export function formatClock(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  const sameDay = new Date(now).toDateString() === d.toDateString()
  return new Intl.DateTimeFormat(locale.value, {
    ...(sameDay ? {} : { month: 'short', day: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).format(d)
}

/** Date and time to the second, for event timestamps. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'medium' }).format(d)
}

/** "12 MB", "850 kB": a file's size in decimal units, as file managers show it. */
export function formatBytes(n: number): string {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'] as const
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  return new Intl.NumberFormat(locale.value, {
    style: 'unit',
    unit: units[i],
    unitDisplay: i === 0 ? 'long' : 'short', // "163 bytes", "163 字节"; "1.2 MB"
    maximumFractionDigits: n < 10 && i > 0 ? 1 : 0,
  }).format(n)
}
