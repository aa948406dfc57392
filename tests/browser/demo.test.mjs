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
import { ROOT, FIXTURES, requireBuilds } from '../js/helpers.mjs';

requireBuilds();

const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
const IMAGE = path.join(FIXTURES, 'img0.png');
const LONG_TASK_MS = 200;

let server, origin, context, userDataDir;
const requests = [];

before(async () => {
  server = await serve({ root: ROOT, port: 0 });
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

  await page.goto(`${origin}/web/demo/`);
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

  assert.deepEqual(consoleErrors, []);
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

test('no request left localhost', () => {
  assert.ok(requests.length > 5, `requests were recorded (${requests.length})`);
  const outside = requests.filter((u) => {
    const p = new URL(u);
    return !(p.protocol === 'data:' || p.protocol === 'blob:' || p.hostname === '127.0.0.1' || p.hostname === 'localhost');
  });
  assert.deepEqual(outside, []);
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the .wasm was fetched (from the worker)');
});
