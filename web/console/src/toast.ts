import { reactive } from 'vue'

export interface Toast {
  id: number
  text: string
  kind: 'success' | 'error'
}

export const toasts = reactive<Toast[]>([])
let next = 1

export function toast(text: string, kind: Toast['kind'] = 'success'): void {
  const id = next++
  toasts.push({ id, text, kind })
  setTimeout(() => {
    const i = toasts.findIndex((x) => x.id === id)
    if (i >= 0) toasts.splice(i, 1)
  }, 3200)
}
