// demo.test.mjs: the demo page in Debian's chromium (headless, through playwright-core; no
// browser is downloaded). Serves the repo on 127.0.0.1, loads the demo, explains a picture
// and checks: the canvas shows the overlay (not blank) and it equals, byte for byte, what the
// Node API returns for the same image; re-explaining another class reuses the forward pass;
// no request leaves localhost; no task blocks the main thread for more than 200 ms while the
// weights load and the image is explained (PerformanceObserver 'longtask'); the weights are
// served from the Cache API on reload; a missing or invalid weights file gets a clear message.
// Leaves a screenshot in tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../../web/serve.mjs';
import { createExplainer } from '../../web/index.js';
import { ROOT, FIXTURES, requireBuilds, randomVgg16 } from '../js/helpers.mjs';

requireBuilds();

const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
const IMAGE = path.join(FIXTURES, 'img0.png');
const LONG_TASK_MS = 200;

let server, origin, context, userDataDir, vgg16;
const requests = [];

before(async () => {
  // the full-size model: a 553 MB random-weight VGG16 (made once by weights/make_random.py)
  vgg16 = await randomVgg16();
  server = await serve({ root: ROOT, port: 0, files: { '/generated/vgg16.gcam': vgg16 } });
  origin = `http://127.0.0.1:${server.address().port}`;
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic', '--no-first-run'],
    viewport: { width: 1100, height: 900 },
  });
  // every request of the pages and their workers; anything not local is recorded and refused
  context.on('request', (r) => requests.push(r.url()));
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'data:' || u.protocol === 'blob:' || u.hostname === '127.0.0.1' || u.hostname === 'localhost')
      return route.continue();
    requests.push(route.request().url());
    return route.abort();
  });
  // long tasks from the very start of each page, before its scripts run
  await context.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
});

after(async () => {
  if (context) await context.close();
  if (server) await new Promise((r) => server.close(r));
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

async function waitState(page, states, timeout = 120e3) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

async function canvasPixels(page) {
  const b64 = await page.evaluate(() => {
    const c = document.getElementById('overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    return { width: c.width, height: c.height, data: btoa(s) };
  });
  return { width: b64.width, height: b64.height, data: new Uint8Array(Buffer.from(b64.data, 'base64')) };
}

test('demo: load, explain, the canvas equals the Node API\'s overlay, nothing leaves localhost', { timeout: 300e3 }, async () => {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // the demo probes for optional files (samples list, the default model before it is trained)
  const missing = [];
  page.on('response', (r) => { if (r.status() === 404) missing.push(new URL(r.url()).pathname); });
  const OPTIONAL = ['/web/demo/samples/index.json', '/weights/small/fashion_vgg.gcam', '/favicon.ico'];

  await page.goto(`${origin}/web/demo/?sample=none`);
  assert.equal(await waitState(page, ['ready', 'error']), 'ready',
    `weights did not load: ${await page.textContent('#weights-status')}`);
  const weightsUrl = new URL(await page.inputValue('#weights-url'), `${origin}/web/demo/`);
  const weightsFile = path.join(ROOT, decodeURIComponent(weightsUrl.pathname));
  assert.match(await page.textContent('#weights-status'), /Loaded .*SHA-256/);

  await page.setInputFiles('#image-file', IMAGE);
  assert.equal(await waitState(page, ['done', 'error']), 'done', await page.textContent('#explain-status'));

  // the top-5 table
  const rows = await page.$$eval('#top5 tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.index)));
  assert.equal(rows.length, 5);

  // the canvas against the Node API on the same weights and image
  const ex = await createExplainer({ weights: weightsFile, worker: false });
  const img = await ex.decodeImage(fs.readFileSync(IMAGE));
  const want = await ex.explain(img, { topK: 5 });
  const wantOverlay = await ex.overlay(img, want.explanations[0], { alpha: 0.4 });
  assert.deepEqual(rows, want.predictions.map((p) => p.index), 'the same top-5 as Node');
  const shown = await canvasPixels(page);
  assert.equal(shown.width, img.width, 'canvas at the image\'s size');
  assert.equal(shown.height, img.height);
  assert.equal(Buffer.compare(Buffer.from(shown.data), Buffer.from(wantOverlay.data)), 0,
    'canvas pixels equal the Node API\'s overlay');
  // not blank: the pixels vary, and the heatmap shows (alpha 0 would give 0.9 * image)
  const plain = await ex.overlay(img, want.explanations[0], { alpha: 0 });
  assert.ok(new Set(shown.data).size > 32, 'the canvas is not blank');
  assert.notEqual(Buffer.compare(Buffer.from(shown.data), Buffer.from(plain.data)), 0, 'the heatmap is blended in');

  // another class: backward only
  const other = want.predictions[2].index;
  await page.selectOption('#class-picker', String(other));
  assert.equal(await waitState(page, ['done', 'error']), 'done');
  await page.waitForFunction((c) => window.gcamDemo.explanation && window.gcamDemo.explanation.classIndex === c, other);
  assert.equal(await page.evaluate(() => window.gcamDemo.result.forwardReused), true);
  assert.match(await page.textContent('#explain-status'), /forward pass reused/);
  const wantOther = await ex.explain(img, { classIndex: other });
  const otherOverlay = await ex.overlay(img, wantOther.explanations[0], { alpha: 0.4 });
  assert.equal(Buffer.compare(Buffer.from((await canvasPixels(page)).data), Buffer.from(otherOverlay.data)), 0);

  // the opacity slider redraws at the new alpha
  await page.fill('#alpha', '0.8');
  await page.dispatchEvent('#alpha', 'input');
  const alpha08 = await ex.overlay(img, wantOther.explanations[0], { alpha: 0.8 });
  await page.waitForFunction(() => document.getElementById('alpha-value').textContent === '0.80');
  await assert.doesNotReject(async () => {
    for (let i = 0; i < 100; i++) {
      if (Buffer.compare(Buffer.from((await canvasPixels(page)).data), Buffer.from(alpha08.data)) === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the canvas never showed the alpha 0.8 overlay');
  });
  ex.dispose();

  // drop another picture on the drop zone: a new forward, the canvas at its size
  const dropped = fs.readFileSync(path.join(FIXTURES, 'img1.png')).toString('base64');
  const dataTransfer = await page.evaluateHandle((b64) => {
    const dt = new DataTransfer();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], 'img1.png', { type: 'image/png' }));
    return dt;
  }, dropped);
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
  await page.waitForFunction(() => document.getElementById('overlay').width === 97, null, { timeout: 60e3 });
  assert.equal(await waitState(page, ['done', 'error']), 'done');
  assert.equal(await page.evaluate(() => window.gcamDemo.result.forwardReused), false);
  assert.equal((await canvasPixels(page)).height, 311);

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo.png'), fullPage: true });

  const longTasks = await page.evaluate(() => window.__longTasks);
  const blocked = longTasks.filter((t) => t.duration > LONG_TASK_MS);
  assert.deepEqual(blocked, [], `main thread blocked > ${LONG_TASK_MS} ms: ${JSON.stringify(longTasks)}`);

  // reload: the weights come from the Cache API now
  await page.reload();
  assert.equal(await waitState(page, ['ready', 'error']), 'ready');
  assert.match(await page.textContent('#weights-status'), /from the offline cache/);
  const reloadTasks = (await page.evaluate(() => window.__longTasks)).filter((t) => t.duration > LONG_TASK_MS);
  assert.deepEqual(reloadTasks, [], 'no long task while loading from the cache');

  assert.deepEqual(missing.filter((u) => !OPTIONAL.includes(u)), [], 'only optional files may be missing');
  assert.deepEqual(consoleErrors.filter((m) => !/status of 404/.test(m)), []);
  await page.close();
});

test('demo: the first visit shows the first sample explained by the built-in model', { timeout: 300e3 }, async () => {
  const page = await context.newPage();
  await page.goto(`${origin}/web/demo/`);
  assert.equal(await waitState(page, ['done', 'error']), 'done', await page.textContent('#explain-status'));
  const samples = JSON.parse(fs.readFileSync(path.join(ROOT, 'web/demo/samples/index.json'), 'utf8'));
  assert.equal(await page.evaluate(() => window.gcamDemo.imageName), samples[0].label || samples[0].file);
  assert.equal(await page.inputValue('#weights-url'), '../../weights/small/fashion_vgg.gcam');

  const ex = await createExplainer({ weights: path.join(ROOT, 'weights/small/fashion_vgg.gcam'), worker: false });
  const img = await ex.decodeImage(fs.readFileSync(path.join(ROOT, 'web/demo/samples', samples[0].file)));
  const want = await ex.explain(img, { topK: 5 });
  const overlay = await ex.overlay(img, want.explanations[0], { alpha: 0.4 });
  ex.dispose();
  const rows = await page.$$eval('#top5 tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.index)));
  assert.deepEqual(rows, want.predictions.map((p) => p.index));
  assert.equal(Buffer.compare(Buffer.from((await canvasPixels(page)).data), Buffer.from(overlay.data)), 0,
    'the canvas shows the sample\'s overlay');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-first-visit.png'), fullPage: true });
  await page.close();
});

test('demo: a missing or invalid weights file gets a clear message', { timeout: 120e3 }, async () => {
  const page = await context.newPage();
  await page.goto(`${origin}/web/demo/?weights=/weights/no-such-file.gcam`);
  assert.equal(await waitState(page, ['ready', 'error']), 'error');
  assert.match(await page.textContent('#weights-status'), /missing.*404/);
  await page.goto(`${origin}/web/demo/?weights=/tests/fixtures/vgg_small/img0.png`);
  assert.equal(await waitState(page, ['ready', 'error']), 'error');
  assert.match(await page.textContent('#weights-status'), /not valid.*GCAM_STATUS_BAD_FILE/);
  await page.close();
});

test('demo: a local weights file the user picks', { timeout: 120e3 }, async () => {
  const page = await context.newPage();
  await page.goto(`${origin}/web/demo/?weights=/weights/no-such-file.gcam`);
  assert.equal(await waitState(page, ['ready', 'error']), 'error');
  await page.setInputFiles('#weights-file', path.join(FIXTURES, 'model_torch.gcam'));
  assert.equal(await waitState(page, ['ready', 'error']), 'ready');
  assert.match(await page.textContent('#weights-status'), /Loaded model_torch\.gcam/);
  await page.close();
});

test('the API in the page: worker by default, every weights source, typed errors across the worker', { timeout: 120e3 }, async () => {
  const page = await context.newPage();
  await page.goto(`${origin}/web/serve.mjs`); // any same-origin page: the test imports the API itself
  const got = await page.evaluate(async () => {
    const api = await import('/web/index.js');
    const url = '/tests/fixtures/vgg_small/model.gcam';
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const png = new Uint8Array(await (await fetch('/tests/fixtures/vgg_small/img1.png')).arrayBuffer());
    const out = {};
    const sources = {
      url: () => url,
      arrayBuffer: () => bytes.slice().buffer,
      uint8array: () => bytes,
      blob: () => new Blob([bytes]),
      response: async () => fetch(url),
    };
    for (const [name, make] of Object.entries(sources)) {
      const progress = [];
      const ex = await api.createExplainer({ weights: await make(), onProgress: (p) => progress.push(p) });
      const img = await ex.decodeImage(png);
      const r = await ex.explain(img, { topK: 3 });
      const again = await ex.explain(img, { classIndex: 4 });
      out[name] = { logits: Array.from(r.logits), heatmap: Array.from(r.explanations[0].heatmap),
                    top: r.predictions.map((p) => p.index), reused: again.forwardReused,
                    last: progress[progress.length - 1], sha: ex.info.sha256, simd: ex.info.simd,
                    worker: ex.constructor.name };
      const errors = [];
      for (const bad of [() => ex.explain({ data: new Uint8ClampedArray(5), width: 1, height: 1 }),
                         () => ex.explain(img, { classIndex: 10 })]) {
        try { await bad(); errors.push('no error'); } catch (e) { errors.push(`${e.name}:${e.code}`); }
      }
      ex.dispose();
      try { await ex.explain(img); errors.push('no error'); } catch (e) { errors.push(`${e.name}:${e.code}`); }
      out[name].errors = errors;
    }
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 10] ^= 1;
    try {
      await api.createExplainer({ weights: corrupt });
      out.corrupt = 'no error';
    } catch (e) {
      out.corrupt = `${e.constructor.name}:${e instanceof api.GcamError}:${e.code}:${e.message}`;
    }
    return out;
  });
  const ex = await createExplainer({ weights: path.join(FIXTURES, 'model.gcam') });
  const img = await ex.decodeImage(fs.readFileSync(path.join(FIXTURES, 'img1.png')));
  const want = await ex.explain(img, { topK: 3 });
  ex.dispose();
  for (const [name, r] of Object.entries(got)) {
    if (name === 'corrupt') continue;
    assert.equal(r.worker, 'WorkerExplainer', `${name}: runs in a worker`);
    assert.equal(r.simd, true);
    assert.deepEqual(r.top, want.predictions.map((p) => p.index), name);
    assert.deepEqual(r.logits, Array.from(want.logits), `${name}: the browser's wasm gives Node's logits`);
    assert.deepEqual(r.heatmap, Array.from(want.explanations[0].heatmap), name);
    assert.equal(r.reused, true, `${name}: forward reused`);
    assert.equal(r.last.loaded, fs.statSync(path.join(FIXTURES, 'model.gcam')).size);
    assert.deepEqual(r.errors, ['GcamArgumentError:GCAM_STATUS_INVALID_ARGUMENT',
      'GcamArgumentError:GCAM_STATUS_INVALID_ARGUMENT', 'GcamDisposedError:GCAM_STATUS_BAD_STATE'], name);
  }
  assert.match(got.corrupt, /^GcamError:true:GCAM_STATUS_CORRUPT:loading weights: ./);
  await page.close();
});

test('demo with a full-size VGG16: the page stays responsive while it loads and runs', { timeout: 600e3 }, async () => {
  const page = await context.newPage();
  await page.goto(`${origin}/web/demo/?weights=/generated/vgg16.gcam`);
  // progress is shown while the weights stream in
  await page.waitForFunction(() => /Loading .*MB of 5\d\d\.\d MB/.test(document.getElementById('weights-status').textContent),
    null, { timeout: 120e3 });
  assert.equal(await waitState(page, ['ready', 'error'], 300e3), 'ready', await page.textContent('#weights-status'));
  assert.match(await page.textContent('#weights-status'), /1000 classes/);
  await page.setInputFiles('#image-file', IMAGE);
  assert.equal(await waitState(page, ['done', 'error'], 300e3), 'done', await page.textContent('#explain-status'));
  const tasks = await page.evaluate(() => window.__longTasks);
  const blocked = tasks.filter((t) => t.duration > LONG_TASK_MS);
  assert.deepEqual(blocked, [], `main thread blocked > ${LONG_TASK_MS} ms: ${JSON.stringify(tasks)}`);
  // the canvas equals the Node API's overlay here too
  const ex = await createExplainer({ weights: vgg16, worker: false });
  const img = await ex.decodeImage(fs.readFileSync(IMAGE));
  const want = await ex.overlay(img, (await ex.explain(img)).explanations[0], { alpha: 0.4 });
  ex.dispose();
  assert.equal(Buffer.compare(Buffer.from((await canvasPixels(page)).data), Buffer.from(want.data)), 0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-vgg16.png'), fullPage: true });
  await page.close();
});

test('no request left localhost', () => {
  assert.ok(requests.length > 5, `requests were recorded (${requests.length})`);
  const outside = requests.filter((u) => {
    const p = new URL(u);
    return !(p.protocol === 'data:' || p.protocol === 'blob:' || p.hostname === '127.0.0.1' || p.hostname === 'localhost');
  });
  assert.deepEqual(outside, []);
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the .wasm was fetched (from the worker)');
});
