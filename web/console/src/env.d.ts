/// <reference types="vite/client" />

// tsc checks the .ts modules (API client, session, i18n, router); .vue files are compiled by Vite.
declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}
