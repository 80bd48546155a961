// Who is signed in. The session itself is an HttpOnly cookie; this keeps the user and the CSRF token.
import { computed, reactive } from 'vue'
import { api, ApiError, setCsrfToken, type Role, type SessionAnswer, type User } from './api'

export const session = reactive({
  user: null as User | null,
  /** True once we asked the server whether a session exists. */
  checked: false,
})

export function signedIn(answer: SessionAnswer): void {
  session.user = answer.user
  session.checked = true
  setCsrfToken(answer.csrf_token)
}

export function signedOut(): void {
  session.user = null
  session.checked = true
  setCsrfToken('')
}

let pending: Promise<User | null> | null = null

/** Asks the server once (per page load or after a sign-out) whether the cookie holds a session. */
export function loadSession(): Promise<User | null> {
  if (session.checked) return Promise.resolve(session.user)
  pending ??= api
    .session()
    .then((answer) => {
      signedIn(answer)
      return answer.user
    })
    .catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 401) {
        signedOut()
        return null
      }
      throw err
    })
    .finally(() => {
      pending = null
    })
  return pending
}

export const role = computed<Role | null>(() => session.user?.role ?? null)
export const isAdmin = computed(() => role.value === 'admin')
/** Admins and marketers write marketing objects such as sources; analysts only read. */
export const canWrite = computed(() => role.value === 'admin' || role.value === 'marketer')

export function allowed(roles: readonly Role[] | undefined): boolean {
  return !roles || (role.value !== null && roles.includes(role.value))
}
