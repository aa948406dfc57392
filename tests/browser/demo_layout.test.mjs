// demo_layout.test.mjs: the demo page's figure and layout in Debian's chromium (headless,
// through playwright-core). At 1280x800 and at 390x844 (a phone) the first visit explains the
// first sample; the test checks that the four labelled panels (the picture, the map at the
// layer's size, the resized map, the blend) and the colour legend are there, drawn and
// visible; that nothing is wider than the window (no sideways scroll at 390 px); that every
// control has a label and is reachable with the keyboard; that the maps are the library's
// (the raw panel's blocks are the layer's cells in JET, the blend equals the Node API's); and
// that the common scale makes a weak class's map colder than on its own scale. Leaves
// screenshots in tests/artifacts/demo-1280x800.png and demo-390x844.png.
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

const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
const SAMPLES = JSON.parse(fs.readFileSync(path.join(ROOT, 'web/demo/samples/index.json'), 'utf8'));
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
              '--disable-sync', '--disable-quic', '--no-first-run'];

let server, origin, browserContext, userDataDir, ex, sample;

before(async () => {
  server = await serve({ root: ROOT, port: 0 });
  origin = `http://127.0.0.1:${server.address().port}`;
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  browserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: { width: 1280, height: 800 },
  });
  await browserContext.route('**/*', (route) => {
    const u = new URL(route.request().url());
    return u.hostname === '127.0.0.1' || u.protocol === 'data:' || u.protocol === 'blob:' ? route.continue() : route.abort();
  });
  ex = await createExplainer({ weights: path.join(ROOT, 'weights/small/fashion_vgg.gcam'), worker: false,
    memory: 'compact' }) // the page's default (the browsers');
  sample = await ex.decodeImage(fs.readFileSync(path.join(ROOT, 'web/demo/samples', SAMPLES[0].file)));
});

after(async () => {
  if (ex) ex.dispose();
  if (browserContext) await browserContext.close();
  if (server) await new Promise((r) => server.close(r));
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

async function waitState(page, states, timeout = 120e3) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

const pixels = (page, id) => canvasPixelsVia((fn, arg) => page.evaluate(fn, arg), id);

/** What a visitor sees of the figure: each panel's box, caption and whether it is drawn. */
function figure(page) {
  return page.evaluate(() => {
    const box = (el) => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return { left: r.left, right: r.right, top: r.top, width: r.width, height: r.height,
               visible: r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none' };
    };
    const panels = [...document.querySelectorAll('#panels figure')].map((f) => {
      const c = f.querySelector('canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const colours = new Set();
      for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return { id: c.id, caption: f.querySelector('figcaption').textContent.trim(), labelled: c.getAttribute('aria-labelledby'),
               canvas: box(c), colours: colours.size };
    });
    const legend = document.getElementById('legend');
    return { panels, legend: { ...box(legend), text: legend.textContent.replace(/\s+/g, ' ').trim(),
                               bar: box(document.getElementById('legend-bar')) } };
  });
}

/** Elements that stick out of the window on the right, and the page's scroll width. */
function overflow(page) {
  return page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5)) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: ${r.left}..${r.right}`);
    }
    return { clientWidth: w, scrollWidth: document.documentElement.scrollWidth, bodyScroll: document.body.scrollWidth, out };
  });
}

for (const [width, height] of [[1280, 800], [390, 844]]) {
  test(`demo at ${width}x${height}: four labelled panels, a legend, no sideways scroll`, { timeout: 180e3 }, async () => {
    const page = await browserContext.newPage();
    await page.setViewportSize({ width, height });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${origin}/web/demo/`);
    assert.equal(await waitState(page, ['done', 'error']), 'done', await page.textContent('#explain-status'));

    const fig = await figure(page);
    assert.deepEqual(fig.panels.map((p) => p.id), ['image-canvas', 'raw-map', 'heatmap', 'overlay']);
    for (const p of fig.panels) {
      assert.ok(p.canvas.visible, `${p.id} is visible`);
      assert.ok(p.canvas.width >= (width > 500 ? 200 : 140), `${p.id} is large: ${p.canvas.width} px wide`);
      assert.ok(p.caption.length > 5 && p.labelled, `${p.id} has a caption that labels it`);
      assert.ok(p.colours > 8, `${p.id} is drawn (${p.colours} colours)`);
    }
    // side by side on a wide screen, two by two on a phone
    const tops = fig.panels.map((p) => Math.round(p.canvas.top));
    if (width > 500) assert.equal(new Set(tops).size, 1, `one row at ${width} px: ${tops}`);
    else assert.equal(new Set(tops).size, 2, `two rows at ${width} px: ${tops}`);
    assert.ok(fig.legend.visible && fig.legend.bar.visible && fig.legend.bar.width > 150, 'the legend is shown');
    assert.match(fig.legend.text, /blue.*red/);
    assert.match(fig.legend.text, /strongest spot/);

    const o = await overflow(page);
    assert.ok(o.scrollWidth <= o.clientWidth, `no horizontal scroll: ${o.scrollWidth} > ${o.clientWidth}`);
    assert.deepEqual(o.out, [], 'nothing sticks out of the window');

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `demo-${width}x${height}.png`) });
    await page.screenshot({ path: path.join(ARTIFACTS, `demo-${width}x${height}-full.png`), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('demo: the panels are the library\'s maps; the common scale makes a weak class cold', { timeout: 180e3 }, async () => {
  const page = await browserContext.newPage();
  await page.goto(`${origin}/web/demo/`);
  assert.equal(await waitState(page, ['done', 'error']), 'done');
  const want = await ex.explain(sample, { topK: 5 });
  const e = want.explanations[0];

  // panel 1: the picture itself
  const shown = await pixels(page, 'image-canvas');
  assert.equal(Buffer.compare(Buffer.from(shown.data), Buffer.from(sample.data)), 0, 'panel 1 is the picture');
  // panel 2: the layer's cells as blocks, each the JET colour of the normalized map
  const black = (w, h) => ({ data: new Uint8ClampedArray(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : 0)), width: w, height: h });
  const cells = await ex.overlay(black(e.width, e.height), e, { alpha: 1, imageWeight: 0 });
  const raw = await pixels(page, 'raw-map');
  assert.equal(raw.width % e.width, 0);
  assert.equal(raw.height % e.height, 0);
  const bx = raw.width / e.width;
  const by = raw.height / e.height;
  assert.ok(bx > 1 && by > 1, `blocks of ${bx}x${by} pixels`);
  let wrong = 0;
  for (let y = 0; y < raw.height; y++)
    for (let x = 0; x < raw.width; x++)
      for (let k = 0; k < 4; k++)
        if (raw.data[4 * (y * raw.width + x) + k] !== cells.data[4 * (Math.floor(y / by) * e.width + Math.floor(x / bx)) + k]) wrong++;
  assert.equal(wrong, 0, 'panel 2: nearest-neighbour blocks of the layer\'s cells in JET');
  // panel 3: the map resized to the picture, in JET; panel 4: the blend
  const heat = await ex.overlay(black(sample.width, sample.height), e, { alpha: 1, imageWeight: 0 });
  assert.equal(Buffer.compare(Buffer.from((await pixels(page, 'heatmap')).data), Buffer.from(heat.data)), 0, 'panel 3');
  const blend = await ex.overlay(sample, e, { alpha: 0.4 });
  assert.equal(Buffer.compare(Buffer.from((await pixels(page, 'overlay')).data), Buffer.from(blend.data)), 0, 'panel 4');
  // the raw magnitude is shown
  assert.ok((await page.textContent('#legend')).includes(e.rawMax.toPrecision(3)), 'the legend shows the map\'s peak');

  // the weakest of the five classes: hot on its own scale, colder on the common scale
  const weakest = want.predictions[4].index;
  const all = await ex.explain(sample, { classIndex: want.predictions.map((p) => p.index) });
  const top = Math.max(...all.explanations.map((x) => x.rawMax));
  const weak = all.explanations.find((x) => x.classIndex === weakest);
  await page.selectOption('#class-picker', String(weakest));
  await page.waitForFunction((c) => window.gcamDemo.explanation.classIndex === c && document.body.dataset.state === 'done', weakest);
  const own = await pixels(page, 'heatmap');
  await page.check('#common-scale');
  await page.waitForFunction(() => window.gcamDemo.peaks && document.body.dataset.state === 'done');
  const common = await pixels(page, 'heatmap');
  const scaled = { ...weak, heatmap: weak.heatmap.map((v) => (v * weak.rawMax) / top) };
  const wantCommon = await ex.overlay(black(sample.width, sample.height), scaled, { alpha: 1, imageWeight: 0 });
  assert.equal(Buffer.compare(Buffer.from(common.data), Buffer.from(wantCommon.data)), 0, 'the common-scale map');
  // colder: its map now peaks below 1 (below red), so the picture differs from its own scale
  assert.ok(weak.rawMax < top, `the weakest class's peak ${weak.rawMax} is below the top ${top}`);
  assert.notEqual(Buffer.compare(Buffer.from(common.data), Buffer.from(own.data)), 0, 'the map changed');
  assert.match(await page.textContent('#legend'), /One scale for the five best guesses/);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.locator('#result-panel').screenshot({ path: path.join(ARTIFACTS, 'demo-common-scale.png') });
  assert.equal(await page.$$eval('#top5 tbody td.peak', (tds) => tds.filter((td) => td.textContent).length), 5,
    'the table shows every guess\'s peak');
  await page.close();
});

test('demo: every control has a label and the keyboard reaches it', { timeout: 120e3 }, async () => {
  const page = await browserContext.newPage();
  await page.goto(`${origin}/web/demo/`);
  assert.equal(await waitState(page, ['done', 'error']), 'done');
  await page.evaluate(() => { for (const d of document.querySelectorAll('details')) d.open = true; });
  const unlabelled = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('button, input, select, textarea, summary')) {
      const name = (el.labels && [...el.labels].map((l) => l.textContent).join(' ')) || el.getAttribute('aria-label') ||
                   el.textContent;
      if (!name || !name.trim()) out.push(el.outerHTML.slice(0, 80));
    }
    return out;
  });
  assert.deepEqual(unlabelled, []);
  // Tab through the page: every enabled control gets the focus
  const reached = new Set();
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => {
      const a = document.activeElement;
      return a && a !== document.body ? a.id || a.textContent.trim().slice(0, 30) : null;
    });
    if (id) reached.add(id);
  }
  for (const id of ['drop-zone', 'image-file', 'paste-button', 'camera-button', 'class-picker', 'alpha', 'common-scale',
                    'score-picker', 'download', 'weights-url', 'weights-load', 'weights-file', 'clear-cache'])
    assert.ok(reached.has(id), `Tab reaches #${id} (reached: ${[...reached].join(', ')})`);
  // no camera is asked for until the visitor presses the button
  assert.equal(await page.evaluate(() => document.getElementById('camera').hidden), true);
  await page.close();
});

test('demo: paste a picture, download the overlay as PNG', { timeout: 120e3 }, async () => {
  const page = await browserContext.newPage();
  await page.goto(`${origin}/web/demo/`);
  assert.equal(await waitState(page, ['done', 'error']), 'done');
  // Ctrl+V: a paste event whose clipboard holds a PNG file
  const second = SAMPLES[1];
  const b64 = fs.readFileSync(path.join(ROOT, 'web/demo/samples', second.file)).toString('base64');
  await page.evaluate((b64) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'clip.png', { type: 'image/png' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, b64);
  await page.waitForFunction(() => window.gcamDemo.imageName === 'pasted picture' && document.body.dataset.state === 'done');
  const img = await ex.decodeImage(fs.readFileSync(path.join(ROOT, 'web/demo/samples', second.file)));
  const want = await ex.overlay(img, (await ex.explain(img)).explanations[0], { alpha: 0.4 });
  assert.equal(Buffer.compare(Buffer.from((await pixels(page, 'overlay')).data), Buffer.from(want.data)), 0,
    'the pasted picture is explained');
  // the download is a PNG of the overlay, at the picture's size, with the same pixels
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.match(download.suggestedFilename(), /^pasted-picture-heatmap-.+\.png$/);
  const png = fs.readFileSync(await download.path());
  const decoded = await ex.decodeImage(png);
  assert.equal(decoded.width, img.width);
  assert.equal(decoded.height, img.height);
  assert.equal(Buffer.compare(Buffer.from(decoded.data), Buffer.from(want.data)), 0, 'the PNG holds the overlay');
  await page.close();
});

test('demo: the camera is opened only on request, and its photo is explained', { timeout: 120e3 }, async () => {
  // Chromium's fake camera (a test pattern) and fake permission prompt, in their own profile
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  const cam = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 390, height: 844 },
    args: [...ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  try {
    await cam.grantPermissions(['camera'], { origin });
    await cam.addInitScript(() => {
      window.__cameraAsks = 0;
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => { window.__cameraAsks++; return real(c); };
    });
    const page = await cam.newPage();
    await page.goto(`${origin}/web/demo/`);
    assert.equal(await waitState(page, ['done', 'error']), 'done');
    assert.equal(await page.evaluate(() => window.__cameraAsks), 0, 'no camera before the visitor asks');
    await page.click('#camera-button');
    await page.waitForFunction(() => document.getElementById('camera-video').videoWidth > 0);
    assert.equal(await page.evaluate(() => window.__cameraAsks), 1);
    await page.click('#camera-snap');
    await page.waitForFunction(() => window.gcamDemo.imageName === 'camera photo' && document.body.dataset.state === 'done');
    const size = await page.evaluate(() => [window.gcamDemo.image.width, window.gcamDemo.image.height]);
    const canvas = await pixels(page, 'overlay');
    assert.deepEqual([canvas.width, canvas.height], size, 'the photo is explained at its own size');
    assert.equal(await page.evaluate(() => document.getElementById('camera').hidden), true, 'the camera is closed again');
    await page.close();
  } finally {
    await cam.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
