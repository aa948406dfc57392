// demo.js: the demo page. Loads weights (URL or local file, cached by SHA-256 with the Cache
// API), decodes the picked image, explains it in the worker and blends the heatmap over it.
// The page's state is mirrored in <body data-state> (idle, loading, ready, explaining, done,
// error) for the browser test.
import { createExplainer } from '../index.js';

// The project's small model; until it is trained, the core's test model.
const DEFAULT_WEIGHTS = ['../../weights/small/fashion_vgg.gcam', '../../tests/fixtures/vgg_small/model.gcam'];
const CACHE_NAME = 'gradcam-wasm-weights-v1';
const SOURCES_KEY = 'gradcam-wasm:sources'; // localStorage: weights source -> SHA-256

const $ = (id) => document.getElementById(id);
const ui = {
  url: $('weights-url'), form: $('weights-form'), weightsFile: $('weights-file'),
  progress: $('weights-progress'), weightsStatus: $('weights-status'),
  drop: $('drop-zone'), imageFile: $('image-file'), samples: $('samples'), sampleList: $('sample-list'),
  classPicker: $('class-picker'), scorePicker: $('score-picker'), alpha: $('alpha'), alphaValue: $('alpha-value'),
  explainStatus: $('explain-status'), canvas: $('overlay'), top5: document.querySelector('#top5 tbody'),
};

const demo = { explainer: null, image: null, result: null, explanation: null, generation: 0 };
window.gcamDemo = demo; // for the browser test and the curious

function setState(s) {
  document.body.dataset.state = s;
}

function status(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function mb(n) {
  return `${(n / 1e6).toFixed(1)} MB`;
}

// ---- weights ------------------------------------------------------------------------------

function knownSources() {
  try {
    return JSON.parse(localStorage.getItem(SOURCES_KEY) || '{}');
  } catch {
    return {};
  }
}

function rememberSource(source, sha) {
  const all = knownSources();
  all[source] = sha;
  try { localStorage.setItem(SOURCES_KEY, JSON.stringify(all)); } catch { /* storage full: no cache */ }
}

const cacheKey = (sha) => new URL(`gcam-weights/${sha}`, location.href).href;

async function openCache() {
  if (!('caches' in self)) return null;
  try { return await caches.open(CACHE_NAME); } catch { return null; }
}

/** The cached Response for a source loaded before, or null. */
async function cachedWeights(source) {
  const sha = knownSources()[source];
  const cache = sha && (await openCache());
  const hit = cache ? await cache.match(cacheKey(sha)) : null;
  return hit ? { response: hit, sha } : null;
}

async function loadWeights(source, what) {
  demo.generation++;
  if (demo.explainer) demo.explainer.dispose();
  demo.explainer = null;
  setState('loading');
  ui.classPicker.disabled = true;
  ui.progress.hidden = false;
  ui.progress.value = 0;
  ui.progress.removeAttribute('max');
  status(ui.weightsStatus, `Loading ${what}…`);
  const onProgress = ({ loaded, total }) => {
    if (total) {
      ui.progress.max = total;
      ui.progress.value = loaded;
    }
    status(ui.weightsStatus, `Loading ${what}: ${mb(loaded)}${total ? ` of ${mb(total)}` : ''}`);
  };
  const key = typeof source === 'string' ? source : `file:${source.name}:${source.size}:${source.lastModified}`;
  let fromCache = false;
  let pending = null; // the cache write running beside the load
  let cache = null;
  try {
    let weights = source;
    const cached = await cachedWeights(key);
    if (cached) {
      weights = cached.response;
      fromCache = true;
    } else if (typeof source === 'string') {
      const response = await fetch(source).catch((e) => {
        throw new Error(`cannot fetch ${source}: ${e.message}`);
      });
      if (!response.ok) throw new Error(`${source}: HTTP ${response.status} ${response.statusText}`.trim());
      cache = await openCache();
      if (cache && response.body) {
        // Write the file to the cache while it streams into the explainer; it is filed
        // under its SHA-256 once the library has checked it.
        const [a, b] = response.body.tee();
        const headers = { 'content-type': 'application/octet-stream' };
        const length = response.headers.get('content-length');
        if (length) headers['content-length'] = length;
        pending = cache.put(cacheKey(`pending-${Date.now()}`), new Response(b, { headers }))
          .then(() => cache.keys()).catch(() => null);
        weights = new Response(a, { headers });
      } else {
        weights = response;
      }
    }
    const explainer = await createExplainer({ weights, onProgress });
    demo.explainer = explainer;
    const sha = explainer.info.sha256;
    await fileInCache(cache, pending, source, sha);
    rememberSource(key, sha);
    ui.progress.hidden = true;
    status(ui.weightsStatus,
      `Loaded ${what}${fromCache ? ' from the offline cache' : ''}: ${explainer.info.nClasses} classes, ` +
      `input ${explainer.info.inputWidth}×${explainer.info.inputHeight}, ` +
      `${explainer.info.simd ? 'WebAssembly SIMD' : 'WebAssembly (no SIMD)'}, SHA-256 ${sha.slice(0, 12)}…`);
    fillClassPicker(explainer);
    setState('ready');
    if (demo.image) await explainCurrent();
  } catch (e) {
    ui.progress.hidden = true;
    await dropPending(cache, pending);
    status(ui.weightsStatus, weightsMessage(e, what), true);
    setState('error');
  }
}

async function fileInCache(cache, pending, source, sha) {
  if (!cache && typeof source !== 'string') {
    // a local file: keep it too, so the page works offline next time
    const c = await openCache();
    if (c) await c.put(cacheKey(sha), new Response(source)).catch(() => {});
    return;
  }
  if (!cache || !pending) return;
  await pending;
  for (const req of await cache.keys()) {
    if (!req.url.includes('gcam-weights/pending-')) continue;
    const res = await cache.match(req);
    if (res) await cache.put(cacheKey(sha), res).catch(() => {});
    await cache.delete(req);
  }
}

async function dropPending(cache, pending) {
  if (!cache) return;
  await pending;
  for (const req of await cache.keys().catch(() => [])) {
    if (req.url.includes('gcam-weights/pending-')) await cache.delete(req);
  }
}

function weightsMessage(e, what) {
  const code = e && e.code;
  if (code === 'GCAM_STATUS_IO' || /HTTP 404/.test(e.message))
    return `The weights file ${what} is missing (${e.message}). Check the URL or pick a local .gcam file.`;
  if (code && code.startsWith('GCAM_STATUS_'))
    return `The weights file ${what} is not valid: ${e.message} (${code}).`;
  return `Could not load the weights ${what}: ${e.message}`;
}

function fillClassPicker(explainer) {
  ui.classPicker.textContent = '';
  const auto = new Option('top prediction', '');
  ui.classPicker.add(auto);
  for (let c = 0; c < explainer.info.nClasses; c++) ui.classPicker.add(new Option(labelOf(c), String(c)));
  ui.classPicker.disabled = false;
}

function labelOf(c) {
  const label = demo.explainer && demo.explainer.labels[c];
  return label ? `${c}: ${label}` : `class ${c}`;
}

// ---- images -------------------------------------------------------------------------------

/** RGBA pixels of an image file: PNG and JPEG through the library's own decoder (the
 * CLI's, so both see the same pixels), anything else through the browser's. */
async function decode(blob) {
  const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  const png = head[0] === 0x89 && head[1] === 0x50;
  const jpeg = head[0] === 0xff && head[1] === 0xd8;
  if ((png || jpeg) && demo.explainer) return demo.explainer.decodeImage(new Uint8Array(await blob.arrayBuffer()));
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
}

async function useImage(blob, name) {
  status(ui.explainStatus, `Decoding ${name}…`);
  try {
    demo.image = await decode(blob);
    demo.imageName = name;
  } catch (e) {
    status(ui.explainStatus, `Cannot read ${name} as an image: ${e.message}`, true);
    setState('error');
    return;
  }
  ui.classPicker.value = '';
  if (demo.explainer) await explainCurrent();
  else status(ui.explainStatus, `${name} is ready: load weights to explain it.`);
}

// ---- explaining ---------------------------------------------------------------------------

async function explainCurrent() {
  const { explainer, image } = demo;
  if (!explainer || !image) return;
  const generation = ++demo.generation;
  setState('explaining');
  const classIndex = ui.classPicker.value === '' ? undefined : Number(ui.classPicker.value);
  status(ui.explainStatus, `Explaining ${demo.imageName}…`);
  try {
    const t0 = performance.now();
    const result = await explainer.explain(image, { classIndex, topK: Math.min(5, explainer.info.nClasses),
                                                     score: ui.scorePicker.value });
    if (generation !== demo.generation) return;
    demo.result = result;
    demo.explanation = result.explanations[0];
    showTop5(result);
    await drawOverlay();
    if (generation !== demo.generation) return;
    const ms = (performance.now() - t0).toFixed(0);
    status(ui.explainStatus,
      `${labelOf(demo.explanation.classIndex)}: ${ms} ms ` +
      (result.forwardReused ? '(forward pass reused: only the backward ran)' : '(forward + backward)'));
    setState('done');
  } catch (e) {
    status(ui.explainStatus, `Explanation failed: ${e.message}${e.code ? ` (${e.code})` : ''}`, true);
    setState('error');
  }
}

let drawing = null;
let drawAgain = false;

/** Blend at the slider's opacity; slider moves during a blend coalesce into one more. */
async function drawOverlay() {
  if (drawing) {
    drawAgain = true;
    return drawing;
  }
  drawing = (async () => {
    do {
      drawAgain = false;
      const { explainer, image, explanation } = demo;
      if (!explainer || !image || !explanation) break;
      const out = await explainer.overlay(image, explanation, { alpha: Number(ui.alpha.value) });
      ui.canvas.width = out.width;
      ui.canvas.height = out.height;
      ui.canvas.getContext('2d').putImageData(out, 0, 0);
    } while (drawAgain);
  })();
  try {
    await drawing;
  } finally {
    drawing = null;
  }
}

function showTop5(result) {
  ui.top5.textContent = '';
  result.predictions.forEach((p, i) => {
    const tr = document.createElement('tr');
    tr.dataset.index = String(p.index);
    if (p.index === result.explanations[0].classIndex) tr.classList.add('selected');
    for (const text of [String(i + 1), p.label ? `${p.index}: ${p.label}` : `class ${p.index}`,
                        `${(100 * p.probability).toFixed(2)} %`]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tr.addEventListener('click', () => {
      ui.classPicker.value = String(p.index);
      explainCurrent();
    });
    ui.top5.append(tr);
  });
}

// ---- samples ------------------------------------------------------------------------------

async function useSample(s) {
  const r = await fetch(`samples/${s.file}`);
  if (!r.ok) return status(ui.explainStatus, `sample ${s.file}: HTTP ${r.status}`, true);
  await useImage(await r.blob(), s.label || s.file);
}

/** The samples' buttons; resolves to the list (empty when there is none). */
async function listSamples() {
  // samples/index.json: [{ "file": "shirt.png", "label": "shirt" }, ...]
  let list;
  try {
    const r = await fetch('samples/index.json');
    if (!r.ok) return [];
    list = await r.json();
  } catch {
    return [];
  }
  if (!Array.isArray(list) || !list.length) return [];
  for (const s of list) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = s.label || s.file;
    b.addEventListener('click', () => useSample(s));
    ui.sampleList.append(b);
  }
  ui.samples.hidden = false;
  return list;
}

// ---- wiring -------------------------------------------------------------------------------

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = ui.url.value.trim();
  if (url) loadWeights(url, url);
});
ui.weightsFile.addEventListener('change', () => {
  const f = ui.weightsFile.files[0];
  if (f) loadWeights(f, f.name);
});
ui.imageFile.addEventListener('change', () => {
  const f = ui.imageFile.files[0];
  if (f) useImage(f, f.name);
});
ui.drop.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  ui.drop.classList.remove('over');
  const f = ev.dataTransfer.files[0];
  if (f) useImage(f, f.name);
});
ui.classPicker.addEventListener('change', () => explainCurrent());
ui.scorePicker.addEventListener('change', () => explainCurrent());
ui.alpha.addEventListener('input', () => {
  ui.alphaValue.textContent = Number(ui.alpha.value).toFixed(2);
  drawOverlay();
});

async function start() {
  const samples = listSamples();
  const params = new URLSearchParams(location.search);
  const asked = params.get('weights');
  let url = asked;
  if (!url) {
    // the first default that exists (a HEAD request: nothing is downloaded twice)
    for (const candidate of DEFAULT_WEIGHTS) {
      const r = await fetch(candidate, { method: 'HEAD' }).catch(() => null);
      if (r && r.ok) {
        url = candidate;
        break;
      }
    }
    url = url || DEFAULT_WEIGHTS[0];
  }
  ui.url.value = url;
  await loadWeights(url, url);
  // the first visit shows an explanation at once: the first sample, on the default model
  // (?sample=none turns this off; an image picked meanwhile wins)
  const list = await samples;
  if (!asked && params.get('sample') !== 'none' && list.length && demo.explainer && !demo.image)
    await useSample(list[0]);
}

demo.started = start();
