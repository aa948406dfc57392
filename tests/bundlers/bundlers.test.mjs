// bundlers.test.mjs: the packed tarball in fresh apps, built as a web developer would:
// Vite (build and dev server) and webpack 5 with no configuration at all, esbuild and Rollup
// following web/BUNDLERS.md (its marked blocks are what runs), and a static folder with an
// import map. Each app is served on 127.0.0.1 and opened in headless Chromium twice: without
// cross-origin isolation (asks for 2 threads, gets 1 and one console.warn saying why) and
// with COOP/COEP (gets 2 threads; once in the worker, once with { worker: false }). Every
// time the canvas must hold, byte for byte, the overlay the Node API computes, and the
// bundler must not have warned about anything of ours.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer } from '../../web/index.js';
import { serve } from '../../web/serve.mjs';
import { FIXTURES, requireBuilds } from '../js/helpers.mjs';
import {
  BIN, close, docBlock, freePort, isolatingProxy, launchChromium, makeApp, packTarball, run, runShellBlock,
} from './helpers.mjs';

requireBuilds();

const APP_JS = fs.readFileSync(new URL('./app/main.js', import.meta.url), 'utf8');
const MODEL = path.join(FIXTURES, 'model.gcam');
const IMAGE = path.join(FIXTURES, 'img1.png');

let tarball, browser, want;
const cleanups = [];

before(async () => {
  tarball = await packTarball();
  browser = await launchChromium();
  // the apps' explainers take the browsers' default memory mode, 'compact' (Node's is 'fast')
  const ex = await createExplainer({ weights: MODEL, worker: false, threads: 1, memory: 'compact' });
  const img = await ex.decodeImage(fs.readFileSync(IMAGE));
  const r = await ex.explain(img, { topK: 5 });
  const overlay = await ex.overlay(img, r.explanations[0], { alpha: 0.4 });
  want = { predictions: r.predictions.map((p) => p.index), width: img.width, height: img.height,
           overlay: Buffer.from(overlay.data) };
  ex.dispose();
});

after(async () => {
  for (const f of cleanups.reverse()) await f();
  if (browser) await browser.close();
});

/** the model and the image beside the app's page */
function addData(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(MODEL, path.join(dir, 'model.gcam'));
  fs.copyFileSync(IMAGE, path.join(dir, 'img1.png'));
}

function writeFile(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** Serve a built folder twice: plainly and cross-origin isolated. */
async function serveBoth(root) {
  const plain = await serve({ root, port: 0, isolated: false });
  const isolated = await serve({ root, port: 0, isolated: true });
  cleanups.push(() => close(plain), () => close(isolated));
  return { plain: `http://127.0.0.1:${plain.address().port}`, isolated: `http://127.0.0.1:${isolated.address().port}` };
}

/** Open `url`, wait for the app's result; the console's warnings come along. */
async function visit(url) {
  const page = await browser.context.newPage();
  const warnings = [];
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'warning') warnings.push(m.text());
    if (m.type() === 'error' && !/favicon|status of 404/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.gcamResult, null, { timeout: 90e3 });
    const result = await page.evaluate(() => window.gcamResult);
    return { result, warnings: warnings.filter((w) => /gradcam-wasm/.test(w)), errors, isolated: await page.evaluate(() => crossOriginIsolated) };
  } finally {
    await page.close();
  }
}

function checkPixels(name, result) {
  assert.equal(result.error, undefined, `${name}: ${JSON.stringify(result.error)}`);
  assert.deepEqual(result.predictions, want.predictions, `${name}: the top 5 of the Node API`);
  assert.equal(result.width, want.width);
  assert.equal(result.height, want.height);
  assert.equal(Buffer.compare(Buffer.from(result.overlay, 'base64'), want.overlay), 0,
    `${name}: the canvas holds the Node API's overlay, byte for byte`);
}

/** The three visits every app gets. */
async function checkApp(name, origins) {
  const plain = await visit(`${origins.plain}/?threads=2`);
  assert.equal(plain.isolated, false);
  checkPixels(`${name}, not isolated`, plain.result);
  assert.equal(plain.result.threads, 1, `${name}: one thread without COOP/COEP`);
  assert.equal(plain.result.memory, 'compact', `${name}: a browser's default memory mode`);
  assert.equal(plain.warnings.length, 1, `${name}: one warning: ${JSON.stringify(plain.warnings)}`);
  assert.match(plain.warnings[0], /threads: 2 was asked for.*not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp.*one thread/);
  assert.deepEqual(plain.errors, []);

  for (const worker of ['1', '0']) {
    const iso = await visit(`${origins.isolated}/?threads=2&worker=${worker}`);
    assert.equal(iso.isolated, true);
    checkPixels(`${name}, isolated, worker=${worker}`, iso.result);
    assert.equal(iso.result.threads, 2, `${name}, worker=${worker}: 2 threads with COOP/COEP`);
    assert.equal(iso.result.simd, true);
    assert.deepEqual(iso.warnings, []);
    assert.deepEqual(iso.errors, []);
  }
}

test('Vite build, no configuration', { timeout: 300e3 }, async () => {
  const dir = await makeApp('vite', tarball);
  writeFile(path.join(dir, 'index.html'), '<!doctype html><title>app</title><script type="module" src="/src/main.js"></script>\n');
  writeFile(path.join(dir, 'src/main.js'), APP_JS);
  addData(path.join(dir, 'public'));
  const { stdout, stderr } = await run(path.join(BIN, 'vite'), ['build'], { cwd: dir, maxBuffer: 16 << 20 });
  const log = stdout + stderr;
  assert.doesNotMatch(log, /externalized for browser compatibility|doesn't exist at build time|warning/i, log);
  const assets = fs.readdirSync(path.join(dir, 'dist/assets'));
  assert.equal(assets.filter((f) => f.endsWith('.wasm')).length, 3, `three .wasm emitted: ${assets}`);
  await checkApp('vite build', await serveBoth(path.join(dir, 'dist')));
});

test('Vite dev server, no configuration', { timeout: 300e3 }, async () => {
  // its own app folder: the build test's dist/ must not be in the way
  const dir = await makeApp('vite-dev', tarball);
  writeFile(path.join(dir, 'index.html'), '<!doctype html><title>app</title><script type="module" src="/src/main.js"></script>\n');
  writeFile(path.join(dir, 'src/main.js'), APP_JS);
  addData(path.join(dir, 'public'));
  const port = await freePort();
  // NO_COLOR: with CI set, Vite colours its banner even into a pipe, and the escapes split
  // "127.0.0.1:PORT"; the match below also ignores any that remain
  const vite = spawn(path.join(BIN, 'vite'), ['--host', '127.0.0.1', '--port', String(port), '--strictPort'],
                     { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let log = '';
  const exited = new Promise((resolve) => vite.once('exit', resolve));
  cleanups.push(async () => { if (vite.exitCode === null) { vite.kill(); await exited; } });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite did not start: ${log}`)), 60e3);
    const onData = (d) => {
      log += d;
      // eslint-disable-next-line no-control-regex
      if (log.replace(/\x1b\[[0-9;]*m/g, '').includes(`127.0.0.1:${port}`)) { clearTimeout(timer); resolve(); }
    };
    vite.stdout.on('data', onData);
    vite.stderr.on('data', onData);
    vite.once('exit', (code) => reject(new Error(`vite exited (${code}): ${log}`)));
  });
  // the dev server is not configured: COOP/COEP come from a proxy in front of it
  const proxy = await isolatingProxy(port);
  cleanups.push(() => close(proxy));
  await checkApp('vite dev', { plain: `http://127.0.0.1:${port}`, isolated: `http://127.0.0.1:${proxy.address().port}` });
  assert.doesNotMatch(log, /error/i, log);
});

test('webpack 5 production, no configuration', { timeout: 300e3 }, async () => {
  const dir = await makeApp('webpack', tarball);
  writeFile(path.join(dir, 'src/index.js'), APP_JS);
  const { stdout, stderr } = await run(path.join(BIN, 'webpack'), ['--mode', 'production'], { cwd: dir, maxBuffer: 16 << 20 });
  const log = stdout + stderr;
  assert.doesNotMatch(log, /WARNING|ERROR/, log);
  const out = path.join(dir, 'dist');
  writeFile(path.join(out, 'index.html'), '<!doctype html><title>app</title><script src="main.js"></script>\n');
  addData(out);
  await checkApp('webpack', await serveBoth(out));
});

/** An app built by BUNDLERS.md's shell block `name` (and its config block, if any), whose
 * output folder public/ is served: esbuild and Rollup. `warned` matches a warning in the log. */
async function checkDocApp(name, tool, warned, configBlock) {
  const dir = await makeApp(name, tarball);
  writeFile(path.join(dir, 'src/app.js'), APP_JS);
  if (configBlock) writeFile(path.join(dir, configBlock.file), docBlock(configBlock.block));
  const { lines, log } = await runShellBlock(docBlock(name), dir);
  assert.ok(lines.some((l) => l.startsWith(`${tool} `)), `the doc bundles with ${tool}`);
  assert.doesNotMatch(log, warned, log);
  const out = path.join(dir, 'public');
  writeFile(path.join(out, 'index.html'), '<!doctype html><title>app</title><script type="module" src="app.js"></script>\n');
  addData(out);
  await checkApp(name, await serveBoth(out));
}

test('esbuild, with the one step of BUNDLERS.md', { timeout: 300e3 }, async () => {
  await checkDocApp('esbuild', 'esbuild', /warning|error/i);
});

test('Rollup, with the one step of BUNDLERS.md', { timeout: 300e3 }, async () => {
  // Rollup's warnings start with (!)
  await checkDocApp('rollup', 'rollup', /\(!\)|warning|error/i, { file: 'rollup.config.mjs', block: 'rollup-config' });
});

test('no bundler: a static folder with an import map', { timeout: 300e3 }, async () => {
  const dir = await makeApp('static', tarball);
  writeFile(path.join(dir, 'src/main.js'), APP_JS);
  writeFile(path.join(dir, 'index.html'), `<!doctype html><title>app</title>\n${docBlock('static')}`);
  addData(dir);
  await checkApp('static folder', await serveBoth(dir));
});
