// memory.test.mjs: a phone-sized heap in Chromium (issue 10). The page's explainer (in its Web
// Worker) gets maxMemoryMB: 400: the int8 and f16 random VGG16 load and explain in 'compact'
// memory; the f32 one fails with a GcamError GCAM_STATUS_OUT_OF_MEMORY whose message says the
// MB it needed, without an abort or a hang; the small model then loads in the same page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../../web/serve.mjs';
import { ROOT, requireBuilds, randomVgg16 } from '../js/helpers.mjs';

requireBuilds();
let server, origin, context, userDataDir;

before(async () => {
  const files = {};
  for (const dt of ['f32', 'f16', 'int8']) files[`/generated/vgg16-${dt}.gcam`] = await randomVgg16(dt);
  server = await serve({ root: ROOT, port: 0, files });
  origin = `http://127.0.0.1:${server.address().port}`;
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    return u.hostname === '127.0.0.1' || u.protocol === 'data:' || u.protocol === 'blob:' ? route.continue() : route.abort();
  });
});

after(async () => {
  if (context) await context.close();
  if (server) await new Promise((r) => server.close(r));
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

test('a 400 MB heap in Chromium: int8 and f16 VGG16 explain (compact), f32 is GCAM_STATUS_OUT_OF_MEMORY, then a small model loads',
  { timeout: 900_000 }, async () => {
    const page = await context.newPage();
    await page.goto(`${origin}/web/demo/`);
    const out = await page.evaluate(async () => {
      const { createExplainer } = await import('/web/index.js');
      const img = new ImageData(224, 224);
      for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 2654435761) >>> 24 | ((i & 3) === 3 ? 255 : 0);
      const res = {};
      for (const dt of ['int8', 'f16', 'f32']) {
        try {
          const ex = await createExplainer({ weights: `/generated/vgg16-${dt}.gcam`, memory: 'compact', maxMemoryMB: 400 });
          const r = await ex.explain(img, { topK: 1 });
          res[dt] = { ok: true, memoryBytes: ex.info.memoryBytes, wasmMemoryBytes: ex.info.wasmMemoryBytes,
                      classes: r.predictions.length, heat: r.explanations[0].heatmap.length };
          ex.dispose();
        } catch (e) {
          res[dt] = { ok: false, name: e.name, code: e.code, message: e.message };
        }
      }
      const small = await createExplainer({ weights: '/weights/small/fashion_vgg.gcam', maxMemoryMB: 400 });
      res.small = (await small.explain(img)).predictions.length;
      small.dispose();
      return res;
    });
    console.log(JSON.stringify(out));
    for (const dt of ['int8', 'f16']) {
      assert.ok(out[dt].ok, `${dt}: ${JSON.stringify(out[dt])}`);
      assert.ok(out[dt].wasmMemoryBytes <= 400 << 20 && out[dt].heat === 196);
    }
    assert.equal(out.f32.ok, false);
    assert.equal(out.f32.code, 'GCAM_STATUS_OUT_OF_MEMORY');
    assert.match(out.f32.message, /\d+ MB/);
    assert.ok(out.small >= 1);
    await page.close();
  });
