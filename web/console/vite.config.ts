import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The console is served by the Go binary under /console/ (internal/console).
// `npm run dev` proxies the API to a running `hearth serve` (HEARTH_API, default 127.0.0.1:8080).
export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  // Composition API only, no devtools hooks in production: a smaller Vue.
  define: {
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    outDir: fileURLToPath(new URL('../../internal/console/dist', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      '/api': { target: process.env.HEARTH_API ?? 'http://127.0.0.1:8080', changeOrigin: false },
    },
  },
})
