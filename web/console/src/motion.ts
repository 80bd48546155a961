/** Whether the person asked for less motion (the browser tests ask for it too, so nothing moves under a click). */
export function reducedMotion(): boolean {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches
}

/** Scrolls an element into view: smoothly, unless the person asked for less motion. */
export function reveal(el: Element | null | undefined, block: ScrollLogicalPosition = 'nearest'): void {
  el?.scrollIntoView({ behavior: reducedMotion() ? 'auto' : 'smooth', block })
}
