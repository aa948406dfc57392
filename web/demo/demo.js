// demo.js: the demo page. Loads weights (the built-in model, a URL or a local file, kept with
// the Cache API for offline use), takes a picture (file, drop, paste, camera, sample),
// explains it in the worker and draws the four panels of a Grad-CAM figure: the picture, the
// map at the last conv layer's own size, the map resized to the picture, and the blend.
// The page's state is mirrored in <body data-state> (idle, loading, ready, explaining, done,
// error) for the browser tests; sw.js makes the page work offline after one visit.
import { createExplainer, methods } from '../index.js';

// The project's small model; until it is trained, the core's test model.
const DEFAULT_WEIGHTS = ['../../weights/small/fashion_vgg.gcam', '../../tests/fixtures/vgg_small/model.gcam'];
const CACHE_NAME = 'gradcam-wasm-weights-v1';
const SOURCES_KEY = 'gradcam-wasm:sources'; // localStorage: weights source -> SHA-256
const ENTRY_KEY = 'gradcam-wasm:entry'; // localStorage: { sha, url, bytes } of the cached file
const TOP_K = 5;
const RAW_MAP_SIDE = 448; // the raw map's canvas: blocks of whole pixels, about this long

const $ = (id) => document.getElementById(id);
const ui = {
  url: $('weights-url'), form: $('weights-form'), weightsFile: $('weights-file'),
  progress: $('weights-progress'), weightsStatus: $('weights-status'), classes: $('classes'),
  modelCard: $('model-card'), otherWeights: $('other-weights'),
  drop: $('drop-zone'), imageFile: $('image-file'), samples: $('samples'), sampleList: $('sample-list'),
  imageStatus: $('image-status'), pasteButton: $('paste-button'), cameraButton: $('camera-button'),
  camera: $('camera'), cameraVideo: $('camera-video'), cameraSnap: $('camera-snap'), cameraCancel: $('camera-cancel'),
  classPicker: $('class-picker'), scorePicker: $('score-picker'), alpha: $('alpha'), alphaValue: $('alpha-value'),
  methodPicker: $('method-picker'), layerPicker: $('layer-picker'), methodNote: $('method-note'),
  commonScale: $('common-scale'), download: $('download'),
  explainStatus: $('explain-status'), answer: $('answer'), meaning: $('meaning'),
  panels: $('panels'), imageCanvas: $('image-canvas'), rawMap: $('raw-map'), heatmap: $('heatmap'),
  canvas: $('overlay'), sizeImage: $('size-image'), sizeRaw: $('size-raw'),
  legendBar: $('legend-bar'), legendMid: $('legend-mid'), legendMax: $('legend-max'), legendScale: $('legend-scale'),
  top5Table: $('top5'), top5: document.querySelector('#top5 tbody'),
  offlineStatus: $('offline-status'), clearCache: $('clear-cache'),
};

const demo = {
  explainer: null, image: null, imageName: '', result: null, explanation: null, shown: null,
  peaks: null, generation: 0, source: null,
};
window.gcamDemo = demo; // for the browser tests and the curious

function setState(s) {
  document.body.dataset.state = s;
}

/** A status line: plain words, and optionally the technical part folded in a <details>. */
function status(el, text, { error = false, more = '' } = {}) {
  el.textContent = text;
  el.classList.toggle('error', error);
  if (more) {
    const d = document.createElement('details');
    d.className = 'more';
    const s = document.createElement('summary');
    s.textContent = 'details';
    d.append(s, document.createTextNode(more));
    el.append(' ', d);
  }
}

function mb(n) {
  return `${(n / 1e6).toFixed(1)} MB`;
}

const pct = (p) => `${(100 * p).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1)} %`;
const quoted = (s) => `“${s}”`;

// ---- weights ------------------------------------------------------------------------------

function knownSources() {
  try {
    return JSON.parse(localStorage.getItem(SOURCES_KEY) || '{}');
  } catch {
    return {};
  }
}

function saveSources(all) {
  try { localStorage.setItem(SOURCES_KEY, JSON.stringify(all)); } catch { /* storage full: no cache */ }
}

function rememberSource(source, sha) {
  // only the last weights are kept: forget the sources of any other file
  const all = Object.fromEntries(Object.entries(knownSources()).filter(([, s]) => s === sha));
  all[source] = sha;
  saveSources(all);
}

const cacheKey = (name) => new URL(`gcam-weights/${name}`, location.href).href;

// The one cached weights file: where it is and its size, so that the page never has to open
// the entry to know (in WebKit, a cache.match() of a 553 MB VGG16 reads the whole body into
// the page and blocks its main thread for seconds). Files cached before this record existed
// sit under their SHA-256.
function cachedEntry(sha) {
  try {
    const e = JSON.parse(localStorage.getItem(ENTRY_KEY) || 'null');
    if (e && e.sha === sha) return e;
  } catch { /* no record */ }
  return { sha, url: cacheKey(sha), bytes: 0 };
}

function saveEntry(entry) {
  try { localStorage.setItem(ENTRY_KEY, JSON.stringify(entry)); } catch { /* storage full: no cache */ }
}

async function openCache() {
  if (!('caches' in self)) return null;
  try { return await caches.open(CACHE_NAME); } catch { return null; }
}

/** The cached Response for a source loaded before, or null. */
async function cachedWeights(source) {
  const sha = knownSources()[source];
  const cache = sha && (await openCache());
  const hit = cache ? await cache.match(cachedEntry(sha).url) : null;
  return hit ? { response: hit, sha } : null;
}

/** What to call a weights source on the page. */
function nameOf(source) {
  if (typeof source !== 'string') return source.name;
  return DEFAULT_WEIGHTS.includes(source) ? 'the built-in network' : source;
}

async function loadWeights(source) {
  const what = nameOf(source);
  demo.generation++;
  if (demo.explainer) demo.explainer.dispose();
  demo.explainer = null;
  demo.source = source;
  setState('loading');
  ui.classPicker.disabled = true;
  ui.methodPicker.disabled = ui.layerPicker.disabled = true;
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
  let entry = null; // { url, bytes } of that write
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
        // Write the file to the cache while it streams into the explainer, once: the entry is
        // kept where it was written (its SHA-256, known once the library has checked the
        // file, is recorded beside it), never copied (a second put() of a 553 MB response
        // costs WebKit's main thread seconds).
        const [a, b] = response.body.tee();
        const headers = { 'content-type': 'application/octet-stream' };
        const length = response.headers.get('content-length');
        if (length) headers['content-length'] = length;
        entry = { url: cacheKey(`download-${Date.now()}`), bytes: Number(length) || 0 };
        pending = cache.put(entry.url, new Response(b, { headers })).then(() => true, () => false);
        weights = new Response(a, { headers });
      } else {
        weights = response;
      }
    }
    const explainer = await createExplainer({ weights, onProgress, depth: 'input' }); // every method: see fillMethodPickers
    demo.explainer = explainer;
    const { info } = explainer;
    const sha = info.sha256;
    await fileInCache(cache, pending, entry, source, sha);
    rememberSource(key, sha);
    await keepOnlyWeights(sha);
    ui.progress.hidden = true;
    status(ui.weightsStatus, `Loaded ${what}${fromCache ? ' from the offline cache' : ''}.`, {
      more: `SHA-256 ${sha.slice(0, 12)}…, ${info.nClasses} classes, input ${info.inputWidth}×${info.inputHeight}, ` +
            `map ${info.camWidth}×${info.camHeight}, ${mb(info.weightBytes)} of weights, ` +
            `${info.simd ? 'WebAssembly SIMD' : 'WebAssembly (no SIMD)'}, ${threadsText(info)}`,
    });
    ui.modelCard.hidden = !DEFAULT_WEIGHTS.includes(source);
    describeClasses(explainer);
    fillClassPicker(explainer);
    fillMethodPickers(explainer);
    drawLegend(explainer);
    showOffline();
    setState('ready');
    if (demo.image) await explainCurrent();
  } catch (e) {
    ui.progress.hidden = true;
    await dropPending(cache, pending, entry);
    const [text, more] = weightsMessage(e, what);
    status(ui.weightsStatus, text, { error: true, more });
    setState('error');
  }
}

/** Record the file just loaded as the cached one (writing it first if it is a local file). */
async function fileInCache(cache, pending, entry, source, sha) {
  if (!cache && typeof source !== 'string') {
    // a local file: keep it too, so the page works offline next time
    const c = await openCache();
    if (c && await c.put(cacheKey(sha), new Response(source)).then(() => true, () => false))
      saveEntry({ sha, url: cacheKey(sha), bytes: source.size });
    return;
  }
  if (!cache || !pending) return;
  if (await pending) saveEntry({ sha, ...entry });
}

/** The last weights are the only ones kept offline (a VGG16 is 553 MB). */
async function keepOnlyWeights(sha) {
  const cache = await openCache();
  if (!cache) return;
  const keep = cachedEntry(sha).url;
  for (const req of await cache.keys().catch(() => []))
    if (req.url !== keep) await cache.delete(req);
}

/** A failed load: the file written beside it goes. */
async function dropPending(cache, pending, entry) {
  if (!cache || !pending) return;
  await pending;
  await cache.delete(entry.url).catch(() => {});
}

/** [plain words, technical details] for a failed load. */
function weightsMessage(e, what) {
  const code = e && e.code;
  if (code === 'GCAM_STATUS_IO' || /HTTP 404/.test(e.message))
    return [`The network file ${what} is missing. Check the address, or choose a .gcam file on this device.`,
            `(${e.message})`];
  if (code && code.startsWith('GCAM_STATUS_'))
    return [`The file ${what} is not valid network weights for this page.`, `(${code}: ${e.message})`];
  return [`Could not load ${what}.`, `(${e.message})`];
}

function threadsText(info) {
  const n = info.threads || 1;
  return `${n} thread${n === 1 ? '' : 's'}`;
}

function labelOf(c) {
  const label = demo.explainer && demo.explainer.labels[c];
  return label || `class ${c}`;
}

/** What the loaded network knows: its class list, in words. */
function describeClasses(explainer) {
  const n = explainer.info.nClasses;
  ui.classes.textContent = '';
  if (n <= 20) {
    const names = Array.from({ length: n }, (_, c) => labelOf(c));
    ui.classes.textContent = `This network knows only these ${n} classes: ${names.join(', ')}. ` +
      'Whatever picture it is shown, it answers with one of them' +
      (DEFAULT_WEIGHTS.includes(demo.source) ? ', so a house or a face still gets a clothing name.' : '.');
    if (!explainer.labels.length) ui.classes.textContent = `This network knows ${n} classes (its file names none of them). ` +
      'Whatever picture it is shown, it answers with one of them.';
    return;
  }
  // a long list (VGG16's 1000 ImageNet classes): folded
  ui.classes.append(`This network knows ${n} classes; whatever picture it is shown, it answers with one of them. `);
  const d = document.createElement('details');
  const s = document.createElement('summary');
  s.textContent = `Show the ${n} classes`;
  const list = document.createElement('p');
  list.textContent = Array.from({ length: n }, (_, c) => labelOf(c)).join(', ');
  d.append(s, list);
  ui.classes.append(d);
}

function fillClassPicker(explainer) {
  ui.classPicker.textContent = '';
  ui.classPicker.add(new Option('its best guess', ''));
  for (let c = 0; c < explainer.info.nClasses; c++) ui.classPicker.add(new Option(`${c}: ${labelOf(c)}`, String(c)));
  ui.classPicker.disabled = false;
}

// The method picker's words; the value is the library's name (pytorch-grad-cam's spelling)
const METHOD_TEXT = {
  gradcam: 'Grad-CAM', hirescam: 'HiResCAM', 'gradcam-elementwise': 'Grad-CAM element-wise', 'gradcam++': 'Grad-CAM++',
  xgradcam: 'XGrad-CAM', layercam: 'LayerCAM', eigencam: 'Eigen-CAM', eigengradcam: 'Eigen-Grad-CAM',
  saliency: 'saliency (pixels)', 'guided-backprop': 'guided backprop (pixels)', 'guided-gradcam': 'guided Grad-CAM (pixels)',
  smoothgrad: 'SmoothGrad (pixels)', 'integrated-gradients': 'integrated gradients (pixels)',
};
// the pixel-level methods that take no layer: the layer picker is off for them
const NO_LAYER = new Set(['saliency', 'guided-backprop', 'smoothgrad', 'integrated-gradients']);

/** The method and layer pickers. The explainer keeps every layer (depth 'input') so that
 * each method works: the note says what that costs. */
function fillMethodPickers(explainer) {
  const keep = ui.methodPicker.value || 'gradcam';
  ui.methodPicker.textContent = '';
  for (const m of methods) ui.methodPicker.add(new Option(METHOD_TEXT[m] || m, m));
  ui.methodPicker.value = keep;
  ui.layerPicker.textContent = '';
  const { layers } = explainer.info;
  layers.forEach((l, i) => ui.layerPicker.add(new Option(`${l.name} (${l.width} × ${l.height})`, String(i))));
  ui.layerPicker.value = String(layers.length - 1);
  ui.methodPicker.disabled = false;
  syncLayerPicker();
  const bytes = explainer.info.stateBytes;
  ui.methodNote.textContent = typeof bytes === 'number' && bytes > 0
    ? `Every method and layer can be shown: the network keeps each layer's output for the way back, ` +
      `${mb(bytes)} of memory (Grad-CAM at the last layer alone would need less).`
    : '';
}

function syncLayerPicker() {
  ui.layerPicker.disabled = NO_LAYER.has(ui.methodPicker.value);
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
  status(ui.imageStatus, `Reading ${name}…`);
  let image;
  try {
    image = await decode(blob);
  } catch (e) {
    status(ui.imageStatus, `${name} cannot be read as a picture.`, { error: true, more: `(${e.message})` });
    setState('error');
    return;
  }
  await useImageData(image, name);
}

async function useImageData(image, name) {
  demo.image = image;
  demo.imageName = name;
  status(ui.imageStatus, '');
  for (const b of ui.sampleList.querySelectorAll('button'))
    b.setAttribute('aria-pressed', String(b.dataset.name === name));
  drawPicture(image);
  ui.classPicker.value = '';
  if (demo.explainer) await explainCurrent();
  else status(ui.imageStatus, `${name} is ready: load a network to explain it.`);
}

// ---- explaining ---------------------------------------------------------------------------

async function explainCurrent() {
  const { explainer, image } = demo;
  if (!explainer || !image) return;
  const generation = ++demo.generation;
  setState('explaining');
  const classIndex = ui.classPicker.value === '' ? undefined : Number(ui.classPicker.value);
  const score = ui.scorePicker.value;
  const method = ui.methodPicker.value || 'gradcam';
  const layer = ui.layerPicker.value === '' ? undefined : Number(ui.layerPicker.value);
  const how = { score, method, layer };
  status(ui.explainStatus, `Looking at ${demo.imageName}…`);
  try {
    const t0 = performance.now();
    const topK = Math.min(TOP_K, explainer.info.nClasses);
    const result = await explainer.explain(image, { classIndex, topK, ...how });
    if (generation !== demo.generation) return;
    const explanation = result.explanations[0];
    // the peaks of the top classes' maps, for the common scale (the forward is reused)
    let peaks = null;
    if (ui.commonScale.checked) {
      const classes = [...new Set([...result.predictions.map((p) => p.index), explanation.classIndex])];
      const all = await explainer.explain(image, { classIndex: classes, topK, ...how });
      if (generation !== demo.generation) return;
      peaks = new Map(all.explanations.map((e) => [e.classIndex, e.rawMax]));
    }
    demo.result = result;
    demo.explanation = explanation;
    demo.peaks = peaks;
    demo.shown = scaled(explanation, peaks);
    showTop5(result, peaks);
    await drawMaps();
    if (generation !== demo.generation) return;
    const ms = (performance.now() - t0).toFixed(0);
    showAnswer(result, explanation);
    const path = result.forwardReused ? 'forward pass reused: only the backward ran'
                                      : 'forward + backward';
    status(ui.explainStatus, `Done in ${ms} ms.`, {
      more: `${path}; forward ${result.timings.forwardMs.toFixed(0)} ms, ` +
            `${METHOD_TEXT[explanation.method] || 'Grad-CAM'} ${result.timings.explainMs.toFixed(0)} ms; ` +
            `${threadsText(explainer.info)}, ${explainer.info.simd ? 'SIMD' : 'no SIMD'}; ` +
            `memory in use: ${memoryText(explainer.info, result)}; map peak ${explanation.rawMax.toPrecision(4)}`,
    });
    ui.download.disabled = false;
    setState('done');
  } catch (e) {
    status(ui.explainStatus, 'The explanation failed.', { error: true, more: `(${e.message}${e.code ? `, ${e.code}` : ''})` });
    setState('error');
  }
}

/** The wasm memory when the engine reports it, else what the weights take. */
function memoryText(info, result) {
  const bytes = result.memoryBytes ?? info.memoryBytes;
  if (typeof bytes === 'number') return mb(bytes);
  return `${mb(info.weightBytes)} of weights (the engine does not report the rest)`;
}

/** The explanation as drawn: its own scale (each map divided by its max, the recipe), or
 * one scale for the top classes (divided by the largest of their maxima). */
function scaled(explanation, peaks) {
  if (!peaks) return explanation;
  const top = Math.max(...peaks.values());
  const factor = top > 0 ? explanation.rawMax / top : 0;
  const heatmap = explanation.heatmap.map((v) => v * factor);
  return { ...explanation, heatmap };
}

function showAnswer(result, explanation) {
  const best = result.predictions[0];
  const c = explanation.classIndex;
  const name = quoted(labelOf(c));
  const p = result.predictions.find((q) => q.index === c);
  let answer = `The network says: ${quoted(labelOf(best.index))} (${pct(best.probability)} sure).`;
  if (c !== best.index) answer += ` Showing the map of ${name}${p ? ` (${pct(p.probability)})` : ''}.`;
  ui.answer.textContent = answer;
  ui.meaning.textContent =
    `The heatmap shows which parts of the picture made the network think ${name}: the red parts ` +
    `counted the most, the blue parts not at all. It shows what the network used, not where the object is ` +
    `or whether the answer is right.`;
}

// ---- drawing ------------------------------------------------------------------------------

function blackImage(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return new ImageData(data, width, height);
}

function put(canvas, imageData) {
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext('2d').putImageData(imageData, 0, 0);
}

function drawPicture(image) {
  put(ui.imageCanvas, image instanceof ImageData ? image : new ImageData(image.data, image.width, image.height));
  // every panel at the picture's proportions: the map covers the whole picture
  ui.panels.style.setProperty('--ar', `${image.width} / ${image.height}`);
  ui.sizeImage.textContent = `(${image.width} × ${image.height})`;
}

/** The JET colours of the library (its overlay of the map on black, at full strength). */
async function jet(explanation, width, height) {
  return demo.explainer.overlay(blackImage(width, height), explanation, { alpha: 1, imageWeight: 0 });
}

/** The raw map at the layer's size, its blocks drawn as whole pixels; the map resized to the
 * picture (bilinear, as the blend uses it); then the blend. */
async function drawMaps() {
  const { image, shown } = demo;
  const raw = await jet(shown, shown.width, shown.height);
  const cells = new OffscreenCanvas(shown.width, shown.height);
  cells.getContext('2d').putImageData(raw, 0, 0);
  const long = Math.max(image.width, image.height);
  const bx = Math.max(1, Math.round((RAW_MAP_SIDE * image.width) / long / shown.width));
  const by = Math.max(1, Math.round((RAW_MAP_SIDE * image.height) / long / shown.height));
  ui.rawMap.width = shown.width * bx;
  ui.rawMap.height = shown.height * by;
  const ctx = ui.rawMap.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cells, 0, 0, ui.rawMap.width, ui.rawMap.height);
  ui.sizeRaw.textContent = `(${shown.width} × ${shown.height})`;
  put(ui.heatmap, await jet(shown, image.width, image.height));
  await drawOverlay();
  showScale();
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
      const { explainer, image, shown } = demo;
      if (!explainer || !image || !shown) break;
      put(ui.canvas, await explainer.overlay(image, shown, { alpha: Number(ui.alpha.value) }));
    } while (drawAgain);
  })();
  try {
    await drawing;
  } finally {
    drawing = null;
  }
}

/** The legend's colours: a 0..1 ramp through the library's own colour map. */
async function drawLegend(explainer) {
  const n = 256;
  const heatmap = new Float32Array(n).map((_, i) => i / (n - 1));
  try {
    put(ui.legendBar, await explainer.overlay(blackImage(n, 1), { heatmap, width: n, height: 1, rawMax: 1 },
                                              { alpha: 1, imageWeight: 0 }));
  } catch { /* the explainer was replaced meanwhile */ }
}

function showScale() {
  const { explanation, peaks } = demo;
  const fmt = (v) => (v === 0 ? '0' : v.toPrecision(3));
  const name = quoted(labelOf(explanation.classIndex));
  if (peaks) {
    const top = Math.max(...peaks.values());
    const which = [...peaks.entries()].find(([, v]) => v === top);
    ui.legendMid.textContent = fmt(top / 2);
    ui.legendMax.textContent = fmt(top);
    ui.legendScale.textContent = `One scale for the five best guesses: red is the strongest spot among all their ` +
      `maps (${fmt(top)}, in the map of ${quoted(labelOf(which[0]))}); the strongest spot for ${name} is ` +
      `${fmt(explanation.rawMax)}.`;
  } else {
    ui.legendMid.textContent = fmt(explanation.rawMax / 2);
    ui.legendMax.textContent = fmt(explanation.rawMax);
    ui.legendScale.textContent = `Each class on its own scale: red is the strongest spot of the map of ${name} ` +
      `(${fmt(explanation.rawMax)}), whatever its probability. Tick "Same scale for every class" to compare classes.`;
  }
}

function showTop5(result, peaks) {
  ui.top5.textContent = '';
  ui.top5Table.classList.toggle('with-peaks', !!peaks);
  result.predictions.forEach((p, i) => {
    const tr = document.createElement('tr');
    tr.dataset.index = String(p.index);
    const selected = p.index === result.explanations[0].classIndex;
    if (selected) tr.classList.add('selected');
    const cells = [String(i + 1), null, pct(p.probability),
                   peaks && peaks.has(p.index) ? peaks.get(p.index).toPrecision(3) : ''];
    cells.forEach((text, k) => {
      const td = document.createElement('td');
      if (k === 3) td.className = 'peak';
      if (text === null) {
        // a real button: reachable with the keyboard
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = labelOf(p.index);
        b.setAttribute('aria-label', `show the map of ${labelOf(p.index)}`);
        if (selected) b.setAttribute('aria-current', 'true');
        b.addEventListener('click', (ev) => {
          ev.stopPropagation();
          choose(p.index);
        });
        td.append(b);
      } else {
        td.textContent = text;
      }
      tr.append(td);
    });
    tr.addEventListener('click', () => choose(p.index));
    ui.top5.append(tr);
  });
}

function choose(index) {
  ui.classPicker.value = String(index);
  explainCurrent();
}

async function download() {
  const blob = await new Promise((resolve) => ui.canvas.toBlob(resolve, 'image/png'));
  if (!blob) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  const base = demo.imageName.replace(/\.[a-z0-9]+$/i, '').replace(/[^\w-]+/g, '-') || 'picture';
  a.download = `${base}-heatmap-${labelOf(demo.explanation.classIndex).replace(/[^\w-]+/g, '-')}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10e3);
}

// ---- paste and camera ---------------------------------------------------------------------

function imageFromClipboard(items) {
  for (const item of items || []) if (item.kind === 'file' && item.type.startsWith('image/')) return item.getAsFile();
  return null;
}

async function pasteButton() {
  if (!navigator.clipboard || !navigator.clipboard.read) {
    status(ui.imageStatus, 'This browser does not let the page read the clipboard: press Ctrl+V (⌘V on a Mac) instead.');
    return;
  }
  try {
    for (const item of await navigator.clipboard.read()) {
      const type = item.types.find((t) => t.startsWith('image/'));
      if (type) return useImage(await item.getType(type), 'pasted picture');
    }
    status(ui.imageStatus, 'The clipboard holds no picture.');
  } catch (e) {
    status(ui.imageStatus, 'The clipboard could not be read: press Ctrl+V (⌘V on a Mac) instead.', { more: `(${e.message})` });
  }
}

let cameraStream = null;

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status(ui.imageStatus, 'This browser offers no camera to this page (a camera needs https or localhost).', { error: true });
    return;
  }
  try {
    // asked only now, on the visitor's request
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    status(ui.imageStatus, 'The camera could not be opened (permission refused, or no camera).', { error: true, more: `(${e.name}: ${e.message})` });
    return;
  }
  ui.cameraVideo.srcObject = cameraStream;
  ui.camera.hidden = false;
  await ui.cameraVideo.play().catch(() => {});
  ui.cameraSnap.focus();
}

function closeCamera() {
  if (cameraStream) for (const t of cameraStream.getTracks()) t.stop();
  cameraStream = null;
  ui.cameraVideo.srcObject = null;
  ui.camera.hidden = true;
}

async function snapPhoto() {
  const v = ui.cameraVideo;
  if (!v.videoWidth) return;
  const c = new OffscreenCanvas(v.videoWidth, v.videoHeight);
  const ctx = c.getContext('2d');
  ctx.drawImage(v, 0, 0);
  const image = ctx.getImageData(0, 0, c.width, c.height);
  closeCamera();
  ui.cameraButton.focus();
  await useImageData(image, 'camera photo');
}

// ---- samples ------------------------------------------------------------------------------

async function useSample(s) {
  const r = await fetch(`samples/${s.file}`).catch(() => null);
  if (!r || !r.ok) return status(ui.imageStatus, `The sample ${s.file} could not be loaded.`, { error: true });
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
    b.dataset.name = s.label || s.file;
    b.setAttribute('aria-pressed', 'false');
    const img = document.createElement('img');
    img.src = `samples/${s.file}`;
    img.alt = '';
    img.width = 64;
    img.height = 64;
    b.append(img, s.label || s.file);
    b.addEventListener('click', () => useSample(s));
    ui.sampleList.append(b);
  }
  ui.samples.hidden = false;
  return list;
}

// ---- offline ------------------------------------------------------------------------------

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  // scope ../ (all of web/): the worker and the wasm are loaded from there, and a worker is
  // served by the service worker whose scope holds the worker's own URL (serve.mjs sends
  // Service-Worker-Allowed for it); a host that does not gets the demo folder only
  try {
    return await navigator.serviceWorker.register('sw.js', { scope: '../' });
  } catch {
    return navigator.serviceWorker.register('sw.js').catch(() => null);
  }
}

async function showOffline() {
  if (!('caches' in self)) {
    ui.offlineStatus.textContent = 'This browser keeps nothing for offline use here.';
    ui.clearCache.hidden = true;
    return;
  }
  const sha = Object.values(knownSources())[0];
  const cache = await openCache();
  // keys(), not match(): match() would read the file's body (see cachedEntry)
  const entry = sha ? cachedEntry(sha) : null;
  const keys = entry && cache ? await cache.keys().catch(() => []) : [];
  const weights = keys.some((r) => r.url === entry.url);
  const size = weights ? entry.bytes : 0;
  const reg = 'serviceWorker' in navigator && (await navigator.serviceWorker.getRegistration('./').catch(() => null));
  let text = !reg ? 'This browser does not keep the page itself for offline use.'
    : reg.active ? 'This page is saved on this device: it also works without a network.'
    : 'Saving this page on this device for offline use…';
  if (weights) text += ` The last network you loaded${size ? ` (${mb(size)})` : ''} is saved too.`;
  ui.offlineStatus.textContent = text;
}

async function clearSaved() {
  ui.clearCache.disabled = true;
  try {
    for (const name of await caches.keys()) if (name.startsWith('gradcam-wasm')) await caches.delete(name);
    saveSources({});
    ui.offlineStatus.textContent = 'The saved copies are deleted. The page saves itself again on your next visit with a network; ' +
      'the network is saved again when you next load it.';
  } finally {
    ui.clearCache.disabled = false;
  }
}

// ---- wiring -------------------------------------------------------------------------------

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = ui.url.value.trim();
  if (url) loadWeights(url);
});
ui.weightsFile.addEventListener('change', () => {
  const f = ui.weightsFile.files[0];
  if (f) loadWeights(f);
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
// Enter or Space on the drop zone opens the file picker
ui.drop.addEventListener('keydown', (ev) => {
  if (ev.target === ui.drop && (ev.key === 'Enter' || ev.key === ' ')) {
    ev.preventDefault();
    ui.imageFile.click();
  }
});
document.addEventListener('paste', (ev) => {
  const f = imageFromClipboard(ev.clipboardData && ev.clipboardData.items);
  if (!f) return;
  ev.preventDefault();
  useImage(f, 'pasted picture');
});
ui.pasteButton.addEventListener('click', pasteButton);
ui.cameraButton.addEventListener('click', openCamera);
ui.cameraSnap.addEventListener('click', snapPhoto);
ui.cameraCancel.addEventListener('click', () => {
  closeCamera();
  ui.cameraButton.focus();
});
ui.classPicker.addEventListener('change', () => explainCurrent());
ui.scorePicker.addEventListener('change', () => explainCurrent());
// a new method or layer: one more backward on the forward the worker holds
ui.methodPicker.addEventListener('change', () => {
  syncLayerPicker();
  explainCurrent();
});
ui.layerPicker.addEventListener('change', () => explainCurrent());
ui.commonScale.addEventListener('change', () => explainCurrent());
ui.alpha.addEventListener('input', () => {
  ui.alphaValue.textContent = Number(ui.alpha.value).toFixed(2);
  drawOverlay();
});
ui.download.addEventListener('click', download);
ui.clearCache.addEventListener('click', clearSaved);

async function start() {
  const sw = registerServiceWorker();
  const samples = listSamples();
  const params = new URLSearchParams(location.search);
  const asked = params.get('weights');
  let url = asked;
  if (!url) {
    // the first default that exists (a HEAD request: nothing is downloaded twice); offline,
    // the first one, which the cache has if it was loaded before
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
  await loadWeights(url);
  // the first visit shows an explanation at once: the first sample, on the default model
  // (?sample=none turns this off; an image picked meanwhile wins)
  const list = await samples;
  if (!asked && params.get('sample') !== 'none' && list.length && demo.explainer && !demo.image)
    await useSample(list[0]);
  demo.serviceWorker = await sw;
  showOffline();
  if (demo.serviceWorker) navigator.serviceWorker.ready.then(showOffline);
}

demo.started = start();
