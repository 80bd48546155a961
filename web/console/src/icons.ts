// Line icons drawn for the console on a 24×24 grid (stroke 1.75, round caps). Each is the inner markup of an <svg>.
const c = (cx: number, cy: number, r: number) => `<circle cx="${cx}" cy="${cy}" r="${r}"/>`
const p = (d: string) => `<path d="${d}"/>`
const rect = (x: number, y: number, w: number, h: number, rx: number) =>
  `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${rx}"/>`

export const icons = {
  home: p('M3 10.5 12 3l9 7.5V20a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z'),
  sources: p('M9 2v5M15 2v5M6 7h12v4a6 6 0 0 1-12 0zM12 17v5'),
  users: c(9, 8, 3.5) + p('M2.5 20a6.5 6.5 0 0 1 13 0M16 4.6a3.5 3.5 0 0 1 0 6.8M18 14.2a6.5 6.5 0 0 1 3.5 5.8'),
  key: c(7.5, 15.5, 4.5) + p('M10.7 12.3 20 3M16 7l3 3M18.5 4.5l2 2'),
  website: c(12, 12, 9) + p('M3 12h18M12 3c2.5 2.6 3.8 5.6 3.8 9s-1.3 6.4-3.8 9c-2.5-2.6-3.8-5.6-3.8-9S9.5 5.6 12 3z'),
  app: rect(6, 2.5, 12, 19, 2.5) + p('M11 18h2'),
  server: rect(3, 3.5, 18, 7, 2) + rect(3, 13.5, 18, 7, 2) + p('M7 7h.01M7 17h.01'),
  wechat: p('M21 11.5a8.5 8.5 0 0 1-12.6 7.4L3 20.5l1.6-5A8.5 8.5 0 1 1 21 11.5zM8.5 11.5h.01M12 11.5h.01M15.5 11.5h.01'),
  offline: p('M3.5 9 5 4h14l1.5 5M3.5 9a2.8 2.8 0 0 0 5.7 0 2.8 2.8 0 0 0 5.6 0 2.8 2.8 0 0 0 5.7 0M5 11.5V20h14v-8.5M10 20v-5h4v5'),
  copy: rect(9, 9, 12, 12, 2) + p('M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'),
  check: p('M5 12.5 9.5 17 19 7.5'),
  refresh: p('M3 12a9 9 0 0 1 15.5-6.2L21 8M21 3v5h-5M21 12a9 9 0 0 1-15.5 6.2L3 16M3 21v-5h5'),
  plus: p('M12 5v14M5 12h14'),
  x: p('M6 6l12 12M18 6 6 18'),
  menu: p('M4 6h16M4 12h16M4 18h16'),
  logout: p('M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9'),
  lock: rect(4, 11, 16, 10, 2) + p('M8 11V7a4 4 0 0 1 8 0v4'),
  globe: c(12, 12, 9) + p('M3 12h18M12 3c2.5 2.6 3.8 5.6 3.8 9s-1.3 6.4-3.8 9c-2.5-2.6-3.8-5.6-3.8-9S9.5 5.6 12 3z'),
  chevronRight: p('M9 6l6 6-6 6'),
  chevronUpDown: p('M8 9l4-4 4 4M16 15l-4 4-4-4'),
  alert: c(12, 12, 9) + p('M12 7.5v5M12 16.2h.01'),
  warning: p('M10.3 3.9 2.4 18a2 2 0 0 0 1.7 3h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0zM12 9v4M12 17h.01'),
  database: '<ellipse cx="12" cy="5" rx="8" ry="3"/>' + p('M4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3'),
  clock: c(12, 12, 9) + p('M12 7v5l3 2'),
  tag: p('M3 12V4a1 1 0 0 1 1-1h8l9 9-9 9zM7.5 7.5h.01'),
  arrowRight: p('M5 12h14M13 6l6 6-6 6'),
  power: p('M12 3v9M6.3 6.3a8 8 0 1 0 11.4 0'),
  trash: p('M4 7h16M10 11v6M14 11v6M6 7l1 13a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1l1-13M9 7V4h6v3'),
  userPlus: c(9, 8, 4) + p('M2.5 21a6.5 6.5 0 0 1 13 0M19 8v6M16 11h6'),
  terminal: p('M4 17l6-5-6-5M12 19h8'),
  pause: rect(6, 4.5, 4, 15, 1) + rect(14, 4.5, 4, 15, 1),
  play: p('M7 4.5v15a.8.8 0 0 0 1.2.7l12-7.5a.8.8 0 0 0 0-1.4l-12-7.5A.8.8 0 0 0 7 4.5z'),
  user: c(12, 8, 4) + p('M4.5 21a7.5 7.5 0 0 1 15 0'),
  bot: rect(4, 8, 16, 12, 3) + p('M12 4v4M9.5 13.5h.01M14.5 13.5h.01M2 13v3M22 13v3') + c(12, 3.5, 1),
  activity: p('M3 12h4l3-8 4 16 3-8h4'),
  ban: c(12, 12, 9) + p('M5.6 5.6l12.8 12.8'),
  flame:
    '<path fill="currentColor" stroke="none" d="M12 22c4.1 0 7-2.8 7-6.9 0-3.5-2.1-6-4-8.1-.5 2-1.6 3.2-2.8 3.7.3-3.3-1.2-6-3.9-8.2.3 3.2-1.1 5.2-2.5 7.1C4.7 11.1 5 12.6 5 15.1 5 19.2 7.9 22 12 22z"/>' +
    '<path fill="#fff" fill-opacity=".45" stroke="none" d="M12 20.5c1.9 0 3.2-1.3 3.2-3.1 0-1.7-1-2.8-1.9-3.9-.3 1-.8 1.5-1.4 1.8-.1-1.4-.8-2.6-2-3.6.1 1.6-.6 2.6-1.1 3.5-.4.7-.3 1.3-.3 2.2 0 1.8 1.6 3.1 3.5 3.1z"/>',
} as const

export type IconName = keyof typeof icons
