import { ApiError } from './api'
import { t } from './i18n'

/** A message to show for a failed request: the API's own message where it gave one. */
export function errorMessage(err: unknown): string {
  if (!(err instanceof ApiError)) return t('error.generic')
  if (err.status === 0) return t('error.network')
  if (err.status === 429) return t('error.rateLimited')
  if (err.message) return err.message
  switch (err.code) {
    case 'forbidden':
      return t('error.forbidden')
    case 'not_found':
      return t('error.notFound')
    case 'conflict':
      return t('error.conflict')
    case 'unauthenticated':
      return t('error.unauthenticated')
    default:
      return t('error.generic')
  }
}
