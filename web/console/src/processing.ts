// Whether the people, segments and touch counts the console shows are complete: how far the work that follows
// the event log is behind it (GET /system/processing). One poller for the whole console, started by the
// banner in the app shell: every 5 s while something is catching up, every 30 s otherwise, and at once on
// each change of screen.
import { computed, ref } from 'vue'
import { api, type Processing, type ProcessingPart } from './api'

export const processing = ref<Processing | null>(null)

/** The parts behind, in the server's order: people, segments, touch counts. */
export const partsBehind = computed<ProcessingPart[]>(() =>
  (processing.value?.parts ?? []).filter((p) => p.state !== 'up_to_date'),
)

/** The part that tells best how things stand: a stalled one, else the one furthest behind; none while all are up to date. */
export const leadPart = computed<ProcessingPart | undefined>(() =>
  [...partsBehind.value].sort((a, b) => Number(b.state === 'stalled') - Number(a.state === 'stalled') || b.behind - a.behind)[0],
)

/** Events set aside by any part: each is missing from what the console shows. */
export const setAside = computed(() => (processing.value?.parts ?? []).reduce((n, p) => n + p.set_aside, 0))

let timer: ReturnType<typeof setTimeout> | undefined
let following = false

/** Asks now, then on schedule while following. A failed request keeps the last answer. */
export async function checkProcessing() {
  clearTimeout(timer)
  try {
    processing.value = await api.processing()
  } catch {
    // Offline for a moment, say: the next round asks again.
  }
  if (following) timer = setTimeout(checkProcessing, partsBehind.value.length ? 5000 : 30000)
}

export function followProcessing() {
  following = true
  void checkProcessing()
}

export function stopFollowingProcessing() {
  following = false
  clearTimeout(timer)
}
