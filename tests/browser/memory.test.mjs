// memory.test.mjs: a phone-sized heap, in Chromium, Firefox and WebKit (WebKit above all: the
// phones that enforce the tightest limits run it). The page's explainer (in its Web Worker)
// gets maxMemoryMB: 400: the int8 and f16 random VGG16 load and explain in 'compact' memory;
// the f32 one fails with a GcamError GCAM_STATUS_OUT_OF_MEMORY whose message says the MB it
// needed, without an abort or a hang; the small model then loads in the same page.
import assert from 'node:assert/strict';
import { forEachEngine } from './harness.mjs';
import { requireBuilds, randomVgg16 } from '../js/helpers.mjs';

requireBuilds();
const CAP_MB = 400;

/** In the page: each file under the cap, then the small model; what happened, as JSON. */
async function underTheCap(capMB) {
  const { createExplainer } = await import('/web/index.js');
  const img = new ImageData(224, 224);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 2654435761) >>> 24 | ((i & 3) === 3 ? 255 : 0);
  const res = {};
  for (const dt of ['int8', 'f16', 'f32']) {
    try {
      const ex = await createExplainer({ weights: `/generated/vgg16-${dt}.gcam`, memory: 'compact', maxMemoryMB: capMB });
      const r = await ex.explain(img, { topK: 1 });
      res[dt] = { ok: true, memoryBytes: ex.info.memoryBytes, wasmMemoryBytes: ex.info.wasmMemoryBytes,
                  threads: ex.info.threads, heat: r.explanations[0].heatmap.length };
      ex.dispose();
    } catch (e) {
      res[dt] = { ok: false, name: e.name, code: e.code, message: e.message };
    }
  }
  const small = await createExplainer({ weights: '/weights/small/fashion_vgg.gcam', maxMemoryMB: capMB });
  res.small = (await small.explain(img)).predictions.length;
  small.dispose();
  return JSON.stringify(res);
}

forEachEngine((engine) => {
  for (const how of ['isolated', 'not isolated']) {
    engine.test(`a ${CAP_MB} MB heap (${how}): int8 and f16 VGG16 explain (compact), f32 is GCAM_STATUS_OUT_OF_MEMORY, ` +
                'then a small model loads', { timeout: 900e3 }, async ({ browser, origin, plainOrigin }) => {
      const page = await browser.newPage();
      try {
        await page.goto(`${how === 'isolated' ? origin : plainOrigin}/web/demo/`);
        const out = JSON.parse(await page.evaluate(underTheCap, CAP_MB));
        console.log(`${engine.name} (${how}): ${JSON.stringify(out)}`);
        for (const dt of ['int8', 'f16']) {
          assert.ok(out[dt].ok, `${dt}: ${JSON.stringify(out[dt])}`);
          assert.ok(out[dt].wasmMemoryBytes <= CAP_MB << 20, `${dt}: ${out[dt].wasmMemoryBytes} bytes of wasm memory`);
          assert.equal(out[dt].heat, 196);
        }
        assert.equal(out.f32.ok, false, 'the f32 VGG16 does not fit');
        assert.equal(out.f32.code, 'GCAM_STATUS_OUT_OF_MEMORY', JSON.stringify(out.f32));
        assert.match(out.f32.message, /\d+ MB/);
        assert.ok(out.small >= 1);
      } finally {
        await page.close();
      }
    });
  }
}, {
  serverFiles: async () => {
    const files = {};
    for (const dt of ['f32', 'f16', 'int8']) files[`/generated/vgg16-${dt}.gcam`] = await randomVgg16(dt);
    return files;
  },
});
