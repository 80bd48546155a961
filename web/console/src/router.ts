import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import type { Role } from './api'
import { t } from './i18n'
import type { MessageKey } from './locales/en'
import { allowed, loadSession } from './session'
import ApiKeysView from './views/ApiKeysView.vue'
import CampaignsView from './views/CampaignsView.vue'
import HomeView from './views/HomeView.vue'
import LoginView from './views/LoginView.vue'
import NotFoundView from './views/NotFoundView.vue'
import OfflineTouchesView from './views/OfflineTouchesView.vue'
import PeopleView from './views/PeopleView.vue'
import PersonView from './views/PersonView.vue'
import ProfileSettingsView from './views/ProfileSettingsView.vue'
import SegmentEditView from './views/SegmentEditView.vue'
import SegmentsView from './views/SegmentsView.vue'
import SegmentView from './views/SegmentView.vue'
import SetupView from './views/SetupView.vue'
import SigningKeysView from './views/SigningKeysView.vue'
import SourcesView from './views/SourcesView.vue'
import SourceView from './views/SourceView.vue'
import TeamView from './views/TeamView.vue'
import TouchpointsView from './views/TouchpointsView.vue'
import TouchpointView from './views/TouchpointView.vue'
import WeChatAccountsView from './views/WeChatAccountsView.vue'

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
    { path: '/people', name: 'people', component: PeopleView, meta: { title: 'nav.people' } },
    { path: '/people/:id', name: 'person', component: PersonView, meta: { title: 'nav.people' } },
    { path: '/segments', name: 'segments', component: SegmentsView, meta: { title: 'nav.segments' } },
    {
      path: '/segments/new',
      name: 'segment-new',
      component: SegmentEditView,
      meta: { title: 'nav.segments', roles: ['admin', 'marketer'] },
    },
    { path: '/segments/:id', name: 'segment', component: SegmentView, meta: { title: 'nav.segments' } },
    {
      path: '/segments/:id/edit',
      name: 'segment-edit',
      component: SegmentEditView,
      meta: { title: 'nav.segments', roles: ['admin', 'marketer'] },
    },
    { path: '/campaigns', name: 'campaigns', component: CampaignsView, meta: { title: 'nav.campaigns' } },
    { path: '/touchpoints', name: 'touchpoints', component: TouchpointsView, meta: { title: 'nav.touchpoints' } },
    { path: '/touchpoints/:id', name: 'touchpoint', component: TouchpointView, meta: { title: 'nav.touchpoints' } },
    {
      path: '/offline-touches',
      name: 'offline-touches',
      component: OfflineTouchesView,
      meta: { title: 'nav.offlineTouches', roles: ['admin', 'marketer'] },
    },
    { path: '/sources', name: 'sources', component: SourcesView, meta: { title: 'nav.sources' } },
    { path: '/sources/:id', name: 'source', component: SourceView, meta: { title: 'nav.sources' } },
    {
      path: '/settings/profiles',
      name: 'profile-settings',
      component: ProfileSettingsView,
      meta: { title: 'profileSettings.title' },
    },
    { path: '/team', name: 'team', component: TeamView, meta: { title: 'nav.team', roles: ['admin'] } },
    { path: '/api-keys', name: 'api-keys', component: ApiKeysView, meta: { title: 'nav.apiKeys', roles: ['admin'] } },
    {
      path: '/signing-keys',
      name: 'signing-keys',
      component: SigningKeysView,
      meta: { title: 'nav.signingKeys', roles: ['admin'] },
    },
    { path: '/wechat-accounts', name: 'wechat-accounts', component: WeChatAccountsView, meta: { title: 'nav.wechat' } },
    { path: '/:rest(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'notFound.title' } },
  ],
  scrollBehavior: () => ({ top: 0 }),
})

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

export function pageTitle(route: RouteLocationNormalized): string {
  return `${t(route.meta.title)} · Hearth`
}
