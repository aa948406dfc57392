// sw.js: the demo's service worker, so a second visit works with the network off.
//
// On install it saves the page, its script and style, the samples, and every module, worker
// and .wasm the page can load, found the way a bundler finds them: by following the static
// `import ... from './x.js'`, `import('./x.mjs')` and `new URL('x.wasm', import.meta.url)` of
// each script, starting from demo.js (so a renamed or added file needs no list kept here).
// Every request is then answered from the network first (the newest files when online)
// and from that copy when the network fails. The weights (.gcam) are not kept here: the
// page keeps the last ones itself, in its own cache, under their SHA-256.
//
// Registered by demo.js with scope ../ (all of web/): a Web Worker is served by the service
// worker whose scope holds the worker's own URL, and the explainer's worker and the
// threaded build's workers live in web/ and web/dist/, outside the demo's folder.
const CACHE = 'gradcam-wasm-demo-v1';
const PAGE = ['./', 'index.html', 'style.css', 'demo.js', 'manifest.webmanifest', 'icon.svg'];

// the relative URLs a script loads statically (what bundlers follow too)
const REFERENCES = [
  /\b(?:import|export)\s*(?:[\w*{}\s,$]+\s*from\s*)?(['"])(\.{1,2}\/[^'"]+)\1/g,
  /\bimport\(\s*(['"])(\.{0,2}\/?[^'"():]+)\1\s*\)/g,
  /\bnew\s+URL\(\s*(['"])([^'":]+)\1\s*,\s*import\.meta\.url\s*\)/g,
];

function referencesIn(text) {
  const out = [];
  for (const re of REFERENCES) for (const m of text.matchAll(re)) out.push(m[2]);
  return out;
}

/** The page and everything it loads, saved in CACHE, one level of references at a time
 * (each level fetched in parallel); missing files are skipped. Resolves to the count. */
async function saveAll() {
  const cache = await caches.open(CACHE);
  let level = PAGE.map((u) => new URL(u, self.location.href).href);
  try {
    const r = await fetch(new URL('samples/index.json', self.location.href), { cache: 'no-cache' });
    if (r.ok) {
      level.push(r.url);
      for (const s of await r.clone().json()) level.push(new URL(`samples/${s.file}`, self.location.href).href);
    }
  } catch { /* no samples */ }
  const seen = new Set();
  const root = new URL('./', self.location.href).href;
  while (level.length) {
    const todo = [...new Set(level)].filter((u) => !seen.has(u) && (!u.endsWith('/') || u === root));
    for (const u of todo) seen.add(u);
    const found = await Promise.all(todo.map((url) => saveOne(cache, url)));
    level = found.flat();
  }
  return seen.size;
}

/** Fetch and keep one file; the same-origin URLs a script refers to. */
async function saveOne(cache, url) {
  let response;
  try {
    response = await fetch(url, { cache: 'no-cache' });
  } catch {
    return [];
  }
  if (!response.ok) return [];
  await cache.put(url, response.clone());
  if (!/\.m?js$/.test(new URL(url).pathname)) return [];
  return referencesIn(await response.text())
    .map((ref) => new URL(ref, url))
    .filter((u) => u.origin === self.location.origin && !/\.gcam$/.test(u.pathname))
    .map((u) => u.href);
}

// what the install did, for the page (and the tests): { done, files, error }
let saving = { done: false, files: 0, error: null };

self.addEventListener('install', (event) => {
  event.waitUntil(saveAll()
    .then((files) => { saving = { done: true, files, error: null }; },
          (e) => { saving = { done: true, files: 0, error: String(e && e.stack || e) }; })
    .then(() => self.skipWaiting()));
});

self.addEventListener('message', (event) => {
  // a worker started again after being idle has no record, but its install did finish
  if (event.data === 'saved?')
    event.source.postMessage({ type: 'saved', ...saving, done: saving.done || !self.registration.installing });
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys())
      if (name.startsWith('gradcam-wasm-demo-') && name !== CACHE) await caches.delete(name);
    await self.clients.claim(); // this first visit's later requests are saved too
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || request.headers.has('range')) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.endsWith('.gcam')) return;
  event.respondWith(networkFirst(request, url));
});

async function networkFirst(request, url) {
  // a page is saved without its query (?sample=none, ?weights=...): one copy of it
  const key = request.mode === 'navigate' ? url.origin + url.pathname : request;
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(key, copy)).catch(() => {});
    }
    return response;
  } catch (e) {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(key);
    if (hit) return hit;
    throw e;
  }
}
