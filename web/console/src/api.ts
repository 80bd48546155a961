// The admin API client (docs/admin-api.md). Same-origin fetch with the session cookie; every request that
// changes something carries the CSRF token from the login or session answer.

export type Role = 'admin' | 'marketer' | 'analyst'
export const roles: readonly Role[] = ['admin', 'marketer', 'analyst']

// 'touch' is the built-in source that Hearth records touches under; nobody creates one.
export type SourceKind = 'website' | 'app' | 'server' | 'wechat' | 'offline' | 'touch'
export const sourceKinds: readonly SourceKind[] = ['website', 'app', 'server', 'wechat', 'offline']

export interface User {
  id: string
  email: string
  name: string
  role: Role
  disabled: boolean
  created_at: string
  last_login_at: string | null
}

export interface SessionAnswer {
  user: User
  csrf_token: string
}

export interface SystemInfo {
  version: string
  engine: 'sqlite' | 'postgres'
  started_at: string
}

/** up_to_date: a little behind at most, as live traffic keeps it; catching_up: what it shows is not complete
 * yet; stalled: behind, and it has read nothing for half a minute. */
export type ProcessingState = 'up_to_date' | 'catching_up' | 'stalled'
export type ProcessingPartName = 'people' | 'segments' | 'touch_counts'

/** How far one part of the work that follows the event log is behind it. */
export interface ProcessingPart {
  name: ProcessingPartName
  state: ProcessingState
  behind: number
  /** Events read, and events arriving, a second over the last half minute. */
  rate: number
  incoming: number
  /** Of the events it was behind since it began catching up, the share read; null while up to date. */
  progress: number | null
  eta_seconds: number | null
  /** Events it failed on alone, again and again, and set aside so as to read on. */
  set_aside: number
}

export interface Processing {
  head: number
  measured_at: string
  parts: ProcessingPart[]
}

export interface Source {
  id: string
  name: string
  kind: SourceKind
  write_key: string
  enabled: boolean
  /** Events a second it may send to each server: its own (null: the server's default), and the one that applies (null: none). */
  rate_limit: number | null
  effective_rate_limit: number | null
  created_at: string
  updated_at: string
  stats: SourceStats
}

/**
 * What a source has sent: events stored, retries stored once, events refused, and when it last sent; and the
 * events its rate limit refused with a 429.
 */
export interface SourceStats {
  accepted: number
  duplicates: number
  rejected: number
  last_event_at: string | null
  throttled: number
  last_throttled_at: string | null
}

export type EventType = 'identify' | 'track' | 'page' | 'screen' | 'group' | 'alias'

/** A stored event as the live debugger shows it; payload is the event in Segment's shape. */
export interface DebugEvent {
  seq: number
  message_id: string
  type: EventType
  name: string
  user_id: string
  anonymous_id: string
  timestamp: string
  received_at: string
  bot: boolean
  payload: Record<string, unknown>
}

/** An event refused at the door: why, and what was sent (at most 4 KiB, not necessarily JSON). */
export interface RejectedEvent {
  id: number
  received_at: string
  reason: string
  payload: string
}

export interface EventPage {
  items: DebugEvent[] | null
  cursor: number
}

/** Where a person stands in the lifecycle identify → connect → activate → convert. */
export type Stage = 'anonymous' | 'identified' | 'connected' | 'activated' | 'converted'

/** A lifecycle step: a stage a person reaches, every one but anonymous. */
export type LifecycleStep = Exclude<Stage, 'anonymous'>

/**
 * The people at each stage (their furthest step), every stage in order; the people who meet each step's rule on
 * its own, every step in order (not nested: someone can buy before they are reachable); and everyone.
 */
export interface ProfileStages {
  stages: { stage: Stage; profiles: number }[]
  steps: { step: LifecycleStep; profiles: number }[]
  total: number
}
export const stages: readonly Stage[] = ['anonymous', 'identified', 'connected', 'activated', 'converted']

/** A person as a list shows them; email and phone are the ones a search matched, else their first. */
export interface ProfileSummary {
  id: string
  name: string
  stage: Stage
  first_seen: string
  last_seen: string
  email: string | null
  phone: string | null
  /** What to show of a person with neither: a user id or WeChat id; null when none. */
  identifier: { type: string; value: string } | null
}

/**
 * The people who touched a touchpoint, or any touchpoint of a campaign: each person once, bots never; how many of
 * them meet each lifecycle step (each on its own, so the figures need not fall); and up to five of them, identified
 * people first, the newest first.
 */
export interface PeopleReached {
  profiles: number
  steps: { step: LifecycleStep; profiles: number }[]
  /** Of them, those whose conversion came at or after their first touch here: what it may have converted. */
  converted_after_touch: number
  sample: ProfileSummary[]
  took_ms: number
}

/** A page of people; next asks for the page after it, null on the last. */
export interface ProfilePage {
  items: ProfileSummary[] | null
  next: string | null
}

/** An identifier a person holds: user_id, email, phone, wechat_openid, … or a custom type. */
export interface ProfileIdentity {
  type: string
  value: string
  /** The event that brought it in, and its time (null once retention removed the event). */
  first_seq: number
  first_at: string | null
}

/** A trait's value and where it came from: the source and the event that set it, and when. */
export interface ProfileTrait {
  value: unknown
  source_id: string
  source: string
  seq: number
  at: string
}

/** A person's touches of one touchpoint. */
export interface ProfileTouch {
  touchpoint_id: string
  touchpoint: string
  channel: Channel
  campaign_id: string | null
  campaign: string | null
  count: number
  first_seq: number
  first_at: string
  last_seq: number
  last_at: string
}

/** One touch: a person's first or last. */
export interface TouchMoment {
  touchpoint_id: string
  touchpoint: string
  channel: Channel
  campaign_id: string | null
  campaign: string | null
  seq: number
  at: string
}

export interface StageChange {
  seq: number
  from: Stage
  to: Stage
  at: string
}

/** A merge: on event seq, the identifier via linked profile from to profile into, which absorbed it. */
export interface ProfileMerge {
  seq: number
  into: string
  from: string
  via: { type: string; value: string }
  at: string
}

/** An admin's split of a person where one merge joined them, carried out by the profile processor. */
export interface Unmerge {
  id: number
  profile_id: string
  merge: ProfileMerge
  status: 'pending' | 'done' | 'failed'
  /** The profiles it left: the person's own id and the one given back. */
  profiles: string[]
  error?: string
  requested_by: string
  requested_at: string
  done_at: string | null
}

/** A person whole: the 360° view. absorbed_id is the id asked for when it was of a profile merged into this one. */
export interface Profile {
  id: string
  absorbed_id: string | null
  name: string
  stage: Stage
  /** Each lifecycle rule the person meets, on its own: a later step does not need an earlier one. */
  steps: Record<LifecycleStep, boolean>
  /** When each step was met; null where it is not, or its event is gone. */
  identified_at: string | null
  connected_at: string | null
  activated_at: string | null
  converted_at: string | null
  first_seen: string
  last_seen: string
  identities: ProfileIdentity[]
  traits: Record<string, ProfileTrait>
  touches: ProfileTouch[]
  first_touch: TouchMoment | null
  last_touch: TouchMoment | null
  stages: StageChange[]
  merges: ProfileMerge[]
}

/** An event of a person's timeline: as the debugger shows it, with its source and, for a touch, what was touched. */
export interface TimelineEvent extends DebugEvent {
  source_id: string
  source: string
  source_kind: SourceKind | ''
  touch: {
    touchpoint_id: string
    touchpoint: string
    channel: Channel
    campaign_id: string | null
    campaign: string | null
    via: string
    serial?: number
  } | null
}

/** A page of a timeline, newest first; next is the before of the page after it, null on the last. */
export interface TimelinePage {
  items: TimelineEvent[] | null
  next: number | null
}

export interface APIKey {
  id: string
  name: string
  role: Role
  prefix: string
  created_at: string
  last_used_at: string | null
  revoked_at: string | null
}

export interface NewAPIKey extends APIKey {
  key: string
}

export type Channel =
  | 'web_link'
  | 'qr_poster'
  | 'business_card'
  | 'product_pack'
  | 'store'
  | 'ad'
  | 'wechat_qr'
  | 'email'
  | 'sms'
  | 'other'
/** In the order the console offers them. */
export const channels: readonly Channel[] = [
  'web_link',
  'qr_poster',
  'business_card',
  'product_pack',
  'store',
  'ad',
  'wechat_qr',
  'email',
  'sms',
  'other',
]

/** Whether a campaign or touchpoint is in use; only campaigns end. */
export type Status = 'active' | 'paused' | 'ended'
// A touchpoint revoked as a whole stays revoked.
export type TouchpointStatus = 'active' | 'paused' | 'revoked'

export interface Campaign {
  id: string
  name: string
  goal: string
  starts_at: string | null
  ends_at: string | null
  status: Status
  fallback_url: string
  utm_source: string
  utm_medium: string
  utm_campaign: string
  created_at: string
  updated_at: string
  totals: { touchpoints: number; touches: number }
}

/** A campaign's writable fields; on update, absent fields keep their value and clear_* empty a date. */
export interface CampaignInput {
  name?: string
  goal?: string
  starts_at?: string
  ends_at?: string
  clear_starts_at?: boolean
  clear_ends_at?: boolean
  fallback_url?: string
  utm_source?: string
  utm_medium?: string
  utm_campaign?: string
}

export interface Touchpoint {
  id: string
  number: number
  name: string
  channel: Channel
  destination_url: string
  campaign_id: string | null
  location: string
  owner: string
  status: TouchpointStatus
  token: string
  url: string
  last_serial: number
  created_at: string
  updated_at: string
  stats: TouchStats
}

/** Touches by people, and by bots and link scanners, counted apart. */
export interface TouchStats {
  touches: number
  bot_touches: number
  last_touch_at: string | null
}

/** A touchpoint's writable fields; campaign_id "" takes it out of its campaign. */
export interface TouchpointInput {
  name?: string
  channel?: Channel
  destination_url?: string
  campaign_id?: string
  location?: string
  owner?: string
}

export interface TouchpointFilter {
  campaign_id?: string
  channel?: string
  status?: string
  q?: string
}

export interface IssuedToken {
  token: string
  url: string
  serial: number
  expires_at: string | null
}

export type RevocationKind = 'token' | 'serials' | 'touchpoint'

export interface Revocation {
  id: string
  kind: RevocationKind
  token?: string
  serial_from?: number
  serial_to?: number
  reason: string
  created_at: string
}

export interface RevocationInput {
  kind: RevocationKind
  token?: string
  serial_from?: number
  serial_to?: number
  reason: string
}

export interface SigningKey {
  id: number
  created_at: string
  retired_at: string | null
  /** The key that signs new links and codes. */
  signing: boolean
}

export type QRLevel = 'L' | 'M' | 'Q' | 'H'

/** How to draw a QR code: size in pixels, margin in modules (-1 for none), error correction level. */
export interface QROptions {
  size: number
  margin: number
  level: QRLevel
}

export type QRFormat = 'png' | 'svg'

/** pending: waiting for a worker; running: being drawn; done: its ZIP is ready; failed: error says why. */
export type CodeBatchStatus = 'pending' | 'running' | 'done' | 'failed' | 'expired'

/** A batch of numbered codes: one QR code per printed item, serial numbers first_serial to last_serial. */
export interface CodeBatch {
  id: string
  touchpoint_id: string
  first_serial: number
  last_serial: number
  count: number
  format: QRFormat
  size: number
  /** In modules; 0 for none. */
  margin: number
  level: QRLevel
  expires_at: string | null
  status: CodeBatchStatus
  /** Codes drawn so far. */
  done: number
  zip_bytes: number
  created_at: string
  started_at: string | null
  finished_at: string | null
  error: string | null
  download_url: string | null
}

/** A new batch; margin 0 for none, absent for the default. */
export interface CodeBatchInput {
  count: number
  format: QRFormat
  size: number
  margin: number
  level: QRLevel
  expires_at?: string
}

/** A touch that staff report: a touchpoint (and one of its numbered codes), who, and when (default now). */
export interface OfflineTouchInput {
  touchpoint_id: string
  serial?: number
  at?: string
  phone?: string
  email?: string
}

export interface RecordedTouch {
  touch: { touchpoint_id: string; campaign_id: string | null; channel: Channel; serial: number; at: string; message_id: string }
  /** The touch was recorded before. */
  duplicate: boolean
}

/** What an import of a CSV file did; rejected lists the first 1,000 bad rows, more_rejected counts the rest. */
export interface ImportResult {
  rows: number
  imported: number
  duplicates: number
  rejected: { line: number; reason: string }[] | null
  more_rejected: number
  ignored_columns: string[] | null
}

/** A WeChat official account. Its AppSecret, Token and EncodingAESKey are write-only: no answer carries them. */
export interface WeChatAccount {
  id: string
  name: string
  slug: string
  app_id: string
  /** The source of kind wechat its events are recorded under. */
  source_id: string
  /** It has an EncodingAESKey: callbacks are encrypted. */
  safe_mode: boolean
  /** Where WeChat posts what followers do: paste it into WeChat's server configuration. */
  callback_url: string
  created_at: string
  updated_at: string
}

/** An account's writable fields; on update, absent fields keep their value and encoding_aes_key "" turns safe mode off. */
export interface WeChatAccountInput {
  name?: string
  slug?: string
  app_id?: string
  app_secret?: string
  token?: string
  encoding_aes_key?: string
}

/** A parametric QR code of an official account that carries a touchpoint: a scan is a touch. */
export interface WeChatQR {
  id: string
  account_id: string
  touchpoint_id: string
  ticket: string
  /** What the code encodes. */
  url: string
  /** The code's image at WeChat. */
  image_url: string
  permanent: boolean
  expires_at: string | null
  created_at: string
}

export interface WeChatQRInput {
  account_id: string
  permanent: boolean
  /** 1 to 30, for a temporary code. */
  expires_in_days?: number
}

/** An identifier type as the identity rules list it, in priority order: the strongest first. */
export interface IdentityTypeRule {
  type: string
  /** How many identifiers of the type one profile may hold. */
  limit: number
  /** Values that are never identifiers of the type; absent: the type's defaults. */
  junk?: string[] | null
  /** Dotted paths under traits, context or properties where the type's values also are. */
  fields?: string[] | null
}

export interface IdentityRules {
  /** The region (ISO 3166 code) of phone numbers written without a country code. */
  phone_region: string
  types: IdentityTypeRule[]
}

/** How a mapped value is coerced: as sent (""), text, number, yes/no or a date (YYYY-MM-DD). */
export type FieldType = '' | 'string' | 'number' | 'boolean' | 'date'

/** One raw field of a source onto a trait; to "" drops it; values maps raw values (as text) onto the trait's. */
export interface FieldMap {
  from: string
  to?: string
  type?: FieldType
  values?: Record<string, unknown> | null
}

/** How one source's raw fields become traits; only: fields not mapped are dropped. */
export interface SourceMapping {
  source_id: string
  only?: boolean
  fields: FieldMap[] | null
}

export type Precedence = 'most_recent' | 'first_seen' | 'source_priority'

/** Which value of a trait wins; for source_priority, sources are the source ids, strongest first. */
export interface TraitRule {
  name: string
  precedence: Precedence
  sources?: string[] | null
}

/** The track events that make a person activated, and converted. */
export interface Lifecycle {
  activation_events: string[] | null
  conversion_events: string[] | null
}

/** The profile settings, one document (docs/identity.md): replaced whole; absent members take their defaults. */
export interface ProfileSettings {
  identity: IdentityRules
  mappings: SourceMapping[] | null
  traits: TraitRule[] | null
  lifecycle: Lifecycle
}

/** Where a rule segment's membership stands: evaluating during a full evaluation, ready after. */
export type SegmentStatus = 'evaluating' | 'ready'

/** How a trait or an event property compares (docs/segments.md, Comparisons). */
export type CompareOp =
  | 'equals'
  | 'contains'
  | 'in'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'exists'
  | 'before'
  | 'after'
  | 'within_last_days'
export const compareOps: readonly CompareOp[] = [
  'equals',
  'contains',
  'in',
  'gt',
  'gte',
  'lt',
  'lte',
  'exists',
  'before',
  'after',
  'within_last_days',
]

/** A comparison: value for most ops, values for in, days for within_last_days, nothing for exists. */
export interface Comparison {
  op: CompareOp
  value?: string | number | boolean
  values?: (string | number)[]
  days?: number
}

export interface TraitCondition extends Comparison {
  name: string
}

/** A filter on a top-level key of a track event's properties. */
export interface PropertyFilter extends Comparison {
  property: string
}

export type CountOp = 'at_least' | 'at_most' | 'exactly'

/** A track event's condition: its name, filters, how many times (default at least once) and when (default ever). */
export interface EventCondition {
  name: string
  where?: PropertyFilter[]
  count?: { op: CountOp; value: number }
  within_last_days?: number
  between?: { from: string; to: string }
}

/** Exactly one of touchpoint_id, campaign_id or channel; within_last_days: the last touch was that recent. */
export interface TouchedCondition {
  touchpoint_id?: string
  campaign_id?: string
  channel?: Channel
  within_last_days?: number
}

/**
 * is: the person's stage (their furthest step) is the value; at_least: it is the value or further; reached: the
 * person meets the value's step on its own, whatever the steps before (never anonymous, which is no step).
 */
export type StageOp = 'is' | 'at_least' | 'reached'
export interface StageCondition {
  op: StageOp
  value: Stage
}

export type ReachChannel = 'email' | 'sms' | 'wechat' | 'any'
export const reachChannels: readonly ReachChannel[] = ['email', 'sms', 'wechat', 'any']

/** A segment's rule: a JSON tree whose every node has one key, a combinator or a condition. */
export type Rule =
  | { and: Rule[] }
  | { or: Rule[] }
  | { not: Rule }
  | { trait: TraitCondition }
  | { event: EventCondition }
  | { touched: TouchedCondition }
  | { stage: StageCondition }
  | { reachable: { channel: ReachChannel } }
  | { segment: { id: string } }

/** A group of people kept current: by a rule, or by an uploaded list of email addresses and phone numbers. */
export interface Segment {
  id: string
  name: string
  description: string
  kind: 'rule' | 'list'
  rule: Rule | null
  /** A list segment's count of email addresses and phone numbers. */
  list_items?: number
  size: number
  status: SegmentStatus
  evaluated_at: string | null
  /** While evaluating: its evaluation failed again and again, and is tried again at retry_at. */
  evaluation_error: { message: string; failures: number; retry_at: string } | null
  created_at: string
  updated_at: string
}

/** A new segment (a rule, or kind list), or on update the fields to change. */
export interface SegmentInput {
  name?: string
  description?: string
  rule?: Rule
  kind?: 'list'
}

export interface SegmentMember {
  profile_id: string
  name: string
  stage: Stage
  since: string
}

/** A page of members, newest first; next_cursor asks for the next page, null (or empty) on the last. */
export interface SegmentMemberPage {
  members: SegmentMember[] | null
  next_cursor: string | null
}

/** The size at the end of an hour that changed it. */
/** A touchpoint's touches in one hour (its start, UTC). */
export interface TouchHour {
  hour: string
  touches: number
  bot_touches: number
}

export interface SegmentSize {
  at: string
  size: number
}

/** What an upload of a list read: the items on the list now, and the lines it could not read and why. */
export interface ListUpload {
  items: number
  /** The first 1,000 lines not read; more_rejected counts the rest. */
  rejected: { line: number; reason: string }[] | null
  more_rejected: number
}

/** A person entering (entered) or leaving a segment. */
export interface SegmentChange {
  segment_id: string
  segment: string
  entered: boolean
  at: string
}

/** The segments a person is in now, and their history of entering and leaving, newest first. */
export interface PersonSegments {
  segments: { id: string; name: string; since: string }[] | null
  changes: SegmentChange[] | null
}

interface List<T> {
  items: T[] | null
}

// An empty list may come as null from a server that encodes a nil slice; treat it as [].
const items = <T>(l: List<T>): T[] => l.items ?? []

/** An error answer from the API, or a network failure (status 0, code "network"). */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly retryAfter: number | null

  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

let csrfToken = ''
let onUnauthenticated: (() => void) | null = null

export function setCsrfToken(token: string): void {
  csrfToken = token
}

/** Called when a request answers 401 because the session is gone (not for a wrong password). */
export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn
}

/**
 * Sends body as JSON, a FormData as it is (a multipart upload, its boundary set by the browser), or a Blob as its
 * bytes with the Blob's type.
 */
async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const form = body instanceof FormData
  const blob = body instanceof Blob
  if (blob) headers['Content-Type'] = body.type || 'application/octet-stream'
  else if (body !== undefined && !form) headers['Content-Type'] = 'application/json'
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken

  let res: Response
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : form || blob ? body : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'network', '')
  }

  if (res.ok) {
    if (res.status === 204) return undefined as T
    const text = await res.text()
    return (text ? JSON.parse(text) : undefined) as T
  }

  let code = 'internal'
  let message = ''
  try {
    const data = (await res.json()) as { error?: { code?: string; message?: string } }
    code = data.error?.code ?? code
    message = data.error?.message ?? ''
  } catch {
    // Not JSON (a proxy's error page, say): keep the generic code.
  }
  const retry = res.headers.get('Retry-After')
  const err = new ApiError(res.status, code, message, retry && /^\d+$/.test(retry) ? Number(retry) : null)
  const sessionGone = res.status === 401 && code !== 'invalid_credentials' && !path.startsWith('/auth/')
  if (sessionGone && onUnauthenticated) onUnauthenticated()
  throw err
}

// As for lists: no sample may come as null.
const withSample = (r: PeopleReached): PeopleReached => ({ ...r, sample: r.sample ?? [] })

const enc = encodeURIComponent

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? '?' + s : ''
}

/**
 * The address of a touchpoint's QR code, for an <img> or a download link (the session cookie authorises it).
 * token is the touchpoint's current token: the code changes with it (after a key rotation), so it keys the
 * browser's cache.
 */
export function qrURL(id: string, token: string, format: QRFormat, o: QROptions, download = false): string {
  // The API takes margin=0 for none: -1 is the options' own way of saying it.
  const q = query({ size: o.size, margin: Math.max(0, o.margin), level: o.level, download: download ? 1 : undefined, v: token })
  return `/api/v1/touchpoints/${enc(id)}/qr.${format}${q}`
}

/** The address of a segment's members as CSV, for a download link (the session cookie authorises it). */
export function segmentMembersCSVURL(id: string): string {
  return `/api/v1/segments/${enc(id)}/members.csv`
}

export const api = {
  login: (email: string, password: string) => request<SessionAnswer>('POST', '/auth/login', { email, password }),
  session: () => request<SessionAnswer>('GET', '/auth/session'),
  logout: () => request<void>('POST', '/auth/logout'),
  changePassword: (current_password: string, new_password: string) =>
    request<void>('POST', '/auth/password', { current_password, new_password }),
  checkSetup: (token: string) => request<{ valid: boolean }>('GET', '/auth/setup?token=' + enc(token)),
  setup: (token: string, email: string, name: string, password: string) =>
    request<SessionAnswer>('POST', '/auth/setup', { token, email, name, password }),

  system: () => request<SystemInfo>('GET', '/system'),
  processing: () => request<Processing>('GET', '/system/processing'),

  sources: () => request<List<Source>>('GET', '/sources').then(items),
  source: (id: string) => request<Source>('GET', '/sources/' + enc(id)),
  createSource: (name: string, kind: SourceKind) => request<Source>('POST', '/sources', { name, kind }),
  /** Changes a source's name or rate limit (null: the server's default). */
  editSource: (id: string, change: { name?: string; rate_limit?: number | null }) =>
    request<Source>('PATCH', '/sources/' + enc(id), change),
  setSourceEnabled: (id: string, enabled: boolean) =>
    request<Source>('POST', `/sources/${enc(id)}/${enabled ? 'enable' : 'disable'}`),
  regenerateWriteKey: (id: string) => request<Source>('POST', `/sources/${enc(id)}/write-key`),
  /** Without a cursor: the latest events, newest first. With one: what arrived since, oldest first. */
  sourceEvents: (id: string, cursor: number, limit: number) =>
    request<EventPage>('GET', `/sources/${enc(id)}/events?${cursor > 0 ? `cursor=${cursor}&` : ''}limit=${limit}`),
  /** Refused events with an id above after (0: the latest), newest first. */
  sourceRejections: (id: string, after: number, limit: number) =>
    request<List<RejectedEvent>>('GET', `/sources/${enc(id)}/rejections?after=${after}&limit=${limit}`).then(items),

  /** People whose name, email or phone starts with q; without q, the most recently active first. */
  /** People by name, email or phone prefix, else the most recently active; with step, only those who reached it. */
  profiles: (q: string, cursor = '', step = '', limit = 25) =>
    request<ProfilePage>('GET', '/profiles' + query({ q, step, cursor, limit })),
  /** How many people stand at each lifecycle stage, and meet each step on its own. */
  profileStages: () => request<ProfileStages>('GET', '/profiles/stages'),
  /** A person whole; the id of a profile merged into another answers that one, with absorbed_id. */
  profile: (id: string) => request<Profile>('GET', '/profiles/' + enc(id)),
  /** The person holding an identifier, written as people write it. */
  lookupProfile: (type: string, value: string) => request<Profile>('GET', '/profiles/lookup' + query({ type, value })),
  /** Splits a person where profile from was merged in (admins only); answers when done, or pending after 10 s. */
  unmerge: (id: string, from: string) => request<Unmerge>('POST', `/profiles/${enc(id)}/unmerge`, { from }),
  unmergeStatus: (id: number) => request<Unmerge>('GET', `/unmerges/${id}`),
  /** A person's timeline before an event (0: the newest), newest first. */
  profileEvents: (id: string, before = 0, limit = 50) =>
    request<TimelinePage>('GET', `/profiles/${enc(id)}/events` + query({ before: before || undefined, limit })),

  users: () => request<List<User>>('GET', '/users').then(items),
  createUser: (u: { email: string; name: string; role: Role; password: string }) =>
    request<User>('POST', '/users', u),
  updateUser: (id: string, patch: { name?: string; role?: Role; disabled?: boolean }) =>
    request<User>('PATCH', '/users/' + enc(id), patch),

  campaigns: () => request<List<Campaign>>('GET', '/campaigns').then(items),
  campaign: (id: string) => request<Campaign>('GET', '/campaigns/' + enc(id)),
  createCampaign: (c: CampaignInput) => request<Campaign>('POST', '/campaigns', c),
  updateCampaign: (id: string, c: CampaignInput) => request<Campaign>('PATCH', '/campaigns/' + enc(id), c),
  setCampaignPaused: (id: string, paused: boolean) =>
    request<Campaign>('POST', `/campaigns/${enc(id)}/${paused ? 'pause' : 'resume'}`),

  touchpoints: (f: TouchpointFilter = {}) =>
    request<List<Touchpoint>>('GET', '/touchpoints' + query({ ...f })).then(items),
  touchpoint: (id: string) => request<Touchpoint>('GET', '/touchpoints/' + enc(id)),
  createTouchpoint: (tp: TouchpointInput) => request<Touchpoint>('POST', '/touchpoints', tp),
  updateTouchpoint: (id: string, tp: TouchpointInput) => request<Touchpoint>('PATCH', '/touchpoints/' + enc(id), tp),
  setTouchpointPaused: (id: string, paused: boolean) =>
    request<Touchpoint>('POST', `/touchpoints/${enc(id)}/${paused ? 'pause' : 'resume'}`),
  /** A link of the touchpoint that stops working at expiresAt. */
  issueToken: (id: string, expiresAt: string) =>
    request<IssuedToken>('POST', `/touchpoints/${enc(id)}/tokens`, { expires_at: expiresAt }),
  /** The hours with touches over the last days (1 to 400), oldest first. */
  touchHours: (id: string, days = 30) =>
    request<{ hours: TouchHour[] | null }>('GET', `/touchpoints/${enc(id)}/touches` + query({ days })).then((l) => l.hours ?? []),
  /** The same, summed over the touchpoints in a campaign. */
  campaignTouchHours: (id: string, days = 30) =>
    request<{ hours: TouchHour[] | null }>('GET', `/campaigns/${enc(id)}/touches` + query({ days })).then((l) => l.hours ?? []),
  /** The same, summed over every touchpoint. */
  allTouchHours: (days = 30) =>
    request<{ hours: TouchHour[] | null }>('GET', '/touches' + query({ days })).then((l) => l.hours ?? []),
  /** The people who touched it, and how far they went. */
  touchpointPeople: (id: string) => request<PeopleReached>('GET', `/touchpoints/${enc(id)}/people`).then(withSample),
  /** The same over the touchpoints in a campaign: a person who touched several counts once. */
  campaignPeople: (id: string) => request<PeopleReached>('GET', `/campaigns/${enc(id)}/people`).then(withSample),
  revocations: (id: string) => request<List<Revocation>>('GET', `/touchpoints/${enc(id)}/revocations`).then(items),
  revoke: (id: string, r: RevocationInput) => request<Revocation>('POST', `/touchpoints/${enc(id)}/revocations`, r),

  codeBatches: (touchpointID: string) =>
    request<List<CodeBatch>>('GET', `/touchpoints/${enc(touchpointID)}/code-batches`).then(items),
  /** Answers at once (202) with the batch pending; a worker draws its codes. */
  createCodeBatch: (touchpointID: string, b: CodeBatchInput) =>
    request<CodeBatch>('POST', `/touchpoints/${enc(touchpointID)}/code-batches`, b),
  codeBatch: (id: string) => request<CodeBatch>('GET', '/code-batches/' + enc(id)),
  redrawCodeBatch: (id: string) => request<CodeBatch>('POST', `/code-batches/${enc(id)}/redraw`),

  wechatAccounts: () => request<List<WeChatAccount>>('GET', '/wechat-accounts').then(items),
  createWeChatAccount: (a: WeChatAccountInput) => request<WeChatAccount>('POST', '/wechat-accounts', a),
  updateWeChatAccount: (id: string, a: WeChatAccountInput) =>
    request<WeChatAccount>('PATCH', '/wechat-accounts/' + enc(id), a),
  wechatQRCodes: (touchpointID: string) =>
    request<List<WeChatQR>>('GET', `/touchpoints/${enc(touchpointID)}/wechat-qr`).then(items),
  /** A new code, or for a permanent one the code made before on that account. */
  createWeChatQR: (touchpointID: string, q: WeChatQRInput) =>
    request<WeChatQR>('POST', `/touchpoints/${enc(touchpointID)}/wechat-qr`, q),

  recordTouch: (touch: OfflineTouchInput) => request<RecordedTouch>('POST', '/touches', touch),
  /** Imports a CSV file of offline touches; times without a zone in it are read in timeZone. */
  importTouches: (file: File, timeZone: string) => {
    const body = new FormData()
    body.append('file', file)
    return request<ImportResult>('POST', '/touches/import' + query({ timezone: timeZone }), body)
  },

  signingKeys: () => request<List<SigningKey>>('GET', '/signing-keys').then(items),
  rotateSigningKey: () => request<List<SigningKey>>('POST', '/signing-keys').then(items),
  retireSigningKey: (id: number) => request<List<SigningKey>>('POST', `/signing-keys/${id}/retire`).then(items),

  apiKeys: () => request<List<APIKey>>('GET', '/api-keys').then(items),
  createAPIKey: (name: string, role: Role) => request<NewAPIKey>('POST', '/api-keys', { name, role }),
  revokeAPIKey: (id: string) => request<void>('DELETE', '/api-keys/' + enc(id)),

  segments: () => request<{ segments: Segment[] | null }>('GET', '/segments').then((l) => l.segments ?? []),
  segment: (id: string) => request<Segment>('GET', '/segments/' + enc(id)),
  /** Evaluated before it answers when that takes under 5 s, else answers with status evaluating. */
  createSegment: (s: SegmentInput) => request<Segment>('POST', '/segments', s),
  updateSegment: (id: string, s: SegmentInput) => request<Segment>('PATCH', '/segments/' + enc(id), s),
  /** 409 while another segment's rule uses it. */
  deleteSegment: (id: string) => request<void>('DELETE', '/segments/' + enc(id)),
  /** How many people a rule holds now, without saving it; 400 invalid_rule names the part that is wrong. */
  /** A rule's size now, and a few of the people it matches (the newest first). */
  countRule: (rule: Rule) => request<{ size: number; took_ms: number; sample: ProfileSummary[] }>('POST', '/segments/count', { rule }),
  /** Replaces a list segment's list with a CSV file's. */
  uploadSegmentList: (id: string, file: Blob) =>
    // The file's own type may be anything (Windows calls a .csv application/vnd.ms-excel): the API reads text/csv.
    request<ListUpload>('PUT', `/segments/${enc(id)}/list`, new Blob([file], { type: 'text/csv' })),
  segmentMembers: (id: string, cursor = '', limit = 50) =>
    request<SegmentMemberPage>('GET', `/segments/${enc(id)}/members` + query({ cursor, limit })),
  /** The size at the end of each hour that changed it in the last days, oldest first. */
  segmentSizes: (id: string, days = 30) =>
    request<{ sizes: SegmentSize[] | null }>('GET', `/segments/${enc(id)}/sizes` + query({ days })).then((l) => l.sizes ?? []),
  profileSegments: (id: string) => request<PersonSegments>('GET', `/profiles/${enc(id)}/segments`),

  profileSettings: () => request<ProfileSettings>('GET', '/settings/profiles'),
  /** Replaces the settings whole (admins only); answers them as stored, or 400 naming every problem. */
  saveProfileSettings: (s: ProfileSettings) => request<ProfileSettings>('PUT', '/settings/profiles', s),
}
