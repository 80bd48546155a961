/*
 * hearth.js: the Hearth browser snippet.
 *
 * Installed with one tag, on any page of a customer's site:
 *
 *   <script src="https://HEARTH/hearth.js" data-write-key="WRITE_KEY" async></script>
 *
 * It gives each browser an anonymous id (a random UUID in the first-party cookie hearth_aid, mirrored in
 * localStorage), sends a page view when the page loads, and offers hearth.identify, track, page, reset,
 * user and ready. Events go to the Segment-compatible tracking API (POST /v1/batch) of the Hearth that
 * served this file, or of data-api-host.
 *
 * Delivery is at least once: an event leaves the queue only when the server has answered for it. The queue
 * is kept in localStorage, so that a reload or the next page sends what this one could not; every event has
 * a messageId made here, and the server stores a messageId once, so a resent event is not counted twice.
 * When the page is hidden or unloaded, what is queued also goes out with navigator.sendBeacon.
 *
 * Calls made before this file has loaded are not lost: the page may set up window.hearth as an array with
 * stub methods that push [method, ...arguments] (see docs/snippet.md); this file replays them.
 *
 * Plain ES2017 on purpose: it must run unchanged in every browser that visits a customer's site.
 * scripts/build-snippet minifies it into hearth.min.js, which the Go binary embeds and serves.
 * Nothing here may throw into the host page: every public method catches and warns.
 */
(() => {
  'use strict';

  const VERSION = '1.0.0';

  const w = window;
  const d = document;
  const nav = navigator;
  const loc = location;

  const stub = w.hearth;
  if (stub && stub.loaded) return; // the tag is on the page twice: the first copy serves

  const COOKIE = 'hearth_aid'; // the anonymous id: cookie name, and localStorage key of its mirror
  const USER_KEY = 'hearth_uid'; // localStorage: the user id given to identify
  const TOUCH_KEY = 'hearth_touch'; // sessionStorage: the touch token of this visit's landing URL
  const QUEUE_PREFIX = 'hearth_q_'; // localStorage: one unsent queue per page, hearth_q_<page id>

  const MAX_EVENT_BYTES = 32 << 10; // the server's default limit for one event
  const MAX_BATCH_BYTES = 32 << 10; // per request: small enough for the 64 KiB keepalive/beacon budget
  const MAX_BATCH_EVENTS = 20;
  const MAX_QUEUE = 500; // events; beyond it the oldest are dropped
  const MAX_AGE = 24 * 3600e3; // an unconfirmed event is resent for a day, well within the server's dedupe window
  const STALE = 120e3; // another page's queue untouched this long belongs to a page that is gone
  const FLUSH_DELAY = 100; // ms to gather the calls a page makes together into one request
  const MAX_BACKOFF = 60e3;

  const warn = (...args) => {
    try {
      console.warn('hearth:', ...args);
    } catch (e) {
      // no console
    }
  };

  // --- configuration, from the script tag ---------------------------------------------------------------

  // currentScript is this tag while the file runs (async included); the query covers a copy that was
  // bundled or inlined by a tag manager.
  const script = d.currentScript || d.querySelector('script[data-write-key]');
  const attr = (name) => (script && script.getAttribute('data-' + name)) || '';
  const writeKey = attr('write-key');
  let apiHost = attr('api-host');
  if (!apiHost && script && script.src) apiHost = new URL(script.src, loc.href).origin;
  if (apiHost && !/^https?:\/\//i.test(apiHost)) apiHost = 'https://' + apiHost;
  const endpoint = apiHost.replace(/\/+$/, '') + '/v1/batch';
  const autoPage = attr('auto-page') !== 'false';

  // --- storage ------------------------------------------------------------------------------------------

  // Storage may be missing or throw (blocked cookies, sandboxed frames, Safari's old private mode): then
  // the snippet still works for this page, from memory.
  const storage = (name) => {
    try {
      const s = w[name];
      s.setItem('hearth_test', '1');
      s.removeItem('hearth_test');
      return s;
    } catch (e) {
      return null;
    }
  };
  const local = storage('localStorage');
  const session = storage('sessionStorage');
  const get = (s, key) => {
    try {
      return s ? s.getItem(key) : null;
    } catch (e) {
      return null;
    }
  };
  const put = (s, key, value) => {
    try {
      if (!s) return;
      if (value == null) s.removeItem(key);
      else s.setItem(key, value);
    } catch (e) {
      // full or blocked: this page keeps it in memory
    }
  };

  const readCookie = () => {
    try {
      const m = /(?:^|;\s*)hearth_aid=([^;]*)/.exec(d.cookie);
      return m ? decodeURIComponent(m[1]) : '';
    } catch (e) {
      return '';
    }
  };

  // A first-party cookie on this host only, for a year from the latest visit; Secure on https.
  const writeCookie = (value) => {
    try {
      d.cookie = COOKIE + '=' + encodeURIComponent(value) + '; Max-Age=31536000; Path=/; SameSite=Lax' +
        (loc.protocol === 'https:' ? '; Secure' : '');
    } catch (e) {
      // cookies blocked: localStorage keeps the id
    }
  };

  // A random (version 4) UUID, or given a time, a version 7 one: the time in milliseconds, then random bits.
  // Anonymous ids are version 7, so that a site's new visitors follow one another in Hearth's identity index.
  // getRandomValues works on http too, where randomUUID needs a secure context.
  const uuid = (time) => {
    const b = w.crypto.getRandomValues(new Uint8Array(16));
    for (let i = 5, t = time; time && i >= 0; i--, t = Math.floor(t / 256)) b[i] = t % 256;
    b[6] = (b[6] & 15) | (time ? 112 : 64);
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  };

  const byteLength = (s) => new Blob([s]).size;

  // --- who this is --------------------------------------------------------------------------------------

  const ANON_ID = /^[\w-]{1,64}$/;
  // The cookie wins over its mirror: a server may have set it. Either is refreshed on every load.
  let anonymousId = readCookie();
  if (!ANON_ID.test(anonymousId)) anonymousId = get(local, COOKIE) || '';
  if (!ANON_ID.test(anonymousId)) anonymousId = uuid(Date.now());
  const saveAnonymousId = () => {
    writeCookie(anonymousId);
    put(local, COOKIE, anonymousId);
  };
  saveAnonymousId();

  let userId = get(local, USER_KEY);

  // The touch token: a landing URL with ?ht=TOKEN came from a Hearth touchpoint (an ad, a QR code, an
  // email link). It rides on every event of this visit, kept in sessionStorage for the visit's other pages.
  // The URL is left as it is.
  const query = new URLSearchParams(loc.search);
  let touch = query.get('ht');
  if (touch && touch.length <= 1024) put(session, TOUCH_KEY, touch);
  else touch = get(session, TOUCH_KEY);

  // --- events -------------------------------------------------------------------------------------------

  const pageInfo = () => ({
    path: loc.pathname,
    referrer: d.referrer,
    search: loc.search,
    title: d.title,
    url: loc.href.split('#')[0],
  });

  const context = () => {
    const ctx = {
      library: { name: 'hearth.js', version: VERSION },
      page: pageInfo(),
      userAgent: nav.userAgent,
      locale: nav.language,
      screen: { width: screen.width, height: screen.height },
    };
    try {
      ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      // no Intl
    }
    // utm_* parameters of the current URL, named as Segment names them (utm_campaign is campaign.name).
    const campaign = {};
    new URLSearchParams(loc.search).forEach((value, key) => {
      const m = /^utm_(\w+)$/.exec(key);
      if (m) campaign[m[1] === 'campaign' ? 'name' : m[1]] = value;
    });
    if (Object.keys(campaign).length) ctx.campaign = campaign;
    if (touch) ctx.touch = { token: touch };
    return ctx;
  };

  const object = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});

  // The queue: events waiting for the server's answer, oldest first. An item is
  // {id: messageId, t: enqueued at (ms), j: the event as JSON, n: its size in bytes}.
  const pageId = uuid();
  const queueKey = QUEUE_PREFIX + pageId;
  let queue = [];

  // persist writes this page's queue to localStorage, marked closed once the page is going away (pagehide),
  // for the next page to send at once.
  let closed = false;
  const persist = () => {
    put(local, queueKey, queue.length ? JSON.stringify({ k: writeKey, t: Date.now(), c: closed ? 1 : 0, q: queue }) : null);
  };

  // adopt takes over the queues of this site's pages that are gone: closed ones, and ones untouched for a
  // while (a tab that crashed or was killed without pagehide). A live page's queue is left alone; should it
  // be adopted all the same, both pages send it, and the server stores each messageId once.
  const adopt = () => {
    if (!local || !writeKey) return;
    const keys = [];
    for (let i = 0; i < local.length; i++) {
      const key = local.key(i);
      if (key && key.indexOf(QUEUE_PREFIX) === 0 && key !== queueKey) keys.push(key);
    }
    const now = Date.now();
    const seen = new Set(queue.map((it) => it.id));
    const adopted = [];
    for (const key of keys) {
      let rec = null;
      try {
        rec = JSON.parse(get(local, key));
      } catch (e) {
        // unreadable: dropped below
      }
      if (rec && !rec.c && now - rec.t < STALE) continue;
      // Another source's events on this site wait for a page with its write key, for a day at most.
      if (rec && rec.k !== writeKey && now - rec.t < MAX_AGE) continue;
      put(local, key, null);
      if (!rec || rec.k !== writeKey || !Array.isArray(rec.q)) continue;
      for (const it of rec.q) {
        if (it && typeof it.j === 'string' && typeof it.n === 'number' && !seen.has(it.id) && now - it.t < MAX_AGE) {
          seen.add(it.id);
          adopted.push(it);
        }
      }
    }
    if (adopted.length) {
      queue = adopted.sort((a, b) => a.t - b.t).concat(queue);
      persist();
      schedule(0);
    }
  };

  const enqueue = (type, fields) => {
    if (!writeKey || !apiHost) return;
    const ev = { type, messageId: uuid(), anonymousId, timestamp: new Date().toISOString(), context: context() };
    if (userId) ev.userId = userId;
    Object.assign(ev, fields);
    const j = JSON.stringify(ev);
    const n = byteLength(j);
    if (n > MAX_EVENT_BYTES) {
      warn('a ' + type + ' event of ' + n + ' bytes is over the limit of ' + MAX_EVENT_BYTES + ': not sent');
      return;
    }
    queue.push({ id: ev.messageId, t: Date.now(), j, n });
    if (queue.length > MAX_QUEUE) {
      queue.splice(0, queue.length - MAX_QUEUE);
      warn('more than ' + MAX_QUEUE + ' events wait to be sent: the oldest were dropped');
    }
    persist();
    schedule(queue.length >= MAX_BATCH_EVENTS ? 0 : FLUSH_DELAY);
  };

  // --- sending ------------------------------------------------------------------------------------------

  let batchLimit = MAX_BATCH_EVENTS; // halved on 413
  let sending = false;
  let timer = 0;
  let failures = 0; // consecutive failed requests, for the backoff

  // take returns the first items of list that fit one request.
  const take = (list) => {
    const out = [];
    let size = 0;
    for (const it of list) {
      if (out.length >= batchLimit || (out.length && size + it.n > MAX_BATCH_BYTES)) break;
      out.push(it);
      size += it.n + 1;
    }
    return out;
  };

  // The write key goes in the body, not in an Authorization header, and the body is sent as text/plain:
  // so every request is a CORS "simple request": no preflight round trip on each new page, no keepalive
  // request refused for needing one (as some browsers do), and sendBeacon can send the very same body.
  const body = (items) => '{"batch":[' + items.map((it) => it.j).join(',') + '],"sentAt":"' +
    new Date().toISOString() + '","writeKey":' + JSON.stringify(writeKey) + '}';

  const remove = (items) => {
    const ids = new Set(items.map((it) => it.id));
    queue = queue.filter((it) => !ids.has(it.id));
    persist();
  };

  const schedule = (ms) => {
    if (sending || timer || !queue.length) return;
    timer = setTimeout(() => {
      timer = 0;
      flush();
    }, ms);
  };

  // backoff is the wait before the next try: the server's Retry-After when it can be read (it is exposed
  // to the page only if the server lists it in Access-Control-Expose-Headers), else exponential, with
  // jitter so that many browsers do not come back at once.
  const backoff = (retryAfter) => {
    failures++;
    let ms = Math.min(MAX_BACKOFF, 1000 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
    if (retryAfter) {
      const s = Number(retryAfter);
      const after = isNaN(s) ? Date.parse(retryAfter) - Date.now() : s * 1000;
      if (after > 0) ms = Math.min(after, 600e3) + Math.random() * 1000;
    }
    return ms;
  };

  const reasonOf = async (res) => {
    try {
      const b = await res.json();
      return (b.error && b.error.message) || '';
    } catch (e) {
      return '';
    }
  };

  const flush = async () => {
    if (sending || !queue.length) return;
    const items = take(queue);
    sending = true;
    let wait = 0;
    try {
      // keepalive lets the request finish should the page go away meanwhile.
      const res = await w.fetch(endpoint, { method: 'POST', body: body(items), keepalive: true, credentials: 'omit' });
      if (res.ok) {
        failures = 0;
        remove(items);
        // Refused events are answered one by one; sending them again would not help.
        const b = await res.json().catch(() => ({}));
        for (const r of b.rejected || []) warn('the server refused an event:', r.reason, r.messageId || '');
      } else if (res.status === 429 || res.status >= 500) {
        wait = backoff(res.headers.get('Retry-After'));
      } else if (res.status === 413 && items.length > 1) {
        batchLimit = Math.ceil(items.length / 2);
      } else {
        // Any other refusal (a wrong write key, a malformed request) would be refused again.
        remove(items);
        warn('the server refused ' + items.length + ' event(s) with status ' + res.status + ':', await reasonOf(res));
      }
    } catch (e) {
      wait = backoff(); // offline, blocked, or the server is unreachable
    }
    sending = false;
    if (wait) {
      persist(); // a fresh time: other pages leave a live page's queue alone
      timer = setTimeout(() => {
        timer = 0;
        flush();
      }, wait);
    } else {
      schedule(0);
    }
  };

  // On hide and unload, what is queued also goes with sendBeacon, which outlives the page. The items stay
  // in the queue until a fetch confirms them (or the next page resends them): sendBeacon returning true only
  // means that the browser took the request. Each event is beaconed at most once per page.
  const beaconed = new Set();
  const hide = (closing) => {
    if (closing) closed = true; // a visibilitychange after pagehide must not reopen it
    if (writeKey && nav.sendBeacon) {
      let rest = queue.filter((it) => !beaconed.has(it.id));
      while (rest.length) {
        const items = take(rest);
        let ok = false;
        try {
          ok = nav.sendBeacon(endpoint, new Blob([body(items)], { type: 'text/plain' }));
        } catch (e) {
          // not allowed here
        }
        if (!ok) break; // over the browser's budget: the next page sends the rest
        for (const it of items) beaconed.add(it.id);
        rest = rest.slice(items.length);
      }
    }
    persist();
  };

  d.addEventListener('visibilitychange', () => {
    if (d.visibilityState === 'hidden') hide(false);
  });
  w.addEventListener('pagehide', () => hide(true));
  // Back from the back-forward cache: this page is alive again, and so is its queue.
  w.addEventListener('pageshow', (e) => {
    if (e.persisted) {
      closed = false;
      persist();
      schedule(0);
    }
  });
  // Back online: try now rather than at the end of the backoff.
  w.addEventListener('online', () => {
    if (timer && !sending) {
      clearTimeout(timer);
      timer = 0;
      failures = 0;
      flush();
    }
  });

  // --- the public API -----------------------------------------------------------------------------------

  const api = {
    loaded: true,
    VERSION,

    // identify(userId?, traits?) says who the person is. The user id is remembered for later events, on
    // this page and the next ones, until reset.
    identify(id, traits) {
      if (id && typeof id === 'object') {
        traits = id;
        id = null;
      }
      if (id != null && id !== '') {
        userId = String(id);
        put(local, USER_KEY, userId);
      }
      enqueue('identify', { traits: object(traits) });
    },

    // track(event, properties?) records something the person did.
    track(event, properties) {
      if (event == null || event === '') return warn('track needs an event name');
      enqueue('track', { event: String(event), properties: object(properties) });
    },

    // page(name?, properties?) records a page view; the page's url, path, referrer, title and search are
    // its default properties. One is sent on load unless the tag has data-auto-page="false".
    page(name, properties) {
      if (name && typeof name === 'object') {
        properties = name;
        name = null;
      }
      const fields = { properties: Object.assign(pageInfo(), object(properties)) };
      if (name != null && name !== '') fields.name = String(name);
      enqueue('page', fields);
    },

    // reset forgets the user (a sign-out): a new anonymous id, no user id, no touch token.
    reset() {
      userId = null;
      put(local, USER_KEY, null);
      anonymousId = uuid(Date.now());
      saveAnonymousId();
      touch = null;
      put(session, TOUCH_KEY, null);
    },

    user() {
      return { anonymousId, userId };
    },

    // ready(fn) calls fn once the snippet has loaded.
    ready(fn) {
      if (typeof fn === 'function') {
        setTimeout(() => {
          try {
            fn();
          } catch (e) {
            warn('a ready callback failed:', e);
          }
        });
      }
    },
  };

  // No call may throw into the page.
  for (const name of ['identify', 'track', 'page', 'reset', 'user']) {
    const fn = api[name];
    api[name] = function () {
      try {
        return fn.apply(api, arguments);
      } catch (e) {
        warn(name + ' failed:', e);
      }
    };
  }

  // push([method, ...args]) calls a method: the stub's queue format, which tag managers can use too.
  const call = (args) => {
    args = Array.from(args || []);
    const fn = api[args[0]];
    if (typeof fn === 'function' && args[0] !== 'push') fn.apply(api, args.slice(1));
  };
  api.push = call;

  const queued = Array.isArray(stub) ? stub.slice() : [];
  w.hearth = api;

  if (!writeKey) warn('the script tag has no data-write-key: no event is sent');
  else if (!apiHost) warn('no API host: set data-api-host on the script tag');

  adopt();
  // A page on another process may still be unloading (its pagehide comes after this page started): look again.
  setTimeout(adopt, 5000);
  if (autoPage) {
    // A page that is prerendered may never be seen: count the view when it is shown.
    if (d.prerendering) d.addEventListener('prerenderingchange', () => api.page(), { once: true });
    else api.page();
  }
  queued.forEach(call);
})();
