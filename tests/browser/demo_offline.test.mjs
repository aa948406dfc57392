// demo_offline.test.mjs: the demo works offline after one visit (web/demo/sw.js), in Debian's
// chromium (headless, through playwright-core). One online visit explains the first sample;
// then the browser context is set offline (context.setOffline) AND the server is shut down, so
// nothing can come from the network; a reload must still load the page, its scripts, the
// worker, the wasm and the weights (from the page's SHA-256-keyed cache), and explain the
// sample with the same pixels as the Node API. Then "Delete the saved copies" must empty
// both caches, after which an offline reload fails as it should.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../../web/serve.mjs';
import { createExplainer } from '../../web/index.js';
import { ROOT, requireBuilds } from '../js/helpers.mjs';
import { canvasPixelsVia } from './harness.mjs';

requireBuilds();

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
              '--disable-sync', '--disable-quic', '--no-first-run'];
const SAMPLES = JSON.parse(fs.readFileSync(path.join(ROOT, 'web/demo/samples/index.json'), 'utf8'));

let server, context, userDataDir;

before(async () => {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1100, height: 900 },
  });
});

after(async () => {
  if (context) await context.close();
  if (server && server.listening) await new Promise((r) => server.close(r));
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

async function waitState(page, states, timeout = 120e3) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

async function overlayPixels(page) {
  return Buffer.from((await canvasPixelsVia((fn, arg) => page.evaluate(fn, arg), 'overlay')).data);
}

async function stopServer() {
  await new Promise((r) => {
    server.close(r);
    server.closeAllConnections();
  });
}

test('demo: after one online visit it loads and explains offline; the saved copies can be deleted', { timeout: 300e3 }, async () => {
  server = await serve({ root: ROOT, port: 0 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${origin}/web/demo/`);
  assert.equal(await waitState(page, ['done', 'error']), 'done', await page.textContent('#explain-status'));
  // the service worker has saved the page and what it loads (it claims this first visit)
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration('./');
    return !!(reg && reg.active && navigator.serviceWorker.controller);
  }, null, { timeout: 60e3 });
  const install = await page.evaluate(() => new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('message', (e) => { if (e.data.type === 'saved') resolve(e.data); });
    navigator.serviceWorker.controller.postMessage('saved?');
  }));
  assert.equal(install.done, true);
  assert.equal(install.error, null, 'the service worker saved everything it found');
  const saved = await page.evaluate(async () => {
    const cache = await caches.open('gradcam-wasm-demo-v1');
    return (await cache.keys()).map((r) => new URL(r.url).pathname).sort();
  });
  for (const f of ['/web/demo/', '/web/demo/demo.js', '/web/demo/style.css', '/web/index.js', '/web/core.js',
                   '/web/worker.js', '/web/dist/gcam-simd.wasm', '/web/dist/gcam-simd-threads.wasm',
                   '/web/dist/gcam-simd-threads.worker.js', `/web/demo/samples/${SAMPLES[0].file}`])
    assert.ok(saved.includes(f), `${f} is saved for offline use (saved: ${saved.join(' ')})`);
  assert.ok(!saved.some((f) => f.endsWith('.gcam')), 'the weights are not saved twice (the page keeps them)');
  const threadsOnline = await page.evaluate(() => window.gcamDemo.explainer.info.threads);

  // offline: no network for the browser, and no server either
  await context.setOffline(true);
  await stopServer();
  const failed = [];
  page.on('requestfailed', (r) => failed.push(new URL(r.url()).pathname));
  await page.reload();
  assert.equal(await waitState(page, ['done', 'error']), 'done',
    `offline: ${await page.textContent('#weights-status')} / ${await page.textContent('#explain-status')}`);
  assert.match(await page.textContent('#weights-status'), /from the offline cache/);
  assert.equal(await page.evaluate(() => window.gcamDemo.imageName), SAMPLES[0].label);
  assert.equal(await page.evaluate(() => window.gcamDemo.explainer.info.threads), threadsOnline,
    'offline, the page is still cross-origin isolated and runs as many threads');
  const ex = await createExplainer({ weights: path.join(ROOT, 'weights/small/fashion_vgg.gcam'), worker: false,
    memory: 'compact' }) // the page's default (the browsers');
  const img = await ex.decodeImage(fs.readFileSync(path.join(ROOT, 'web/demo/samples', SAMPLES[0].file)));
  const want = await ex.overlay(img, (await ex.explain(img)).explanations[0], { alpha: 0.4 });
  ex.dispose();
  assert.equal(Buffer.compare(await overlayPixels(page), Buffer.from(want.data)), 0, 'offline, the same overlay');
  // the only requests that failed are the probes the page expects to fail offline
  assert.deepEqual(failed.filter((p) => !p.endsWith('.gcam')), [], 'everything else came from the saved copy');
  assert.match(await page.textContent('#offline-status'), /saved on this device/);

  // "Delete the saved copies" empties both caches
  await page.click('#clear-cache');
  await page.waitForFunction(() => /deleted/.test(document.getElementById('offline-status').textContent));
  const left = await page.evaluate(async () => (await caches.keys()).filter((n) => n.startsWith('gradcam-wasm')));
  assert.deepEqual(left, []);
  assert.equal(await page.evaluate(() => localStorage.getItem('gradcam-wasm:sources')), '{}');
  // now an offline visit has nothing to show: the page itself is gone
  const response = await page.reload().catch((e) => e);
  assert.ok(response instanceof Error || !response.ok(), 'offline after deleting: the page is not there');
  assert.deepEqual(errors, []);
  await page.close();
});
