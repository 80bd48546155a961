import { onBeforeUnmount, onMounted, type Ref } from 'vue'

/** Runs fn once el first scrolls into view (at once where the browser cannot tell): each row of a long table
 * asks for its own data only when it is seen. */
export function onceVisible(el: Ref<HTMLElement | null>, fn: () => void) {
  let observer: IntersectionObserver | null = null
  onMounted(() => {
    if (!el.value || typeof IntersectionObserver === 'undefined') return fn()
    observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        observer?.disconnect()
        observer = null
        fn()
      }
    })
    observer.observe(el.value)
  })
  onBeforeUnmount(() => observer?.disconnect())
}
