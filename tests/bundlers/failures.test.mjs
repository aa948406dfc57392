// failures.test.mjs: every way the package's own files can fail to load ends in a typed
// GcamLoadError naming the URL, within 30 s, with the default time limit: a worker URL that
// is missing, answers HTML or never answers; a wasm URL that is missing, answers HTML (a
// server's index.html fallback) or never answers, in the worker, in the page
// ({ worker: false }) and in Node; an Emscripten loader that is missing. A pthread worker that
// cannot load (the old hang) falls back to one thread with a warning. And the overrides for
// CDNs, wasmUrl and workerUrl, fetch from where they say.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createExplainer, GcamArgumentError, GcamError, GcamLoadError } from '../../web/index.js';
import { serve } from '../../web/serve.mjs';
import { FIXTURES, requireBuilds } from '../js/helpers.mjs';
import { close, docBlock, launchChromium, makeApp, packTarball } from './helpers.mjs';

requireBuilds();

const LIMIT_MS = 30e3;
const HTML = '<!doctype html><html><body>the app\'s fallback page</body></html>\n';

let browser, plainOrigin, isolatedOrigin;
const servers = [];
const hanging = new Set();
const requested = [];

/** A server for the app folder `root` with the failing routes in front: /hang/* never
 * answers, /html/* answers 200 text/html, /missing/* 404, and /no-pthread/* and /no-loader/*
 * are the app with the pthread worker or the SIMD build's Emscripten loader missing; /cdn/*
 * serves the package's web/ folder elsewhere. */
async function failingServer(root, isolated) {
  const files = await serve({ root, port: 0, isolated });
  servers.push(files);
  const target = files.address().port;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requested.push(url.pathname);
    if (url.pathname.startsWith('/hang/')) {
      hanging.add(res);
      return;
    }
    const extra = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
                               'cross-origin-resource-policy': 'same-origin' } : {};
    if (url.pathname.startsWith('/html/')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...extra });
      return res.end(HTML);
    }
    if (url.pathname.startsWith('/missing/') ||
        (url.pathname.startsWith('/no-pthread/') && url.pathname.endsWith('/gcam-simd-threads.worker.js')) ||
        (url.pathname.startsWith('/no-loader/') && url.pathname.endsWith('/gcam-simd.mjs'))) {
      res.writeHead(404, { 'content-type': 'text/plain', ...extra });
      return res.end('not found\n');
    }
    const prefix = ['/no-pthread/', '/no-loader/'].find((x) => url.pathname.startsWith(x));
    let p = prefix ? req.url.slice(prefix.length - 1) : req.url;
    // a "CDN": the package's files under other paths
    if (url.pathname.startsWith('/cdn/')) p = `/node_modules/gradcam-wasm/web/${req.url.slice('/cdn/'.length)}`;
    const up = http.request({ host: '127.0.0.1', port: target, path: p, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

before(async () => {
  const dir = await makeApp('failures', await packTarball());
  fs.writeFileSync(path.join(dir, 'index.html'), `<!doctype html><title>failures</title>\n${docBlock('static')}`);
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src/main.js'), '// the test drives the API itself\n');
  fs.copyFileSync(path.join(FIXTURES, 'model.gcam'), path.join(dir, 'model.gcam'));
  plainOrigin = await failingServer(dir, false);
  isolatedOrigin = await failingServer(dir, true);
  browser = await launchChromium();
});

after(async () => {
  for (const res of hanging) res.destroy();
  if (browser) await browser.close();
  for (const s of servers) await close(s);
});

/** createExplainer with `options` in a page at `origin`: how it ended, and how long it took. */
async function inPage(page, options) {
  return page.evaluate(async (opts) => {
    const api = await import('gradcam-wasm');
    const t0 = performance.now();
    try {
      const ex = await api.createExplainer({ weights: './model.gcam', ...opts });
      const threads = ex.info.threads;
      ex.dispose();
      return { ok: true, threads, ms: performance.now() - t0 };
    } catch (e) {
      return { ok: false, ms: performance.now() - t0, name: e.name, code: e.code, message: e.message,
               typed: e instanceof api.GcamError };
    }
  }, options);
}

function checkFailure(what, got, url) {
  assert.equal(got.ok, false, `${what}: should fail`);
  assert.equal(got.name, 'GcamLoadError', `${what}: ${got.name}: ${got.message}`);
  assert.equal(got.typed, true, `${what}: a GcamError`);
  assert.equal(got.code, 'GCAM_STATUS_LOAD');
  assert.ok(got.message.includes(url), `${what}: the message names ${url}: ${got.message}`);
  assert.ok(got.ms < LIMIT_MS, `${what}: took ${got.ms} ms`);
}

test('a worker or wasm URL that is missing, answers HTML or never answers: GcamLoadError naming it, < 30 s', { timeout: 120e3 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${plainOrigin}/`);
  const o = plainOrigin;
  const cases = [
    ['worker URL missing', { workerUrl: '/missing/worker.js' }, `${o}/missing/worker.js`],
    ['worker URL answering HTML', { workerUrl: '/html/worker.js' }, `${o}/html/worker.js`],
    ['worker URL never answering', { workerUrl: '/hang/worker.js' }, `${o}/hang/worker.js`],
    ['wasm URL missing', { wasmUrl: '/missing/' }, `${o}/missing/gcam-simd.wasm`],
    ['wasm URL answering HTML', { wasmUrl: '/html/' }, `${o}/html/gcam-simd.wasm`],
    ['wasm URL answering HTML, no worker', { wasmUrl: '/html/', worker: false }, `${o}/html/gcam-simd.wasm`],
    ['wasm URL never answering', { wasmUrl: '/hang/' }, `${o}/hang/gcam-simd.wasm`],
    ['wasm URL never answering, no worker', { wasmUrl: '/hang/', worker: false }, `${o}/hang/gcam-simd.wasm`],
  ];
  const got = await Promise.all(cases.map(([, options]) => inPage(page, options)));
  cases.forEach(([what, , url], i) => checkFailure(what, got[i], url));
  assert.match(got[4].message, /is not WebAssembly .*text\/html.*<!doctype html>/);
  assert.match(got[3].message, /HTTP 404/);
  assert.match(got[6].message, /no answer within 20 s/);
  // the same page still works with the right files
  const fine = await inPage(page, {});
  assert.equal(fine.ok, true, JSON.stringify(fine));
  await page.close();
});

test('an Emscripten loader that is missing: GcamLoadError naming it, in the worker and in the page', { timeout: 120e3 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${plainOrigin}/no-loader/`);
  for (const worker of [true, false]) {
    const got = await inPage(page, { worker });
    checkFailure(`loader missing, worker=${worker}`, got, `${plainOrigin}/no-loader/node_modules/gradcam-wasm/web/dist/gcam-simd.mjs`);
    assert.match(got.message, /cannot load gradcam-wasm's dist\/gcam-simd\.mjs/);
  }
  await page.close();
});

test('in Node: a wasm URL answering HTML or never answering is a GcamLoadError naming it', { timeout: 120e3 }, async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  const cases = [['html', 'is not WebAssembly'], ['hang', 'no answer within 20 s'], ['missing', 'HTTP 404']];
  await Promise.all(cases.map(async ([where, why]) => {
    const t0 = performance.now();
    const url = `${plainOrigin}/${where}/gcam-simd.wasm`;
    await assert.rejects(createExplainer({ weights, wasmUrl: `${plainOrigin}/${where}/`, threads: 1 }), (e) => {
      assert.ok(e instanceof GcamLoadError && e instanceof GcamError, String(e));
      assert.ok(e.message.includes(url) && e.message.includes(why), e.message);
      return true;
    });
    assert.ok(performance.now() - t0 < LIMIT_MS);
  }));
});

test('wasmUrl and workerUrl: the files come from where they say', { timeout: 120e3 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${plainOrigin}/`);
  const cases = [
    [{ wasmUrl: '/cdn/dist/', workerUrl: '/cdn/worker.js' }, ['/cdn/worker.js', '/cdn/dist/gcam-simd.wasm']],
    [{ wasmUrl: { simd: '/cdn/dist/gcam-simd.wasm' }, worker: false }, ['/cdn/dist/gcam-simd.wasm']],
    [{ wasmUrl: '/cdn/dist/gcam-simd.wasm' }, ['/cdn/dist/gcam-simd.wasm']],
  ];
  for (const [options, paths] of cases) {
    requested.length = 0;
    const got = await inPage(page, options);
    assert.equal(got.ok, true, JSON.stringify(got));
    for (const p of paths) assert.ok(requested.includes(p), `${JSON.stringify(options)}: ${p} was fetched: ${requested}`);
    assert.ok(!requested.some((p) => p.endsWith('.wasm') && !p.startsWith('/cdn/')), `only the given .wasm: ${requested}`);
  }
  await page.close();
});

test('a bad loadTimeoutMs is a GcamArgumentError', async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  for (const loadTimeoutMs of [0, -1, NaN, '20', 2 ** 31, null])
    await assert.rejects(createExplainer({ weights, loadTimeoutMs }), GcamArgumentError, String(loadTimeoutMs));
});

test('a pthread worker that cannot load: one thread and a warning, no hang', { timeout: 120e3 }, async () => {
  const page = await browser.context.newPage();
  const warnings = [];
  const pageErrors = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${isolatedOrigin}/no-pthread/`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  for (const worker of [false, true]) {
    const got = await inPage(page, { threads: 2, worker });
    assert.equal(got.ok, true, JSON.stringify(got));
    assert.equal(got.threads, 1, `worker=${worker}`);
    assert.ok(got.ms < LIMIT_MS);
  }
  assert.ok(warnings.some((w) => /threaded build could not start .*pthread worker/.test(w)), JSON.stringify(warnings));
  assert.deepEqual(pageErrors, [], 'no uncaught error');
  // and with the pthread worker there, 2 threads
  await page.goto(`${isolatedOrigin}/`);
  const fine = await inPage(page, { threads: 2 });
  assert.equal(fine.threads, 2, JSON.stringify(fine));
  await page.close();
});
