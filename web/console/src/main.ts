import { createApp, watchEffect } from 'vue'
import { setUnauthenticatedHandler } from './api'
import App from './App.vue'
import { loadLocale } from './i18n'
import { pageTitle, router } from './router'
import { signedOut } from './session'
import './styles.css'

// A request answered 401: the session expired or was revoked. Back to sign-in, then back here.
setUnauthenticatedHandler(() => {
  signedOut()
  const here = router.currentRoute.value
  if (here.meta.public) return
  void router.push({ name: 'login', query: here.fullPath === '/' ? {} : { next: here.fullPath } })
})

watchEffect(() => {
  document.title = pageTitle(router.currentRoute.value)
})

const app = createApp(App)
app.use(router)
void Promise.all([loadLocale(), router.isReady()]).then(() => app.mount('#app'))
