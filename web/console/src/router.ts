import { ref } from 'vue'
import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import type { Role } from './api'
import { t } from './i18n'
import type { MessageKey } from './locales/en'
import { allowed, loadSession } from './session'
import HomeView from './views/HomeView.vue'
import LoginView from './views/LoginView.vue'
import NotFoundView from './views/NotFoundView.vue'
import SetupView from './views/SetupView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    /** Shown without signing in, outside the app shell. */
    public?: boolean
    /** Roles that may open the page; any signed-in user when absent. */
    roles?: readonly Role[]
    title: MessageKey
  }
}

export const router = createRouter({
  history: createWebHistory('/console/'),
  routes: [
    { path: '/login', name: 'login', component: LoginView, meta: { public: true, title: 'login.title' } },
    { path: '/setup', name: 'setup', component: SetupView, meta: { public: true, title: 'setup.title' } },
    { path: '/', name: 'home', component: HomeView, meta: { title: 'nav.home' } },
    {
      path: '/people',
      name: 'people',
      component: () => import('./views/PeopleView.vue'),
      meta: { title: 'nav.people' },
    },
    {
      path: '/people/:id',
      name: 'person',
      component: () => import('./views/PersonView.vue'),
      meta: { title: 'nav.people' },
    },
    {
      path: '/segments',
      name: 'segments',
      component: () => import('./views/SegmentsView.vue'),
      meta: { title: 'nav.segments' },
    },
    {
      path: '/segments/new',
      name: 'segment-new',
      component: () => import('./views/SegmentEditView.vue'),
      meta: { title: 'nav.segments', roles: ['admin', 'marketer'] },
    },
    {
      path: '/segments/:id',
      name: 'segment',
      component: () => import('./views/SegmentView.vue'),
      meta: { title: 'nav.segments' },
    },
    {
      path: '/segments/:id/edit',
      name: 'segment-edit',
      component: () => import('./views/SegmentEditView.vue'),
      meta: { title: 'nav.segments', roles: ['admin', 'marketer'] },
    },
    {
      path: '/campaigns',
      name: 'campaigns',
      component: () => import('./views/CampaignsView.vue'),
      meta: { title: 'nav.campaigns' },
    },
    {
      path: '/campaigns/:id',
      name: 'campaign',
      component: () => import('./views/CampaignView.vue'),
      meta: { title: 'nav.campaigns' },
    },
    {
      path: '/touchpoints',
      name: 'touchpoints',
      component: () => import('./views/TouchpointsView.vue'),
      meta: { title: 'nav.touchpoints' },
    },
    {
      path: '/touchpoints/:id',
      name: 'touchpoint',
      component: () => import('./views/TouchpointView.vue'),
      meta: { title: 'nav.touchpoints' },
    },
    {
      path: '/offline-touches',
      name: 'offline-touches',
      component: () => import('./views/OfflineTouchesView.vue'),
      meta: { title: 'nav.offlineTouches', roles: ['admin', 'marketer'] },
    },
    {
      path: '/sources',
      name: 'sources',
      component: () => import('./views/SourcesView.vue'),
      meta: { title: 'nav.sources' },
    },
    {
      path: '/sources/:id',
      name: 'source',
      component: () => import('./views/SourceView.vue'),
      meta: { title: 'nav.sources' },
    },
    {
      path: '/settings/profiles',
      name: 'profile-settings',
      component: () => import('./views/ProfileSettingsView.vue'),
      meta: { title: 'profileSettings.title' },
    },
    {
      path: '/team',
      name: 'team',
      component: () => import('./views/TeamView.vue'),
      meta: { title: 'nav.team', roles: ['admin'] },
    },
    {
      path: '/api-keys',
      name: 'api-keys',
      component: () => import('./views/ApiKeysView.vue'),
      meta: { title: 'nav.apiKeys', roles: ['admin'] },
    },
    {
      path: '/signing-keys',
      name: 'signing-keys',
      component: () => import('./views/SigningKeysView.vue'),
      meta: { title: 'nav.signingKeys', roles: ['admin'] },
    },
    {
      path: '/wechat-accounts',
      name: 'wechat-accounts',
      component: () => import('./views/WeChatAccountsView.vue'),
      meta: { title: 'nav.wechat' },
    },
    { path: '/:rest(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'notFound.title' } },
  ],
  scrollBehavior: () => ({ top: 0 }),
})

// Pages other than the first ones a visitor sees load when first opened, so that signing in does not wait for
// the whole console. After an upgrade an open console may ask for a page that the new build names otherwise:
// it then loads the new build at that page, once (if that fails too, the error stays rather than looping).
const reloadedFor = 'hearth.reloadedFor'

router.onError((error: unknown, to) => {
  const message = error instanceof Error ? error.message : String(error)
  if (!/dynamically imported module|module script failed|Unable to preload/i.test(message)) return
  const href = router.resolve(to).href
  try {
    if (sessionStorage.getItem(reloadedFor) === href) return
    sessionStorage.setItem(reloadedFor, href)
  } catch {
    return // without storage a reload could not tell that it was tried
  }
  window.location.assign(href)
})

router.afterEach(() => {
  try {
    sessionStorage.removeItem(reloadedFor)
  } catch {
    // Nothing was stored.
  }
})

/** True while opening a page takes long enough to show that it does (its script on a slow network, say). */
export const pageLoading = ref(false)
let loadingTimer: ReturnType<typeof setTimeout> | undefined
router.beforeEach(() => {
  clearTimeout(loadingTimer)
  loadingTimer = setTimeout(() => (pageLoading.value = true), 150)
})
const pageOpened = () => {
  clearTimeout(loadingTimer)
  pageLoading.value = false
}
router.afterEach(pageOpened)
router.onError(pageOpened)

/** A path inside the console to return to after signing in, or null if next is not one. */
export function safeNext(next: unknown): string | null {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')
    ? next
    : null
}

router.beforeEach(async (to) => {
  let user = null
  try {
    user = await loadSession()
  } catch {
    // The server is unreachable: the sign-in page will say so when the user tries.
  }
  if (to.meta.public) {
    if (user && to.name === 'login') return safeNext(to.query.next) ?? { name: 'home' }
    return true
  }
  if (!user) {
    return { name: 'login', query: to.fullPath === '/' ? {} : { next: to.fullPath } }
  }
  if (!allowed(to.meta.roles)) return { name: 'home' }
  return true
})

/** What the page shows, when it is one thing (a campaign, a touchpoint): named first in the window's title. */
export const pageSubject = ref('')
router.afterEach((to, from) => {
  if (to.path !== from.path) pageSubject.value = ''
})

export function pageTitle(route: RouteLocationNormalized): string {
  const title = `${t(route.meta.title)} · Hearth`
  return pageSubject.value ? `${pageSubject.value} · ${title}` : title
}
