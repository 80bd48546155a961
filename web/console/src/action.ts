import { ref, shallowReactive } from 'vue'
import { errorMessage } from './errors'

/**
 * The state of a form's action: busy while it runs, and the error to show (one it failed with, or one set by the
 * checks before it). run does the work and turns what it throws into that error.
 */
export function useAction() {
  const busy = ref(false)
  const error = ref('')
  async function run(work: () => Promise<unknown>): Promise<void> {
    busy.value = true
    try {
      await work()
    } catch (err) {
      error.value = errorMessage(err)
    } finally {
      busy.value = false
    }
  }
  return { busy, error, run }
}

/**
 * The state of a ConfirmDialog: what it asks about (null while closed), busy while its action runs, and the error
 * it failed with. ask opens it; run does the action on what it asks about and closes it, or keeps it open with the
 * error.
 */
export function useConfirm<T>() {
  const state = shallowReactive({ subject: null as T | null, busy: false, error: '' })
  function ask(what: T) {
    state.error = ''
    state.subject = what
  }
  async function run(action: (what: T) => Promise<unknown>): Promise<void> {
    const what = state.subject
    if (what === null) return
    state.busy = true
    state.error = ''
    try {
      await action(what)
      state.subject = null
    } catch (err) {
      state.error = errorMessage(err)
    } finally {
      state.busy = false
    }
  }
  return Object.assign(state, { ask, run })
}
